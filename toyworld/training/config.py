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
    # The denoiser (:mod:`toyworld.training.network`): "wan" (rectified flow) or "unet3d" (DDIM ε).
    network: str = "wan"
    # A trained model folder whose VAE (and its scaling factor) this run reuses, skipping the VAE
    # and calibration phases: a new denoiser on the committed latents costs no VAE minutes.
    vae_from: str | None = None
    vae_share: float = 0.15
    vae_steps: int | None = None
    unet_steps: int | None = None
    num_frames: int = 8
    distribution: str | None = None  # None: the network's (flow_train for wan, train for unet3d)
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
    unet_lr: float | None = None  # None: the network's (1e-3 wan, 2e-3 unet3d)
    weight_decay: float = 0.01
    warmup_steps: int | None = None  # None: the network's (100 wan, 50 unet3d)
    unet_cooldown: float = 0.2
    grad_clip: float = 1.0
    ema_decay: float = 0.999
    # Which denoiser weights the model folder gets: "raw" (the optimiser's, after the LR cooldown) or
    # "ema". An EMA of 0.999 spans ~1,000 steps, which in a run of a few thousand reaches back before
    # the LR cooldown; on the selection draw the committed run's raw weights scored higher
    # (MODEL_CARD.md). Both stay in the checkpoint.
    saved_weights: str = "raw"
    caption_dropout: float = 0.1
    min_snr_gamma: float = 5.0  # ε objective only
    # Flow objective: σ = sigmoid(n), n ~ N(mean, std) (SD3 §3.1 logit-normal); a positive mean trains
    # high noise more, where the caption must decide the clip's layout and direction.
    logit_mean: float = 0.5
    logit_std: float = 1.0
    # A share of training clips whose first k frames (k up to ``condition_max_frames``) are given
    # through the conditioning channels (masked diffusion: image-to-video and continuation).
    condition_share: float = 0.15
    condition_max_frames: int = 4
    # ART-V §3.3 / §3.4, for networks built with condition_noise / anchor_frame (data.flow_batch).
    condition_noise_max: float = 0.4
    anchor_share: float = 0.5
    # A model folder whose transformer initialises this run's (ART-V starts from a pre-trained
    # text-to-video model); modules the folder lacks (a new anchor embedder) keep their init.
    init_from: str | None = None
    flow_shift: float = 1.0  # the sampling scheduler's shift (saved with the model)
    caption_bank: int = 8000
    latent_pool: int = 2048
    pool_refresh: int = 8
    guidance_scale: float | None = None  # None: the network's (5 wan, 6 unet3d)
    # bookkeeping
    checkpoint_minutes: float = 3.0
    unet_config: dict[str, Any] | None = None  # None: the network's default config
    vae_config: dict[str, Any] = field(default_factory=lambda: dict(architecture.VAE_CONFIG))
    scheduler_config: dict[str, Any] = field(default_factory=lambda: dict(architecture.SCHEDULER_CONFIG))

    @property
    def continuation(self) -> bool:
        """Whether this run trains ART-V's continuation inputs (noise augmentation and anchor)."""
        config = self.unet_config or {}
        return bool(config.get("condition_noise") and config.get("anchor_frame"))

    def resolved(self) -> TrainConfig:
        """A copy with the fields left None set to the network's defaults (what a run trains with)."""
        denoiser = network.network_named(self.network)
        filled = {
            name: value for name, value in denoiser.training_defaults.items() if getattr(self, name) is None
        }
        if self.unet_config is None:
            filled["unet_config"] = denoiser.default_config()
        return dataclasses.replace(self, **filled)

    @property
    def denoiser(self) -> network.Network:
        return network.network_named(self.network)

    def to_json(self) -> dict[str, Any]:
        return json.loads(json.dumps(dataclasses.asdict(self)))


def continuation_finetune() -> dict[str, Any]:
    """``toy train --continuation``: ART-V's continuation network fine-tuned from a text-to-video run
    (``--init-from``): noise-augmented given frames (§3.3), an anchor frame (§3.4), 30 % of clips
    conditioned, a lower peak LR with a short warmup (the shipped model's second stage)."""
    return {
        "unet_config": {**network.TOY_WAN_CONFIG, "condition_noise": True, "anchor_frame": True},
        "condition_share": 0.3,
        "unet_lr": 7e-4,
        "warmup_steps": 50,
    }
