"""Long-video metrics on rendered toy videos whose joins, identities and repeats are known."""

from __future__ import annotations

import numpy as np
import pytest

from toyworld.long_metrics import (
    Reading,
    boundary_smoothness,
    clip_windows,
    content_cycling,
    direction_consistency,
    identity_persistence,
    long_video_row,
    read_windows,
    scene_boundaries,
    scene_change,
    segments_from_manifest,
    summarize,
)
from toyworld.render import render_video
from toyworld.spec import Label, ObjectSpec

SEGMENTS = [(0, 8), (8, 16), (16, 24)]


def label(color="red", motion="move_right", shape="circle") -> Label:
    return Label(actor=ObjectSpec(shape=shape, color=color, size="big"), motion=motion, background="dark")


@pytest.fixture(scope="module")
def continuous():
    """24 frames of one ball rolling right: clips cut from it join seamlessly."""
    return render_video(label(), 24, np.random.default_rng(0))


def test_seamless_join_scores_one_and_jumps_score_more(continuous):
    assert boundary_smoothness(continuous, SEGMENTS) == pytest.approx(1.0, abs=0.15)
    # Three independent renders (each starting somewhere else) joined end to end jump at the joins.
    joined = np.concatenate([render_video(label(), 8, np.random.default_rng(s)) for s in (1, 2, 3)])
    assert boundary_smoothness(joined, SEGMENTS) > 2.0
    assert boundary_smoothness(continuous, [(0, 24)]) is None


def test_still_video_is_seamless():
    still = np.zeros((12, 32, 32, 3), dtype=np.uint8)
    assert boundary_smoothness(still, [(0, 6), (6, 12)]) == pytest.approx(1.0)


def test_content_cycling_detects_a_repeated_clip(continuous):
    a, b = continuous[:8], continuous[8:16]
    assert content_cycling(np.concatenate([a, b, a]), SEGMENTS) == pytest.approx(1.0, abs=1e-3)
    assert content_cycling(continuous, SEGMENTS) < 0.2  # the ball keeps moving away
    assert content_cycling(continuous[:16], SEGMENTS[:2]) is None


def test_identity_persistence_and_per_clip_motion(continuous):
    windows = clip_windows(SEGMENTS, 8)
    assert windows == SEGMENTS
    same = read_windows(continuous, windows)
    assert identity_persistence(same) == {"color": 1.0, "shape": 1.0, "size": 1.0, "identity": 1.0}
    changed = np.concatenate(
        [continuous[:16], render_video(label(color="blue"), 8, np.random.default_rng(4))]
    )
    readings = read_windows(changed, windows)
    assert [r.color for r in readings] == ["red", "red", "blue"]
    result = identity_persistence(readings)
    assert result["color"] == 0.5 and result["identity"] == 0.5 and result["shape"] == 1.0
    assert identity_persistence([Reading(None, None, None, None)] * 3) is None


def test_manifest_segments_and_row(continuous):
    manifest = {
        "long_video": {
            "clip_frames": 8,
            "clips": [
                {"scene": 0, "clip": 0, "kept": [0, 8]},
                {"scene": 0, "clip": 1, "kept": [4, 8]},
                {"scene": 1, "clip": 0, "kept": [4, 8]},
                {"scene": 1, "clip": 1, "kept": [4, 8]},
                {"scene": 1, "clip": 2, "kept": [4, 8]},
                {"scene": 1, "clip": 3, "kept": [4, 8]},
            ],
        }
    }
    assert segments_from_manifest(manifest) == [(0, 8), (8, 12), (12, 16), (16, 20), (20, 24), (24, 28)]
    assert scene_boundaries(manifest) == [12]
    assert segments_from_manifest({}) == []
    manifest["long_video"]["clips"] = manifest["long_video"]["clips"][:5]
    row = long_video_row(continuous, manifest, label().to_dict())
    assert row["clips"] == 5 and row["identity_persistence"] == 1.0
    assert row["boundary_smoothness"] == pytest.approx(1.0, abs=0.2)
    assert row["motion_acc_per_clip"] == 1.0 and len(row["motion_per_clip"]) == 5
    assert (
        long_video_row(continuous[:8], {"long_video": {"clips": [{"kept": [0, 8]}]}}, label().to_dict()) == {}
    )
    assert row["direction_consistency"] == 1.0 and row["motion_whole"] is True  # one ball rolling on
    assert row["identity_kept_at_end"] is True and row["color_kept_at_end"] is True
    summary = summarize([row, {"boundary_smoothness": 3.0}, {}])
    assert summary["boundary_smoothness"] == pytest.approx((row["boundary_smoothness"] + 3.0) / 2, abs=1e-4)
    assert summary["identity_persistence"] == 1.0


def test_scene_change_keeps_or_loses_the_actor():
    rng = np.random.default_rng(5)
    ball = render_video(label(), 8, rng)
    bounce = render_video(label(motion="bounce"), 8, rng)
    blue_box = render_video(label(color="blue", shape="square", motion="bounce"), 8, rng)
    kept = scene_change(np.concatenate([ball, bounce]), 8, 8)
    assert kept["color_kept"] and kept["shape_kept"]
    lost = scene_change(np.concatenate([ball, blue_box]), 8, 8)
    assert not lost["color_kept"] and not lost["shape_kept"]
    assert lost["after"]["color"] == "blue"


def test_eval_ablation_reports_long_video_columns(tmp_path, short_clip_model_dir, monkeypatch):
    import json

    from typer.testing import CliRunner

    import cli
    from toyworld.captions import prompt_set, write_prompt_file

    monkeypatch.setenv("REELGRAPH_HOME", str(tmp_path / "home"))
    prompts = write_prompt_file(tmp_path / "prompts.jsonl", prompt_set(2, seed=4))
    ablation = tmp_path / "ablation.yaml"
    ablation.write_text("configs:\n  vidrd: {}\n  independent: {extension_mode: independent}\n")
    out = tmp_path / "eval"
    result = CliRunner().invoke(
        cli.app,
        ["eval", "--prompts", str(prompts), "--out", str(out), "--ablation", str(ablation), "--steps", "2",
         "--frames", "10", "--model", str(short_clip_model_dir), "--device", "cpu"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    table = (out / "ablation.md").read_text()
    assert "boundary_smoothness" in table and "content_cycling" in table
    for name, clips in (("vidrd", 4), ("independent", 3)):
        metrics = json.loads((out / name / "metrics.json").read_text())
        assert metrics["boundary_smoothness"] > 0 and 0 <= metrics["motion_acc_per_clip"] <= 1
        rows = [json.loads(line) for line in (out / name / "rows.jsonl").read_text().splitlines()]
        assert [(r["clips"], len(r["motion_per_clip"])) for r in rows] == [(clips, clips)] * 2


def test_direction_consistency_counts_joins_that_keep_the_motions_sign(continuous):
    """A rolling ball cut into clips keeps its direction at every join; the same clips with every other
    one played backwards (VidRD's literal join) reverse it at every join; a still actor counts nothing."""
    from toyworld.long_metrics import actor_centroids
    from toyworld.probe import probe

    segments = [(0, 8), (8, 12), (12, 16), (16, 20), (20, 24)]
    forward = actor_centroids(probe(continuous))
    assert direction_consistency(forward, segments) == 1.0
    mirrored = np.concatenate([continuous[:8], continuous[4:8][::-1], continuous[4:8], continuous[4:8][::-1]])
    back_and_forth = actor_centroids(probe(mirrored))
    assert direction_consistency(back_and_forth, segments[:4]) == 0.0
    still = [(10.0, 10.0)] * 24
    assert direction_consistency(still, segments) is None
    assert direction_consistency(forward, segments[:1]) is None
    half = [(float(x), 5.0) for x in range(8)] + [(7.0 - x, 5.0) for x in range(8)]
    assert direction_consistency(half, [(0, 4), (4, 8), (8, 12), (12, 16)]) == pytest.approx(2 / 3)
