"""The embedded toy model's components: diffusers classes with configs sized for this CPU.

* VAE: :class:`diffusers.AutoencoderKL`, 32x32x3 frames to 8x8x4 latents (three
  encoder blocks, so two downsamples). The encoder runs once per training clip,
  so it is kept light.
* UNet: :class:`diffusers.UNet3DConditionModel` on ``(B, 4, F, 8, 8)`` latents,
  cross-attending to MiniLM token states ``(B, 32, 384)``. Three levels
  (8x8, 4x4, 2x2); text cross-attention at 8x8, 4x4 and in the 2x2 mid block.
* Scheduler: :class:`diffusers.DDIMScheduler` carrying the training noise
  schedule (see :data:`SCHEDULER_CONFIG`).

Sizing (``bench/toy_speed.py``, ``bench/results/toy_speed.md``): the budget is
one 8-frame clip at 25 DDIM steps with classifier-free guidance (a batch of 2
per UNet call) plus the VAE decode in <= 3 s on this 2-core CPU. At 8x8 latents
the UNet is bound by per-op overhead more than by FLOPs, so depth and the
number of attention blocks cost more than width.

A naming trap of ``UNet3DConditionModel``: its ``attention_head_dim`` is passed
to the blocks as a head count which they turn back into a head *dimension*, so
in the blocks it really is the per-head width (heads = channels / value), while
the input temporal transformer (``transformer_in``) gets 8 heads of that width
(inner width 8 x value). With the default 64 that one module would be 4x wider
than the first level and cost most of the FLOPs; 8 keeps it at 64.
"""

from __future__ import annotations

from typing import Any

import torch

LATENT_CHANNELS = 4
TEXT_DIM = 384  # all-MiniLM-L6-v2 hidden size
TEXT_TOKENS = 32
FRAME_SIZE = 32
LATENT_SIZE = 8

UNET_CONFIG: dict[str, Any] = {
    "sample_size": LATENT_SIZE,
    "in_channels": LATENT_CHANNELS,
    "out_channels": LATENT_CHANNELS,
    "down_block_types": ("CrossAttnDownBlock3D", "CrossAttnDownBlock3D", "DownBlock3D"),
    "up_block_types": ("UpBlock3D", "CrossAttnUpBlock3D", "CrossAttnUpBlock3D"),
    "block_out_channels": (32, 64, 64),
    "layers_per_block": 1,
    "norm_num_groups": 32,
    "cross_attention_dim": TEXT_DIM,
    "attention_head_dim": 8,
}

VAE_CONFIG: dict[str, Any] = {
    "in_channels": 3,
    "out_channels": 3,
    "down_block_types": ("DownEncoderBlock2D",) * 3,
    "up_block_types": ("UpDecoderBlock2D",) * 3,
    "block_out_channels": (16, 32, 64),
    "layers_per_block": 1,
    "latent_channels": LATENT_CHANNELS,
    "norm_num_groups": 16,
    "mid_block_add_attention": False,
    "sample_size": FRAME_SIZE,
}

# Training noise schedule, saved with the model as its DDIMScheduler config.
# Cosine ("squaredcos_cap_v2", Nichol & Dhariwal 2021) rather than SD's scaled-linear: 8x8x4 latents
# hold little redundancy, so the cosine schedule's slower destruction at low and mid noise leaves the
# model more of the trajectory where colour, shape and motion are still being decided. Epsilon
# prediction because DDIM inversion (POS eq. 2) runs on this model. "leading" spacing with
# steps_offset 1 keeps the first sampling step (t = 961 at 25 steps) off the near-zero-SNR end of
# the cosine schedule, where an epsilon model's x0 estimate is ill-conditioned (measured: "trailing"
# spacing, first step t = 999, took the committed model from colour 0.81 to 0.10; MODEL_CARD.md).
SCHEDULER_CONFIG: dict[str, Any] = {
    "num_train_timesteps": 1000,
    "beta_schedule": "squaredcos_cap_v2",
    "prediction_type": "epsilon",
    "clip_sample": False,
    "set_alpha_to_one": False,
    "steps_offset": 1,
    "timestep_spacing": "leading",
}

# Micro configs: same block types, smallest widths; for tests only (seconds to train a few steps).
MICRO_UNET_CONFIG: dict[str, Any] = {
    **UNET_CONFIG,
    "down_block_types": ("CrossAttnDownBlock3D", "DownBlock3D"),
    "up_block_types": ("UpBlock3D", "CrossAttnUpBlock3D"),
    "block_out_channels": (8, 16),
    "norm_num_groups": 4,
    "attention_head_dim": 4,
}
MICRO_VAE_CONFIG: dict[str, Any] = {
    **VAE_CONFIG,
    "block_out_channels": (8, 8, 16),
    "norm_num_groups": 4,
}


def build_unet(config: dict[str, Any] | None = None) -> torch.nn.Module:
    """A freshly initialised ``UNet3DConditionModel`` (``UNET_CONFIG`` unless given)."""
    from diffusers import UNet3DConditionModel

    return UNet3DConditionModel(**dict(config or UNET_CONFIG))


def build_vae(config: dict[str, Any] | None = None) -> torch.nn.Module:
    """A freshly initialised ``AutoencoderKL`` (``VAE_CONFIG`` unless given)."""
    from diffusers import AutoencoderKL

    return AutoencoderKL(**dict(config or VAE_CONFIG))


def build_scheduler(config: dict[str, Any] | None = None):
    """The training noise schedule as a ``DDIMScheduler``."""
    from diffusers import DDIMScheduler

    return DDIMScheduler(**dict(config or SCHEDULER_CONFIG))


def parameter_count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
