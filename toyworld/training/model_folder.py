"""The trained model's folder: the diffusers text-to-video layout that
:func:`generation.loaders.load_video_model` reads."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import torch

from reelgraph.atomic import write_json
from reelgraph.hashing import PLANNING_HINTS
from toyworld import architecture
from toyworld.spec import FPS, FRAME_SIZE
from toyworld.training.config import TEXT_MODEL
from toyworld.training.network import NETWORKS, Network

FLOW_CLASS = "ReelgraphToyFlow"  # model_index.json's _class_name of the flow model (generation.families)


def model_index(denoiser: Network) -> dict[str, Any]:
    """``model_index.json`` of a toy model folder: the denoiser's subfolder and class, the VAE, the
    scheduler its objective samples with, and the MiniLM text encoder (resolved offline)."""
    flow = denoiser.objective == "flow"
    return {
        "_class_name": FLOW_CLASS if flow else "ReelgraphToyT2V",
        denoiser.folder: list(denoiser.index_entry),
        "vae": ["diffusers", "AutoencoderKL"],
        "scheduler": ["diffusers", "FlowMatchEulerDiscreteScheduler" if flow else "DDIMScheduler"],
        "text_encoder": ["reelgraph", "MiniLMPromptEncoder"],
    }


MODEL_INDEX = model_index(NETWORKS["unet3d"])


def save_model_folder(
    out_dir: str | Path,
    unet: torch.nn.Module,
    vae: torch.nn.Module,
    scheduler_config: dict[str, Any],
    num_frames: int = 8,
    guidance_scale: float = 7.5,
    network: Network = NETWORKS["unet3d"],
    flow_shift: float = 1.0,
    distribution: str = "train",
) -> Path:
    """Write the toy model layout (``model_index.json``, ``reelgraph.json``, ``planning.json``, the
    denoiser's folder (``transformer/`` or ``unet/``), ``vae/``, ``scheduler/``).

    ``unet`` is the denoiser ``network`` builds; ``scheduler_config`` is the DDIM schedule of an ε
    network, ignored for a flow network, whose ``FlowMatchEulerDiscreteScheduler`` takes ``flow_shift``.
    """
    from diffusers import DDIMScheduler, FlowMatchEulerDiscreteScheduler

    flow = network.objective == "flow"
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "model_index.json", model_index(network))
    text_encoder: dict[str, Any] = {"model": TEXT_MODEL, "max_length": architecture.TEXT_TOKENS}
    if flow:
        text_encoder["zero_padding"] = True
    write_json(
        out / "reelgraph.json",
        {
            "num_frames": num_frames,
            "height": FRAME_SIZE,
            "width": FRAME_SIZE,
            "fps": FPS,
            "guidance_scale": guidance_scale,
            "text_encoder": text_encoder,
            # the transformer takes given frames with a mask (ART-V's masked diffusion, --extension artv),
            # maybe noise-augmented, and an anchor frame (ART-V §3.3-3.4)
            **({"conditioning_frames": True} if flow else {}),
            **{key: True for key in ("condition_noise", "anchor_frame") if flow and unet.config.get(key)},
        },
    )
    write_json(out / PLANNING_HINTS, planning_hints(distribution))
    stored = unet
    if flow:  # stored in float16 (half the bytes); loaders cast to their compute dtype (fp32 on CPU)
        stored = copy.deepcopy(unet).to(torch.float16)
    stored.save_pretrained(out / network.folder, safe_serialization=True)
    vae.save_pretrained(out / "vae", safe_serialization=True)
    if flow:
        FlowMatchEulerDiscreteScheduler(shift=flow_shift).save_pretrained(out / "scheduler")
    else:
        DDIMScheduler(**scheduler_config).save_pretrained(out / "scheduler")
    return out


def planning_hints(distribution: str = "train") -> dict[str, Any]:
    """What the agent plans a toy-world model with: its rare motion (the share of it in the
    ``distribution`` the model trained on says why) and the toy probe as its keyframe detector."""
    from toyworld.captions import motion_weights
    from toyworld.spec import RARE_MOTION

    share = motion_weights(distribution)[RARE_MOTION]
    return {
        "rare_motions": [RARE_MOTION],
        "rare_motions_source": f"the toy model's training captions ({RARE_MOTION} is {100 * share:.1f} % of them)",
        "detector": "toy",
    }
