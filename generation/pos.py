"""POS on the request path: the initial noise (eq. 4-5) and the text conditioning (eq. 8) of one clip.

:class:`generation.service.GenerationService` calls these two functions in
place of ``torch.randn`` and the plain prompt context. Neither inverts a
video when the inversion cache has it: the request path reads one small
safetensors file (ONA) or runs a small network once (NPNet).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import torch

from generation.hybrid import hybrid_conditioning, rewrite_steps
from generation.inversion_cache import InversionCache
from generation.ona import cached_inversion, mix_noise
from generation.sampling import Conditioning
from reelgraph.contracts.clips import ClipRequest
from reelgraph.errors import ReelgraphError

NPNetLoader = Callable[[str], Any]


def initial_noise(
    model,
    request: ClipRequest,
    generator: torch.Generator,
    prompt_embeds: torch.Tensor,
    cache: InversionCache,
    load_npnet: NPNetLoader,
) -> tuple[torch.Tensor, dict[str, Any]]:
    """``z_T`` for the clip (POS eq. 5's ``ε_mix``) and what was done, for the manifest.

    The Gaussian ``ε`` is always the first draw from ``generator`` (seeded
    with the request's seed), so every noise source of one seed shares it and
    ``random`` is exactly the plain sampler's noise.
    """
    eps = torch.randn(model.latent_shape(1, request.num_frames), generator=generator)
    spec = request.noise
    if spec.source == "random" or spec.eta == 0:
        return eps.to(model.device, model.dtype), {"source": "random"}
    started = time.perf_counter()
    if spec.source == "ona":
        if not spec.video_id or not spec.video:
            raise ReelgraphError("ONA noise was asked for without a pool video.", fix="plan the scene again.")
        eps_inv, hit = cached_inversion(
            model, cache, spec.video_id, spec.video, request.num_inference_steps, request.num_frames
        )
        details = {
            "source": "ona",
            "video_id": spec.video_id,
            "eta": spec.eta,
            "cache": "hit" if hit else "miss",
        }
    else:
        if not spec.npnet:
            raise ReelgraphError("NPNet noise was asked for without NPNet weights.", fix="set --npnet.")
        net = load_npnet(spec.npnet)
        context = prompt_embeds.to(next(net.parameters()).device)
        eps_inv = net.sample(context, generator, request.num_frames)  # drawn after ε: ε is unchanged
        details = {"source": "npnet", "npnet": spec.npnet, "eta": spec.eta}
    if eps_inv.shape != eps.shape:
        raise ReelgraphError(
            f"The {spec.source} noise has shape {tuple(eps_inv.shape)}, the clip needs {tuple(eps.shape)}.",
            why="the inversion or NPNet was made for another clip size.",
            fix="re-run `index invert` / `npnet train` for this model.",
        )
    details["seconds"] = round(time.perf_counter() - started, 4)
    return mix_noise(eps, eps_inv, spec.eta).to(model.device, model.dtype), details


def text_conditioning(
    model, request: ClipRequest, original_embeds: torch.Tensor
) -> tuple[Conditioning, dict[str, Any], list[str]]:
    """The context per step: POS eq. 8 when the request carries a rewrite, else the original's.

    Returns ``(conditioning, details, warnings)``; ``details["rewrite_steps"]`` is ``m``.
    """
    steps = request.num_inference_steps
    m = rewrite_steps(steps, request.gamma) if request.rewritten_prompt else 0
    if m == 0:
        return original_embeds, {"rewrite_steps": 0}, []
    rewritten = model.encode_prompt([request.rewritten_prompt])
    warnings = []
    if rewritten.truncated[0]:
        warnings.append(
            f"The rewritten prompt is longer than the text encoder's {model.info.max_prompt_tokens} tokens; "
            "the end was cut off."
        )
    conditioning = hybrid_conditioning(rewritten.embeds, original_embeds, steps, request.gamma)
    return conditioning, {"rewrite_steps": m, "gamma": request.gamma}, warnings
