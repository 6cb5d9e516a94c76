"""Media files round-trip, writes are atomic, run folders are never clobbered."""

from __future__ import annotations

import numpy as np
import pytest

from reelgraph.atomic import atomic_path, write_json
from reelgraph.errors import ReelgraphError
from reelgraph.media import Mp4Writer, read_video, write_gif, write_mp4
from reelgraph.runs import RunFolder, default_run_dir, slugify


def _frames(n=8, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)


def test_lossless_mp4_round_trips_exactly(tmp_path):
    frames = _frames(24)
    write_mp4(frames, tmp_path / "a.mp4", lossless=True)
    assert np.array_equal(read_video(tmp_path / "a.mp4"), frames)


def test_viewing_mp4_is_enlarged_and_streams_clip_by_clip(tmp_path):
    with Mp4Writer(tmp_path / "v.mp4", scale=4) as writer:
        writer.write(_frames(8, 1))
        writer.write(_frames(8, 2))
    video = read_video(tmp_path / "v.mp4")
    assert video.shape == (16, 128, 128, 3)


def test_gif(tmp_path):
    write_gif(_frames(4), tmp_path / "a.gif")
    assert read_video(tmp_path / "a.gif").shape == (4, 32, 32, 3)


def test_failed_write_leaves_no_file(tmp_path):
    with pytest.raises(RuntimeError), Mp4Writer(tmp_path / "v.mp4") as writer:
        writer.write(_frames(2))
        raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(KeyboardInterrupt), atomic_path(tmp_path / "x.json") as tmp:
        tmp.write_text("{")
        raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []
    write_json(tmp_path / "x.json", {"a": 1})
    assert (tmp_path / "x.json").read_text().strip().startswith("{")


def test_reading_a_broken_video_is_a_clear_error(tmp_path):
    (tmp_path / "bad.mp4").write_bytes(b"not a video")
    with pytest.raises(ReelgraphError, match="cannot be read"):
        read_video(tmp_path / "bad.mp4")
    with pytest.raises(ReelgraphError, match="does not exist"):
        read_video(tmp_path / "missing.mp4")


def test_run_folder_names_and_cleanup(tmp_path):
    assert slugify("A red ball, rolling!") == "a-red-ball-rolling"
    assert slugify("!!!") == "video"
    assert default_run_dir(tmp_path, "a ball").name.endswith("-a-ball")
    with pytest.raises(KeyboardInterrupt), RunFolder(tmp_path / "new") as folder:
        (folder / "video.mp4").write_bytes(b"half")
        raise KeyboardInterrupt
    assert not (tmp_path / "new").exists()


def test_an_out_path_that_is_a_file_says_is_a_file(tmp_path):
    from reelgraph.errors import ReelgraphError
    from reelgraph.runs import prepare_run_dir, run_lock

    blocker = tmp_path / "file"
    blocker.write_text("mine")
    for out in (blocker, blocker / "run", blocker / "a" / "b"):
        with pytest.raises(ReelgraphError, match="is a file"), run_lock(out):
            prepare_run_dir(out)
    assert blocker.read_text() == "mine"
