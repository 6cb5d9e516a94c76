"""Pool ingestion: bad rows, videos, resumption and idempotency."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from memory.ingest import find_video, ingest_csv, parse_duration, remove_pool, store_stats
from memory.store import MemoryStore
from reelgraph.errors import ReelgraphError
from reelgraph.text.embeddings import get_embedder
from reelgraph.text.units import get_parser
from tests.memory_helpers import CAPTIONS, write_csv, write_videos

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def models():
    return get_embedder(), get_parser()


def ingest(store, csv, models, **kwargs):
    embedder, parser = models
    return ingest_csv(store, csv, embedder=embedder, parser=parser, progress=False, **kwargs)


def good_rows(n: int) -> list[dict[str, str]]:
    return [
        {
            "videoid": f"v{i}",
            "duration": "PT00H00M03S",
            "page_dir": "000",
            "name": CAPTIONS[i % len(CAPTIONS)],
        }
        for i in range(n)
    ]


def test_parse_duration():
    assert parse_duration("PT00H01M02S") == 62
    assert parse_duration("PT11S") == 11
    assert parse_duration("3.5") == 3.5
    assert parse_duration("") is None and parse_duration("bogus") is None and parse_duration("-1") is None


def test_find_video_in_both_layouts(tmp_path):
    write_videos(tmp_path, ["flat"])
    write_videos(tmp_path / "017", ["nested"])
    assert find_video(tmp_path, "flat", None) == tmp_path / "flat.mp4"
    assert find_video(tmp_path, "nested", "017") == tmp_path / "017" / "nested.mp4"
    assert find_video(tmp_path, "nested", None) is None


def test_bad_rows_and_videos_are_counted_not_fatal(tmp_path, models):
    videos = tmp_path / "videos"
    write_videos(videos, ["v0", "v1", "v2"])
    write_videos(videos / "000", ["v3"])
    (videos / "v4.mp4").write_bytes(b"not a video" * 20)
    (tmp_path / "c.csv").write_text(
        textwrap.dedent(
            """\
            videoid,contentUrl,duration,page_dir,name
            v0,,PT00H00M03S,000,a red ball rolls to the right
            v1,,3,000,"a man, riding a horse on the beach"
            v1,,3,000,a duplicate of v1
            v2,,,000,
            ,,,000,a row without an id
            v9,,,000,a cat jumps,extra,fields
            v3,,bogus,000,a woman dances in the rain
            v4,,,000,a corrupt video
            v5,,,000,a missing video
            v6,,,000,"an unterminated quote
            """
        )
        + "\x00garbled\x00line,,,\n"
    )
    store = MemoryStore(tmp_path / "home")
    stats = ingest(store, tmp_path / "c.csv", models, videos=videos, pool="t", batch=2)
    assert stats.added == 3  # v0, v1, v3
    assert stats.duplicates == 1 and stats.missing_videos >= 1 and stats.corrupt_videos == 1
    assert stats.invalid_rows >= 3
    assert (
        stats.rows
        == stats.added + stats.duplicates + stats.invalid_rows + stats.missing_videos + stats.corrupt_videos
    )
    assert store.count("t") == 3 == stats.total_in_pool
    record = store.get(["t:v3"])[0]
    assert record.video == str((videos / "000" / "v3.mp4").resolve())
    assert (record.frames, record.fps) == (8, 8.0) and record.duration == pytest.approx(1.0)
    assert record.units[record.core].motion == "dance"
    assert any("corrupt" in p or "unreadable" in p for p in stats.problems)


def test_missing_required_column_is_an_error(tmp_path, models):
    write_csv(tmp_path / "c.csv", [{"videoid": "1", "caption": "x"}], columns=("videoid", "caption"))
    store = MemoryStore(tmp_path / "home")
    with pytest.raises(ReelgraphError, match="no 'name' column"):
        ingest(store, tmp_path / "c.csv", models)
    assert store.count() == 0
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(ReelgraphError, match="column"):
        ingest(store, tmp_path / "empty.csv", models)


def test_bad_arguments(tmp_path, models):
    store = MemoryStore(tmp_path / "home")
    with pytest.raises(ReelgraphError, match="does not exist"):
        ingest(store, tmp_path / "nope.csv", models)
    csv = write_csv(tmp_path / "c.csv", good_rows(2))
    with pytest.raises(ReelgraphError, match="Videos folder"):
        ingest(store, csv, models, videos=tmp_path / "nope")
    with pytest.raises(ReelgraphError, match="Pool name"):
        ingest(store, csv, models, pool="a:b")


def test_captions_without_videos_keep_their_url(tmp_path, models):
    rows = [{**row, "contentUrl": f"https://example.org/{row['videoid']}.mp4"} for row in good_rows(3)]
    csv = write_csv(tmp_path / "c.csv", rows)
    store = MemoryStore(tmp_path / "home")
    stats = ingest(store, csv, models, pool="web")
    assert stats.added == 3
    record = store.get(["web:v2"])[0]
    assert record.video == "https://example.org/v2.mp4" and record.duration == 3.0 and record.frames is None


def test_repeated_ingest_adds_nothing(tmp_path, models):
    csv = write_csv(tmp_path / "c.csv", good_rows(12))
    store = MemoryStore(tmp_path / "home")
    first = ingest(store, csv, models, pool="p", batch=5)
    assert first.added == 12 and not first.skipped_file
    phrases = store.stats().phrases
    second = ingest(store, csv, models, pool="p", batch=5)
    assert second.skipped_file and second.added == 0 and store.count("p") == 12
    # A changed file is read again; only its new rows are added.
    write_csv(csv, good_rows(14))
    third = ingest(store, csv, models, pool="p", batch=5)
    assert (third.added, third.already_indexed) == (2, 12) and store.count("p") == 14
    assert store.stats().phrases == phrases  # the new rows reuse known phrases


class InterruptingEmbedder:
    """The real embedder, interrupted (Ctrl-C) on its n-th call."""

    def __init__(self, inner, fail_on: int):
        self.inner, self.fail_on, self.calls = inner, fail_on, 0

    def embed(self, texts):
        self.calls += 1
        if self.calls == self.fail_on:
            raise KeyboardInterrupt
        return self.inner.embed(texts)


def test_interrupted_ingest_resumes_without_duplicates(tmp_path, models):
    embedder, parser = models
    csv = write_csv(tmp_path / "c.csv", good_rows(20))
    store = MemoryStore(tmp_path / "home")
    with pytest.raises(KeyboardInterrupt):
        ingest_csv(
            store,
            csv,
            pool="p",
            batch=4,
            embedder=InterruptingEmbedder(embedder, 3),
            parser=parser,
            progress=False,
        )
    assert store.count("p") == 8  # two whole batches, nothing of the third
    assert not store.ledger_entries()[0].complete
    resumed = ingest(store, csv, models, pool="p", batch=4)
    assert (resumed.added, resumed.already_indexed) == (12, 8)
    assert store.count("p") == 20 and store.ledger_entries()[0].complete
    again = ingest(store, csv, models, pool="p", batch=4)
    assert again.added == 0 and store.count("p") == 20


_KILLED_CHILD = """
import sys, time, hashlib
import numpy as np
from memory.ingest import ingest_csv
from memory.store import MemoryStore
from reelgraph.text.units import get_parser

class SlowHashEmbedder:
    # Deterministic stand-in vectors; slow enough to be killed between batches.
    calls = 0
    def embed(self, texts):
        SlowHashEmbedder.calls += 1
        print("batch", SlowHashEmbedder.calls, flush=True)
        time.sleep(0.2)
        out = np.stack([np.frombuffer(hashlib.sha512(t.encode()).digest() * 6, dtype=np.uint8)[:384] for t in texts])
        out = out.astype(np.float32) - 127.5
        return out / np.linalg.norm(out, axis=1, keepdims=True)

ingest_csv(MemoryStore(sys.argv[1]), sys.argv[2], pool="p", batch=3, embedder=SlowHashEmbedder(), parser=get_parser(), progress=False)
print("finished", flush=True)
"""


def test_killed_ingest_resumes(tmp_path, models):
    """SIGKILL half-way through; a rerun completes with every id exactly once."""
    csv = write_csv(tmp_path / "c.csv", good_rows(30))
    home = tmp_path / "home"
    child = subprocess.Popen(
        [sys.executable, "-c", _KILLED_CHILD, str(home), str(csv)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    deadline = time.monotonic() + 60
    for line in child.stdout:
        if line.strip() == "batch 4" or time.monotonic() > deadline:
            break
    child.send_signal(signal.SIGKILL)
    child.wait()
    store = MemoryStore(home)
    partial = store.count("p")
    assert 0 < partial < 30
    resumed = ingest(store, csv, models, pool="p", batch=3)
    assert resumed.already_indexed == partial and resumed.added == 30 - partial
    ids = [r.id for records, _ in store.iter_all("p") for r in records]
    assert len(ids) == len(set(ids)) == 30


def test_writer_lock_blocks_a_concurrent_ingest(tmp_path, models):
    csv = write_csv(tmp_path / "c.csv", good_rows(3))
    store = MemoryStore(tmp_path / "home")
    with MemoryStore(tmp_path / "home").writing(), pytest.raises(ReelgraphError, match="locked"):
        ingest(store, csv, models)
    assert store.count() == 0


def test_remove_pool_and_stats(tmp_path, models):
    store = MemoryStore(tmp_path / "home")
    ingest(store, write_csv(tmp_path / "a.csv", good_rows(4)), models, pool="a")
    ingest(store, write_csv(tmp_path / "b.csv", good_rows(3)), models, pool="b")
    assert store_stats(store).pools == {"a": 4, "b": 3}
    removed = remove_pool(store, "a")
    assert (removed.removed, removed.remaining) == (4, 3)
    stats = store_stats(store)
    assert stats.pools == {"b": 3} and [e.pool for e in stats.ingests] == ["b"]
    # The removed pool's file can be ingested again from scratch.
    assert ingest(store, tmp_path / "a.csv", models, pool="a").added == 4


def test_non_english_and_emoji_captions(tmp_path, models):
    rows = [
        {"videoid": "zh", "name": "一只狗在公园里跑"},
        {"videoid": "emoji", "name": "🐶🏃‍♂️💨"},
        {"videoid": "mixed", "name": "a dog 🐶 runs on the beach 🏖️"},
    ]
    store = MemoryStore(tmp_path / "home")
    stats = ingest(store, write_csv(tmp_path / "c.csv", rows), models, pool="x")
    assert stats.added == 3
    emoji = store.get(["x:emoji"])[0]
    assert emoji.caption == "🐶🏃‍♂️💨" and emoji.units == [] and emoji.core is None
    assert store.get(["x:mixed"])[0].units[0].motion == "run"
    hit = store.nearest(get_embedder().embed(["一只狗在公园里跑"])[0], k=1)[0]
    assert hit.record.videoid == "zh" and hit.similarity == pytest.approx(1.0, abs=1e-4)


def test_embeddings_are_minilm_of_the_caption(tmp_path, models):
    store = MemoryStore(tmp_path / "home")
    ingest(store, write_csv(tmp_path / "c.csv", good_rows(3)), models, pool="p")
    ((records, vectors),) = list(store.iter_all("p"))
    expected = get_embedder().embed([r.caption for r in records])
    assert np.allclose(vectors, expected, atol=1e-5)
    phrases = store.phrase_vectors(["roll to the right"])
    assert np.allclose(
        phrases["roll to the right"], get_embedder().embed(["roll to the right"])[0], atol=1e-5
    )


def test_two_workers_store_what_one_does(tmp_path, models):
    csv = write_csv(tmp_path / "c.csv", good_rows(14))
    one, two = MemoryStore(tmp_path / "one"), MemoryStore(tmp_path / "two")
    a = ingest(one, csv, models, pool="p", batch=4)
    b = ingest(two, csv, models, pool="p", batch=4, workers=2)
    assert (a.added, a.rows) == (b.added, b.rows) == (14, 14)
    ids = [f"p:v{i}" for i in range(14)]
    assert one.get(ids) == two.get(ids)
    assert one.stats().phrases == two.stats().phrases
    assert [one.table.record(i) for i in ids] == [two.table.record(i) for i in ids]
    assert two.ledger_entries()[0].complete and two.ledger_entries()[0].added == 14
    assert ingest(two, csv, models, pool="p", batch=4, workers=2).skipped_file


def test_interrupted_two_worker_ingest_resumes(tmp_path, models):
    embedder, parser = models
    csv = write_csv(tmp_path / "c.csv", good_rows(20))
    store = MemoryStore(tmp_path / "home")
    with pytest.raises(KeyboardInterrupt):
        ingest_csv(store, csv, pool="p", batch=4, embedder=InterruptingEmbedder(embedder, 3), parser=parser,
                   progress=False, workers=2)  # fmt: skip
    assert store.count("p") == 8  # the batches before the failing one, whole
    resumed = ingest(store, csv, models, pool="p", batch=4, workers=2)
    assert (resumed.added, resumed.already_indexed) == (12, 8) and store.count("p") == 20


def test_unsupported_workers_is_an_error(tmp_path, models):
    csv = write_csv(tmp_path / "c.csv", good_rows(2))
    with pytest.raises(ReelgraphError, match="--workers 3"):
        ingest(MemoryStore(tmp_path / "home"), csv, models, pool="p", workers=3)
