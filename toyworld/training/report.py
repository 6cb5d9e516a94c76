"""What a finished run reports: the loss-curve plot and the model card."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from reelgraph.atomic import atomic_path
from toyworld import architecture
from toyworld.spec import FPS
from toyworld.training.config import TrainConfig
from toyworld.training.state import TrainingProgress


def _smooth(values: list[float], window: int) -> np.ndarray:
    if len(values) < 2:
        return np.asarray(values, dtype=np.float64)
    window = max(1, min(window, len(values) // 4 or 1))
    kernel = np.ones(window) / window
    return np.convolve(np.asarray(values, dtype=np.float64), kernel, mode="valid")


def plot_losses(vae_losses: list[float], unet_losses: list[float], path: Path) -> Path:
    """Two panels (VAE reconstruction, the denoiser's loss), raw and smoothed, log scale."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    for ax, losses, title in (
        (axes[0], vae_losses, "VAE: weighted reconstruction MSE"),
        (axes[1], unet_losses, "denoiser: ε or velocity MSE"),
    ):
        if losses:
            ax.plot(np.arange(1, len(losses) + 1), losses, alpha=0.25, lw=0.6, color="tab:blue")
            smooth = _smooth(losses, 50)
            ax.plot(np.arange(len(losses) - len(smooth) + 1, len(losses) + 1), smooth, color="tab:blue")
            ax.set_yscale("log")
        else:  # a run that reused a trained VAE (vae_from) has no VAE phase
            ax.text(0.5, 0.5, "no steps in this run", ha="center", va="center", transform=ax.transAxes)
        ax.set_title(title)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110)
    plt.close(fig)
    return path


def _continuation_inputs(config: TrainConfig) -> str:
    if not config.continuation:
        return ""
    return (
        f" (noised to s ~ U(0, {config.condition_noise_max:g}), ART-V §3.3; {config.anchor_share:.0%} of them "
        "with an anchor frame of the same clip, ART-V §3.4)"
    )


def _started_from(config: TrainConfig) -> str:
    if config.init_from is None:
        return ""
    return f"\n- Started from the transformer of `{config.init_from}` (its own card says how it was trained)."


def _denoiser_training(config: TrainConfig, progress: TrainingProgress, last: float) -> str:
    if config.denoiser.objective == "flow":
        return f"""- Transformer: {progress.unet_step} steps of {config.unet_batch} clips, AdamW lr {config.unet_lr}
  (warmup {config.warmup_steps}, linear decay over the last {config.unet_cooldown:.0%}), rectified flow with
  velocity prediction, σ ~ sigmoid(N({config.logit_mean:g}, {config.logit_std:g})) (logit-normal, SD3 §3.1),
  {config.condition_share:.0%} of clips with their first 1-{config.condition_max_frames} frames given
  through the conditioning channels{_continuation_inputs(config)}, EMA {config.ema_decay} (the {config.saved_weights} weights are saved);
  final velocity MSE (mean of last 100 steps) {last:.4f}.{_started_from(config)}"""
    return f"""- UNet: {progress.unet_step} steps of {config.unet_batch} clips, AdamW lr {config.unet_lr}
  (warmup {config.warmup_steps}, linear decay over the last {config.unet_cooldown:.0%}),
  min-SNR-γ {config.min_snr_gamma:g}, EMA {config.ema_decay} (the {config.saved_weights} weights are saved);
  final ε-MSE (mean of last 100 steps) {last:.4f}."""


def _scheduler_line(config: TrainConfig) -> str:
    if config.denoiser.objective == "flow":
        return (
            f"- Scheduler: `FlowMatchEulerDiscreteScheduler`, shift {config.flow_shift:g} "
            "(sampled by reelgraph's flow loop, `generation/flow_sampling.py`)."
        )
    sc = config.scheduler_config
    return f"""- Scheduler: `DDIMScheduler`, {sc["num_train_timesteps"]} training steps,
  beta schedule `{sc["beta_schedule"]}`, prediction type `{sc["prediction_type"]}`, timestep spacing
  `{sc["timestep_spacing"]}`, steps_offset {sc["steps_offset"]}."""


def model_card(
    config: TrainConfig, progress: TrainingProgress, seed: int, vae: torch.nn.Module, unet: torch.nn.Module
) -> str:
    """The training facts of a run as markdown; evaluation figures are appended by whoever evaluates it."""
    unet_params = architecture.parameter_count(unet)
    vae_params = architecture.parameter_count(vae)
    vae_minutes = progress.vae_elapsed_s / 60.0
    total_minutes = progress.elapsed_s / 60.0
    last = np.mean(progress.unet_losses[-100:]) if progress.unet_losses else float("nan")
    if config.vae_from is not None:
        vae_training = f"- VAE: taken from `{config.vae_from}` (its own card says how it was trained)."
    else:
        vae_training = f"""- VAE: {progress.vae_step} steps of {config.vae_batch_frames} frames (one per clip), lr {config.vae_lr}
  (warmup {config.vae_warmup_steps}, linear decay over the last {config.vae_cooldown:.0%}),
  object pixels weighted x{1 + config.object_weight:g}, KL weight {config.kl_weight:g}, decoder input noise
  up to {config.vae_decoder_noise:g} latent std; {vae_minutes:.1f} min."""
    retrain = f"python cli.py toy train --out DIR --minutes {config.minutes:g} --device {progress.device}"
    if config.network != "wan":
        retrain += f" --network {config.network}"
    if config.vae_from is not None:
        retrain += f" --vae-from {config.vae_from}"
    if config.init_from is not None:
        retrain += f" --init-from {config.init_from}"
    if config.continuation:
        retrain += " --continuation"
    if seed:
        retrain += f" --seed {seed}"
    return f"""# reelgraph toy text-to-video model

A small text-to-video model trained from scratch by `toyworld/training/` on the procedural
toy world (`toyworld/`): 32x32 RGB, {config.num_frames} frames, {FPS} fps.

## Components
{config.denoiser.card_line(config.unet_config, unet_params)}
- VAE: diffusers `AutoencoderKL`, {vae_params / 1e6:.2f} M parameters, 32x32x3 -> 8x8x4 latents,
  scaling_factor {progress.scaling_factor} (1 / measured latent std {progress.latent_std}).
{_scheduler_line(config)}
- Text encoder: all-MiniLM-L6-v2, frozen, not stored here (resolved offline).

## Training
- Data: clips rendered on the fly from the `{config.distribution}` label distribution
  (`toyworld/captions.py`), captions from a bank of {config.caption_bank} template captions;
  {config.caption_dropout:.0%} of captions replaced by "" (classifier-free guidance).
{vae_training}
{_denoiser_training(config, progress, last)}
- Wall time {total_minutes:.1f} min on `{progress.device}`, seed {seed}. Loss curves: `loss_curve.png`.
- Recommended guidance: {config.guidance_scale:g} (in `reelgraph.json`).

## Retrain
```
{retrain}
```
"""
