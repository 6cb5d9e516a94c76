"""Toy-world metrics: label scores from the probe, an FVD analogue, temporal consistency.

* :func:`score`: does a video show what its prompt's label says (colour, shape,
  size, motion, recipient)?
* :func:`video_features` + :func:`frechet_distance`: ``fvd_toy``, the Fréchet
  distance between two sets of videos on 40 hand-made video features (the toy
  world's stand-in for FVD's I3D features; Fréchet distance as in FID/FVD:
  ``|mu_a - mu_b|^2 + tr(S_a + S_b - 2 (S_a^1/2 S_b S_a^1/2)^1/2)``).
* :func:`temporal_consistency`: frame-to-frame stability of object identity
  and size, in [0, 1].

Formulas and the feature list are in docs/toyworld.md.
"""

from __future__ import annotations

import math
import os
from typing import Any

import numpy as np
from scipy import ndimage

from reelgraph.errors import ReelgraphError
from toyworld.probe import ProbeResult, load_frames, probe
from toyworld.spec import COLORS, FRAME_SIZE, Label

_PALETTE = np.array(list(COLORS.values()), dtype=np.float32)

# --- label scores -------------------------------------------------------------------------------


def score(label_expected: dict | Label, result: ProbeResult) -> dict[str, Any]:
    """Compare a prompt's label with what the probe saw.

    ``color_ok`` / ``shape_ok``: the probe's actor has the expected colour /
    shape. ``motion_ok``: the probe's scene motion is the expected one (for
    two-object motions the probe's actor is the object doing it, so a swapped
    pair also fails ``color_ok``). ``recipient_ok``: no recipient expected and
    the probe saw a single object, or another object than the actor with the
    expected recipient's colour and shape. ``size_ok``: the actor's (and, when
    stated and seen, the recipient's) size class; None when the label states no
    size. ``all_ok``: colour, shape, motion and recipient right (issue 3's
    ``all_acc``; size is reported apart because prompts often leave it out).
    """
    expected = label_expected if isinstance(label_expected, Label) else Label.from_dict(label_expected)
    actor = None if result.actor is None else result.tracks[result.actor]
    others = [t for i, t in enumerate(result.tracks) if i != result.actor]
    color_ok = actor is not None and actor.color == expected.actor.color
    shape_ok = actor is not None and actor.shape == expected.actor.shape
    motion_ok = result.motion == expected.motion
    if expected.recipient is None:
        recipient_ok = actor is not None and not others
        found = None
    else:
        found = next(
            (
                t
                for t in others
                if t.color == expected.recipient.color and t.shape == expected.recipient.shape
            ),
            None,
        )
        recipient_ok = found is not None
    sizes = []
    if expected.actor.size is not None:
        sizes.append(actor is not None and actor.size == expected.actor.size)
    if expected.recipient is not None and expected.recipient.size is not None and found is not None:
        sizes.append(found.size == expected.recipient.size)
    return {
        "color_ok": bool(color_ok),
        "shape_ok": bool(shape_ok),
        "motion_ok": bool(motion_ok),
        "recipient_ok": bool(recipient_ok),
        "size_ok": all(sizes) if sizes else None,
        "all_ok": bool(color_ok and shape_ok and motion_ok and recipient_ok),
    }


# --- fvd_toy ---------------------------------------------------------------------------------------

FEATURE_NAMES: tuple[str, ...] = (
    "bg_r",
    "bg_g",
    "bg_b",
    *(f"share_{name}" for name in COLORS),
    "fg_mean_r",
    "fg_mean_g",
    "fg_mean_b",
    "fg_std_r",
    "fg_std_g",
    "fg_std_b",
    "size",
    "area_variation",
    "area_log_change",
    "centroid_x",
    "centroid_y",
    "shift_x",
    "shift_y",
    "path_length",
    "velocity_std_x",
    "velocity_std_y",
    "acceleration",
    "frame_diff",
    "frame_diff_variation",
    "fg_gradient",
    "bg_noise",
    "components",
    "moment_t3",
    "moment_t4",
    "circularity",
    "spread",
    "reversals_y",
    "reversals_x",
    "mask_iou",
)
FEATURE_DIM = len(FEATURE_NAMES)
_FG_LOW, _FG_HIGH = 25.0, 80.0  # RGB distance from the background where foreground weight ramps 0 -> 1


def _reversals(values: np.ndarray, min_step: float) -> float:
    steps = np.diff(values)
    steps = steps[np.abs(steps) >= min_step]
    if len(steps) < 2:
        return 0.0
    return float(np.sum(np.sign(steps[1:]) != np.sign(steps[:-1])))


def video_features(frames: np.ndarray | str | os.PathLike[str]) -> np.ndarray:
    """40 deterministic features of one video (``FEATURE_NAMES``): ``(40,)`` float64.

    The video is area-resized to 32x32. Each pixel's foreground weight ramps
    from 0 to 1 as its RGB distance from the frame's median colour goes from
    25 to 80 (noise stays background). Units keep every feature within about
    [0, 1]. Groups: background colour /255 (3); foreground share of each
    palette colour, by nearest palette colour (8); foreground colour mean and
    std /255 (6); size = sqrt(mean foreground mass) / 32, its relative std over
    frames, ln(last / first mass) (3); foreground centroid mean and net shift
    (/32), path length (/32), velocity std and mean acceleration (px/frame) (8);
    sqrt(mean |frame difference| / 255) and its relative std (2); foreground
    gradient (sharpness) /255 and sqrt(background noise std / 255) (2);
    connected components / 4 (1); 3- and 4-fold angular moments, circularity
    (1 for a disc) and spread (/32) (4); direction reversals of the centroid in
    y and x per frame (2); IoU of consecutive foreground masks (1).
    """
    f = load_frames(frames)
    n = len(f)
    bg = np.median(f.reshape(n, -1, 3), axis=1)  # (F, 3)
    diff = f - bg[:, None, None, :]
    distance = np.sqrt((diff * diff).sum(-1))  # (F, H, W)
    w = np.clip((distance - _FG_LOW) / (_FG_HIGH - _FG_LOW), 0.0, 1.0)
    mass = w.sum(axis=(1, 2))  # (F,)
    total = float(mass.sum())
    feats: list[float] = list(bg.mean(axis=0) / 255.0)

    # Palette shares and colour statistics of the foreground.
    pixels = f.reshape(-1, 3)
    weights = w.reshape(-1)
    nearest = np.argmin(((pixels[:, None, :] - _PALETTE[None]) ** 2).sum(-1), axis=1)
    shares = np.bincount(nearest, weights=weights, minlength=len(_PALETTE))
    feats += list(shares / total) if total > 0 else [0.0] * len(_PALETTE)
    if total > 0:
        mean = (pixels * weights[:, None]).sum(0) / total
        std = np.sqrt(((pixels - mean) ** 2 * weights[:, None]).sum(0) / total)
    else:
        mean, std = np.zeros(3), np.zeros(3)
    feats += list(mean / 255.0) + list(std / 255.0)

    # Area.
    area = mass / (FRAME_SIZE * FRAME_SIZE)
    feats += [
        float(area.mean()),
        float(area.std()),
        float(np.clip(np.log((mass[-1] + 1) / (mass[0] + 1)), -2, 2)),
    ]

    # Centroid trajectory of the whole foreground.
    ys, xs = np.mgrid[0:FRAME_SIZE, 0:FRAME_SIZE] + 0.5
    safe = np.maximum(mass, 1e-6)
    cx = np.where(mass > 0.5, (w * xs).sum(axis=(1, 2)) / safe, FRAME_SIZE / 2.0) / FRAME_SIZE
    cy = np.where(mass > 0.5, (w * ys).sum(axis=(1, 2)) / safe, FRAME_SIZE / 2.0) / FRAME_SIZE
    vx, vy = np.diff(cx) * FRAME_SIZE, np.diff(cy) * FRAME_SIZE  # px / frame
    accel = np.hypot(np.diff(vx), np.diff(vy)) if n > 2 else np.zeros(1)
    feats += [
        float(cx.mean()),
        float(cy.mean()),
        float(cx[-1] - cx[0]),
        float(cy[-1] - cy[0]),
        float(np.hypot(vx, vy).sum()) / FRAME_SIZE if n > 1 else 0.0,
        float(vx.std()) if n > 1 else 0.0,
        float(vy.std()) if n > 1 else 0.0,
        float(accel.mean()),
    ]

    # Change between frames, sharpness, noise.
    frame_diff = np.abs(np.diff(f, axis=0)).mean(axis=(1, 2, 3)) / 255.0 if n > 1 else np.zeros(1)
    diff_mean = float(frame_diff.mean())
    feats += [math.sqrt(diff_mean), float(frame_diff.std()) / diff_mean if diff_mean > 1e-6 else 0.0]
    gy, gx = np.gradient(f.mean(-1), axis=(1, 2))
    gradient = np.hypot(gx, gy)
    feats.append(float((gradient * w).sum() / total / 255.0) if total > 0 else 0.0)
    background = w < 0.05
    feats.append(math.sqrt(float(distance[background].std()) / 255.0) if background.any() else 0.0)

    # Structure of the foreground.
    masks = w >= 0.5
    feats.append(float(np.mean([ndimage.label(m)[1] for m in masks])) / 4.0)
    dx, dy = xs[None] / FRAME_SIZE - cx[:, None, None], ys[None] / FRAME_SIZE - cy[:, None, None]
    r2 = dx * dx + dy * dy
    phi = np.arctan2(dy, dx)
    norm = np.maximum((w * r2).sum(axis=(1, 2)), 1e-9)
    t3 = np.abs((w * r2 * np.exp(3j * phi)).sum(axis=(1, 2))) / norm
    t4 = np.abs((w * r2 * np.exp(4j * phi)).sum(axis=(1, 2))) / norm
    second = (w * r2).sum(axis=(1, 2)) * FRAME_SIZE**2  # px^2 times mass
    # mass^2 / (2 pi second moment): 1 for a disc, 0.95 a square, 0.83 a triangle, less for scattered pixels.
    circularity = np.where(
        mass > 0.5, np.maximum(mass, 1e-6) ** 2 / (2.0 * math.pi * np.maximum(second, 1e-6)), 0.0
    )
    spread = np.where(mass > 0.5, np.sqrt(second / np.maximum(mass, 1e-6)) / FRAME_SIZE, 0.0)
    feats += [
        float(t3.mean()),
        float(t4.mean()),
        float(np.clip(circularity, 0, 1).mean()),
        float(spread.mean()),
    ]
    feats += [
        _reversals(cy * FRAME_SIZE, 0.5) / n,
        _reversals(cx * FRAME_SIZE, 0.5) / n,
    ]
    if n > 1:
        inter = (masks[1:] & masks[:-1]).sum(axis=(1, 2))
        union = (masks[1:] | masks[:-1]).sum(axis=(1, 2))
        iou = np.where(union > 0, inter / np.maximum(union, 1), 1.0)
        feats.append(float(iou.mean()))
    else:
        feats.append(1.0)
    return np.asarray(feats, dtype=np.float64)


def _sqrtm_psd(matrix: np.ndarray) -> np.ndarray:
    values, vectors = np.linalg.eigh((matrix + matrix.T) / 2.0)
    return (vectors * np.sqrt(np.clip(values, 0.0, None))) @ vectors.T


def frechet_distance(feats_a: np.ndarray, feats_b: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to two feature sets ``(N, D)`` and ``(M, D)``.

    ``|mu_a - mu_b|^2 + tr(S_a) + tr(S_b) - 2 tr((S_a^1/2 S_b S_a^1/2)^1/2)``;
    the matrix square roots come from symmetric eigendecompositions, so the
    result is real and >= 0.
    """
    a, b = np.asarray(feats_a, dtype=np.float64), np.asarray(feats_b, dtype=np.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise ReelgraphError(f"Feature sets must be (N, D) with equal D, got {a.shape} and {b.shape}.")
    if len(a) < 2 or len(b) < 2:
        raise ReelgraphError(
            "A Fréchet distance needs at least two videos per set.", fix="generate more samples."
        )
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root_a = _sqrtm_psd(cov_a)
    cross = _sqrtm_psd(root_a @ cov_b @ root_a)
    distance = float(((mu_a - mu_b) ** 2).sum() + np.trace(cov_a) + np.trace(cov_b) - 2.0 * np.trace(cross))
    return max(distance, 0.0)


def fvd_toy(videos_a, videos_b) -> float:
    """``fvd_toy`` between two collections of videos (arrays ``(F, H, W, 3)`` or paths)."""
    return frechet_distance(
        np.stack([video_features(v) for v in videos_a]), np.stack([video_features(v) for v in videos_b])
    )


# --- temporal consistency ----------------------------------------------------------------------------

SIZE_JITTER_SCALE = 0.25


def temporal_consistency(video: ProbeResult | np.ndarray | str) -> float:
    """Frame-to-frame stability of object identity and size, in [0, 1].

    Per probe track k: ``P_k`` the share of frames it is present in, ``S_k`` the
    area-weighted share of its frames whose own shape reading agrees with the
    track's shape, ``Z_k = exp(-mean |second difference of ln area| / 0.25)``
    (steady growth costs nothing, flicker does). The score is the mean of
    ``P_k S_k Z_k`` weighted by each track's mean area; 0 when the probe sees
    no object. Objects that change colour split into partial tracks and lose
    on ``P``.
    """
    result = video if isinstance(video, ProbeResult) else probe(video)
    if not result.tracks:
        return 0.0
    total, weight = 0.0, 0.0
    for track in result.tracks:
        present = np.array(track.present)
        area = np.array(track.area)[present]
        shapes = [s for s, p in zip(track.frame_shape, track.present, strict=True) if p]
        presence = float(present.mean())
        agree = float(
            sum(a for a, s in zip(area, shapes, strict=True) if s == track.shape) / max(area.sum(), 1e-9)
        )
        log_area = np.log(np.maximum(area, 1e-3))
        jitter = float(np.abs(np.diff(log_area, n=2)).mean()) if len(log_area) >= 3 else 0.0
        stability = math.exp(-jitter / SIZE_JITTER_SCALE)
        w = float(area.mean())
        total += w * presence * agree * stability
        weight += w
    return float(np.clip(total / weight, 0.0, 1.0))
