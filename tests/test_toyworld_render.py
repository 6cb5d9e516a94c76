"""Renderer: determinism, exact colours, anti-aliasing, and that every motion shows in any 8-frame window."""

from __future__ import annotations

import math

import numpy as np
import pytest

from toyworld.render import (
    SHAPE_IDS,
    _extents,
    coverage,
    plan_scene,
    render_batch,
    render_video,
)
from toyworld.spec import BACKGROUNDS, COLORS, FRAME_SIZE, POOL_FRAMES, SIZE_BOUNDARY_PX, Label, ObjectSpec

WINDOW = 8


def _label(motion, shape="square", size="big", recipient=None, background="dark", color="red"):
    return Label(
        actor=ObjectSpec(shape=shape, color=color, size=size),
        motion=motion,
        recipient=recipient,
        background=background,
    )


def _pair(motion, actor_size="small", recipient_size="big", shapes=("circle", "square")):
    return _label(
        motion,
        shape=shapes[0],
        size=actor_size,
        recipient=ObjectSpec(shape=shapes[1], color="blue", size=recipient_size),
    )


def test_render_shape_dtype_and_determinism():
    label = _label("orbit", shape="circle")
    a = render_video(label, 8, np.random.default_rng(5))
    b = render_video(label, 8, np.random.default_rng(5))
    c = render_video(label, 8, np.random.default_rng(6))
    assert a.shape == (8, FRAME_SIZE, FRAME_SIZE, 3) and a.dtype == np.uint8
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)


def test_batch_equals_one_by_one_on_the_same_generator():
    labels = [_label("move_left"), _pair("push"), _label("spin", shape="triangle"), _pair("jump_over")]
    batch = render_batch(labels, 8, np.random.default_rng(1))
    rng = np.random.default_rng(1)
    for label, clip in zip(labels, batch, strict=True):
        assert np.array_equal(render_video(label, 8, rng), clip)


def test_rng_is_required():
    with pytest.raises(TypeError, match="Generator"):
        render_video(_label("stay"), 8)


def test_exact_background_and_object_colours_with_soft_edges():
    label = _label("stay", shape="circle", size="big", background="sand", color="cyan")
    frames = render_video(label, 4, np.random.default_rng(0))
    pixels = frames.reshape(-1, 3)
    bg, fg = np.array(BACKGROUNDS["sand"]), np.array(COLORS["cyan"])
    n_bg = np.all(pixels == bg, axis=1).sum()
    n_fg = np.all(pixels == fg, axis=1).sum()
    assert n_bg > 0.8 * len(pixels)
    assert n_fg > 4 * 40  # a 10 px disc has a solid interior of > 40 px in each frame
    # Anti-aliased rim: mixes of the two colours, roughly on the segment between them.
    mixed = pixels[~np.all(pixels == bg, axis=1) & ~np.all(pixels == fg, axis=1)]
    assert len(mixed) > 4 * 10
    alpha = ((mixed - bg) @ (fg - bg)) / ((fg - bg) @ (fg - bg))
    assert np.all((alpha > 0) & (alpha < 1))
    residual = np.linalg.norm(mixed - bg - alpha[:, None] * (fg - bg), axis=1)
    assert residual.max() < 2.0


def test_coverage_matches_a_supersampled_reference():
    rng = np.random.default_rng(2)
    k = 120
    ids = rng.integers(0, 3, k)
    x, y = rng.uniform(8, 24, k), rng.uniform(8, 24, k)
    d, angle = rng.uniform(4, 12, k), rng.uniform(0, 2 * math.pi, k)
    analytic = coverage(ids, x, y, d, angle)
    reference = coverage(ids, x, y, d, angle, supersample=16)
    error = np.abs(analytic - reference)
    assert error.max() < 0.12
    assert error.mean() < 0.01
    areas = reference.sum(axis=(1, 2))
    assert np.all(np.abs(analytic.sum(axis=(1, 2)) - areas) < 0.03 * areas + 0.3)
    # Known areas: circle pi d^2 / 4, square d^2, triangle sqrt(3)/4 (1.1 d)^2.
    expected = np.where(
        ids == SHAPE_IDS["circle"],
        math.pi * d**2 / 4,
        np.where(ids == SHAPE_IDS["square"], d**2, 0.5239 * d**2),
    )
    assert np.allclose(analytic.sum(axis=(1, 2)), expected, rtol=0.03)


# --- motion properties on the 24-frame time line, for every 8-frame window ---------------------


def _plans(label, seeds=range(12), frames=POOL_FRAMES):
    return [plan_scene(label, frames, np.random.default_rng(seed)) for seed in seeds]


def _windows(track_values):
    return [track_values[s : s + WINDOW] for s in range(len(track_values) - WINDOW + 1)]


def _inside_frame(scene):
    for obj in scene.objects:
        for x, y, d, a in zip(obj.x, obj.y, obj.d, obj.angle, strict=True):
            e = _extents(obj.shape, d, spinning=abs(math.sin(2 * a)) > 1e-9)
            assert x - e.half_width >= 0 and x + e.half_width <= FRAME_SIZE
            assert y - e.up >= 0 and y + e.down <= FRAME_SIZE


@pytest.mark.parametrize(
    ("motion", "axis", "sign"),
    [("move_left", "x", -1), ("move_right", "x", 1), ("move_up", "y", -1), ("move_down", "y", 1)],
)
@pytest.mark.parametrize("shape", ["circle", "triangle"])
def test_moves_are_straight_and_visible(motion, axis, sign, shape):
    for scene in _plans(_label(motion, shape=shape)):
        _inside_frame(scene)
        obj = scene.actor
        along, across = (obj.x, obj.y) if axis == "x" else (obj.y, obj.x)
        assert np.ptp(across) == 0
        for window in _windows(along):
            assert sign * (window[-1] - window[0]) >= 0.6 * (WINDOW - 1) - 1e-9
            assert np.all(sign * np.diff(window) > 0)


def test_bounce_hops_in_place_within_every_window():
    for scene in _plans(_label("bounce", shape="circle")):
        _inside_frame(scene)
        assert np.ptp(scene.actor.x) == 0
        for window in _windows(scene.actor.y):
            steps = np.diff(window)
            assert np.ptp(window) >= 3.0
            assert steps.min() < -1.0 and steps.max() > 1.0  # up and down


def test_zigzag_progresses_and_alternates_within_every_window():
    for scene in _plans(_label("zigzag", shape="triangle")):
        _inside_frame(scene)
        for x, y in zip(_windows(scene.actor.x), _windows(scene.actor.y), strict=True):
            assert abs(x[-1] - x[0]) >= 0.6 * (WINDOW - 1) - 1e-9
            assert np.all(np.sign(np.diff(x)) == np.sign(x[-1] - x[0]))
            dy = np.diff(y)
            assert np.all(np.abs(dy) >= 1.5)
            turns = np.sum(np.sign(dy[1:]) != np.sign(dy[:-1]))
            assert turns >= 2
            assert np.ptp(y) >= 3.0


def test_orbit_sweeps_over_half_a_circle_in_every_window():
    for scene in _plans(_label("orbit", shape="circle")):
        _inside_frame(scene)
        x, y = scene.actor.x, scene.actor.y
        cx, cy = (
            x.mean(),
            y.mean(),
        )  # 24 frames at 30-45 deg/frame cover whole turns, so the mean is near the centre
        theta = np.unwrap(np.arctan2(y - cy, x - cx))
        for window in _windows(theta):
            assert abs(window[-1] - window[0]) >= math.radians(180)
            assert np.all(np.sign(np.diff(window)) == np.sign(window[-1] - window[0]))


@pytest.mark.parametrize("shape", ["square", "triangle"])
def test_spin_rotates_in_place(shape):
    for scene in _plans(_label("spin", shape=shape)):
        _inside_frame(scene)
        obj = scene.actor
        assert np.ptp(obj.x) == 0 and np.ptp(obj.y) == 0
        step = np.diff(obj.angle)
        assert np.allclose(step, step[0])
        assert math.radians(12) - 1e-9 <= abs(step[0]) <= math.radians(24) + 1e-9


@pytest.mark.parametrize(
    ("motion", "size"), [("grow", "small"), ("grow", "big"), ("shrink", "small"), ("shrink", "big")]
)
def test_grow_and_shrink_start_at_the_labelled_size_and_change_monotonically(motion, size):
    for frames in (8, POOL_FRAMES):
        for scene in _plans(_label(motion, shape="circle", size=size), frames=frames):
            _inside_frame(scene)
            d = scene.actor.d
            assert scene.start == 0
            assert (d[0] < SIZE_BOUNDARY_PX) == (size == "small")
            ratio = d[WINDOW - 1] / d[0]
            assert ratio >= 1.18 if motion == "grow" else ratio <= 1 / 1.18
            assert np.all(np.diff(d) > 0) if motion == "grow" else np.all(np.diff(d) < 0)


def test_stay_is_still():
    for scene in _plans(_label("stay", shape="triangle")):
        obj = scene.actor
        assert np.ptp(obj.x) == 0 and np.ptp(obj.y) == 0 and np.ptp(obj.d) == 0 and np.ptp(obj.angle) == 0


def _edge_gap(scene):
    """Horizontal gap between the two objects' boxes, per frame."""
    a, r = scene.actor, scene.recipient
    ea, er = _extents(a.shape, a.d[0]), _extents(r.shape, r.d[0])
    return np.abs(a.x - r.x) - ea.half_width - er.half_width


@pytest.mark.parametrize("sizes", [("small", "big"), ("big", "small"), ("small", "small")])
def test_push_actor_reaches_the_recipient_which_then_moves_along(sizes):
    for scene in _plans(_pair("push", *sizes)):
        _inside_frame(scene)
        a, r = scene.actor, scene.recipient
        direction = np.sign(a.x[-1] - a.x[0])
        assert np.all(direction * np.diff(a.x) >= 0.4 - 1e-9)
        gap = _edge_gap(scene)
        touching = gap <= 0.5 + 1e-6
        assert touching[-1] and not touching[0]
        first = int(np.argmax(touching))
        assert np.all(touching[first:])
        assert np.ptp(r.x[:first]) == 0  # the recipient waits ...
        assert np.all(direction * np.diff(r.x[first:]) > 0)  # ... then is pushed the same way
        assert np.ptp(a.y + _extents(a.shape, a.d[0]).down) < 1e-9  # both rest on one ground line
        assert (
            abs((a.y + _extents(a.shape, a.d[0]).down)[0] - (r.y + _extents(r.shape, r.d[0]).down)[0]) < 1e-9
        )
        for window in _windows(a.x):
            assert abs(window[-1] - window[0]) >= 0.4 * (WINDOW - 1) - 1e-9


@pytest.mark.parametrize("sizes", [("small", "big"), ("big", "small")])
def test_chase_both_move_the_same_way_with_the_actor_behind(sizes):
    for scene in _plans(_pair("chase", *sizes)):
        _inside_frame(scene)
        a, r = scene.actor, scene.recipient
        direction = np.sign(r.x[-1] - r.x[0])
        assert np.allclose(np.diff(a.x), np.diff(r.x))
        assert np.all(direction * (r.x - a.x) > 0)  # actor behind
        gap = _edge_gap(scene)
        assert np.all(gap >= 2.5 - 1e-9) and np.ptp(gap) < 1e-9
        for window in _windows(r.x):
            assert abs(window[-1] - window[0]) >= 0.4 * (WINDOW - 1) - 1e-9


@pytest.mark.parametrize("sizes", [("small", "big"), ("big", "small"), ("small", "small")])
@pytest.mark.parametrize("shapes", [("circle", "square"), ("triangle", "triangle"), ("square", "circle")])
def test_jump_over_arcs_from_one_side_to_the_other(sizes, shapes):
    for scene in _plans(_pair("jump_over", *sizes, shapes=shapes), seeds=range(6)):
        _inside_frame(scene)
        a, r = scene.actor, scene.recipient
        ea, er = _extents(a.shape, a.d[0]), _extents(r.shape, r.d[0])
        assert np.ptp(r.x) == 0 and np.ptp(r.y) == 0
        side = np.sign(a.x - r.x)
        assert side[0] == -side[-1] != 0  # starts on one side, ends on the other
        overlap = np.abs(a.x - r.x) < ea.half_width + er.half_width
        assert overlap.any()
        # While their boxes overlap horizontally, the actor's bottom is above the recipient's top.
        assert np.all((a.y + ea.down)[overlap] <= (r.y - er.up)[overlap] + 1e-6)
        for x, y in zip(_windows(a.x), _windows(a.y), strict=True):
            assert np.hypot(x[-1] - x[0], y[-1] - y[0]) >= 3.0
            assert np.min(y) < r.y[0] - er.up + ea.down  # airborne: higher than standing beside it


def test_long_videos_still_fit_the_frame():
    for motion in ("move_right", "zigzag", "grow", "push", "jump_over", "chase"):
        label = _pair(motion) if motion in ("push", "jump_over", "chase") else _label(motion)
        for scene in _plans(label, seeds=range(3), frames=64):
            _inside_frame(scene)


def test_unstated_size_is_drawn_from_both_classes():
    label = Label(actor=ObjectSpec(shape="circle", color="green"), motion="stay")
    extents = {
        plan_scene(label, 8, np.random.default_rng(seed)).actor.d[0] > SIZE_BOUNDARY_PX for seed in range(20)
    }
    assert extents == {True, False}
