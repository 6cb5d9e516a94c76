"""The record table beside Chroma: appends, crash safety, rebuild from Chroma, and the query path on it."""

from __future__ import annotations

import json

import numpy as np
import pytest

from memory.record_table import ABSENT, NO_VECTOR, RecordTable, caption_key
from memory.store import TABLE_FOLDER, MemoryStore, PoolRecord
from reelgraph.text.units import Unit
from tests.test_store import phrase_table, sample_records, unit_vector

PUSH = Unit(
    motion="push",
    actor="ball",
    recipient="box",
    motion_phrase="push",
    actor_phrase="ball",
    recipient_phrase="box",
)


def filled_store(tmp_path) -> tuple[MemoryStore, list[PoolRecord], np.ndarray]:
    store = MemoryStore(tmp_path)
    records, vectors = sample_records()
    records[2].units.append(PUSH)
    records[2].core = 1
    records[1].units, records[1].core = [], None
    store.add(records, vectors, {**phrase_table(), "push": unit_vector(12), "box": unit_vector(13)})
    return store, records, vectors


def test_rows_hold_units_core_and_caption_key(tmp_path):
    store, _, _ = filled_store(tmp_path)
    table = store.table
    assert (table.distinct_records, table.phrase_count) == (3, 4)
    row = table.record("p:v2")
    assert row.core == 1 and row.caption_key == caption_key("Caption 2!")  # normalised: case, punctuation
    assert row.units == (("roll to the right", "ball", None), ("push", "ball", "box"))
    assert table.record("p:v1").units == () and table.record("p:v1").core is None
    rows = table.candidates(["p:v2", "p:v1", "p:v0"], [0.9, 0.8, 0.7])
    assert rows.counts.tolist() == [2, 0, 1] and rows.starts.tolist() == [0, 2, 2]
    assert rows.cores.tolist() == [1, -1, 0]
    # Slots index the candidates' own phrases; the absent recipient stays ABSENT.
    assert [[rows.phrases[i] if i >= 0 else i for i in unit] for unit in rows.units.tolist()] == [
        ["roll to the right", "ball", ABSENT],
        ["push", "ball", "box"],
        ["roll to the right", "ball", ABSENT],
    ]
    assert np.allclose(rows.vectors[rows.phrases.index("box")], unit_vector(13))


def test_missing_table_is_rebuilt_from_chroma_with_the_same_rows(tmp_path):
    store, records, _ = filled_store(tmp_path)
    before = {r.id: store.table.record(r.id) for r in records}
    store.drop_table()
    assert not (tmp_path / TABLE_FOLDER).exists()
    reopened = MemoryStore(tmp_path)
    assert {r.id: reopened.table.record(r.id) for r in records} == before
    assert reopened.table_seconds is not None  # it was rebuilt, not found


def test_table_that_disagrees_with_chroma_is_rebuilt(tmp_path):
    store, records, vectors = filled_store(tmp_path)
    # A writer without the table (an older reelgraph) adds a record to Chroma only.
    extra = records[0].model_copy(update={"id": "p:v9", "videoid": "v9", "caption": "extra"})
    store.captions.add(
        ids=[extra.id], embeddings=vectors[:1], documents=[extra.caption], metadatas=[extra.to_metadata()]
    )
    reopened = MemoryStore(tmp_path)
    assert reopened.table.has("p:v9") and reopened.table.distinct_records == 4


def test_a_second_process_sees_appends(tmp_path):
    store, _, _ = filled_store(tmp_path)
    reader = MemoryStore(tmp_path)
    assert reader.table.distinct_records == 3
    more, vectors = sample_records("q", 2)
    store.add(more, vectors, {})
    assert reader.table.has("q:v1")  # refreshed from meta.json, not rebuilt
    assert reader.table_seconds is None


def test_interrupted_append_is_ignored_and_cut(tmp_path):
    filled_store(tmp_path)
    folder = tmp_path / TABLE_FOLDER
    meta = json.loads((folder / "meta.json").read_text())
    # Bytes an append wrote before it was killed (meta.json not yet replaced).
    with open(folder / "units.bin", "ab") as handle:
        handle.write(b"\xff" * 12)
    with open(folder / "ids.jsonl", "a") as handle:
        handle.write('"p:torn')
    table = RecordTable(folder)
    assert table.records == meta["records"] and not table.has("p:torn")
    table.append([("p:new", "new", [PUSH], 0)], {})
    again = RecordTable(folder)
    assert again.has("p:new") and not again.has("p:torn")
    assert again.record("p:new").units == (("push", "ball", "box"),)
    assert (folder / "units.bin").stat().st_size == (meta["units"] + 1) * 3 * 4


def test_phrase_without_a_vector_is_marked(tmp_path):
    table = RecordTable(tmp_path / "t")
    table.append([("p:a", "a", [PUSH], 0)], {"push": unit_vector(1)})
    rows = table.candidates(["p:a"], [0.5])
    assert rows.phrases == ["push"] and rows.units.tolist() == [[0, NO_VECTOR, NO_VECTOR]]


def test_upsert_maps_the_id_to_its_last_row(tmp_path):
    store, records, vectors = filled_store(tmp_path)
    changed = records[0].model_copy(update={"units": [PUSH], "core": 0})
    store.add([changed], vectors[:1], {})
    assert store.table.distinct_records == 3 and store.table.records == 4
    assert store.table.record("p:v0").units == (("push", "ball", "box"),)
    assert MemoryStore(tmp_path).table_seconds is None  # still agrees with Chroma: no rebuild


def test_removing_a_pool_rebuilds_the_table(tmp_path):
    store, _, _ = filled_store(tmp_path)
    more, vectors = sample_records("q", 2)
    store.add(more, vectors, {})
    store.remove_pool("p")
    assert store.table.distinct_records == 2 and not store.table.has("p:v0")


@pytest.fixture(scope="module")
def pool(tmp_path_factory):
    from memory.ingest import ingest_csv
    from reelgraph.text.embeddings import get_embedder
    from reelgraph.text.units import get_parser
    from tests.memory_helpers import write_csv
    from tests.test_search import POOL

    folder = tmp_path_factory.mktemp("table-pool")
    csv = write_csv(folder / "pool.csv", [{"videoid": f"c{i}", "name": c} for i, c in enumerate(POOL)])
    store = MemoryStore(folder / "home")
    ingest_csv(store, csv, pool="real", embedder=get_embedder(), parser=get_parser(), progress=False)
    return store


def test_query_reads_only_the_returned_records_from_chroma(pool, monkeypatch):
    from motion_prior.search import Retriever, SearchConfig

    asked: list[int] = []
    get = pool.get
    monkeypatch.setattr(pool, "get", lambda ids: asked.append(len(ids)) or get(ids))
    monkeypatch.setattr(pool, "nearest", lambda *a, **k: pytest.fail("the query read K records' metadata"))
    result = Retriever(pool, config=SearchConfig(candidates=50, hits=3, references=2)).retrieve("a dog runs")
    assert len(result.motion_hits) == 3 and len(result.references) == 2 and result.nearest is not None
    assert asked == [
        len({h.id for h in result.motion_hits} | {r.id for r in result.references} | {result.nearest.id})
    ]


def test_table_path_ranks_as_the_full_records_do(pool):
    """The vectorised re-rank on table rows gives the hits, scores and references of the record path."""
    from motion_prior.search import Retriever, SearchConfig, rank_candidates, select_references

    config = SearchConfig(candidates=30, hits=6)
    retriever = Retriever(pool, config=config)
    for prompt in [
        "a horse runs on the beach",
        "a ball slides to the left",
        "a kid kicks a ball",
        "aerial view",
    ]:
        result = retriever.retrieve(prompt)
        parsed = retriever.parser.parse(prompt)
        vector = retriever.embedder.embed([prompt])[0]
        candidates = pool.nearest(vector, config.candidates)
        phrases = [
            p
            for c in candidates
            for u in c.record.units
            for p in (u.motion_phrase, u.actor_phrase, u.recipient_phrase)
            if p
        ]
        prompt_phrases = [
            p for u in parsed.units for p in (u.motion_phrase, u.actor_phrase, u.recipient_phrase) if p
        ]
        prompt_vectors = pool.phrase_vectors(prompt_phrases)
        unknown = [p for p in dict.fromkeys(prompt_phrases) if p not in prompt_vectors]
        prompt_vectors.update(zip(unknown, retriever.embedder.embed(unknown), strict=True))
        prompt_vectors = {p: prompt_vectors[p] for p in dict.fromkeys(prompt_phrases)}
        expected = rank_candidates(
            parsed, prompt_vectors, candidates, pool.phrase_vectors(phrases), config, limit=6
        )
        assert [h.id for h in result.motion_hits] == [h.id for h in expected]
        # Equal up to float32 rounding: the phrase matmul runs on other matrix shapes.
        for got, want in zip(result.motion_hits, expected, strict=True):
            assert got.score.model_dump() == pytest.approx(want.score.model_dump(), abs=1e-6)
            assert got.model_dump(exclude={"score"}) == want.model_dump(exclude={"score"})
        want_refs = select_references(prompt, candidates, config.references)
        assert [r.model_dump(exclude={"similarity"}) for r in result.references] == [
            r.model_dump(exclude={"similarity"}) for r in want_refs
        ]
        assert [r.similarity for r in result.references] == pytest.approx(
            [r.similarity for r in want_refs], abs=1e-6
        )
