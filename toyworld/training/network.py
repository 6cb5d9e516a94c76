"""The toy model's denoiser network: the only module that knows it is a ``UNet3DConditionModel``.

Everything else in :mod:`toyworld.training` builds, calls and saves the denoiser through these
names, so swapping the network (say, for a small Wan-style transformer) is a change of this module.
The on-disk names (``unet/`` in the model folder, ``unet*.safetensors`` and ``unet_config`` in
checkpoints) stay as they are: renaming them would orphan every existing checkpoint.
"""

from __future__ import annotations

from typing import Any

import torch

from toyworld import architecture

# The model_index.json entry of the denoiser: the library and class that load ``unet/``.
INDEX_ENTRY = ["diffusers", "UNet3DConditionModel"]


def default_config() -> dict[str, Any]:
    """A copy of the full-size denoiser config (:data:`toyworld.architecture.UNET_CONFIG`)."""
    return dict(architecture.UNET_CONFIG)


def build_denoiser(config: dict[str, Any]) -> torch.nn.Module:
    """A freshly initialised denoiser (draws from torch's global generator; seed it around the call)."""
    return architecture.build_unet(config)


def predict_noise(
    denoiser: torch.nn.Module, noisy: torch.Tensor, timesteps: torch.Tensor, context: torch.Tensor
) -> torch.Tensor:
    """ε prediction ``(B, C, F, h, w)`` for noisy latents ``(B, C, F, h, w)`` and text context ``(B, L, D)``."""
    return denoiser(noisy, timesteps, encoder_hidden_states=context).sample


def card_line(config: dict[str, Any], parameters: int) -> str:
    """The model card's bullet on the denoiser."""
    return f"""- UNet: diffusers `UNet3DConditionModel`, {parameters / 1e6:.2f} M parameters, block widths
  {list(config["block_out_channels"])}, cross-attention on all-MiniLM-L6-v2 token states
  (32 tokens x 384, padding included)."""
