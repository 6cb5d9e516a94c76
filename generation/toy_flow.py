"""The embedded toy flow model's components: ``ToyWanTransformer``, a per-frame ``AutoencoderKL``
and all-MiniLM-L6-v2 (resolved offline, not stored in the folder), for
:class:`~generation.wan_backend.WanModel`."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from generation.flow_codecs import FrameVideoCodec, MiniLMPrompts


def toy_flow_components(folder: Path, device: torch.device, dtype: torch.dtype):
    """(transformer, prompts, codec) of a toy flow folder, frozen on ``device``."""
    from diffusers import AutoencoderKL

    from generation.text_encoders import MiniLMPromptEncoder
    from generation.toy_transformer import ToyWanTransformer
    from reelgraph.resolve import resolve_text_model

    text = json.loads((folder / "reelgraph.json").read_text())["text_encoder"]
    transformer = ToyWanTransformer.from_pretrained(folder, subfolder="transformer", torch_dtype=dtype)
    vae = AutoencoderKL.from_pretrained(folder, subfolder="vae", torch_dtype=torch.float32)
    encoder = MiniLMPromptEncoder(
        resolve_text_model(text["model"]), max_length=int(text["max_length"]), zero_padding=True
    )
    from generation.wan_backend import _frozen

    return _frozen(transformer, device), MiniLMPrompts(encoder, device), FrameVideoCodec(_frozen(vae, device))
