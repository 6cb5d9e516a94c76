"""Hostile pool CSVs: oversized fields and paths outside --videos are counted bad rows (issue 19)."""

from __future__ import annotations

import pytest

from memory.ingest import ingest_csv
from memory.store import MemoryStore
from reelgraph.text.embeddings import get_embedder
from reelgraph.text.units import get_parser
from tests.memory_helpers import write_csv, write_videos


@pytest.fixture(scope="module")
def models():
    return get_embedder(), get_parser()


def _ingest(tmp_path, rows, models, videos=None):
    embedder, parser = models
    store = MemoryStore(tmp_path / "home")
    csv_path = write_csv(tmp_path / "c.csv", rows)
    stats = ingest_csv(
        store, csv_path, videos=videos, pool="t", embedder=embedder, parser=parser, progress=False
    )
    return store, stats


@pytest.mark.parametrize("column", ["name", "videoid", "contentUrl"])
def test_an_oversized_field_is_one_bad_row_and_the_rest_ingests(tmp_path, models, column):
    rows = [
        {"videoid": "v0", "name": "a red ball rolls to the right"},
        {"videoid": "v1", "name": "a dog runs", column: "x" * 200_000},
        {"videoid": "v2", "name": "a cat jumps"},
    ]
    store, stats = _ingest(tmp_path, rows, models)
    assert (stats.rows, stats.added, stats.invalid_rows) == (3, 2, 1)
    assert sorted(r.videoid for r in store.get(["t:v0", "t:v2"])) == ["v0", "v2"]
    assert any("field larger than" in p for p in stats.problems), stats.problems


@pytest.mark.parametrize(
    "videoid, page_dir",
    [
        ("../outside/secret", ""),
        ("../../outside/secret", "000"),
        ("secret", "../outside"),
        ("secret", "{outside}"),  # an absolute page_dir
        ("{outside}/secret", ""),  # an absolute videoid
        ("000/../../outside/secret", ""),
    ],
)
def test_a_path_outside_videos_is_a_bad_row_never_stored(tmp_path, models, videoid, page_dir):
    videos, outside = tmp_path / "videos", tmp_path / "outside"
    write_videos(videos / "000", ["v0"])
    write_videos(outside, ["secret"])
    rows = [
        {
            "videoid": videoid.format(outside=outside),
            "page_dir": page_dir.format(outside=outside),
            "name": "a secret",
        },
        {"videoid": "v0", "page_dir": "000", "name": "a red ball rolls to the right"},
    ]
    store, stats = _ingest(tmp_path, rows, models, videos=videos)
    assert (stats.added, stats.invalid_rows) == (1, 1), stats.problems
    assert store.count("t") == 1 and store.get(["t:v0"])[0].video.startswith(str(videos.resolve()))
    assert any("outside" in p for p in stats.problems), stats.problems
