"""Pools on disk (WebVid layout, determinism, re-runs) and in-memory batches."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from reelgraph.errors import ReelgraphError
from reelgraph.media import read_video
from toyworld.dataset import CSV_COLUMNS, iso_duration, pool_item, read_pool, render_pool, sample_batch
from toyworld.spec import Label


def test_iso_duration_matches_webvid():
    assert iso_duration(3) == "PT00H00M03S"
    assert iso_duration(3725) == "PT01H02M05S"
    assert iso_duration(2.5) == "PT00H00M02.5S"


def test_pool_layout_content_and_determinism(tmp_path):
    csv_path = render_pool(4, tmp_path / "a", seed=3, frames=24)
    with csv_path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert tuple(rows[0]) == CSV_COLUMNS
    assert [r["videoid"] for r in rows] == [f"toy3-{i:06d}" for i in range(4)]
    for index, row in enumerate(rows):
        assert row["duration"] == "PT00H00M03S"
        assert row["page_dir"] == "videos"
        frames = read_video(tmp_path / "a" / row["contentUrl"])
        expected, caption, label = pool_item(3, index, 24, "pool")
        assert np.array_equal(frames, expected)  # lossless: every pixel survives
        assert row["name"] == caption
        assert Label.from_json(row["label"]) == label
        assert json.loads(row["label"])["motion"] == label.motion
    render_pool(4, tmp_path / "b", seed=3, frames=24)
    assert (tmp_path / "b" / "captions.csv").read_bytes() == csv_path.read_bytes()
    other = render_pool(4, tmp_path / "c", seed=4, frames=24)
    assert other.read_bytes() != csv_path.read_bytes()
    assert [r["label"] for r in read_pool(tmp_path / "a")] == [Label.from_json(r["label"]) for r in rows]


def test_pool_rerun_is_idempotent_and_extends(tmp_path):
    out = tmp_path / "pool"
    csv_path = render_pool(3, out, seed=1, frames=8)
    first = csv_path.read_bytes()
    videos = sorted((out / "videos").iterdir())
    stamps = [p.stat().st_mtime_ns for p in videos]
    render_pool(3, out, seed=1, frames=8)
    assert csv_path.read_bytes() == first
    assert [p.stat().st_mtime_ns for p in videos] == stamps  # nothing re-rendered
    render_pool(5, out, seed=1, frames=8)
    lines = csv_path.read_text().splitlines()
    assert len(lines) == 6 and "\n".join(lines[:4]) + "\n" == first.decode()
    assert not [p for p in out.rglob("*") if ".tmp" in p.name]


def test_pool_refuses_to_mix_recipes(tmp_path):
    render_pool(2, tmp_path, seed=1, frames=8)
    with pytest.raises(ReelgraphError, match="different toy pool"):
        render_pool(2, tmp_path, seed=2, frames=8)
    with pytest.raises(ReelgraphError):
        render_pool(2, tmp_path / "x", frames=0)
    with pytest.raises(ReelgraphError):
        read_pool(tmp_path / "empty")


def test_sample_batch_shapes_and_determinism():
    frames, captions, labels = sample_batch(6, np.random.default_rng(0), num_frames=8)
    assert frames.shape == (6, 8, 32, 32, 3) and frames.dtype == np.uint8
    assert len(captions) == len(labels) == 6
    again, captions_again, _ = sample_batch(6, np.random.default_rng(0), num_frames=8)
    assert np.array_equal(frames, again) and captions == captions_again
