"""Tiny random Wan 2.1 / 2.2 components, saved the way real checkpoints are.

The configs follow diffusers' own ``tests/pipelines/wan/test_wan.py`` dummy
components (2-layer transformer, 3-level VAE with 4x temporal compression),
with a UMT5 encoder from a tiny config and a word-level tokenizer built with
``tokenizers``, so nothing is downloaded.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

_WORDS = ["a", "an", "the", "red", "blue", "green", "ball", "cube", "rolls", "moves", "to", "right", "left"]


def tiny_t5_tokenizer(max_length: int = 16):
    """A word-level tokenizer with T5's special tokens (pad 0, eos 1, unk 2)."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = {"<pad>": 0, "</s>": 1, "<unk>": 2}
    for word in _WORDS:
        vocab.setdefault(word, len(vocab))
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    backend.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", 1)])
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        pad_token="<pad>",
        eos_token="</s>",
        unk_token="<unk>",
        model_max_length=max_length,
    )


def _tiny_transformer(seed: int):
    from diffusers import WanTransformer3DModel

    torch.manual_seed(seed)  # diffusers initialises weights from the global generator
    return WanTransformer3DModel(
        patch_size=(1, 2, 2),
        num_attention_heads=2,
        attention_head_dim=12,
        in_channels=16,
        out_channels=16,
        text_dim=32,
        freq_dim=256,
        ffn_dim=32,
        num_layers=2,
        cross_attn_norm=True,
        qk_norm="rms_norm_across_heads",
        rope_max_seq_len=32,
    )


def tiny_wan_components(seed: int = 0, two_experts: bool = False, max_length: int = 16) -> dict:
    """Components of a tiny ``WanPipeline``; ``two_experts`` adds Wan 2.2's low-noise ``transformer_2``."""
    from diffusers import AutoencoderKLWan, FlowMatchEulerDiscreteScheduler
    from transformers import UMT5Config, UMT5EncoderModel

    torch.manual_seed(seed)
    vae = AutoencoderKLWan(
        base_dim=3, z_dim=16, dim_mult=[1, 1, 1, 1], num_res_blocks=1, temperal_downsample=[False, True, True]
    )
    text_encoder = UMT5EncoderModel(
        UMT5Config(
            vocab_size=32,
            d_model=32,
            d_kv=8,
            d_ff=37,
            num_layers=2,
            num_heads=4,
            relative_attention_num_buckets=8,
        )
    ).eval()
    components = {
        "transformer": _tiny_transformer(seed),
        "vae": vae,
        "scheduler": FlowMatchEulerDiscreteScheduler(shift=7.0),
        "text_encoder": text_encoder,
        "tokenizer": tiny_t5_tokenizer(max_length),
        "transformer_2": _tiny_transformer(seed + 1) if two_experts else None,
    }
    if two_experts:
        components["boundary_ratio"] = 0.875
    return components


def save_tiny_wan(folder: Path, seed: int = 0, two_experts: bool = False) -> Path:
    """Save a tiny Wan pipeline with ``save_pretrained`` (safetensors) and return its folder.

    ``reelgraph.json`` sets a 16x16 clip of up to 13 frames (Wan's defaults, 832x480 x 81, would take
    minutes on a CPU even with random weights).
    """
    from diffusers import WanPipeline

    WanPipeline(**tiny_wan_components(seed, two_experts)).save_pretrained(folder, safe_serialization=True)
    extra = {"height": 16, "width": 16, "num_frames": 13, "fps": 8, "max_length": 16}
    (Path(folder) / "reelgraph.json").write_text(json.dumps(extra, indent=2))
    return folder
