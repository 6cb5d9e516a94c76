"""The probe: reads a video back into toy-world labels.

Any video in: a ``(F, H, W, 3)`` uint8 array of any size (area-resized to
32x32 first) or a file path. Out: a :class:`ProbeResult` with the background,
one track per object (colour, shape, size, and per frame centroid, area and
orientation), a motion per object and the scene's best-guess label.

Steps, per video:

1. Background: the per-frame median colour; its class is the nearest
   background of the palette.
2. Unmixing: every pixel ``c`` is read as ``bg + a (P - bg)`` for each palette
   colour ``P``: coverage ``a`` by projection, and the residual. Anti-aliased
   rims, blur and fading only change ``a``, so a faded red stays red.
3. Objects: pixels farther from the background than a threshold (adaptive,
   18-40 RGB units) form 8-connected components; tiny ones (< 3 px) are noise.
   A component votes for its colour (pixels' best palette colours, weighted by
   coverage) and is split in two when a second colour has a solid core of its
   own (>= 3 px covered >= 55 %) beside the first (centroids >= 0.6 x the sum
   of the equivalent radii apart): two touching objects. A blended rim that
   reads as another colour surrounds its object and is not split off.
   Area and centroid are coverage-weighted, including a one-pixel rim of
   faint pixels; a track's area is divided by its contrast (the median over
   frames of its brightest pixels' coverage), so a faded object keeps its size.
4. Tracks: per colour, the largest blob in each frame. A colour is an object
   when it is present in at least half the frames with a mean raw coverage
   of >= 4 px (noise cannot reach that);
   the two largest are kept (the world has at most two objects).
5. Shape: rotation-invariant angular moments of the coverage around the
   centroid, ``t_k = |sum a r^2 e^{ik phi}| / sum a r^2``. A rendered triangle
   has ``t_3`` about 0.53, a square ``t_4`` about 0.28, a circle neither; per
   frame the shape is the larger of ``t_3 / 0.53`` and ``t_4 / 0.28`` unless both
   are below 0.4 (circle); frames vote, weighted by area. Orientation is the
   phase of the same moment (square modulo 90 deg, triangle modulo 120 deg).
6. Motion of one track (thresholds in ``MotionRules``), first match wins:
   area changing by a factor >= 1.2 (fitted ln-area slope) with the centroid
   still -> grow/shrink; a path bent in both x and y that sweeps >= 120 deg
   monotonically around a fitted circle -> orbit; y reversing direction with
   >= 2.5 px peak to peak around its trend -> zigzag if x progresses >= 2.5
   px, else bounce; a displacement >= 2 px -> move_* along the larger axis;
   a still centroid whose orientation turns >= 5 deg/frame -> spin; else stay.
7. Two tracks (widths and bottoms from centroid, shape and area, which blur
   preserves): the one whose bottom is >= 2.5 px above the other's ground
   while the other stays still is jumping over it. Otherwise the actor is the
   one behind in the direction of motion: push if the one ahead waited at
   first (still over the first two steps while the actor moved) or their
   edges touch (gap <= 1.5 px) in the last frame; chase if both move from the
   start and stay apart.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict
from scipy import ndimage

from reelgraph.errors import ReelgraphError
from toyworld.render import TRIANGLE_SIDE
from toyworld.spec import (
    BACKGROUNDS,
    COLORS,
    FRAME_SIZE,
    SIZE_BOUNDARY_PX,
    SPIN_SHAPES,
    Label,
    ObjectSpec,
)

_PALETTE = np.array(list(COLORS.values()), dtype=np.float32)  # (8, 3)
_COLOR_NAMES = tuple(COLORS)
_BACKGROUND_PALETTE = np.array(list(BACKGROUNDS.values()), dtype=np.float32)
_EIGHT_CONNECTED = np.ones((3, 3), dtype=bool)

# Shape moments of rendered shapes (see the module docstring, step 5).
TRIANGLE_T3 = 0.53
SQUARE_T4 = 0.28
CIRCLE_BELOW = 0.4
# Area per extent^2 for each shape: extent = sqrt(area / factor).
AREA_FACTOR = {"circle": math.pi / 4.0, "square": 1.0, "triangle": math.sqrt(3.0) / 4.0 * TRIANGLE_SIDE**2}
SYMMETRY_DEG = {"square": 90.0, "triangle": 120.0}
# Pixels whose best palette colour covers them at least this much are an object's core.
CORE_ALPHA = 0.55
MIN_CORE_PX = 3


@dataclass(frozen=True)
class MotionRules:
    """Thresholds of the motion classifier (px, frames, degrees)."""

    still_px: float = 1.2  # a centroid moving less than this over the clip is still
    grow_log_area: float = 0.18  # |ln(area_last / area_first)| from the fit, ~ x1.2
    orbit_residual_px: float = 1.0  # std of x or y around a straight-line fit (the other >= half)
    orbit_sweep_deg: float = 120.0
    reversal_step_px: float = 0.7  # a y step counts for a reversal when at least this big
    oscillation_px: float = 2.5  # peak-to-peak of y for bounce/zigzag
    progress_px: float = 2.5  # horizontal progress that makes a vertical oscillation a zigzag
    move_px: float = 2.0
    spin_deg_per_frame: float = 5.0
    airborne_px: float = 2.5
    touching_px: float = 1.5  # edge gap from centroids and area-derived widths


RULES = MotionRules()


class Track(BaseModel):
    """One object over the frames; per-frame lists hold None where it was not seen."""

    model_config = ConfigDict(frozen=True)

    color: str
    shape: str
    size: str
    motion: str | None
    present: list[bool]
    centroid: list[tuple[float, float] | None]
    area: list[float]
    orientation: list[float | None]  # degrees, modulo the shape's symmetry; None for circles
    frame_shape: list[str | None]  # each frame's own shape reading (the track's shape is their vote)
    bbox: list[tuple[int, int, int, int] | None]  # x0, y0, x1, y1 (inclusive pixels)

    def to_object(self) -> ObjectSpec:
        return ObjectSpec(shape=self.shape, color=self.color, size=self.size)


class ProbeResult(BaseModel):
    """What the probe saw: background, tracks, and the scene's motion with actor and recipient."""

    model_config = ConfigDict(frozen=True)

    frames: int
    background: str
    tracks: list[Track]
    motion: str | None
    actor: int | None
    recipient: int | None

    def to_dict(self) -> dict[str, Any]:
        data = self.model_dump(mode="json")
        label = self.label()
        data["label"] = None if label is None else label.to_dict()
        return data

    def label(self) -> Label | None:
        """Best-guess label, or None when no object or no motion was recognised."""
        if self.actor is None or self.motion is None:
            return None
        recipient = None if self.recipient is None else self.tracks[self.recipient].to_object()
        actor = self.tracks[self.actor]
        if self.motion == "spin" and actor.shape not in SPIN_SHAPES:
            return None
        return Label(
            actor=actor.to_object(), motion=self.motion, recipient=recipient, background=self.background
        )


# --- input ----------------------------------------------------------------------------------


def _area_matrix(source: int, target: int) -> np.ndarray:
    """``(target, source)`` weights that average each target cell's share of the source pixels."""
    edges = np.linspace(0.0, source, target + 1)
    lo, hi = edges[:-1, None], edges[1:, None]
    pixel = np.arange(source)[None, :]
    overlap = np.clip(np.minimum(hi, pixel + 1) - np.maximum(lo, pixel), 0.0, None)
    return (overlap / overlap.sum(axis=1, keepdims=True)).astype(np.float32)


def area_resize(frames: np.ndarray, size: int = FRAME_SIZE) -> np.ndarray:
    """Area-average ``(F, H, W, 3)`` frames to ``(F, size, size, 3)`` float32."""
    frames = np.asarray(frames, dtype=np.float32)
    h, w = frames.shape[1:3]
    if (h, w) == (size, size):
        return frames
    rows, cols = _area_matrix(h, size), _area_matrix(w, size)
    return np.einsum("yh,fhwc,xw->fyxc", rows, frames, cols, optimize=True)


def load_frames(video: np.ndarray | str | os.PathLike[str]) -> np.ndarray:
    """``(F, 32, 32, 3)`` float32 frames from an array or a video file."""
    if isinstance(video, (str, os.PathLike)):
        from reelgraph.media import read_video

        video = read_video(Path(video))
    frames = np.asarray(video)
    if frames.ndim == 3 and frames.shape[-1] == 3:
        frames = frames[None]
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.shape[0] < 1:
        raise ReelgraphError(
            f"The probe needs video frames of shape (F, H, W, 3), got {frames.shape}.",
            fix="pass uint8 RGB frames or a video file.",
        )
    if frames.dtype != np.uint8:
        frames = np.clip(frames, 0, 255)
    return area_resize(frames)


# --- segmentation -----------------------------------------------------------------------------


@dataclass
class _Blob:
    frame: int
    color: int
    area: float  # coverage scaled so that the core counts as solid (set per track by _tracks)
    mass: float  # raw coverage: what noise cannot inflate
    peak: float  # coverage of the brightest pixels (1 for a solid object)
    cx: float
    cy: float
    alpha: np.ndarray  # (H, W) coverage of this object's colour, zero elsewhere
    bbox: tuple[int, int, int, int]


def _unmix(frames: np.ndarray, background: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Coverage and residual of every palette colour per pixel, ``(F, H, W, 8)`` each, and the distance
    from the background ``(F, H, W)``.

    With ``diff = c - bg`` and ``axis = P - bg``: coverage ``a = diff.axis / |axis|^2``
    and residual ``|diff - clip(a) axis|``, expanded so that no ``(F, H, W, 8, 3)`` array is needed.
    """
    f, h, w, _ = frames.shape
    diff = (frames - background[:, None, None, :]).reshape(f, h * w, 3)
    axis = _PALETTE[None, :, :] - background[:, None, :]  # (F, 8, 3)
    norm2 = np.maximum((axis * axis).sum(-1), 1.0)[:, None, :]  # (F, 1, 8)
    dot = diff @ axis.transpose(0, 2, 1)  # (F, HW, 8)
    alpha = dot / norm2
    clipped = np.clip(alpha, 0.0, 1.0)
    distance2 = (diff * diff).sum(-1, keepdims=True)
    residual2 = distance2 - 2.0 * clipped * dot + clipped * clipped * norm2
    residual = np.sqrt(np.maximum(residual2, 0.0))
    return alpha.reshape(f, h, w, -1), residual.reshape(f, h, w, -1), np.sqrt(distance2).reshape(f, h, w)


def _blobs(frames: np.ndarray, background: np.ndarray) -> list[_Blob]:
    alpha, residual, distance = _unmix(frames, background)
    threshold = float(np.clip(0.35 * np.percentile(distance, 99.5), 18.0, 40.0))
    fg = distance > threshold
    # A pixel's colour: the palette colour that explains it best among those that can (coverage 0.15-1.5).
    plausible = (alpha > 0.15) & (alpha < 1.5)
    best = np.argmin(np.where(plausible, residual, np.inf), axis=-1)
    best_alpha = np.clip(np.take_along_axis(alpha, best[..., None], -1)[..., 0], 0.0, 1.0)
    best_alpha = np.where(plausible.any(-1), best_alpha, 0.0)  # a pixel no colour explains gets no vote
    blobs: list[_Blob] = []
    for f in range(len(frames)):
        labels, count = ndimage.label(fg[f], structure=_EIGHT_CONNECTED)
        if not count:
            continue
        sizes = np.bincount(labels.ravel(), minlength=count + 1)
        votes = np.zeros((count + 1, len(_PALETTE)))
        cores = np.zeros((count + 1, len(_PALETTE)))
        np.add.at(votes, (labels[fg[f]], best[f][fg[f]]), best_alpha[f][fg[f]])
        core = fg[f] & (best_alpha[f] >= CORE_ALPHA)
        np.add.at(cores, (labels[core], best[f][core]), 1.0)
        for component in range(1, count + 1):
            if sizes[component] < 3:
                continue
            mask = labels == component
            order = np.argsort(votes[component])[::-1]
            colors = [int(order[0])]
            # A second object touching this one shows a solid core of its own colour; blended rims have none.
            second = int(np.argsort(cores[component])[::-1][0])
            if second == colors[0]:
                second = int(np.argsort(cores[component])[::-1][1])
            if cores[component, second] >= MIN_CORE_PX:
                colors.append(second)
            parts = [(colors[0], mask)]
            if len(colors) == 2:
                # Two touching objects: each pixel goes to whichever of the two colours explains it better.
                first = residual[f][..., colors[0]] <= residual[f][..., colors[1]]
                split = [(colors[0], mask & first), (colors[1], mask & ~first)]
                if _side_by_side(split[0][1], split[1][1]):
                    parts = split
            for color, part in parts:
                if part.sum() < 2:
                    continue
                blobs.append(_measure(f, color, part, fg[f], alpha[f][..., color]))
    return blobs


def _side_by_side(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether two pixel sets sit beside each other like two objects, not one inside the other's rim.

    A blended rim that reads as another colour surrounds its object, so the
    centroids nearly coincide; two touching objects have centroids about the
    sum of their radii apart.
    """
    na, nb = int(a.sum()), int(b.sum())
    if na < 2 or nb < 2:
        return False
    ya, xa = np.nonzero(a)
    yb, xb = np.nonzero(b)
    distance = math.hypot(xa.mean() - xb.mean(), ya.mean() - yb.mean())
    return distance >= 0.6 * (math.sqrt(na / math.pi) + math.sqrt(nb / math.pi))


def _measure(frame: int, color: int, mask: np.ndarray, fg: np.ndarray, alpha: np.ndarray) -> _Blob:
    # Faint rim pixels below the threshold still carry area: add the one-pixel ring outside the foreground.
    ring = ndimage.binary_dilation(mask, structure=_EIGHT_CONNECTED) & ~fg
    support = mask | ring
    a = np.where(support, np.clip(alpha, 0.0, 1.0), 0.0).astype(np.float32)
    ys, xs = np.nonzero(mask)
    if a.sum() <= 0:
        a = mask.astype(np.float32)
    mass = float(a.sum())
    # A faded object covers even its core only partly: its brightest pixels tell by how much.
    peak = float(np.sort(a[ys, xs])[-3:].mean())
    cx = float((a.sum(axis=0) * (np.arange(a.shape[1]) + 0.5)).sum() / mass)
    cy = float((a.sum(axis=1) * (np.arange(a.shape[0]) + 0.5)).sum() / mass)
    strong = a >= 0.5 * a.max()  # relative: a faded or blurred object keeps its true outline
    if strong.any():
        ys, xs = np.nonzero(strong)
    bbox = (int(xs.min()), int(ys.min()), int(xs.max()), int(ys.max()))
    return _Blob(
        frame=frame,
        color=color,
        area=mass / max(peak, 0.3),
        mass=mass,
        peak=peak,
        cx=cx,
        cy=cy,
        alpha=a,
        bbox=bbox,
    )


# --- shape -------------------------------------------------------------------------------------


def _moments(blob: _Blob) -> tuple[float, float, float, float]:
    """(t3, t4, triangle angle, square angle): normalised 3- and 4-fold moments and their phases (rad)."""
    ys, xs = np.nonzero(blob.alpha)
    w = blob.alpha[ys, xs]
    dx, dy = xs + 0.5 - blob.cx, ys + 0.5 - blob.cy
    r2 = dx * dx + dy * dy
    phi = np.arctan2(dy, dx)
    norm = max(float((w * r2).sum()), 1e-9)
    m3 = (w * r2 * np.exp(3j * phi)).sum() / norm
    m4 = (w * r2 * np.exp(4j * phi)).sum() / norm
    # An upright triangle has a vertex at -90 deg, an upright square its corners at 45 deg + k 90 deg.
    return abs(m3), abs(m4), (np.angle(m3) - math.pi / 2.0) / 3.0, (np.angle(m4) - math.pi) / 4.0


def _shape_scores(t3: float, t4: float) -> dict[str, float]:
    triangle, square = t3 / TRIANGLE_T3, t4 / SQUARE_T4
    return {"circle": CIRCLE_BELOW, "square": square, "triangle": triangle}


# --- tracks -----------------------------------------------------------------------------------


@dataclass
class _TrackData:
    color: int
    blobs: list[_Blob | None]

    def series(self, attr: str) -> np.ndarray:
        return np.array([np.nan if b is None else getattr(b, attr) for b in self.blobs], dtype=np.float64)


def _tracks(blobs: list[_Blob], frames: int) -> list[_TrackData]:
    by_color: dict[int, list[_Blob | None]] = {}
    for blob in blobs:
        row = by_color.setdefault(blob.color, [None] * frames)
        if row[blob.frame] is None or row[blob.frame].mass < blob.mass:
            row[blob.frame] = blob
    tracks = []
    for color, row in by_color.items():
        seen = [b for b in row if b is not None]
        if len(seen) * 2 < frames or np.mean([b.mass for b in seen]) < 4.0:
            continue
        # One contrast per object: a per-frame estimate would turn pixel noise into size flicker.
        peak = max(float(np.median([b.peak for b in seen])), 0.3)
        for blob in seen:
            blob.area = blob.mass / peak
        tracks.append(_TrackData(color, row))
    tracks.sort(key=lambda t: -sum(b.mass for b in t.blobs if b is not None))
    return tracks[:2]


def _extent(area: float, shape: str) -> float:
    return math.sqrt(max(area, 0.0) / AREA_FACTOR[shape])


def _fit_slope(t: np.ndarray, v: np.ndarray) -> tuple[float, np.ndarray]:
    """Least-squares slope of ``v`` over ``t`` and the residuals."""
    if len(t) < 2:
        return 0.0, np.zeros_like(v)
    slope, intercept = np.polyfit(t, v, 1)
    return float(slope), v - (slope * t + intercept)


def _circle_sweep(x: np.ndarray, y: np.ndarray) -> tuple[float, float, bool]:
    """Algebraic circle fit: (radius, swept angle in degrees, monotone sweep)."""
    a = np.column_stack([x, y, np.ones_like(x)])
    b = -(x * x + y * y)
    try:
        (d, e, f), *_ = np.linalg.lstsq(a, b, rcond=None)
    except np.linalg.LinAlgError:
        return 0.0, 0.0, False
    cx, cy = -d / 2.0, -e / 2.0
    radius2 = cx * cx + cy * cy - f
    if radius2 <= 0:
        return 0.0, 0.0, False
    theta = np.unwrap(np.arctan2(y - cy, x - cx))
    steps = np.diff(theta)
    monotone = bool(np.all(steps > 0) or np.all(steps < 0))
    return math.sqrt(radius2), abs(math.degrees(theta[-1] - theta[0])), monotone


def classify_single(
    t: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
    area: np.ndarray,
    orientation_deg: np.ndarray | None,
    period_deg: float | None,
    rules: MotionRules = RULES,
) -> str | None:
    """One object's motion from its per-frame centroid, area and orientation (present frames only)."""
    if len(t) < 3:
        return None
    span = t[-1] - t[0]
    vx, rx = _fit_slope(t, x)
    vy, ry = _fit_slope(t, y)
    dx, dy = vx * span, vy * span
    moved = math.hypot(dx, dy)
    log_area_slope, _ = _fit_slope(t, np.log(np.maximum(area, 1e-3)))
    centred = (
        moved < rules.still_px + 1.0 and np.ptp(x) < 2.0 * rules.still_px and np.ptp(y) < 2.0 * rules.still_px
    )
    if abs(log_area_slope * span) >= rules.grow_log_area and centred:
        return "grow" if log_area_slope > 0 else "shrink"
    bent = sorted([np.std(rx), np.std(ry)])
    if bent[1] >= rules.orbit_residual_px and bent[0] >= rules.orbit_residual_px / 2.0:
        radius, sweep, monotone = _circle_sweep(x, y)
        if monotone and sweep >= rules.orbit_sweep_deg and radius >= 2.0:
            return "orbit"
    steps = np.diff(y)
    big = steps[np.abs(steps) >= rules.reversal_step_px]
    reversals = int(np.sum(np.sign(big[1:]) != np.sign(big[:-1]))) if len(big) > 1 else 0
    if reversals >= 1 and np.ptp(ry) >= rules.oscillation_px:
        return "zigzag" if abs(dx) >= rules.progress_px else "bounce"
    if moved >= rules.move_px:
        if abs(dx) >= abs(dy):
            return "move_right" if dx > 0 else "move_left"
        return "move_down" if dy > 0 else "move_up"
    if orientation_deg is not None and period_deg is not None and len(orientation_deg) >= 3:
        k = 360.0 / period_deg
        turned = np.unwrap(np.radians(orientation_deg) * k) / k
        spin, _ = _fit_slope(t, np.degrees(turned))
        if abs(spin) >= rules.spin_deg_per_frame:
            return "spin"
    return "stay"


def _half_width_and_drop(track: Track) -> tuple[float, float]:
    """Half width and centroid-to-bottom distance of a track's shape, from its median area.

    Area is what blur and fading preserve, so these stay right where pixel
    outlines would shrink or swell.
    """
    d = _extent(
        float(np.median([a for a, p in zip(track.area, track.present, strict=True) if p])), track.shape
    )
    if track.shape == "triangle":
        side = TRIANGLE_SIDE * d
        return side / 2.0, side / (2.0 * math.sqrt(3.0))
    return d / 2.0, d / 2.0


def _classify_pair(tracks: list[Track], rules: MotionRules) -> tuple[str | None, int | None, int | None]:
    """(motion, actor, recipient) for two tracks (rules in the module docstring, step 7)."""
    both = [i for i in range(len(tracks[0].present)) if tracks[0].present[i] and tracks[1].present[i]]
    if len(both) < 3:
        return None, 0, 1
    t = np.array(both, dtype=np.float64)
    xs = [np.array([tr.centroid[i][0] for i in both]) for tr in tracks]
    ys = [np.array([tr.centroid[i][1] for i in both]) for tr in tracks]
    geometry = [_half_width_and_drop(tr) for tr in tracks]
    bottoms = [y + drop for y, (_, drop) in zip(ys, geometry, strict=True)]
    span = t[-1] - t[0]
    shift = [_fit_slope(t, x)[0] * span for x in xs]
    moving = [
        abs(s) >= rules.still_px or np.ptp(y) >= rules.airborne_px for s, y in zip(shift, ys, strict=True)
    ]
    still = [np.ptp(x) < rules.still_px and np.ptp(y) < rules.still_px for x, y in zip(xs, ys, strict=True)]
    for a, r in ((0, 1), (1, 0)):
        elevation = bottoms[r] - bottoms[a]  # > 0: a's bottom above r's, i.e. off the ground r stands on
        if moving[a] and still[r] and elevation.max() >= rules.airborne_px:
            return "jump_over", a, r
    mover = int(abs(shift[1]) > abs(shift[0]))
    if abs(shift[mover]) < rules.still_px:
        return None, 0, 1
    direction = np.sign(shift[mover])
    behind = 0 if direction * (xs[1][0] - xs[0][0]) > 0 else 1
    ahead = 1 - behind
    started = [abs(x[min(2, len(x) - 1)] - x[0]) >= 0.5 for x in xs]  # moving over the first two steps
    same_way = direction * shift[ahead] >= -0.5 and direction * shift[behind] >= rules.still_px
    if not same_way:
        return None, behind, ahead
    gap = abs(xs[ahead][-1] - xs[behind][-1]) - geometry[ahead][0] - geometry[behind][0]
    # A pushed object waits for the pusher (still at first) or travels touching it; a chased one runs ahead.
    if (started[behind] and not started[ahead]) or gap <= rules.touching_px:
        return "push", behind, ahead
    return ("chase" if started[ahead] else None), behind, ahead


def probe(video: np.ndarray | str | os.PathLike[str], rules: MotionRules = RULES) -> ProbeResult:
    """Read a video (array ``(F, H, W, 3)`` or file) into tracks, motions and a best-guess label."""
    frames = load_frames(video)
    n = len(frames)
    background = np.median(frames.reshape(n, -1, 3), axis=1)
    overall = np.median(background, axis=0)
    bg_name = list(BACKGROUNDS)[int(np.argmin(((_BACKGROUND_PALETTE - overall) ** 2).sum(-1)))]
    tracks: list[Track] = []
    for data in _tracks(_blobs(frames, background), n):
        tracks.append(_build_track(data, n, rules))
    if not tracks:
        return ProbeResult(frames=n, background=bg_name, tracks=[], motion=None, actor=None, recipient=None)
    if len(tracks) == 1:
        return ProbeResult(
            frames=n, background=bg_name, tracks=tracks, motion=tracks[0].motion, actor=0, recipient=None
        )
    motion, actor, recipient = _classify_pair(tracks, rules)
    return ProbeResult(
        frames=n, background=bg_name, tracks=tracks, motion=motion, actor=actor, recipient=recipient
    )


def _build_track(data: _TrackData, frames: int, rules: MotionRules) -> Track:
    present = [b is not None for b in data.blobs]
    seen = [b for b in data.blobs if b is not None]
    votes = {"circle": 0.0, "square": 0.0, "triangle": 0.0}
    angles: list[tuple[float, float]] = []
    frame_shape: list[str | None] = [None] * frames
    for blob in seen:
        t3, t4, tri_angle, sq_angle = _moments(blob)
        scores = _shape_scores(t3, t4)
        frame_shape[blob.frame] = max(scores, key=scores.get)
        votes[frame_shape[blob.frame]] += blob.area
        angles.append((tri_angle, sq_angle))
    shape = max(votes, key=votes.get)
    orientation: list[float | None] = [None] * frames
    if shape in SYMMETRY_DEG:
        period = SYMMETRY_DEG[shape]
        it = iter(angles)
        for i, blob in enumerate(data.blobs):
            if blob is not None:
                tri_angle, sq_angle = next(it)
                angle = tri_angle if shape == "triangle" else sq_angle
                orientation[i] = round(math.degrees(angle) % period, 2)
    t = np.array([i for i, p in enumerate(present) if p], dtype=np.float64)
    x = np.array([b.cx for b in seen])
    y = np.array([b.cy for b in seen])
    area = np.array([b.area for b in seen])
    turned = None if shape not in SYMMETRY_DEG else np.array([o for o in orientation if o is not None])
    motion = classify_single(t, x, y, area, turned, SYMMETRY_DEG.get(shape), rules)
    # grow/shrink change size: the label's size is the first frame's; otherwise the median is steadier.
    reference_area = area[0] if motion in ("grow", "shrink") else float(np.median(area))
    size = "small" if _extent(reference_area, shape) < SIZE_BOUNDARY_PX else "big"
    return Track(
        color=_COLOR_NAMES[data.color],
        shape=shape,
        size=size,
        motion=motion,
        present=present,
        centroid=[None if b is None else (round(b.cx, 3), round(b.cy, 3)) for b in data.blobs],
        area=[0.0 if b is None else round(b.area, 3) for b in data.blobs],
        orientation=orientation,
        frame_shape=frame_shape,
        bbox=[None if b is None else b.bbox for b in data.blobs],
    )
