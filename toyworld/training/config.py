"""What shapes a toy-model training run: :class:`TrainConfig` and the checkpoint's fixed names."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any

from toyworld import architecture
from toyworld.training import network

CHECKPOINT_DIR = ".checkpoint"
PHASES = ("vae", "calibrate", "unet", "done")
TEXT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"


@dataclass
class TrainConfig:
    """Everything that shapes a run. Step counts, when given, replace the time budget of their phase.

    Field names are the checkpoint's ``state.json`` keys: ``unet_*`` fields configure the denoiser
    phase whatever network :mod:`toyworld.training.network` builds.
    """

    minutes: float = 85.0
    vae_share: float = 0.15
    vae_steps: int | None = None
    unet_steps: int | None = None
    num_frames: int = 8
    distribution: str = "train"
    # VAE
    vae_batch_frames: int = 32
    vae_lr: float = 2e-3
    vae_warmup_steps: int = 50
    vae_grad_clip: float = 5.0
    vae_logvar_init: float = -6.0
    vae_cooldown: float = 0.3
    vae_decoder_noise: float = 0.25
    kl_weight: float = 1e-6
    object_weight: float = 4.0
    latent_stat_clips: int = 256
    # Denoiser
    unet_batch: int = 16
    unet_lr: float = 2e-3
    weight_decay: float = 0.01
    warmup_steps: int = 50
    unet_cooldown: float = 0.2
    grad_clip: float = 1.0
    ema_decay: float = 0.999
    # Which denoiser weights the model folder gets: "raw" (the optimiser's, after the LR cooldown) or
    # "ema". An EMA of 0.999 spans ~1,000 steps, which in a run of a few thousand reaches back before
    # the LR cooldown; on the selection draw the committed run's raw weights scored higher
    # (MODEL_CARD.md). Both stay in the checkpoint.
    saved_weights: str = "raw"
    caption_dropout: float = 0.1
    min_snr_gamma: float = 5.0
    caption_bank: int = 8000
    latent_pool: int = 2048
    pool_refresh: int = 8
    guidance_scale: float = 6.0
    # bookkeeping
    checkpoint_minutes: float = 3.0
    unet_config: dict[str, Any] = field(default_factory=network.default_config)
    vae_config: dict[str, Any] = field(default_factory=lambda: dict(architecture.VAE_CONFIG))
    scheduler_config: dict[str, Any] = field(default_factory=lambda: dict(architecture.SCHEDULER_CONFIG))

    def to_json(self) -> dict[str, Any]:
        return json.loads(json.dumps(dataclasses.asdict(self)))
