"""Probe: reads rendered clips back into labels, from arrays of any size and from files."""

from __future__ import annotations

import json

import numpy as np
import pytest

from reelgraph.errors import ReelgraphError
from reelgraph.media import upscale, write_mp4
from toyworld.captions import sample_label
from toyworld.probe import area_resize, probe
from toyworld.render import degrade, plan_scene, rasterize, render_video
from toyworld.spec import MOTIONS, Label, ObjectSpec

# A seed no other test, pool or bench uses: these clips are fresh.
FRESH_SEED = 4242


@pytest.fixture(scope="module")
def fresh_clips():
    rng = np.random.default_rng(FRESH_SEED)
    # Every motion, at least four times each.
    labels = [sample_label(rng, "pool", motions=[m]) for m in MOTIONS for _ in range(4)]
    labels += [sample_label(rng, "pool") for _ in range(4)]
    scenes = [plan_scene(label, 8, rng) for label in labels]
    return labels, scenes, rasterize(scenes)


def _accuracies(labels, videos):
    color = shape = motion = whole = 0
    for label, video in zip(labels, videos, strict=True):
        result = probe(video)
        guess = result.label()
        color += guess is not None and guess.actor.color == label.actor.color
        shape += guess is not None and guess.actor.shape == label.actor.shape
        motion += result.motion == label.motion
        whole += guess == label
    n = len(labels)
    return color / n, shape / n, motion / n, whole / n


def test_probe_reads_fresh_clips(fresh_clips):
    labels, _, videos = fresh_clips
    color, shape, motion, whole = _accuracies(labels, videos)
    assert color >= 0.9 and shape >= 0.9 and motion >= 0.9 and whole >= 0.85, (color, shape, motion, whole)


def test_probe_survives_generator_like_flaws(fresh_clips):
    labels, _, videos = fresh_clips
    flaws = np.random.default_rng(1)
    color, shape, motion, _ = _accuracies(labels, [degrade(v, flaws) for v in videos])
    assert color >= 0.85 and shape >= 0.85 and motion >= 0.85, (color, shape, motion)


def test_tracks_follow_the_true_objects(fresh_clips):
    labels, scenes, videos = fresh_clips
    for label, scene, video in list(zip(labels, scenes, videos, strict=True))[::5]:
        result = probe(video)
        by_color = {t.color: t for t in result.tracks}
        for obj in scene.objects:
            track = by_color[obj.color]
            seen = np.array([c for c in track.centroid if c is not None])
            truth = np.stack([obj.x, obj.y], axis=1)[np.array(track.present)]
            assert np.abs(seen - truth).max() < 0.6, label


def test_spin_orientation_turns_at_the_rendered_rate():
    label = Label(
        actor=ObjectSpec(shape="square", color="white", size="big"), motion="spin", background="road"
    )
    rng = np.random.default_rng(3)
    scene = plan_scene(label, 8, rng)
    result = probe(rasterize([scene])[0])
    turned = np.unwrap(np.radians(result.tracks[0].orientation) * 4) / 4
    assert np.allclose(np.diff(turned), np.diff(scene.actor.angle), atol=np.radians(3))


def test_probe_reads_files_and_other_frame_sizes(tmp_path):
    label = Label(
        actor=ObjectSpec(shape="triangle", color="orange", size="big"),
        motion="jump_over",
        recipient=ObjectSpec(shape="circle", color="blue", size="small"),
        background="sand",
    )
    video = render_video(label, 8, np.random.default_rng(9))
    path = write_mp4(video, tmp_path / "clip.mp4", lossless=True)
    assert probe(path).label() == label
    assert probe(str(path)).to_dict() == probe(video).to_dict()
    assert probe(upscale(video, 4)).label() == label  # 128x128
    odd = np.stack([np.kron(frame, np.ones((3, 2, 1), dtype=np.uint8)) for frame in video])  # 96x64
    assert probe(odd).label() == label


def test_area_resize_averages_blocks():
    frames = np.random.default_rng(0).integers(0, 255, (2, 64, 96, 3)).astype(np.uint8)
    small = area_resize(frames)
    expected = frames.reshape(2, 32, 2, 32, 3, 3).mean(axis=(2, 4)).astype(np.float32)
    assert np.allclose(small, expected, atol=1e-3)


def test_result_serialises_and_empty_video_has_no_label():
    label = Label(actor=ObjectSpec(shape="circle", color="red", size="small"), motion="bounce")
    data = probe(render_video(label, 8, np.random.default_rng(0))).to_dict()
    assert json.loads(json.dumps(data))["label"] == label.to_dict()
    empty = probe(np.full((8, 32, 32, 3), 10, dtype=np.uint8))
    assert empty.tracks == [] and empty.label() is None and empty.background == "dark"


def test_bad_input_is_a_reelgraph_error(tmp_path):
    with pytest.raises(ReelgraphError):
        probe(np.zeros((8, 32, 32), dtype=np.uint8))
    with pytest.raises(ReelgraphError):
        probe(tmp_path / "missing.mp4")
