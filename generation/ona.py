"""The optimal noise approximator (POS §4.1, eq. 3-5): inverted pool videos as initial noise.

* eq. 3 (the nearest pool video by caption similarity) is the retrieval
  step's job (:mod:`motion_prior.search`); this module starts from its pick.
* :func:`prepare_clip`: the pool video's first clip at the model's frames and
  size. Frames ``0 .. F-1`` are taken (a video shorter than ``F`` frames
  repeats its last frame); each frame is resized so that it covers
  ``H x W`` with its aspect ratio kept (bilinear, antialiased when shrinking),
  then centre-cropped to ``H x W``. Toy pool videos are already 32x32, so for
  the toy model this is the identity.
* :func:`invert_clips`: ``ε_inv = INV(E(v*), t, ∅)|_{t=0}^{T-1}``: VAE
  posterior mean, then DDIM inversion with the empty prompt and no guidance;
  a flow-matching model (Wan) brings its own ``invert_clips``: flow-ODE
  inversion from σ = 0 to σ = 1 (:mod:`generation.flow_inversion`).
* :func:`mix_noise`: eq. 4, ``ε_mix = ε/√(1+η²) + η·ε_inv/√(1+η²)``.
* :func:`cached_inversion`: the request path. It reads the inversion cache
  and inverts only on a miss (once: the result is cached).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from generation.inversion_cache import InversionCache, InversionKey
from generation.sampling import StepCallback, invert_ddim
from reelgraph.errors import ReelgraphError


def mix_noise(eps: torch.Tensor, eps_inv: torch.Tensor, eta: float) -> torch.Tensor:
    """POS eq. 4: ``ε/√(1+η²) + η·ε_inv/√(1+η²)``; ``η = 0`` is ``ε`` itself.

    Both terms are ``(B, C, F, h, w)``; with unit-variance inputs the mixture
    keeps unit variance, and ``η → ∞`` tends to ``ε_inv``.
    """
    if eta < 0:
        raise ValueError(f"eta must be >= 0, got {eta}")
    norm = math.sqrt(1.0 + eta * eta)
    return eps / norm + (eta / norm) * eps_inv.to(eps.device, eps.dtype)


def prepare_clip(frames: np.ndarray, num_frames: int, height: int, width: int) -> torch.Tensor:
    """A video's first clip at the model's size: ``(F', H', W', 3)`` uint8 to ``(1, 3, F, H, W)`` in [-1, 1].

    Resize-to-cover then centre crop, so nothing is stretched; see the module docstring.
    """
    if frames.ndim != 4 or frames.shape[-1] != 3 or len(frames) == 0:
        raise ReelgraphError(
            f"A video of shape {tuple(frames.shape)} cannot be inverted.",
            fix="give frames as (F, H, W, 3) RGB.",
        )
    clip = frames[:num_frames]
    if len(clip) < num_frames:
        clip = np.concatenate([clip, np.repeat(clip[-1:], num_frames - len(clip), axis=0)])
    video = torch.from_numpy(np.ascontiguousarray(clip)).float().permute(0, 3, 1, 2) / 127.5 - 1.0
    src_h, src_w = video.shape[-2:]
    if (src_h, src_w) != (height, width):
        scale = max(height / src_h, width / src_w)
        new_h, new_w = max(height, round(src_h * scale)), max(width, round(src_w * scale))
        video = F.interpolate(
            video, size=(new_h, new_w), mode="bilinear", antialias=scale < 1, align_corners=False
        )
        top, left = (new_h - height) // 2, (new_w - width) // 2
        video = video[:, :, top : top + height, left : left + width].clamp(-1.0, 1.0)
    return video.permute(1, 0, 2, 3)[None]


def read_clip(path: str | Path, num_frames: int, height: int, width: int) -> torch.Tensor:
    """:func:`prepare_clip` on the first ``num_frames`` frames of a video file."""
    from reelgraph.media import read_video

    return prepare_clip(read_video(path, max_frames=num_frames), num_frames, height, width)


@torch.no_grad()
def invert_clips(
    model, clips: torch.Tensor, num_steps: int, callback: StepCallback | None = None
) -> torch.Tensor:
    """``ε_inv`` of clips ``(B, 3, F, H, W)`` in [-1, 1]: VAE encode, then DDIM inversion with ``∅`` (POS §4.1).

    Returns ``(B, C, F, h, w)`` float32 on the CPU. A flow-matching model
    (:class:`~generation.wan_backend.WanModel`) inverts with its own method.
    """
    from generation.wan_backend import WanModel

    if isinstance(model, WanModel):
        return model.invert_clips(clips, num_steps)
    latents = model.encode_video(clips)
    empty = model.encode_prompt([""] * clips.shape[0]).embeds
    with model.denoising():
        eps_inv = invert_ddim(
            model,
            model.make_inverse_scheduler(),
            latents,
            empty,
            num_inference_steps=num_steps,
            guidance_scale=1.0,
            callback=callback,
        )
    return eps_inv.float().cpu()


def inversion_key(model, video_id: str, num_steps: int, num_frames: int) -> InversionKey:
    info = model.info
    return InversionKey(info.weights_hash, video_id, num_steps, num_frames, info.height, info.width)


def cached_inversion(
    model, cache: InversionCache, video_id: str, video_path: str | Path, num_steps: int, num_frames: int
) -> tuple[torch.Tensor, bool]:
    """``(ε_inv (1, C, F, h, w), hit)``: the cached inversion, or one made now and cached (a miss)."""
    key = inversion_key(model, video_id, num_steps, num_frames)
    eps_inv = cache.load(key)
    if eps_inv is not None:
        return eps_inv, True
    clip = read_clip(video_path, num_frames, model.info.height, model.info.width)
    eps_inv = invert_clips(model, clip, num_steps)
    cache.save(key, eps_inv, extra={"video": str(video_path)})
    return eps_inv, False


def invert_many(
    model,
    cache: InversionCache,
    videos: Sequence[tuple[str, str]],
    num_steps: int,
    num_frames: int,
    batch_size: int = 8,
    progress=None,
) -> dict[str, int]:
    """Invert and cache ``(video id, path)`` pairs that are not cached yet, ``batch_size`` at a time.

    Resumable: every finished video is its own file, so a rerun skips it. An
    unreadable video is counted and skipped, never fatal. ``progress(done)``
    is called after each video (cached ones included).

    Returns counts ``{"inverted", "cached", "failed"}``.
    """
    counts = {"inverted": 0, "cached": 0, "failed": 0}
    height, width = model.info.height, model.info.width
    pending: list[tuple[InversionKey, str, torch.Tensor]] = []

    def flush() -> None:
        if not pending:
            return
        eps = invert_clips(model, torch.cat([clip for _, _, clip in pending]), num_steps)
        for (key, path, _), eps_one in zip(pending, eps, strict=True):
            cache.save(key, eps_one[None], extra={"video": path})
            counts["inverted"] += 1
            if progress is not None:
                progress(1)
        pending.clear()

    for video_id, path in videos:
        key = inversion_key(model, video_id, num_steps, num_frames)
        if cache.has(key):
            counts["cached"] += 1
            if progress is not None:
                progress(1)
            continue
        try:
            clip = read_clip(path, num_frames, height, width)
        except ReelgraphError:
            counts["failed"] += 1
            if progress is not None:
                progress(1)
            continue
        pending.append((key, path, clip))
        if len(pending) >= batch_size:
            flush()
    flush()
    return counts
