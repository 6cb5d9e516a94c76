"""What a Wan folder holds, read from its JSON configs alone (no torch), as a :class:`ModelInfo`.

Size and clip length come from ``reelgraph.json`` when the folder has one
(our tiny test folders), else Wan's published defaults: 81 frames of 832x480
at 16 fps (Wan 2.1 §4). Frame counts are ``4k + 1`` (the causal VAE keeps
the first frame and compresses time 4x after it).
"""

from __future__ import annotations

import json
from pathlib import Path

from generation.families import Family
from generation.model_info import ModelInfo, continuation_flags, safetensors_parameter_count
from reelgraph.hashing import folder_hash

WAN_DEFAULTS = {"num_frames": 81, "height": 480, "width": 832, "fps": 16}


def _json(path: Path) -> dict:
    return json.loads(path.read_text()) if path.is_file() else {}


def read_flow_info(folder: Path, family: Family, model_id: str | None, hash_memo: Path | None) -> ModelInfo:
    """Describe a flow-matching transformer folder of ``family`` from its configs."""
    extra = {**WAN_DEFAULTS, **_json(folder / "reelgraph.json")}
    transformer = _json(folder / "transformer" / "config.json")
    scheduler = _json(folder / "scheduler" / "scheduler_config.json")
    tokenizer = _json(folder / "tokenizer" / "tokenizer_config.json")
    parameters = safetensors_parameter_count(folder / "transformer")
    if (folder / "transformer_2").is_dir():
        parameters += safetensors_parameter_count(folder / "transformer_2")
    heads, head_dim = transformer.get("num_attention_heads", 40), transformer.get("attention_head_dim", 128)
    # The toy flow model names its text encoder (resolved offline) and token length in reelgraph.json.
    text = extra.get("text_encoder") if isinstance(extra.get("text_encoder"), dict) else {}
    max_tokens = extra.get("max_length", min(tokenizer.get("model_max_length", 512), 512))
    return ModelInfo(
        model_id=model_id or str(folder),
        path=str(folder),
        weights_hash=folder_hash(folder, memo=hash_memo),
        unet_class=transformer.get("_class_name", "WanTransformer3DModel"),
        scheduler_class=scheduler.get("_class_name", "?"),
        num_frames=int(extra["num_frames"]),
        height=int(extra["height"]),
        width=int(extra["width"]),
        fps=int(extra["fps"]),
        guidance_scale=float(extra.get("guidance_scale", family.default_guidance)),
        text_encoder=str(text.get("model", family.text_encoder)),
        max_prompt_tokens=int(text.get("max_length", max_tokens)),
        unet_parameters=parameters,
        unet_max_channels=int(heads * head_dim),
        latent_channels=int(
            transformer.get("out_channels") or transformer.get("in_channels", family.latent_channels)
        ),
        vae_scale_factor=family.spatial_compression,
        family=family.name,
        flow_shift=scheduler.get("flow_shift", scheduler.get("shift")),
        unsupported=dict(family.unsupported),
        temporal_compression=family.temporal_compression,
        **continuation_flags(extra),
    )
