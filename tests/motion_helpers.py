"""Tiny components for the motion-prior tests: GroundingDINO, an AnimateDiff UNet, toy videos."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import torch

GD_WORDS = [
    "[PAD]",
    "[UNK]",
    "[CLS]",
    "[SEP]",
    "[MASK]",
    ".",
    "a",
    "ball",
    "box",
    "red",
    "blue",
    "circle",
    "square",
]


def tiny_grounding_dino(folder: Path) -> Path:
    """A random GroundingDINO (Swin + BERT, a few thousand weights) and its processor, saved with save_pretrained.

    The BERT tokenizer is built from an in-memory word-piece vocabulary, so
    nothing is downloaded.
    """
    from transformers import (
        BertConfig,
        BertTokenizerFast,
        GroundingDinoConfig,
        GroundingDinoForObjectDetection,
        GroundingDinoProcessor,
        SwinConfig,
    )
    from transformers.models.grounding_dino.image_processing_pil_grounding_dino import (
        GroundingDinoImageProcessorPil,
    )

    tokenizer = BertTokenizerFast(vocab={w: i for i, w in enumerate(GD_WORDS)}, do_lower_case=True)
    backbone = SwinConfig(
        image_size=32,
        patch_size=4,
        embed_dim=8,
        depths=[1, 1],
        num_heads=[1, 1],
        window_size=4,
        out_features=["stage1", "stage2"],
    )
    text = BertConfig(
        vocab_size=len(GD_WORDS),
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=16,
        max_position_embeddings=64,
    )
    config = GroundingDinoConfig(
        backbone_config=backbone,
        text_config=text,
        num_queries=10,
        encoder_layers=1,
        decoder_layers=2,
        encoder_ffn_dim=32,
        decoder_ffn_dim=32,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        d_model=32,
        num_feature_levels=2,
        encoder_n_points=2,
        decoder_n_points=2,
        max_text_len=32,
    )
    torch.manual_seed(0)  # transformers initialises weights from the global generator
    model = GroundingDinoForObjectDetection(config).eval()
    images = GroundingDinoImageProcessorPil(size={"shortest_edge": 32, "longest_edge": 32})
    processor = GroundingDinoProcessor(image_processor=images, tokenizer=tokenizer)
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return Path(folder)


def tiny_motion_unet(seed: int = 0):
    """A tiny AnimateDiff ``UNetMotionModel`` (spatial blocks plus ``motion_modules``)."""
    from diffusers import UNetMotionModel

    torch.manual_seed(seed)
    return (
        UNetMotionModel(
            block_out_channels=(32, 64),
            layers_per_block=1,
            sample_size=8,
            in_channels=4,
            out_channels=4,
            down_block_types=("CrossAttnDownBlockMotion", "DownBlockMotion"),
            up_block_types=("UpBlockMotion", "CrossAttnUpBlockMotion"),
            cross_attention_dim=32,
            num_attention_heads=2,
            norm_num_groups=32,
            motion_num_attention_heads=2,
            motion_max_seq_length=16,
        )
        .eval()
        .requires_grad_(False)
    )


def moving_blob_latents(frames: int = 6, size: int = 8) -> torch.Tensor:
    """``(1, 4, F, size, size)`` latents of a bright 2x2 blob stepping right one cell per frame."""
    latents = torch.zeros(1, 4, frames, size, size)
    for f in range(frames):
        x = f % (size - 1)
        latents[0, :, f, 3:5, x : x + 2] = 2.0
    return latents


def toy_video(path: Path, motion: str = "zigzag", frames: int = 24, seed: int = 0) -> Path:
    """A rendered toy pool video (red ball doing ``motion`` on grass), lossless MP4."""
    from reelgraph.media import write_mp4
    from toyworld.render import render_video

    label = {
        "actor": {"shape": "circle", "color": "red", "size": "big"},
        "motion": motion,
        "background": "grass",
    }
    return write_mp4(render_video(label, frames, np.random.default_rng(seed)), path, lossless=True)


def tunable_model_dir(tiny_model_dir: Path, folder: Path, num_frames: int = 4) -> Path:
    """The tiny ModelScope-layout model as a toy-world model: short clips (reelgraph.json), zigzag
    declared rare and the toy probe as its keyframe detector (planning.json)."""
    shutil.copytree(tiny_model_dir, folder)
    (folder / "reelgraph.json").write_text(json.dumps({"num_frames": num_frames}))
    (folder / "planning.json").write_text(json.dumps({"rare_motions": ["zigzag"], "detector": "toy"}))
    return folder
