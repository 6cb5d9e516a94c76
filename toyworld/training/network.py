"""The toy model's denoiser networks: the only module that names their classes.

Two networks train on the same toy-world latents:

* ``wan`` (the default): :class:`generation.toy_transformer.ToyWanTransformer`, diffusers' Wan
  transformer with a pooled-text path and conditioning channels, trained by rectified flow
  (velocity prediction, SD3 §3.1) and sampled by our flow loop. Saved as ``transformer/``.
* ``unet3d``: diffusers' ``UNet3DConditionModel``, ε prediction on the DDIM schedule (the model
  shipped before as the embedded default, now ``toy-unet``). Saved as ``unet/``.

Everything else in :mod:`toyworld.training` builds, calls and saves the denoiser through
:class:`Network`. The checkpoint keeps its names (``unet*.safetensors``, ``unet_config``, the
``unet`` phase) for either network: renaming them would orphan every existing checkpoint.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from toyworld import architecture

TOY_WAN_CONFIG: dict[str, Any] = {
    "patch_size": (1, 2, 2),  # 8x8 latents -> 4x4 tokens a frame, 128 tokens an 8-frame clip
    "num_attention_heads": 6,
    "attention_head_dim": 32,  # Wan's 3-D RoPE splits it 12 (frame) / 10 (row) / 10 (column)
    "in_channels": 2 * architecture.LATENT_CHANNELS + 1,  # noisy, mask, given frames
    "out_channels": architecture.LATENT_CHANNELS,
    "text_dim": architecture.TEXT_DIM,
    "freq_dim": 256,
    "ffn_dim": 768,
    "num_layers": 6,
    "rope_max_seq_len": 64,
    "pooled_text": True,
    "condition_channels": True,
}

# Seconds-long test runs (tests/test_toy_flow.py): one block of width 24.
MICRO_TOY_WAN_CONFIG: dict[str, Any] = {
    **TOY_WAN_CONFIG,
    "num_attention_heads": 2,
    "attention_head_dim": 12,
    "ffn_dim": 32,
    "num_layers": 1,
    "freq_dim": 32,
}


@dataclass(frozen=True)
class Network:
    """One denoiser network: how to build it, call it and save it."""

    name: str
    objective: str  # "flow" (velocity along x_σ = (1 − σ) x₀ + σ ε) or "epsilon" (DDPM)
    folder: str  # the model folder's subfolder
    index_entry: tuple[str, str]  # model_index.json's (library, class)
    # TrainConfig fields left None take these (the committed runs' values)
    training_defaults: dict[str, Any] = field(default_factory=dict)

    def default_config(self) -> dict[str, Any]:
        return dict(TOY_WAN_CONFIG if self.name == "wan" else architecture.UNET_CONFIG)

    def build(self, config: dict[str, Any]) -> torch.nn.Module:
        """A freshly initialised denoiser (draws from torch's global generator; seed it around the call)."""
        if self.name == "wan":
            from generation.toy_transformer import ToyWanTransformer

            return ToyWanTransformer(**config)
        return architecture.build_unet(config)

    def predict(
        self,
        denoiser: torch.nn.Module,
        noisy: torch.Tensor,
        timesteps: torch.Tensor,
        context: torch.Tensor,
        given: Any = None,
    ) -> torch.Tensor:
        """The network's target ``(B, C, F, h, w)`` (velocity or ε) for noisy latents ``(B, C, F, h, w)``,
        timesteps ``(B,)`` and text context ``(B, L, D)``; ``given`` is a
        :class:`~generation.toy_transformer.GivenFrames` (``wan`` only)."""
        if self.name == "wan":
            extra = {} if given is None else given.kwargs()
            return denoiser(noisy, timesteps, context, return_dict=False, **extra)[0]
        return denoiser(noisy, timesteps, encoder_hidden_states=context).sample

    def card_line(self, config: dict[str, Any], parameters: int) -> str:
        """The model card's bullet on the denoiser."""
        if self.name == "wan":
            width = config["num_attention_heads"] * config["attention_head_dim"]
            return f"""- Transformer: `ToyWanTransformer` (diffusers `WanTransformer3DModel` with a pooled-text path
  into the adaptive norms and Wan image-to-video conditioning channels), {parameters / 1e6:.2f} M
  parameters: {config["num_layers"]} blocks of width {width} ({config["num_attention_heads"]} heads),
  1x2x2 patches (128 tokens an 8-frame clip), full 3-D self-attention with 3-D RoPE, cross-attention on
  all-MiniLM-L6-v2 token states (32 tokens x 384, padding zeroed)."""
        return f"""- UNet: diffusers `UNet3DConditionModel`, {parameters / 1e6:.2f} M parameters, block widths
  {list(config["block_out_channels"])}, cross-attention on all-MiniLM-L6-v2 token states
  (32 tokens x 384, padding included)."""


NETWORKS: dict[str, Network] = {
    "wan": Network(
        "wan",
        "flow",
        "transformer",
        ("reelgraph", "ToyWanTransformer"),
        {"distribution": "flow_train", "unet_lr": 1e-3, "warmup_steps": 100, "guidance_scale": 5.0},
    ),
    "unet3d": Network(
        "unet3d",
        "epsilon",
        "unet",
        ("diffusers", "UNet3DConditionModel"),
        {"distribution": "train", "unet_lr": 2e-3, "warmup_steps": 50, "guidance_scale": 6.0},
    ),
}


def network_named(name: str) -> Network:
    from reelgraph.errors import ReelgraphError

    if name not in NETWORKS:
        raise ReelgraphError(f"No toy network is called {name!r}.", fix=f"use one of {', '.join(NETWORKS)}.")
    return NETWORKS[name]
