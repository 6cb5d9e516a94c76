"""One training run in a folder: the models, their optimisers and generators, and the phases.

:class:`TrainingRun` builds the VAE and the denoiser (seeded), owns the run's random generators,
saves and loads ``.checkpoint/``, and hands :func:`toyworld.training.phase.run_phase` a
:class:`~toyworld.training.phase.Phase` for the VAE and one for the denoiser.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from generation.toy_transformer import GivenFrames
from reelgraph.atomic import write_json, write_text
from reelgraph.errors import ReelgraphError
from toyworld import architecture
from toyworld.training import data
from toyworld.training.calibration import calibrate_latents, stat_latents
from toyworld.training.checkpoints import (
    load_optimizer,
    load_tensors,
    numpy_from_state,
    numpy_state,
    optimizer_tensors,
    save_tensors,
)
from toyworld.training.config import CHECKPOINT_DIR, TEXT_MODEL, TrainConfig
from toyworld.training.losses import diffusion_loss, flow_loss, vae_loss
from toyworld.training.model_folder import save_model_folder
from toyworld.training.phase import Phase, run_phase
from toyworld.training.report import model_card, plot_losses
from toyworld.training.schedules import ema_decay
from toyworld.training.state import TrainingClock, TrainingProgress


def _init_seeded(build: Callable[[], torch.nn.Module], seed: int) -> torch.nn.Module:
    """Module constructors take no generator: seed torch's global one inside ``fork_rng`` so the
    caller's global state is left untouched."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build()


def _init_logvar(vae: torch.nn.Module, logvar: float) -> None:
    """Start the posterior narrow (std = exp(logvar / 2)): with a tiny KL weight the encoder would
    spend its first hundreds of steps shrinking a unit-variance posterior whose noise blurs every
    reconstruction. The encoder's last conv emits [mean, logvar] channels."""
    conv = vae.encoder.conv_out
    half = conv.out_channels // 2
    with torch.no_grad():
        conv.bias[half:].fill_(logvar)


def _disable_dropout(module: torch.nn.Module) -> None:
    """Dropout would draw from torch's global generator (and the model underfits anyway)."""
    for sub in module.modules():
        if isinstance(sub, torch.nn.Dropout):
            sub.p = 0.0


class TrainingRun:
    """One training run in ``out_dir``; see :func:`toyworld.training.train_toy_model`."""

    def __init__(
        self,
        out_dir: Path,
        config: TrainConfig,
        seed: int,
        device: torch.device,
        prompt_encoder: Any,
        progress: bool,
    ):
        self.out = out_dir
        self.ckpt = out_dir / CHECKPOINT_DIR
        self.config = config
        self.seed = seed
        self.device = device
        self.autocast = device.type == "cuda"
        self._prompt_encoder = prompt_encoder
        self.show_progress = progress
        self.progress = TrainingProgress(device=str(device))
        self.clock = TrainingClock()

        self.vae = _init_seeded(lambda: architecture.build_vae(config.vae_config), seed)
        self.network = config.denoiser
        self.denoiser = _init_seeded(lambda: self.network.build(config.unet_config), seed + 1)
        _init_logvar(self.vae, config.vae_logvar_init)
        _disable_dropout(self.vae)
        _disable_dropout(self.denoiser)
        self.vae.to(device)
        self.denoiser.to(device)
        self.ema = [p.detach().clone() for p in self.denoiser.parameters()]
        self.scheduler = architecture.build_scheduler(config.scheduler_config)
        self.alphas_cumprod = self.scheduler.alphas_cumprod.to(device)
        self.vae_opt = torch.optim.AdamW(self.vae.parameters(), lr=config.vae_lr, weight_decay=0.0)
        self.denoiser_opt = torch.optim.AdamW(
            self.denoiser.parameters(), lr=config.unet_lr, weight_decay=config.weight_decay
        )
        # Data from numpy generators, noise / timesteps / dropout / picks from torch ones; all saved.
        self.vae_rng = np.random.default_rng([seed, 1])
        self.denoiser_rng = np.random.default_rng([seed, 3])
        self.vae_gen = torch.Generator().manual_seed(seed * 1000 + 11)
        self.denoiser_gen = torch.Generator().manual_seed(seed * 1000 + 13)
        self.bank: data.CaptionBank | None = None
        self.pool = data.LatentPool(self._encode_latents, config.num_frames)

    @property
    def budget_s(self) -> float:
        return self.config.minutes * 60.0

    # -- checkpoints -----------------------------------------------------------------------------
    def save_checkpoint(self) -> None:
        self.ckpt.mkdir(parents=True, exist_ok=True)
        self.progress.elapsed_s = self.clock.elapsed
        self.progress.numpy_rngs = {"vae": numpy_state(self.vae_rng), "unet": numpy_state(self.denoiser_rng)}
        save_tensors(self.ckpt / "vae.safetensors", self.vae.state_dict())
        save_tensors(self.ckpt / "unet.safetensors", self.denoiser.state_dict())
        names = [name for name, _ in self.denoiser.named_parameters()]
        save_tensors(self.ckpt / "unet_ema.safetensors", dict(zip(names, self.ema, strict=True)))
        vae_opt, vae_meta = optimizer_tensors(self.vae_opt)
        denoiser_opt, denoiser_meta = optimizer_tensors(self.denoiser_opt)
        save_tensors(self.ckpt / "vae_optimizer.safetensors", vae_opt)
        save_tensors(self.ckpt / "unet_optimizer.safetensors", denoiser_opt)
        if self.pool.latents is not None:
            save_tensors(
                self.ckpt / "latent_pool.safetensors",
                {"latents": self.pool.latents, "captions": self.pool.captions},
            )
        save_tensors(
            self.ckpt / "generators.safetensors",
            {"vae": self.vae_gen.get_state(), "unet": self.denoiser_gen.get_state()},
        )
        write_json(
            self.ckpt / "state.json",
            {
                "seed": self.seed,
                "config": self.config.to_json(),
                "state": self.progress.to_json(),
                "optimizers": {"vae": vae_meta, "unet": denoiser_meta},
            },
        )
        self.clock.checkpointed()

    def load_checkpoint(self) -> bool:
        path = self.ckpt / "state.json"
        if not path.is_file():
            return False
        saved = json.loads(path.read_text())
        if saved["config"]["unet_config"] != self.config.to_json()["unet_config"] or (
            saved["config"]["vae_config"] != self.config.to_json()["vae_config"]
        ):
            raise ReelgraphError(
                f"The checkpoint in {self.ckpt} was trained with other model configs.",
                fix="train into a new folder, or pass resume=False to start over.",
            )
        if saved["seed"] != self.seed:
            raise ReelgraphError(
                f"The checkpoint in {self.ckpt} was trained with seed {saved['seed']}, not {self.seed}.",
                fix=f"pass seed={saved['seed']}, or resume=False to start over.",
            )
        self.progress = TrainingProgress(**saved["state"])
        self.clock.resume_from(self.progress.elapsed_s)
        self.vae.load_state_dict(load_tensors(self.ckpt / "vae.safetensors"))
        self.denoiser.load_state_dict(load_tensors(self.ckpt / "unet.safetensors"))
        ema = load_tensors(self.ckpt / "unet_ema.safetensors")
        self.ema = [ema[name].to(self.device) for name, _ in self.denoiser.named_parameters()]
        optimizers = saved["optimizers"]
        load_optimizer(self.vae_opt, load_tensors(self.ckpt / "vae_optimizer.safetensors"), optimizers["vae"])
        load_optimizer(
            self.denoiser_opt, load_tensors(self.ckpt / "unet_optimizer.safetensors"), optimizers["unet"]
        )
        generators = load_tensors(self.ckpt / "generators.safetensors")
        self.vae_gen.set_state(generators["vae"])
        self.denoiser_gen.set_state(generators["unet"])
        self.vae_rng = numpy_from_state(self.progress.numpy_rngs["vae"])
        self.denoiser_rng = numpy_from_state(self.progress.numpy_rngs["unet"])
        if self.progress.scaling_factor is not None:
            self.vae.register_to_config(scaling_factor=self.progress.scaling_factor)
        pool_path = self.ckpt / "latent_pool.safetensors"
        if self.progress.phase in ("unet", "done") and pool_path.is_file():
            pool = load_tensors(pool_path)
            self.pool.latents, self.pool.captions = pool["latents"], pool["captions"]
        return True

    def _maybe_checkpoint(self) -> None:
        if self.clock.checkpoint_due(self.config.checkpoint_minutes):
            self.save_checkpoint()

    # -- data ------------------------------------------------------------------------------------
    def _encode_latents(self, frames: np.ndarray, generator: torch.Generator) -> torch.Tensor:
        return data.encode_latents(self.vae, frames, generator, self.device, self.autocast)

    def _prompt_encoder_instance(self):
        if self._prompt_encoder is None:
            from generation.text_encoders import MiniLMPromptEncoder
            from reelgraph.resolve import resolve_text_model

            self._prompt_encoder = MiniLMPromptEncoder(
                resolve_text_model(TEXT_MODEL),
                max_length=architecture.TEXT_TOKENS,
                zero_padding=self.network.objective == "flow",
            )
        return self._prompt_encoder

    # -- phases ----------------------------------------------------------------------------------
    def _run(self, phase: Phase) -> None:
        run_phase(phase, self.progress, self.clock, self.autocast, self._maybe_checkpoint, self.show_progress)

    def run_vae(self) -> None:
        cfg = self.config
        self._run(
            Phase(
                name="vae",
                module=self.vae,
                optimizer=self.vae_opt,
                base_lr=cfg.vae_lr,
                warmup_steps=cfg.vae_warmup_steps,
                cooldown=cfg.vae_cooldown,
                grad_clip=cfg.vae_grad_clip,
                step_budget=cfg.vae_steps,
                time_start_s=0.0,
                time_end_s=cfg.vae_share * self.budget_s,
                draw_batch=lambda: data.vae_batch(self.vae, cfg, self.vae_rng, self.vae_gen, self.device),
                loss=lambda b: vae_loss(
                    self.vae, b.pixels, b.pixel_weight, b.noise, cfg.kl_weight, b.decoder_noise
                ),
            )
        )
        self.progress.vae_elapsed_s = self.clock.elapsed
        self.progress.phase = "calibrate"

    def calibrate(self) -> None:
        cfg = self.config

        def measure() -> torch.Tensor:
            return stat_latents(
                self.seed,
                cfg.latent_stat_clips,
                lambda rng, n: data.sample_labels(rng, n, cfg.distribution),
                lambda labels, rng: data.render(labels, cfg.num_frames, rng),
                self._encode_latents,
            )

        for name, value in calibrate_latents(self.vae, measure).items():
            setattr(self.progress, name, value)
        self.progress.phase = "unet"

    def adopt_vae(self, folder: str | Path) -> None:
        """Take a trained model folder's VAE and scaling factor instead of the VAE and calibration
        phases (``TrainConfig.vae_from``)."""
        from diffusers import AutoencoderKL

        vae = AutoencoderKL.from_pretrained(Path(folder) / "vae")
        theirs = {k: v for k, v in vae.config.items() if k in self.config.vae_config}
        # Compared as the checkpoint compares configs: in their JSON form (tuples become lists).
        if json.loads(json.dumps(theirs)) != self.config.to_json()["vae_config"]:
            raise ReelgraphError(
                f"The VAE in {folder} has another config than this run's.",
                fix="train without vae_from, or pass the matching vae_config.",
            )
        self.vae.load_state_dict(vae.state_dict())
        scaling = float(vae.config.scaling_factor)
        self.vae.register_to_config(scaling_factor=scaling)
        self.progress.scaling_factor = scaling
        self.progress.latent_std = 1.0 / scaling
        self.progress.phase = "unet"

    def init_denoiser(self, folder: str | Path) -> None:
        """Start the denoiser (and its EMA) from a model folder's weights (``TrainConfig.init_from``).

        Only modules this run's config adds may be missing from the folder (they keep their fresh
        init, e.g. the anchor embedder of ``anchor_frame``); any other mismatch is refused.
        """
        from safetensors.torch import load_file

        weights = Path(folder) / self.network.folder / "diffusion_pytorch_model.safetensors"
        if not weights.is_file():
            raise ReelgraphError(
                f"{folder} has no {self.network.folder}/ weights to start from.",
                fix="pass a model folder written by `toy train` with the same network.",
            )
        state = load_file(str(weights))
        own = self.denoiser.state_dict()
        missing = sorted(set(own) - set(state))
        mismatched = [k for k in state if k not in own or own[k].shape != state[k].shape]
        if mismatched or any(".image_embedder." not in k for k in missing):
            raise ReelgraphError(
                f"The transformer in {folder} does not fit this run's config.",
                why=f"mismatched: {mismatched[:3]}; missing: {[k for k in missing if '.image_embedder.' not in k][:3]}",
                fix="start from a folder trained with the same unet_config (new modules aside).",
            )
        self.denoiser.load_state_dict(state, strict=False)
        self.ema = [p.detach().clone() for p in self.denoiser.parameters()]

    def _denoiser_loss(self, batch: Any) -> tuple[torch.Tensor, torch.Tensor]:
        if self.network.objective == "flow":
            given = GivenFrames(batch.given, batch.given_mask, batch.given_sigma, batch.anchor)
            loss, per_clip = flow_loss(
                self.denoiser, batch.latents, batch.context, batch.sigmas, batch.noise, given
            )
            return loss, per_clip.detach().mean()
        loss, per_clip = diffusion_loss(
            self.denoiser,
            self.alphas_cumprod,
            batch.latents,
            batch.context,
            batch.timesteps,
            batch.noise,
            self.config.min_snr_gamma,
        )
        return loss, per_clip.detach().mean()

    @torch.no_grad()
    def _after_denoiser_step(self) -> None:
        """EMA of the weights (what ``saved_weights="ema"`` saves), then fresh clips into the pool."""
        decay = ema_decay(self.progress.unet_step, self.config.ema_decay)
        torch._foreach_lerp_(self.ema, [p.detach() for p in self.denoiser.parameters()], 1.0 - decay)
        assert self.bank is not None
        self.pool.refresh(self.bank, self.config.pool_refresh, self.denoiser_rng, self.denoiser_gen)

    def _draw_denoiser_batch(self) -> Any:
        cfg, bank = self.config, self.bank
        assert bank is not None
        if self.network.objective == "flow":
            return data.flow_batch(self.pool, bank, cfg, self.denoiser_gen, self.device)
        return data.denoiser_batch(
            self.pool,
            bank,
            cfg.unet_batch,
            cfg.caption_dropout,
            self.scheduler.config.num_train_timesteps,
            self.denoiser_gen,
            self.device,
        )

    def run_denoiser(self) -> None:
        cfg = self.config
        self.bank = data.caption_bank(
            self.seed, cfg, self.ckpt, self._prompt_encoder_instance, self.show_progress
        )
        self.vae.eval().requires_grad_(False)
        self.pool.fill(self.bank, cfg.latent_pool, self.denoiser_rng, self.denoiser_gen, self.show_progress)
        self._run(
            Phase(
                name="unet",
                module=self.denoiser,
                optimizer=self.denoiser_opt,
                base_lr=cfg.unet_lr,
                warmup_steps=cfg.warmup_steps,
                cooldown=cfg.unet_cooldown,
                grad_clip=cfg.grad_clip,
                step_budget=cfg.unet_steps,
                time_start_s=self.progress.vae_elapsed_s,
                time_end_s=self.budget_s,
                draw_batch=self._draw_denoiser_batch,
                loss=self._denoiser_loss,
                after_step=self._after_denoiser_step,
            )
        )
        self.progress.phase = "done"

    # -- output ----------------------------------------------------------------------------------
    def saved_denoiser(self) -> torch.nn.Module:
        """A fresh denoiser holding the weights the folder gets (``saved_weights``): raw or their EMA."""
        state = {k: v.detach().cpu() for k, v in self.denoiser.state_dict().items()}
        if self.config.saved_weights == "ema":
            names = [name for name, _ in self.denoiser.named_parameters()]
            state.update({name: value.detach().cpu() for name, value in zip(names, self.ema, strict=True)})
        # Seeded only to keep the caller's global generator untouched: the weights are replaced.
        denoiser = _init_seeded(lambda: self.network.build(self.config.unet_config), self.seed + 1)
        denoiser.load_state_dict(state)
        return denoiser.eval()

    def write_model(self) -> Path:
        vae_config = {**self.config.vae_config, "scaling_factor": self.progress.scaling_factor}
        vae = _init_seeded(lambda: architecture.build_vae(vae_config), self.seed)
        vae.load_state_dict({k: v.cpu() for k, v in self.vae.state_dict().items()})
        save_model_folder(
            self.out,
            self.saved_denoiser(),
            vae,
            self.config.scheduler_config,
            network=self.network,
            flow_shift=self.config.flow_shift,
            distribution=self.config.distribution,
            num_frames=self.config.num_frames,
            guidance_scale=self.config.guidance_scale,
        )
        plot_losses(self.progress.vae_losses, self.progress.unet_losses, self.out / "loss_curve.png")
        card = model_card(self.config, self.progress, self.seed, vae, self.denoiser)
        write_text(self.out / "MODEL_CARD.md", card)
        return self.out
