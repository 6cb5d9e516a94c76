"""Procedural renderer of toy clips: a label in, anti-aliased ``(F, 32, 32, 3)`` uint8 frames out.

Two steps. :func:`plan_scene` turns a label into per-frame object states
(centroid, extent, angle) by the motion definitions below, drawing every free
parameter from the caller's ``numpy.random.Generator``. :func:`rasterize`
draws those states for a whole batch at once.

Time line
    Every motion is defined on a time line of ``L = max(num_frames, POOL_FRAMES)``
    frames (24 for clips and pools), so clip statistics equal those of any 8-frame
    window of a pool video: a clip shorter than the time line is a random window
    of it. grow and shrink are the exception: their clips always start at frame 0,
    so that the label's size is the size on the first frame. The object stays
    entirely inside the frame for the whole time line (0.5 px margin).

Objects
    The extent ``d`` is 6 px (small) or 10 px (big), times a jitter in
    [0.92, 1.08]. circle: diameter ``d``; square: side ``d``; triangle:
    equilateral, side ``1.1 d``, pointing up, positioned by its centroid. Objects
    keep their upright orientation except when spinning.

Motions (x right, y down, v in px/frame, t in frames)
    move_left / move_right / move_up / move_down: straight line at v in
        [0.6, 1.0] (less only where the time line would not fit in the frame).
    stay: still, upright.
    spin (square, triangle): still centroid, angle theta0 + w t with |w| in
        [12, 24] deg/frame, either sense (below the 45 / 60 deg aliasing limit of
        the square's and triangle's symmetry).
    bounce: x fixed; y = floor - H * 4u(1 - u), u = frac(t / P + phase): parabolic
        hops of height H in [5, 9] px and period P in [5, 7] frames, so every
        8-frame window holds a full hop.
    orbit: circle of radius R in [4.5, 7] px around a fixed centre, angular speed
        in [30, 45] deg/frame, either sense (210-315 deg per 8-frame clip).
    zigzag: steady horizontal progress (v in [0.6, 1.0], left or right) plus a
        triangle wave in y: straight diagonal segments of s in {2, 3} frames at
        |vy| in [1.5, 2.0] px/frame, alternating up and down (3-6 px peak to
        peak, at least two turns per 8 frames). Differs from bounce by the
        horizontal progress and from move_* by the alternation.
    grow / shrink: still centroid; extent d0 * g^t with g in [1.026, 1.03]
        (grow) or its inverse (shrink): about x1.2 per 8 frames, x1.9 per 24.
Two objects (horizontal, left or right; both rest on a common ground line;
the recipient is drawn first, the actor on top; direction chosen at random)
    push: the actor moves at v in [0.4, 0.8]; the recipient waits until the
        actor's leading edge reaches it (contact at 30-70 % of the time line,
        0.5 px gap), then both move on together at v.
    chase: both move the same way at the same v in [0.4, 0.8], the actor behind,
        a constant gap of 2.5-4 px between their edges.
    jump_over: the recipient stays still; the actor's centroid follows a
        superellipse arc (exponent 3) over it, from one side to the other over
        the whole time line: x = xr - Rx cos(tau)^(2/3), h = Hy sin(tau)^(2/3),
        tau = pi t / (L - 1); Rx and Hy clear the recipient's box.
Speeds shrink below the ranges only when the objects would not otherwise fit
(e.g. two big objects); all draws come from the given generator.

Anti-aliasing: each pixel gets the exact area of it that the shape covers,
as if drawn at infinite resolution and area-downsampled. Along a straight edge
the covered fraction of a unit pixel is the CDF of a trapezoid (the pixel
projected on the edge normal), which :func:`_edge_coverage` evaluates in closed
form; a polygon multiplies its edges' fractions (exact away from corners) and
a circle uses its tangent edge. Against a 16x16-supersampled reference the
largest per-pixel error is about 0.10 (at corners), the mean well under 0.01;
drawing at 4x with hard edges and averaging, the usual recipe, errs by up to
0.125 and costs 16 times the samples. ``supersample=s > 1`` switches to
``s x s`` samples per pixel with a one-sample signed-distance ramp (the
reference and the tests use it). Each object is evaluated only in a small
window around it, which is what makes a batch fast.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from toyworld.spec import (
    BACKGROUNDS,
    COLORS,
    FRAME_SIZE,
    POOL_FRAMES,
    SIZES,
    Label,
    ObjectSpec,
)

MARGIN = 0.5
SIZE_JITTER = (0.92, 1.08)
TRIANGLE_SIDE = 1.1  # triangle side per unit extent, so its area is closer to the others'
SHAPE_IDS = {"circle": 0, "square": 1, "triangle": 2}

MOVE_SPEED = (0.6, 1.0)
PAIR_SPEED = (0.4, 0.8)
SPIN_DEG_PER_FRAME = (12.0, 24.0)
BOUNCE_HEIGHT = (5.0, 9.0)
BOUNCE_PERIOD = (5.0, 7.0)
ORBIT_RADIUS = (4.5, 7.0)
ORBIT_DEG_PER_FRAME = (30.0, 45.0)
ZIGZAG_SEGMENT_FRAMES = (2, 3)
ZIGZAG_VY = (1.5, 2.0)
GROW_RATE = (1.026, 1.03)
MAX_GROWN_EXTENT = 22.0
PUSH_CONTACT = (0.3, 0.7)
CONTACT_GAP = 0.5
CHASE_GAP = (2.5, 4.0)
JUMP_EXPONENT = 3.0


@dataclass
class ObjectTrack:
    """One object's state per frame: centroid ``x, y``, extent ``d`` (px) and ``angle`` (rad), each ``(F,)``."""

    shape: str
    color: str
    x: np.ndarray
    y: np.ndarray
    d: np.ndarray
    angle: np.ndarray


@dataclass
class Scene:
    """What :func:`rasterize` draws: objects in drawing order (recipient first, actor last)."""

    label: Label
    background: str
    objects: list[ObjectTrack]
    start: int  # first frame of the clip on the motion's time line

    @property
    def actor(self) -> ObjectTrack:
        return self.objects[-1]

    @property
    def recipient(self) -> ObjectTrack | None:
        return self.objects[0] if len(self.objects) == 2 else None


# --- geometry --------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Extents:
    """Distances from the centroid to the bounding box: half width, up, down."""

    half_width: float
    up: float
    down: float

    @property
    def height(self) -> float:
        return self.up + self.down


def _extents(shape: str, d: float, spinning: bool = False) -> _Extents:
    if shape == "triangle":
        side = TRIANGLE_SIDE * d
        circumradius = side / math.sqrt(3.0)
        if spinning:
            return _Extents(circumradius, circumradius, circumradius)
        return _Extents(side / 2.0, circumradius, circumradius / 2.0)
    if shape == "square" and spinning:
        r = d / math.sqrt(2.0)
        return _Extents(r, r, r)
    return _Extents(d / 2.0, d / 2.0, d / 2.0)


def _x_range(e: _Extents) -> tuple[float, float]:
    return MARGIN + e.half_width, FRAME_SIZE - MARGIN - e.half_width


def _y_range(e: _Extents) -> tuple[float, float]:
    return MARGIN + e.up, FRAME_SIZE - MARGIN - e.down


def _rand(rng: np.random.Generator, low: float, high: float) -> float:
    """U(low, high) from one ``rng.random()`` draw (several times cheaper than ``rng.uniform``)."""
    return low + (high - low) * rng.random()


def _coin(rng: np.random.Generator) -> bool:
    return rng.random() < 0.5


def _uniform(rng: np.random.Generator, low: float, high: float) -> float:
    """U(low, high), collapsing to ``high`` when the range is empty (a tight fit)."""
    if high <= low:
        return float(high)
    return _rand(rng, low, high)


def _speed(rng: np.random.Generator, span: float, steps: int, limits: tuple[float, float]) -> float:
    """A speed in ``limits`` that covers at most ``span`` px in ``steps`` frames."""
    fit = max(span, 0.0) / max(steps, 1)
    return _uniform(rng, min(limits[0], fit), min(limits[1], fit))


def _draw_extent(spec: ObjectSpec, rng: np.random.Generator) -> float:
    size = spec.size if spec.size is not None else ("small", "big")[int(_coin(rng))]
    return SIZES[size] * float(_rand(rng, *SIZE_JITTER))


# --- motions ---------------------------------------------------------------------------------


def _const(value: float, t: np.ndarray) -> np.ndarray:
    return np.full(t.shape, value, dtype=np.float64)


def _single(motion: str, shape: str, d0: float, t: np.ndarray, steps: int, rng: np.random.Generator):
    """(x, y, d, angle) arrays for a single-object motion at times ``t`` of a ``steps + 1`` frame time line."""
    angle = np.zeros(t.shape)
    d = _const(d0, t)
    if motion in ("move_left", "move_right", "move_up", "move_down"):
        e = _extents(shape, d0)
        horizontal = motion in ("move_left", "move_right")
        (lo, hi), (olo, ohi) = (_x_range(e), _y_range(e)) if horizontal else (_y_range(e), _x_range(e))
        v = _speed(rng, hi - lo, steps, MOVE_SPEED)
        start = _uniform(rng, lo, hi - v * steps)
        other = _uniform(rng, olo, ohi)
        along = start + v * t
        if motion in ("move_left", "move_up"):
            along = lo + hi - along
        x, y = (along, _const(other, t)) if horizontal else (_const(other, t), along)
        return x, y, d, angle
    if motion in ("stay", "spin"):
        e = _extents(shape, d0, spinning=motion == "spin")
        x = _const(_uniform(rng, *_x_range(e)), t)
        y = _const(_uniform(rng, *_y_range(e)), t)
        if motion == "spin":
            w = math.radians(_rand(rng, *SPIN_DEG_PER_FRAME)) * (1 if _coin(rng) else -1)
            angle = _rand(rng, 0.0, 2.0 * math.pi) + w * t
        return x, y, d, angle
    if motion == "bounce":
        e = _extents(shape, d0)
        height = _rand(rng, *BOUNCE_HEIGHT)
        period = _rand(rng, *BOUNCE_PERIOD)
        phase = rng.random()
        ylo, yhi = _y_range(e)
        height = min(height, yhi - ylo)
        floor = _uniform(rng, ylo + height, yhi)
        x = _const(_uniform(rng, *_x_range(e)), t)
        u = np.mod(t / period + phase, 1.0)
        return x, floor - height * 4.0 * u * (1.0 - u), d, angle
    if motion == "orbit":
        e = _extents(shape, d0)
        radius = _rand(rng, *ORBIT_RADIUS)
        w = math.radians(_rand(rng, *ORBIT_DEG_PER_FRAME)) * (1 if _coin(rng) else -1)
        phase = _rand(rng, 0.0, 2.0 * math.pi)
        (xlo, xhi), (ylo, yhi) = _x_range(e), _y_range(e)
        radius = min(radius, (xhi - xlo) / 2.0, (yhi - ylo) / 2.0)
        cx = _uniform(rng, xlo + radius, xhi - radius)
        cy = _uniform(rng, ylo + radius, yhi - radius)
        theta = phase + w * t
        return cx + radius * np.cos(theta), cy + radius * np.sin(theta), d, angle
    if motion == "zigzag":
        e = _extents(shape, d0)
        segment = ZIGZAG_SEGMENT_FRAMES[int(rng.random() * len(ZIGZAG_SEGMENT_FRAMES))]
        vy = _rand(rng, *ZIGZAG_VY)
        offset = int(rng.random() * 2 * segment)
        (xlo, xhi), (ylo, yhi) = _x_range(e), _y_range(e)
        v = _speed(rng, xhi - xlo, steps, MOVE_SPEED)
        start = _uniform(rng, xlo, xhi - v * steps)
        leftward = _coin(rng)
        amplitude = min(vy * segment, yhi - ylo)
        ytop = _uniform(rng, ylo, yhi - amplitude)
        x = start + v * t
        if leftward:
            x = xlo + xhi - x
        # Triangle wave with turning points on whole frames: s frames down, s frames up.
        tri = segment - np.abs(np.mod(t + offset, 2 * segment) - segment)
        return x, ytop + amplitude * tri / segment, d, angle
    if motion in ("grow", "shrink"):
        rate = _rand(rng, *GROW_RATE)
        # Long time lines grow more slowly so that the object still fits the frame.
        grow_limit = (MAX_GROWN_EXTENT / d0) ** (1.0 / max(steps, 1))
        rate = min(rate, grow_limit) if motion == "grow" else 1.0 / rate
        d = d0 * rate**t
        e = _extents(shape, float(d.max()))
        x = _const(_uniform(rng, *_x_range(e)), t)
        y = _const(_uniform(rng, *_y_range(e)), t)
        return x, y, d, angle
    raise ValueError(f"not a single-object motion: {motion!r}")


def _pair(motion: str, shapes: tuple[str, str], ds: tuple[float, float], t: np.ndarray, steps: int, rng):
    """((xa, ya), (xr, yr)) for actor and recipient of a two-object motion, moving rightwards before mirroring."""
    ea, er = _extents(shapes[0], ds[0]), _extents(shapes[1], ds[1])
    rightward = _coin(rng)
    width_a, width_r = 2.0 * ea.half_width, 2.0 * er.half_width
    if motion in ("push", "chase"):
        gap = CONTACT_GAP if motion == "push" else _rand(rng, *CHASE_GAP)
        free = FRAME_SIZE - 2.0 * MARGIN - width_a - width_r - gap
        v = _speed(rng, free, steps, PAIR_SPEED)
        xa0 = _uniform(rng, MARGIN + ea.half_width, MARGIN + ea.half_width + free - v * steps)
        xa = xa0 + v * t
        if motion == "push":
            contact = _rand(rng, *PUSH_CONTACT) * steps
            xr0 = xa0 + v * contact + ea.half_width + gap + er.half_width
            xr = xr0 + v * np.clip(t - contact, 0.0, None)
        else:
            xr = xa + ea.half_width + gap + er.half_width
        ground = _uniform(rng, MARGIN + max(ea.height, er.height), FRAME_SIZE - MARGIN)
        ya, yr = _const(ground - ea.down, t), _const(ground - er.down, t)
    elif motion == "jump_over":
        clear_x = ea.half_width + er.half_width + CONTACT_GAP
        max_rx = (FRAME_SIZE - 2.0 * MARGIN) / 2.0 - ea.half_width
        rx = min(_rand(rng, clear_x + 1.0, clear_x + 3.0), max_rx)
        # Height at which the actor's bottom clears the recipient's top where their boxes start to overlap.
        ratio = min(clear_x / rx, 0.95)
        hy = (er.height + CONTACT_GAP) / (1.0 - ratio**JUMP_EXPONENT) ** (1.0 / JUMP_EXPONENT)
        hy *= _rand(rng, 1.0, 1.15)
        hy = min(hy, FRAME_SIZE - 2.0 * MARGIN - ea.height)
        ground = _uniform(rng, MARGIN + ea.height + hy, FRAME_SIZE - MARGIN)
        xr_c = _uniform(rng, MARGIN + ea.half_width + rx, FRAME_SIZE - MARGIN - ea.half_width - rx)
        tau = math.pi * t / max(steps, 1)
        cos, sin = np.cos(tau), np.sin(tau)
        exponent = 2.0 / JUMP_EXPONENT
        xa = xr_c - rx * np.sign(cos) * np.abs(cos) ** exponent
        ya = ground - ea.down - hy * np.abs(sin) ** exponent
        xr, yr = _const(xr_c, t), _const(ground - er.down, t)
    else:
        raise ValueError(f"not a two-object motion: {motion!r}")
    if not rightward:
        xa, xr = FRAME_SIZE - xa, FRAME_SIZE - xr
    return (xa, ya), (xr, yr)


def plan_scene(label: Label | dict, num_frames: int, rng: np.random.Generator) -> Scene:
    """Per-frame object states for ``label`` (motion definitions in the module docstring)."""
    if not isinstance(label, Label):
        label = Label.from_dict(label)
    if num_frames < 1:
        raise ValueError(f"num_frames must be >= 1, got {num_frames}")
    timeline = max(num_frames, POOL_FRAMES)
    steps = timeline - 1
    # grow/shrink clips start at frame 0 so that the first frame shows the labelled size.
    anchored = label.motion in ("grow", "shrink")
    start = 0 if anchored else int(rng.random() * (timeline - num_frames + 1))
    t = np.arange(start, start + num_frames, dtype=np.float64)
    d_actor = _draw_extent(label.actor, rng)
    if label.recipient is None:
        x, y, d, angle = _single(label.motion, label.actor.shape, d_actor, t, steps, rng)
        objects = [ObjectTrack(label.actor.shape, label.actor.color, x, y, d, angle)]
    else:
        d_recipient = _draw_extent(label.recipient, rng)
        shapes = (label.actor.shape, label.recipient.shape)
        (xa, ya), (xr, yr) = _pair(label.motion, shapes, (d_actor, d_recipient), t, steps, rng)
        zeros = np.zeros(t.shape)
        objects = [
            ObjectTrack(label.recipient.shape, label.recipient.color, xr, yr, _const(d_recipient, t), zeros),
            ObjectTrack(label.actor.shape, label.actor.color, xa, ya, _const(d_actor, t), zeros),
        ]
    return Scene(label=label, background=label.background, objects=objects, start=start)


# --- rasterisation ---------------------------------------------------------------------------

# Window sides (px) an object is drawn in; the smallest that holds its bounding circle plus the edge ramp.
_WINDOWS = (8, 12, 16, 20, 24, 32)


def _edge_coverage(inside: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Exact area of a unit pixel on the inner side of a straight edge.

    ``inside`` is the signed distance (px) from the pixel centre into the
    shape; ``a >= b`` are the edge normal's absolute components. The pixel's
    projection on the normal is the sum of two uniform variables of widths
    ``a`` and ``b``, so the covered fraction is that trapezoid's CDF: linear in
    the middle, quadratic within ``b / 2`` of either end.
    """
    b = np.maximum(b, 1e-6)
    h1 = (a - b) / 2.0
    h2 = (a + b) / 2.0
    u = np.clip(inside, -h2, h2)
    z = np.abs(u)
    t = np.maximum(z - h1, 0.0)
    return 0.5 + np.copysign(z / a - t * t / (2.0 * a * b), u)


def _normal_extent(nx: np.ndarray, ny: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    ax, ay = np.abs(nx), np.abs(ny)
    return np.maximum(ax, ay), np.minimum(ax, ay)


def _polygon_normals(shape: str) -> tuple[np.ndarray, float]:
    """Edge normal angles of the upright shape and its inradius per unit extent."""
    if shape == "square":
        return np.array([0.0, 0.5, 1.0, 1.5]) * np.pi, 0.5
    # An upright triangle's edge normals point down, up-left and up-right (y grows downwards).
    return np.array([0.5, 0.5 + 2.0 / 3.0, 0.5 + 4.0 / 3.0]) * np.pi, TRIANGLE_SIDE / (2.0 * math.sqrt(3.0))


def _shape_coverage(shape: str, gx, gy, x, y, d, angle, supersample: int) -> np.ndarray:
    """Coverage on the sample grid ``gy x gx`` (``(K, S)`` each) of K objects of one shape: ``(K, S, S)``.

    ``supersample == 1``: analytic pixel coverage (exact along straight edges;
    corners take the product of their edges; circles use the tangent edge).
    ``supersample > 1``: one-sample-wide signed-distance ramp per sub-sample.
    """
    dx = (gx - x[:, None]).astype(np.float32)
    dy = (gy - y[:, None]).astype(np.float32)
    if shape == "circle":
        r = np.sqrt(np.square(dy)[:, :, None] + np.square(dx)[:, None, :])
        inside = (d / 2.0)[:, None, None] - r
        if supersample > 1:
            return np.clip(0.5 + inside * supersample, 0.0, 1.0)
        r += 1e-6
        a, b = _normal_extent(dx[:, None, :] / r, dy[:, :, None] / r)
        return _edge_coverage(inside, a, b)
    normals, inradius_per_d = _polygon_normals(shape)
    inradius = (d * inradius_per_d)[:, None, None]
    result = None
    for normal in normals:
        theta = angle + normal
        nx = np.cos(theta).astype(np.float32)
        ny = np.sin(theta).astype(np.float32)
        inside = inradius - (dy * ny[:, None])[:, :, None] - (dx * nx[:, None])[:, None, :]
        if supersample > 1:
            result = inside if result is None else np.minimum(result, inside, out=result)
            continue
        a, b = _normal_extent(nx, ny)
        edge = _edge_coverage(inside, a[:, None, None], b[:, None, None])
        result = edge if result is None else np.multiply(result, edge, out=result)
    if supersample > 1:
        return np.clip(0.5 + result * supersample, 0.0, 1.0, out=result)
    return result


def _bounding_radius(shape_ids: np.ndarray, d: np.ndarray) -> np.ndarray:
    per_d = np.array([0.5, 1.0 / math.sqrt(2.0), TRIANGLE_SIDE / math.sqrt(3.0)], dtype=np.float32)
    return d * per_d[shape_ids]


def _coverage_patches(shape_ids, x, y, d, angle, size: int, supersample: int):
    """Yield ``(idx, ox, oy, cov)``: objects ``idx`` drawn in ``W x W`` windows at ``(ox, oy)``, cov ``(K, W, W)``."""
    x, y, d, angle = (np.asarray(a, dtype=np.float32) for a in (x, y, d, angle))
    shape_ids = np.asarray(shape_ids, dtype=np.int64)
    need = 2.0 * _bounding_radius(shape_ids, d) + 2.0
    windows = np.array([w for w in _WINDOWS if w < size] + [size])
    window_of = windows[np.minimum(np.searchsorted(windows, need), len(windows) - 1)]
    for window in np.unique(window_of):
        for shape, shape_id in SHAPE_IDS.items():
            idx = np.flatnonzero((window_of == window) & (shape_ids == shape_id))
            if not idx.size:
                continue
            ox = np.clip(np.rint(x[idx] - window / 2.0), 0, size - window).astype(np.int64)
            oy = np.clip(np.rint(y[idx] - window / 2.0), 0, size - window).astype(np.int64)
            local = (np.arange(window * supersample, dtype=np.float32) + 0.5) / supersample
            cov = _shape_coverage(
                shape,
                ox[:, None] + local,
                oy[:, None] + local,
                x[idx],
                y[idx],
                d[idx],
                angle[idx],
                supersample,
            )
            if supersample > 1:
                cov = cov.reshape(len(idx), window, supersample, window, supersample).mean(axis=(2, 4))
            yield idx, ox, oy, cov


def _patch_index(ox: np.ndarray, oy: np.ndarray, window: int) -> tuple[np.ndarray, np.ndarray]:
    steps = np.arange(window)
    return (oy[:, None] + steps)[:, :, None], (ox[:, None] + steps)[:, None, :]


def coverage(
    shape_ids: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
    d: np.ndarray,
    angle: np.ndarray,
    size: int = FRAME_SIZE,
    supersample: int = 1,
) -> np.ndarray:
    """Anti-aliased coverage in [0, 1] of K objects: ``(K, size, size)`` float32.

    All inputs are ``(K,)``: shape id (``SHAPE_IDS``), centroid, extent ``d``
    (px) and angle (rad). Each object is evaluated only inside a square window
    around it (sides in ``_WINDOWS``).
    """
    out = np.zeros((len(x), size, size), dtype=np.float32)
    for idx, ox, oy, cov in _coverage_patches(shape_ids, x, y, d, angle, size, supersample):
        rows, cols = _patch_index(ox, oy, cov.shape[-1])
        out[idx[:, None, None], rows, cols] = cov
    return out


def _layer_coverage(objs: Sequence[ObjectTrack], frames: int, supersample: int) -> np.ndarray:
    cov = coverage(
        np.repeat([SHAPE_IDS[o.shape] for o in objs], frames),
        np.concatenate([o.x for o in objs]),
        np.concatenate([o.y for o in objs]),
        np.concatenate([o.d for o in objs]),
        np.concatenate([o.angle for o in objs]),
        supersample=supersample,
    )
    return cov.reshape(len(objs), frames, FRAME_SIZE, FRAME_SIZE)


def _rasterize_chunk(scenes: Sequence[Scene], frames: int, supersample: int, out: np.ndarray) -> None:
    """Composite scenes with equal object counts into ``out`` ``(N, F, H, W, 3)``, one colour plane at a time.

    Whole-image planes ``(N, F, H, W)`` keep numpy's inner loops long and
    contiguous (interleaved RGB would make them three elements long).
    """
    layers = len(scenes[0].objects)
    covs = [_layer_coverage([s.objects[k] for s in scenes], frames, supersample) for k in range(layers)]
    backgrounds = np.array([BACKGROUNDS[s.background] for s in scenes], dtype=np.float32)
    colors = [np.array([COLORS[s.objects[k].color] for s in scenes], dtype=np.float32) for k in range(layers)]
    plane = np.empty_like(covs[0])
    for c in range(3):
        bg = backgrounds[:, c, None, None, None]
        np.multiply(covs[0], colors[0][:, c, None, None, None] - bg, out=plane)
        plane += bg + 0.5  # +0.5: round half up on the cast below; values stay within [0, 255.5]
        for k in range(1, layers):
            # Blending towards colour + 0.5 keeps the rounding offset of the layers below.
            plane += covs[k] * (colors[k][:, c, None, None, None] + 0.5 - plane)
        out[..., c] = plane


# Scenes per chunk: keeps the float working arrays small (about 4 MB).
_CHUNK_SCENES = 128


def rasterize(scenes: Sequence[Scene], supersample: int = 1) -> np.ndarray:
    """Draw scenes with equal frame counts: ``(N, F, 32, 32, 3)`` uint8."""
    if not scenes:
        return np.zeros((0, 0, FRAME_SIZE, FRAME_SIZE, 3), dtype=np.uint8)
    frames = len(scenes[0].objects[0].x)
    if any(len(s.objects[0].x) != frames for s in scenes):
        raise ValueError("all scenes in a batch need the same number of frames")
    out = np.empty((len(scenes), frames, FRAME_SIZE, FRAME_SIZE, 3), dtype=np.uint8)
    # Scenes with one and with two objects go in separate chunks, so every chunk composites whole arrays.
    for count in (1, 2):
        idx = [i for i, s in enumerate(scenes) if len(s.objects) == count]
        for lo in range(0, len(idx), _CHUNK_SCENES):
            part = idx[lo : lo + _CHUNK_SCENES]
            if part[-1] - part[0] == len(part) - 1:
                _rasterize_chunk([scenes[i] for i in part], frames, supersample, out[part[0] : part[-1] + 1])
            else:
                target = np.empty((len(part), *out.shape[1:]), np.uint8)
                _rasterize_chunk([scenes[i] for i in part], frames, supersample, target)
                out[part] = target
    return out


def _check_rng(rng: np.random.Generator | None) -> np.random.Generator:
    if not isinstance(rng, np.random.Generator):
        raise TypeError("pass an explicit numpy Generator: rng=np.random.default_rng(seed)")
    return rng


def render_batch(
    labels: Sequence[Label | dict],
    num_frames: int = 8,
    rng: np.random.Generator | None = None,
    supersample: int = 1,
) -> np.ndarray:
    """Render many labels: ``(N, num_frames, 32, 32, 3)`` uint8.

    Draws from ``rng`` label by label, so the result equals rendering each label
    in turn with :func:`render_video` on the same generator.
    """
    rng = _check_rng(rng)
    scenes = [plan_scene(label, num_frames, rng) for label in labels]
    return rasterize(scenes, supersample=supersample)


def render_video(
    label: Label | dict,
    num_frames: int = 8,
    rng: np.random.Generator | None = None,
    supersample: int = 1,
) -> np.ndarray:
    """Render one label: ``(num_frames, 32, 32, 3)`` uint8."""
    return render_batch([label], num_frames, rng, supersample=supersample)[0]


def degrade(
    frames: np.ndarray,
    rng: np.random.Generator,
    blur: float = 0.7,
    noise: float = 8.0,
    fade: float = 0.75,
    shift: float = 12.0,
) -> np.ndarray:
    """Imitate a generator's flaws on ``(F, H, W, 3)`` uint8 frames, for probe robustness checks.

    Objects fade towards the background (contrast times ``fade``), the image is
    blurred (Gaussian, ``blur`` px), every channel shifts by a constant drawn
    from U(-shift, shift), and Gaussian noise of std ``noise`` is added.
    """
    from scipy import ndimage

    f = np.asarray(frames, dtype=np.float32)
    background = np.median(f.reshape(len(f), -1, 3), axis=1)[:, None, None, :]
    f = background + fade * (f - background)
    f = ndimage.gaussian_filter(f, sigma=(0, blur, blur, 0))
    f += rng.uniform(-shift, shift, size=(1, 1, 1, 3)).astype(np.float32)
    f += rng.normal(0.0, noise, size=f.shape).astype(np.float32)
    return np.clip(np.rint(f), 0, 255).astype(np.uint8)
