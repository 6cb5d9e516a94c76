"""The Chroma-backed memory store: embedded and server mode, bad folders, locks."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

from memory.store import MemoryStore, PoolRecord, unit_phrase_set
from reelgraph.errors import ReelgraphError
from reelgraph.text.units import Unit
from tests.memory_helpers import chroma_server, chroma_server_available


def unit_vector(index: int, dim: int = 384) -> np.ndarray:
    vector = np.zeros(dim, np.float32)
    vector[index] = 1.0
    return vector


def sample_records(pool: str = "p", n: int = 3) -> tuple[list[PoolRecord], np.ndarray]:
    records = [
        PoolRecord(
            id=PoolRecord.make_id(pool, f"v{i}"),
            videoid=f"v{i}",
            pool=pool,
            caption=f"caption {i}",
            video=f"/videos/v{i}.mp4",
            frames=24,
            fps=8.0,
            duration=3.0,
            label={"motion": "move_right", "actor": {"shape": "circle"}} if i == 0 else None,
            units=[Unit(motion="roll", actor="ball", motion_phrase="roll to the right", actor_phrase="ball")],
            core=0,
        )
        for i in range(n)
    ]
    # Record i points mostly along axis i, a little along axis 0.
    vectors = np.stack([unit_vector(i) + 0.1 * unit_vector(0) for i in range(n)])
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return records, vectors


def phrase_table() -> dict[str, np.ndarray]:
    return {"roll to the right": unit_vector(10), "ball": unit_vector(11)}


def check_round_trip(store: MemoryStore) -> None:
    records, vectors = sample_records()
    store.add(records, vectors, phrase_table())
    assert store.count() == 3 and store.count("p") == 3 and store.count("other") == 0
    assert store.get(["p:v0"]) == [records[0]]
    hits = store.nearest(vectors[1], k=2)
    assert [h.record.id for h in hits] == ["p:v1", "p:v0"]
    assert hits[0].similarity == pytest.approx(1.0, abs=1e-5)
    assert hits[1].similarity == pytest.approx(float(vectors[1] @ vectors[0]), abs=1e-4)
    assert hits[0].record.units[0].motion_phrase == "roll to the right"
    store.drop_table()  # phrase vectors then come from Chroma (and the table is rebuilt)
    found = store.phrase_vectors(["ball", "not stored"])
    assert list(found) == ["ball"] and np.allclose(found["ball"], unit_vector(11))
    # Re-adding the same ids changes nothing.
    store.add(records, vectors, {})
    assert store.count() == 3
    assert store.existing_ids(["p:v0", "p:v9"]) == {"p:v0"}
    pages = list(store.iter_all(page=2))
    assert sum(len(r) for r, _ in pages) == 3 and pages[0][1].shape == (2, 384)
    assert store.remove_pool("p") == 3
    assert store.count() == 0


def test_embedded_round_trip(tmp_path):
    check_round_trip(MemoryStore(tmp_path))
    # Persisted: a new store on the same folder sees the same (now empty) collections.
    assert MemoryStore(tmp_path).count() == 0


def test_never_uses_chromas_default_embedding_function(tmp_path, monkeypatch):
    from chromadb.utils import embedding_functions

    def refuse(*args, **kwargs):
        raise AssertionError("Chroma's default embedding function was called")

    monkeypatch.setattr(embedding_functions.DefaultEmbeddingFunction, "__call__", refuse)
    store = MemoryStore(tmp_path)
    for collection in (store.captions, store.phrases, store.ledger):
        assert collection._embedding_function is None
    check_round_trip(store)


def test_stats_lists_pools_and_disk(tmp_path):
    from memory.store import LedgerEntry

    store = MemoryStore(tmp_path)
    records, vectors = sample_records("toy")
    store.add(records, vectors, phrase_table())
    store.put_ledger(LedgerEntry(pool="toy", source="a.csv", sha256="f" * 64, rows=3, added=3, complete=True))
    stats = store.stats()
    assert stats.captions == 3 and stats.phrases == 2
    assert stats.pools == {"toy": 3}
    assert stats.ingests[0].complete and stats.disk_bytes > 0


def test_unit_phrase_set_is_distinct_and_ordered():
    records, _ = sample_records()
    records[1].units.append(
        Unit(
            motion="push",
            actor="ball",
            recipient="box",
            motion_phrase="push",
            actor_phrase="ball",
            recipient_phrase="box",
        )
    )
    assert unit_phrase_set(records) == ["roll to the right", "ball", "push", "box"]


@pytest.fixture(scope="module")
def server_url(tmp_path_factory):
    reason = chroma_server_available()
    if reason:
        pytest.skip(reason)
    with chroma_server(tmp_path_factory.mktemp("chroma-server") / "data") as url:
        yield url


def test_server_round_trip(server_url):
    store = MemoryStore(url=server_url)
    assert store.folder is None
    check_round_trip(store)


def test_unreachable_server_is_a_clear_error():
    import socket

    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(ReelgraphError, match="unreachable") as info:
        MemoryStore(url=f"http://127.0.0.1:{port}")
    assert info.value.fix


def test_bad_server_url():
    with pytest.raises(ReelgraphError, match="not a Chroma server URL"):
        MemoryStore(url="ftp://example")


def test_server_that_goes_away_mid_session(tmp_path):
    reason = chroma_server_available()
    if reason:
        pytest.skip(reason)
    data = tmp_path / "data"
    records, vectors = sample_records()
    with chroma_server(data) as url:
        store = MemoryStore(url=url)
        store.add(records[:2], vectors[:2], phrase_table())
    with pytest.raises(ReelgraphError, match="unreachable"):
        store.add(records[2:], vectors[2:], {})
    with chroma_server(data) as url:  # what was written before is whole
        again = MemoryStore(url=url)
        assert again.count() == 2 and again.get(["p:v1"]) == [records[1]]


def test_folder_under_a_file_is_not_writable(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(ReelgraphError, match="not writable"):
        MemoryStore(tmp_path / "file")


def _make_read_only(folder: Path) -> bool:
    """Make ``folder`` unwritable, also for root (immutable flag); False if impossible here."""
    if os.geteuid() != 0:
        folder.chmod(0o555)
        return True
    done = subprocess.run(["chattr", "+i", str(folder)], capture_output=True, check=False)
    return done.returncode == 0


def test_read_only_folder_is_a_clear_error(tmp_path):
    home = tmp_path / "home"
    (home / "chroma").mkdir(parents=True)
    if not _make_read_only(home / "chroma"):
        pytest.skip("cannot make a folder read-only here (root without chattr +i support)")
    try:
        with pytest.raises(ReelgraphError, match="not writable") as info:
            MemoryStore(home)
        assert "--home" in info.value.fix
        assert list((home / "chroma").iterdir()) == []  # nothing half-written
    finally:
        subprocess.run(["chattr", "-i", str(home / "chroma")], capture_output=True, check=False)
        (home / "chroma").chmod(0o755)


def test_locked_folder_refuses_a_second_writer(tmp_path):
    first, second = MemoryStore(tmp_path), MemoryStore(tmp_path)
    with first.writing():
        with pytest.raises(ReelgraphError, match="locked by another writer") as info, second.writing():
            pass
        assert str(os.getpid()) in info.value.what
    with second.writing():  # released once the first writer is done
        pass


def test_missing_location():
    with pytest.raises(ReelgraphError):
        MemoryStore()


def test_a_corrupt_embedded_database_is_an_error_with_a_fix(tmp_path):
    folder = tmp_path / "home" / "chroma"
    folder.mkdir(parents=True)
    (folder / "chroma.sqlite3").write_bytes(b"this is not a sqlite database" * 100)
    with pytest.raises(ReelgraphError) as info:
        MemoryStore(tmp_path / "home").count()
    assert info.value.fix and "damaged" in info.value.fix and str(folder) in info.value.fix
    assert (folder / "chroma.sqlite3").read_bytes().startswith(b"this is not")  # the user's file is kept
