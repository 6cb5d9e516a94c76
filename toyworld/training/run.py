"""The entry point: :func:`train_toy_model` runs the phases vae -> calibrate -> unet -> done."""

from __future__ import annotations

import dataclasses
import shutil
import signal
import threading
from pathlib import Path
from typing import Any

from reelgraph.errors import ReelgraphError
from toyworld.training.config import CHECKPOINT_DIR, TrainConfig
from toyworld.training.session import TrainingRun


def _stop_on_sigterm():
    """Make SIGTERM (``kill PID``, a job scheduler) stop like Ctrl-C: checkpoint, then exit."""
    if threading.current_thread() is not threading.main_thread():
        return None

    def handler(signum, frame):
        raise KeyboardInterrupt

    return signal.signal(signal.SIGTERM, handler)


def _checked_config(config: TrainConfig) -> TrainConfig:
    from toyworld.captions import DISTRIBUTIONS

    if config.distribution not in DISTRIBUTIONS:
        raise ReelgraphError(
            f"No label distribution is called {config.distribution!r}.",
            fix=f"use one of {', '.join(DISTRIBUTIONS)}.",
        )
    if config.vae_from is not None and not (Path(config.vae_from) / "vae" / "config.json").is_file():
        raise ReelgraphError(
            f"{config.vae_from} holds no trained VAE (vae/config.json is missing).",
            fix="pass a toy model folder, such as toyworld/model.",
        )
    if config.init_from is not None and config.vae_from is None:
        raise ReelgraphError(
            "init_from starts the transformer from a trained folder, but this run would train a new VAE.",
            why="the transformer learnt the latents of its folder's VAE; a new VAE's latents differ.",
            fix=f"pass vae_from={config.init_from!r} as well.",
        )
    if config.saved_weights not in ("raw", "ema"):
        raise ReelgraphError(
            f"saved_weights is {config.saved_weights!r}, which names no UNet weights.",
            fix="pass 'raw' or 'ema'.",
        )
    if config.minutes <= 0 and (config.vae_steps is None or config.unet_steps is None):
        raise ReelgraphError(
            f"A training budget of {config.minutes} minutes is empty.", fix="pass minutes > 0."
        )
    return config


def train_toy_model(
    out_dir: str | Path,
    minutes: float = 85.0,
    device: str = "auto",
    resume: bool = True,
    progress: bool = True,
    seed: int = 0,
    config: TrainConfig | None = None,
    prompt_encoder: Any = None,
    **overrides: Any,
) -> Path:
    """Train VAE then the denoiser into ``out_dir`` within ``minutes`` of wall time; returns the model folder.

    Args:
        out_dir: the model folder to write (resume state goes to ``out_dir/.checkpoint``).
        minutes: total wall-time budget, counted across resumed calls; ``vae_share`` of it goes to the VAE.
        device: ``auto`` (CUDA with bf16 autocast when present, else CPU fp32), ``cpu`` or ``cuda``.
        resume: continue from ``out_dir/.checkpoint`` when it exists (a larger budget extends a run).
        config: a :class:`TrainConfig`; ``overrides`` replace its fields (``unet_steps=...``).
        prompt_encoder: an already loaded MiniLM encoder (``encode(prompts) -> EncodedPrompts``).
    """
    from generation.devices import resolve_device

    config = dataclasses.replace(config or TrainConfig(), minutes=minutes, **overrides)
    config = _checked_config(config.resolved())
    out = Path(out_dir)
    run = TrainingRun(out, config, seed, resolve_device(device), prompt_encoder, progress)
    if resume:
        run.load_checkpoint()
    elif (out / CHECKPOINT_DIR).exists():
        shutil.rmtree(out / CHECKPOINT_DIR)
    previous = _stop_on_sigterm()
    try:
        if run.progress.phase == "vae" and config.vae_from is not None:
            run.adopt_vae(config.vae_from)
            if config.init_from is not None:
                run.init_denoiser(config.init_from)
            run.save_checkpoint()
        if run.progress.phase == "vae":
            run.run_vae()
            run.save_checkpoint()
        if run.progress.phase == "calibrate":
            run.calibrate()
            run.save_checkpoint()
        if run.progress.phase in ("unet", "done"):
            run.progress.phase = "unet"
            run.run_denoiser()
    except KeyboardInterrupt:
        run.save_checkpoint()
        raise
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    run.save_checkpoint()
    return run.write_model()


def export_checkpoint(run_dir: str | Path, out_dir: str | Path, prompt_encoder: Any = None) -> Path:
    """Write the model folder of ``run_dir``'s latest checkpoint into ``out_dir``, mid-run or after,
    without training a step (the accuracy-against-steps table of a model card reads these)."""
    import json

    from generation.devices import resolve_device

    state = Path(run_dir) / CHECKPOINT_DIR / "state.json"
    if not state.is_file():
        raise ReelgraphError(
            f"{run_dir} has no training checkpoint.", fix="pass the folder a run trains into."
        )
    saved = json.loads(state.read_text())
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    # A checkpoint from before the network field trained the UNet.
    values = {"network": "unet3d", **{k: v for k, v in saved["config"].items() if k in fields}}
    config = TrainConfig(**values).resolved()
    run = TrainingRun(Path(out_dir), config, saved["seed"], resolve_device("cpu"), prompt_encoder, False)
    run.ckpt = Path(run_dir) / CHECKPOINT_DIR
    run.load_checkpoint()
    return run.write_model()
