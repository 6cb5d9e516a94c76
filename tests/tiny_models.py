"""Tiny random diffusers components, saved the way real checkpoints are.

Real video models can't be downloaded here, so loaders are tested on folders
with the same layout and the same ``from_pretrained`` path, filled with a few
thousand random weights.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch


def _bytes_to_unicode() -> list[str]:
    """CLIP's byte-level alphabet: one printable character per byte."""
    bs = (
        list(range(ord("!"), ord("~") + 1))
        + list(range(ord("¡"), ord("¬") + 1))
        + list(range(ord("®"), ord("ÿ") + 1))
    )
    cs = bs[:]
    extra = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + extra)
            extra += 1
    return [chr(c) for c in cs]


def tiny_clip_tokenizer(max_length: int = 16):
    """A character-level CLIP tokenizer (no merges): every prompt tokenizes without a vocabulary file."""
    from transformers import CLIPTokenizer

    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for char in _bytes_to_unicode():
        vocab[char] = len(vocab)
    for char in _bytes_to_unicode():
        vocab[char + "</w>"] = len(vocab)
    return CLIPTokenizer(vocab=vocab, merges=[], model_max_length=max_length)


def tiny_components(seed: int = 0, max_length: int = 16) -> dict:
    from diffusers import AutoencoderKL, DDIMScheduler, UNet3DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    torch.manual_seed(seed)  # diffusers initialises weights from the global generator
    unet = UNet3DConditionModel(
        block_out_channels=(32, 64),
        layers_per_block=1,
        sample_size=8,
        in_channels=4,
        out_channels=4,
        down_block_types=("CrossAttnDownBlock3D", "DownBlock3D"),
        up_block_types=("UpBlock3D", "CrossAttnUpBlock3D"),
        cross_attention_dim=32,
        attention_head_dim=4,
        norm_num_groups=32,
    )
    vae = AutoencoderKL(
        block_out_channels=(32, 64),
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
        up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"),
        latent_channels=4,
        norm_num_groups=32,
        sample_size=16,
    )
    text_encoder = CLIPTextModel(
        CLIPTextConfig(
            hidden_size=32,
            intermediate_size=37,
            num_attention_heads=4,
            num_hidden_layers=2,
            vocab_size=514,
            max_position_embeddings=max_length,
            bos_token_id=0,
            eos_token_id=1,
            pad_token_id=1,
        )
    )
    scheduler = DDIMScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        clip_sample=False,
        set_alpha_to_one=False,
        steps_offset=1,
    )
    return {
        "unet": unet.eval(),
        "vae": vae.eval(),
        "text_encoder": text_encoder.eval(),
        "tokenizer": tiny_clip_tokenizer(max_length),
        "scheduler": scheduler,
    }


def save_modelscope_layout(components: dict, folder: Path) -> Path:
    """Write components in the ModelScope / Zeroscope folder layout (safetensors)."""
    folder = Path(folder)
    for name in ("unet", "vae", "text_encoder", "tokenizer", "scheduler"):
        components[name].save_pretrained(folder / name)
    index = {
        "_class_name": "TextToVideoSDPipeline",
        "unet": ["diffusers", "UNet3DConditionModel"],
        "vae": ["diffusers", "AutoencoderKL"],
        "text_encoder": ["transformers", "CLIPTextModel"],
        "tokenizer": ["transformers", "CLIPTokenizer"],
        "scheduler": ["diffusers", "DDIMScheduler"],
    }
    (folder / "model_index.json").write_text(json.dumps(index, indent=2))
    return folder


def tiny_animatediff_components(seed: int = 0, max_length: int = 16) -> dict:
    """AnimateDiff's parts (diffusers' tests/pipelines/animatediff config, smaller): an SD-style image UNet,
    a ``MotionAdapter`` and the tiny VAE, CLIP and DDIM scheduler of :func:`tiny_components`."""
    from diffusers import MotionAdapter, UNet2DConditionModel

    components = tiny_components(seed, max_length)
    torch.manual_seed(seed + 1)
    image_unet = UNet2DConditionModel(
        block_out_channels=(32, 64),
        layers_per_block=1,
        sample_size=8,
        in_channels=4,
        out_channels=4,
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=32,
        attention_head_dim=4,
        norm_num_groups=32,
    )
    torch.manual_seed(seed + 2)
    adapter = MotionAdapter(
        block_out_channels=(32, 64),
        motion_layers_per_block=1,
        motion_norm_num_groups=32,
        motion_num_attention_heads=2,
        motion_max_seq_length=16,
    )
    # The motion modules' output projections start at zero (diffusers' init): draw them, so they matter.
    with torch.no_grad():
        generator = torch.Generator().manual_seed(seed + 3)
        for name, param in adapter.named_parameters():
            if "proj_out" in name:
                param.copy_(torch.randn(param.shape, generator=generator) * 0.05)
    components.pop("unet")
    return {**components, "unet": image_unet.eval(), "motion_adapter": adapter.eval()}


def save_animatediff_layout(components: dict, folder: Path, join: bool = True) -> Path:
    """Write components as ``AnimateDiffPipeline.save_pretrained`` does (safetensors).

    ``join``: the pipeline's own layout (``unet/`` a ``UNetMotionModel`` joined from the image UNet and
    the adapter, ``motion_adapter/`` beside it); otherwise ``unet/`` stays the image UNet.
    """
    from diffusers import AnimateDiffPipeline

    folder = Path(folder)
    if join:
        parts = {
            k: components[k]
            for k in ("vae", "text_encoder", "tokenizer", "unet", "motion_adapter", "scheduler")
        }
        AnimateDiffPipeline(**parts).save_pretrained(folder, safe_serialization=True)
        return folder
    for name in ("unet", "motion_adapter", "vae", "text_encoder", "tokenizer", "scheduler"):
        components[name].save_pretrained(folder / name)
    index = {
        "_class_name": "AnimateDiffPipeline",
        "unet": ["diffusers", "UNet2DConditionModel"],
        "motion_adapter": ["diffusers", "MotionAdapter"],
        "vae": ["diffusers", "AutoencoderKL"],
        "text_encoder": ["transformers", "CLIPTextModel"],
        "tokenizer": ["transformers", "CLIPTokenizer"],
        "scheduler": ["diffusers", "DDIMScheduler"],
        "feature_extractor": [None, None],
        "image_encoder": [None, None],
    }
    (folder / "model_index.json").write_text(json.dumps(index, indent=2))
    return folder
