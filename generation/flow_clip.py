"""One clip from a flow-matching family (Wan 2.1 / 2.2), for :class:`~generation.service.GenerationService`.

Hybrid semantics (POS eq. 8), ONA (POS eq. 2-4), NPNet noise (POS §4.2,
trained on this model's flow inversions), a motion LoRA (Search-T2V
§4.3 / VMC, on the transformer's self-attention, applied for the clip and
removed after) and VidRD clip extension over latent frames
(:mod:`generation.flow_extension`) run on the flow loop; the other methods of the papers are not
yet ported, and a request that asks for one is refused with the family's
reason (never silently sampled without it).

ONA on a flow: the sampler starts at σ = 1, where ``x_σ = (1 − σ) x₀ + σ ε``
is pure noise ``ε`` (no ``√ᾱ`` signal scale as in DDPM), so the start must be
unit-variance like ``ε``. The cached ``ε_inv`` is the inverted pool clip at
σ = 1, and eq. 4's ``ε/√(1+η²) + η·ε_inv/√(1+η²)`` has variance
``(1 + η² Var ε_inv)/(1 + η²)``: exactly 1 when ``ε_inv`` is unit-variance,
as for DDIM. The manifest records ``ε_inv``'s std, so a departure is seen.
"""

from __future__ import annotations

import time
from pathlib import Path

import torch

from generation.adapters import applied_lora
from generation.clip_files import save_clip
from generation.families import Family
from generation.flow_extension import FlowClipExtension
from generation.hybrid import hybrid_conditioning, rewrite_steps
from generation.inversion_cache import InversionCache
from generation.ona import cached_inversion, mix_noise
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


def _ona_noise(
    model: WanModel, request: ClipRequest, eps: torch.Tensor, inversions: InversionCache | None
) -> tuple[torch.Tensor, dict]:
    """POS eq. 4 on the flow path: ``ε`` mixed with the pool clip's cached flow inversion by η."""
    spec = request.noise
    if not spec.video_id or not spec.video:
        raise ReelgraphError("ONA noise was asked for without a pool video.", fix="plan the scene again.")
    if inversions is None or model.info is None:
        raise ReelgraphError(
            "ONA noise needs the inversion cache and the model's description.",
            fix="sample through the generation service.",
        )
    started = time.perf_counter()
    eps_inv, hit = cached_inversion(
        model, inversions, spec.video_id, spec.video, request.num_inference_steps, request.num_frames
    )
    if eps_inv.shape != eps.shape:
        raise ReelgraphError(
            f"The ona noise has shape {tuple(eps_inv.shape)}, the clip needs {tuple(eps.shape)}.",
            why="the inversion was made for another clip size.",
            fix="re-run `index invert` for this model.",
        )
    details = {
        "source": "ona",
        "video_id": spec.video_id,
        "eta": spec.eta,
        "cache": "hit" if hit else "miss",
        "inversion": "flow",
        "eps_inv_std": round(eps_inv.float().std().item(), 4),
        "seconds": round(time.perf_counter() - started, 4),
    }
    return mix_noise(eps, eps_inv, spec.eta), details


def _npnet_noise(
    model: WanModel, request: ClipRequest, eps: torch.Tensor, prompt: torch.Tensor, generator, load_npnet
) -> tuple[torch.Tensor, dict]:
    """POS eq. 4-5 on the flow path with NPNet's ``ε̂_inv`` (POS §4.2) for the prompt, mixed by η.

    NPNet was trained on this model's cached flow inversions (``npnet train``),
    so ``ε̂_inv`` is a state at σ = 1 like ONA's; it is drawn from ``generator``
    after ``ε``, so ``ε`` is the same for every noise source of one seed.
    """
    spec = request.noise
    if not spec.npnet:
        raise ReelgraphError("NPNet noise was asked for without NPNet weights.", fix="set --npnet.")
    if load_npnet is None:
        raise ReelgraphError(
            "NPNet noise needs its weights loader.", fix="sample through the generation service."
        )
    started = time.perf_counter()
    net = load_npnet(spec.npnet)
    context = prompt.float().to(next(net.parameters()).device)
    eps_inv = net.sample(context, generator, eps.shape[2])  # latent frames
    if eps_inv.shape != eps.shape:
        raise ReelgraphError(
            f"The npnet noise has shape {tuple(eps_inv.shape)}, the clip needs {tuple(eps.shape)}.",
            why="the NPNet was trained for another clip size or model.",
            fix="re-run `index invert` and `npnet train` for this model.",
        )
    details = {
        "source": "npnet",
        "npnet": spec.npnet,
        "eta": spec.eta,
        "seconds": round(time.perf_counter() - started, 4),
    }
    return mix_noise(eps, eps_inv, spec.eta), details


def sample_flow_clip(
    model: WanModel,
    request: ClipRequest,
    latents_path: Path,
    height: int,
    width: int,
    max_sequence_length: int,
    extension: object | None = None,
    callback: StepCallback | None = None,
    inversions: InversionCache | None = None,
    load_npnet=None,
) -> ClipResult:
    """Denoise one clip with our flow loop and save its latents ``(1, C, f, h, w)`` (safetensors).

    ONA noise reads the pool video's inversion from ``inversions`` (inverting
    it once on a miss, then caching it), as on the DDIM path. ``extension``
    (a :class:`~generation.clip_plan.ClipStartSpec`) makes the clip part of a
    long video: VidRD's noise reuse and staged guidance over latent frames, in
    forward time or as printed (:class:`~generation.flow_extension.FlowClipExtension`).
    """

    for method in methods_asked(request, extension):
        model.family.refuse(method)
    check_flow_frames(model.family, request.num_frames)
    setup = None
    if extension is not None:
        setup = FlowClipExtension(model, extension, request.num_frames, request.num_inference_steps)
    started = time.perf_counter()
    with torch.inference_mode():
        prompt = model.encode_prompt([request.prompt], max_sequence_length)
        negative = model.encode_prompt([request.negative_prompt], max_sequence_length)
        generator = torch.Generator("cpu").manual_seed(request.seed)
        shape = model.latent_shape(1, request.num_frames, height, width)
        latents = torch.randn(shape, generator=generator)  # ε: the first draw, whatever the noise source
        noise_details = {"source": "random"}
        if request.noise.source == "ona" and request.noise.eta > 0:
            # Before the LoRA goes in: a cached inversion belongs to the base model alone.
            latents, noise_details = _ona_noise(model, request, latents, inversions)
        elif request.noise.source == "npnet" and request.noise.eta > 0:
            latents, noise_details = _npnet_noise(model, request, latents, prompt, generator, load_npnet)
        latents = latents.to(model.device)
        if setup is not None:
            latents = setup.initial_latents(latents)
        steps = request.num_inference_steps
        m = rewrite_steps(steps, request.gamma) if request.rewritten_prompt else 0
        conditioning = prompt
        if m > 0:
            rewritten = model.encode_prompt([request.rewritten_prompt], max_sequence_length)
            conditioning = hybrid_conditioning(rewritten, prompt, steps, request.gamma)
    # The LoRA goes in outside inference mode (its weights are parameters) and comes out after sampling.
    with applied_lora(model.transformer, request.lora_path, request.lora_scale), torch.inference_mode():
        latents = model.sample(
            conditioning,
            negative,
            latents,
            steps,
            request.guidance_scale,
            callback=callback,
            latents_hook=setup.hook if setup else None,
            given=setup.given(latents) if setup else None,
        )
        if setup is not None:
            latents = setup.finish(latents)
    details = {
        "noise": noise_details,
        "rewrite_steps": m,
        **({"gamma": request.gamma} if m else {}),
        "sampler": "flow",
        "flow_shift": model.flow_shift,
        **({"extension": setup.details()} if setup else {}),
    }
    return save_clip(latents, latents_path, request, started, details, extension)
