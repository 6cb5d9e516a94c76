"""Metrics: label scores, fvd_toy features and Fréchet distance, temporal consistency."""

from __future__ import annotations

import numpy as np
import pytest

from reelgraph.errors import ReelgraphError
from toyworld.captions import sample_label
from toyworld.metrics import (
    FEATURE_DIM,
    FEATURE_NAMES,
    frechet_distance,
    score,
    temporal_consistency,
    video_features,
)
from toyworld.probe import probe
from toyworld.render import degrade, render_batch, render_video
from toyworld.spec import Label, ObjectSpec

PUSH = Label(
    actor=ObjectSpec(shape="circle", color="red", size="small"),
    motion="push",
    recipient=ObjectSpec(shape="square", color="blue", size="big"),
    background="grass",
)


@pytest.fixture(scope="module")
def push_result():
    return probe(render_video(PUSH, 8, np.random.default_rng(2)))


def test_score_of_a_rendered_clip_is_all_ok(push_result):
    result = score(PUSH.to_dict(), push_result)
    assert result == {
        "color_ok": True,
        "shape_ok": True,
        "motion_ok": True,
        "recipient_ok": True,
        "size_ok": True,
        "all_ok": True,
    }


def test_score_flags_each_mismatch(push_result):
    data = PUSH.to_dict()
    wrong_color = {**data, "actor": {**data["actor"], "color": "green"}}
    assert score(wrong_color, push_result)["color_ok"] is False
    assert score(wrong_color, push_result)["all_ok"] is False
    wrong_motion = {**data, "motion": "chase"}
    assert score(wrong_motion, push_result)["motion_ok"] is False
    wrong_recipient = {**data, "recipient": {"shape": "triangle", "color": "blue", "size": None}}
    assert score(wrong_recipient, push_result)["recipient_ok"] is False
    no_sizes = {
        **data,
        "actor": {**data["actor"], "size": None},
        "recipient": {**data["recipient"], "size": None},
    }
    assert score(no_sizes, push_result)["size_ok"] is None
    assert score(no_sizes, push_result)["all_ok"] is True
    wrong_size = {**data, "actor": {**data["actor"], "size": "big"}}
    assert score(wrong_size, push_result)["size_ok"] is False
    assert score(wrong_size, push_result)["all_ok"] is True  # issue 3's all_acc leaves size out
    # A single-object prompt answered with two objects has the wrong recipient.
    single = {**data, "motion": "move_right", "recipient": None}
    assert score(single, push_result)["recipient_ok"] is False


def test_features_are_fixed_size_deterministic_and_finite():
    video = render_video(PUSH, 8, np.random.default_rng(0))
    feats = video_features(video)
    assert feats.shape == (FEATURE_DIM,) == (len(FEATURE_NAMES),)
    assert np.array_equal(feats, video_features(video.copy()))
    for odd in (np.zeros((8, 32, 32, 3), np.uint8), np.full((1, 64, 64, 3), 200, np.uint8)):
        assert np.all(np.isfinite(video_features(odd)))


@pytest.fixture(scope="module")
def feature_sets():
    rng = np.random.default_rng(5)
    labels = [sample_label(rng, "eval") for _ in range(32)]
    a = render_batch(labels, 8, np.random.default_rng(6))
    b = render_batch(labels, 8, np.random.default_rng(7))
    flaws = np.random.default_rng(8)
    degraded = [degrade(v, flaws, blur=1.0, noise=12.0, fade=0.6, shift=20.0) for v in a]
    return (
        np.stack([video_features(v) for v in a]),
        np.stack([video_features(v) for v in b]),
        np.stack([video_features(v) for v in degraded]),
        np.stack([video_features(np.repeat(v[:1], 8, axis=0)) for v in a]),
    )


def test_frechet_distance_orders_sets_sensibly(feature_sets):
    rendered, rendered_again, degraded, frozen = feature_sets
    assert frechet_distance(rendered, rendered) == pytest.approx(0.0, abs=1e-6)
    same_world = frechet_distance(rendered, rendered_again)
    assert 0.0 < same_world < frechet_distance(rendered, degraded)
    assert same_world < frechet_distance(rendered, frozen)
    assert frechet_distance(rendered, degraded) == pytest.approx(
        frechet_distance(degraded, rendered), rel=1e-6
    )


def test_frechet_distance_of_shifted_gaussians_is_the_squared_shift():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(4000, 3))
    shift = np.array([1.0, -2.0, 0.5])
    assert frechet_distance(a, a + shift) == pytest.approx(float(shift @ shift), rel=1e-6)
    scaled = frechet_distance(a, 2.0 * a)  # sqrt variances 1 -> 2: 3 * (2 - 1)^2
    assert scaled == pytest.approx(3.0, rel=0.1)
    with pytest.raises(ReelgraphError):
        frechet_distance(a[:1], a)


def test_temporal_consistency_rewards_stable_objects():
    rng = np.random.default_rng(4)
    labels = [sample_label(rng, "eval") for _ in range(12)]
    videos = render_batch(labels, 8, rng)
    stable = [temporal_consistency(v) for v in videos]
    assert min(stable) > 0.9
    flicker = videos.copy()
    flicker[:, 1::2] = flicker[:, 1::2, :1, :1]  # every other frame is bare background
    assert max(temporal_consistency(v) for v in flicker) < 0.6
    assert temporal_consistency(np.zeros((8, 32, 32, 3), np.uint8)) == 0.0
    assert temporal_consistency(probe(videos[0])) == stable[0]
