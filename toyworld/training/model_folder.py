"""The trained model's folder: the diffusers text-to-video layout that
:func:`generation.loaders.load_video_model` reads."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from reelgraph.atomic import write_json
from reelgraph.hashing import PLANNING_HINTS
from toyworld import architecture
from toyworld.spec import FPS, FRAME_SIZE
from toyworld.training import network
from toyworld.training.config import TEXT_MODEL

MODEL_INDEX = {
    "_class_name": "ReelgraphToyT2V",
    "unet": network.INDEX_ENTRY,
    "vae": ["diffusers", "AutoencoderKL"],
    "scheduler": ["diffusers", "DDIMScheduler"],
    "text_encoder": ["reelgraph", "MiniLMPromptEncoder"],
}


def save_model_folder(
    out_dir: str | Path,
    unet: torch.nn.Module,
    vae: torch.nn.Module,
    scheduler_config: dict[str, Any],
    num_frames: int = 8,
    guidance_scale: float = 7.5,
) -> Path:
    """Write the toy model layout (``model_index.json``, ``reelgraph.json``, ``planning.json``, ``unet/``,
    ``vae/``, ``scheduler/``).

    ``unet`` is the denoiser, whatever network :mod:`toyworld.training.network` builds.
    """
    from diffusers import DDIMScheduler

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "model_index.json", MODEL_INDEX)
    write_json(
        out / "reelgraph.json",
        {
            "num_frames": num_frames,
            "height": FRAME_SIZE,
            "width": FRAME_SIZE,
            "fps": FPS,
            "guidance_scale": guidance_scale,
            "text_encoder": {"model": TEXT_MODEL, "max_length": architecture.TEXT_TOKENS},
        },
    )
    write_json(out / PLANNING_HINTS, planning_hints())
    unet.save_pretrained(out / "unet", safe_serialization=True)
    vae.save_pretrained(out / "vae", safe_serialization=True)
    DDIMScheduler(**scheduler_config).save_pretrained(out / "scheduler")
    return out


def planning_hints() -> dict[str, Any]:
    """What the agent plans a toy-world model with: its rare motion (the train share says why) and
    the toy probe as its keyframe detector."""
    from toyworld.captions import TRAIN_ZIGZAG_SHARE
    from toyworld.spec import RARE_MOTION

    return {
        "rare_motions": [RARE_MOTION],
        "rare_motions_source": (
            f"the toy model's training captions ({RARE_MOTION} is {100 * TRAIN_ZIGZAG_SHARE:.1f} % of them)"
        ),
        "detector": "toy",
    }
