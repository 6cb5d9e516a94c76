"""One clip from a flow-matching family (Wan 2.1 / 2.2), for :class:`~generation.service.GenerationService`.

Hybrid semantics (POS eq. 8) runs on the flow loop; the other methods of the
papers are not yet ported, and a request that asks for one is refused with
the family's reason (never silently sampled without it).
"""

from __future__ import annotations

import time
from pathlib import Path

import torch

from generation.families import Family
from generation.hybrid import hybrid_conditioning, rewrite_steps
from generation.sampling import StepCallback
from generation.wan_backend import WanModel
from reelgraph.contracts.clips import ClipRequest, ClipResult
from reelgraph.errors import ReelgraphError


def methods_asked(request: ClipRequest, extension: object | None) -> list[str]:
    """The paper methods a request uses, in :data:`generation.families.METHODS` names."""
    asked = []
    if request.rewritten_prompt and request.gamma > 0:
        asked.append("hybrid")
    if request.noise.source != "random" and request.noise.eta > 0:
        asked.append(request.noise.source)
    if request.lora_path:
        asked.append("motion_lora")
    if extension is not None:
        asked.append("extension")
    return asked


def check_flow_frames(family: Family, num_frames: int) -> None:
    """Refuse a frame count the causal VAE cannot produce, naming the two nearest that it can."""
    r = family.temporal_compression
    if (num_frames - 1) % r == 0:
        return
    below = (num_frames - 1) // r * r + 1
    raise ReelgraphError(
        f"{num_frames} frames cannot be made by a {family.name} model.",
        why=f"its VAE compresses time {r}x after the first frame, so clips have {r}k + 1 frames.",
        fix=f"ask for --frames {below} or {below + r}.",
    )


def sample_flow_clip(
    model: WanModel,
    request: ClipRequest,
    latents_path: Path,
    height: int,
    width: int,
    max_sequence_length: int,
    extension: object | None = None,
    callback: StepCallback | None = None,
) -> ClipResult:
    """Denoise one clip with our flow loop and save its latents ``(1, C, f, h, w)`` (safetensors)."""
    from safetensors.torch import save_file

    from reelgraph.atomic import atomic_path

    for method in methods_asked(request, extension):
        model.family.refuse(method)
    check_flow_frames(model.family, request.num_frames)
    started = time.perf_counter()
    with torch.inference_mode():
        prompt = model.encode_prompt([request.prompt], max_sequence_length)
        negative = model.encode_prompt([request.negative_prompt], max_sequence_length)
        generator = torch.Generator("cpu").manual_seed(request.seed)
        shape = model.latent_shape(1, request.num_frames, height, width)
        latents = torch.randn(shape, generator=generator).to(model.device)
        steps = request.num_inference_steps
        m = rewrite_steps(steps, request.gamma) if request.rewritten_prompt else 0
        conditioning = prompt
        if m > 0:
            rewritten = model.encode_prompt([request.rewritten_prompt], max_sequence_length)
            conditioning = hybrid_conditioning(rewritten, prompt, steps, request.gamma)
        latents = model.sample(
            conditioning, negative, latents, steps, request.guidance_scale, callback=callback
        )
    with atomic_path(latents_path) as tmp:
        save_file({"latents": latents.float().cpu().contiguous()}, str(tmp))
    return ClipResult(
        latents_path=str(latents_path),
        num_frames=request.num_frames,
        seed=request.seed,
        seconds=time.perf_counter() - started,
        details={
            "noise": {"source": "random"},
            "rewrite_steps": m,
            **({"gamma": request.gamma} if m else {}),
            "sampler": "flow",
            "flow_shift": model.flow_shift,
        },
    )
