"""Motion-prior search (Search-T2V §4.2) and references (POS eq. 3, 6)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from memory.ingest import ingest_csv
from memory.store import Candidate, MemoryStore, PoolRecord
from motion_prior.search import (
    ExhaustiveIndex,
    Retriever,
    SearchConfig,
    normalise_caption,
    rank_candidates,
    select_references,
)
from reelgraph.text.embeddings import get_embedder
from reelgraph.text.units import ParsedPrompt, Unit, get_parser
from tests.memory_helpers import write_csv


def axis(i: int, dim: int = 8) -> np.ndarray:
    v = np.zeros(dim, np.float32)
    v[i] = 1
    return v


def mix(a: np.ndarray, b: np.ndarray, weight: float) -> np.ndarray:
    v = a * weight + b * np.sqrt(1 - weight**2)
    return v / np.linalg.norm(v)


def record(rid: str, units: list[Unit], core: int | None = 0, caption: str | None = None) -> PoolRecord:
    return PoolRecord(id=f"p:{rid}", videoid=rid, pool="p", caption=caption or rid, units=units, core=core)


ROLL = Unit(motion="roll", actor="ball", motion_phrase="roll", actor_phrase="ball")
SLIDE = Unit(motion="slide", actor="box", motion_phrase="slide", actor_phrase="box")
PUSH = Unit(
    motion="push",
    actor="ball",
    recipient="box",
    motion_phrase="push",
    actor_phrase="ball",
    recipient_phrase="box",
)


def test_score_is_eq_6_to_8():
    # Phrase vectors: roll/slide share 0.6 cosine, ball/box 0.8; push is orthogonal.
    vectors = {
        "roll": axis(0),
        "slide": mix(axis(0), axis(1), 0.6),
        "ball": axis(2),
        "box": mix(axis(2), axis(3), 0.8),
        "push": axis(4),
    }
    prompt = ParsedPrompt(text="a ball rolls", units=[ROLL], core=0)
    a = Candidate(record=record("a", [SLIDE]), similarity=0.7)
    b = Candidate(record=record("b", [PUSH, ROLL], core=0), similarity=0.5)
    config = SearchConfig(t_total=0, t_mot=0, t_atr=0)
    hits = {
        h.id: h.score
        for h in rank_candidates(
            prompt, {"roll": vectors["roll"], "ball": vectors["ball"]}, [a, b], vectors, config
        )
    }
    sa = hits["p:a"]
    # core: motion 0.6, actor 0.8, recipient: both absent -> 1; sim' = 0.6 + 0.8 + 1
    assert (sa.motion, sa.actor, sa.recipient) == pytest.approx((0.6, 0.8, 1.0), abs=1e-6)
    assert sa.units == pytest.approx(2.4, abs=1e-6)
    assert sa.total == pytest.approx(0.7 + 0.6 + 0.8 + 0.5 * 2.4, abs=1e-6)
    sb = hits["p:b"]
    # core is PUSH: motion 0, actor 1, recipient absent vs box -> 0; sim' = best unit (ROLL) = 3
    assert (sb.motion, sb.actor, sb.recipient, sb.units) == pytest.approx((0.0, 1.0, 0.0, 3.0), abs=1e-6)
    assert sb.total == pytest.approx(0.5 + 0 + 1 + 1.5, abs=1e-6)


def test_weights_are_configurable():
    vectors = {"roll": axis(0), "ball": axis(2)}
    prompt = ParsedPrompt(text="x", units=[ROLL], core=0)
    cand = Candidate(record=record("a", [ROLL]), similarity=0.4)
    config = SearchConfig(alpha=2, beta=0, gamma=0, t_total=0, t_mot=0, t_atr=0)
    (hit,) = rank_candidates(prompt, vectors, [cand], vectors, config)
    assert hit.score.total == pytest.approx(0.4 + 2.0)


def test_coarse_filter_thresholds_and_fail_safe():
    vectors = {"roll": axis(0), "ball": axis(2), "slide": mix(axis(0), axis(1), 0.5)}
    prompt = ParsedPrompt(text="x", units=[ROLL], core=0)
    exact = [Candidate(record=record(f"r{i}", [ROLL]), similarity=0.5) for i in range(12)]
    near = [
        Candidate(
            record=record(
                f"s{i}", [Unit(motion="slide", actor="ball", motion_phrase="slide", actor_phrase="ball")]
            ),
            similarity=0.9,
        )
        for i in range(5)
    ]
    low = [Candidate(record=record("low", [ROLL]), similarity=0.1)]
    hits = rank_candidates(prompt, vectors, exact + near + low, vectors, SearchConfig(keep_at_least=10))
    # t_total drops "low"; t_mot=0.9 keeps the 12 exact rolls, more than the fail-safe's 10.
    assert sorted(h.id for h in hits) == sorted(c.record.id for c in exact)
    # With a fail-safe of 15 the best slides come back to fill the round.
    hits = rank_candidates(prompt, vectors, exact + near + low, vectors, SearchConfig(keep_at_least=15))
    assert len(hits) == 15 and sum(h.id.startswith("p:s") for h in hits) == 3


def test_noun_only_prompt_skips_the_motion_round():
    vectors = {"ball": axis(2), "roll": axis(0)}
    prompt = ParsedPrompt(text="a ball", units=[Unit(actor="ball", actor_phrase="ball")], core=0)
    cands = [Candidate(record=record(f"r{i}", [ROLL]), similarity=0.5) for i in range(12)]
    cands.append(Candidate(record=record("still", [Unit(actor="ball", actor_phrase="ball")]), similarity=0.5))
    hits = rank_candidates(prompt, vectors, cands, vectors, SearchConfig())
    assert len(hits) == 13
    assert hits[0].id == "p:still"  # both without motion: they agree


def test_prompt_without_units_ranks_by_sentence_similarity():
    vectors = {"roll": axis(0), "ball": axis(2)}
    prompt = ParsedPrompt(text="🐶", units=[], core=None)
    cands = [Candidate(record=record(str(i), [ROLL]), similarity=s) for i, s in enumerate([0.2, 0.9, 0.5])]
    hits = rank_candidates(prompt, {}, cands, vectors, SearchConfig(t_total=0))
    assert [h.id for h in hits] == ["p:1", "p:2", "p:0"]
    assert all(h.score.total == h.score.sentence for h in hits)


def test_references_drop_the_prompt_and_repeats():
    def cand(caption, sim):
        return Candidate(record=record(caption.replace(" ", "_"), [], None, caption), similarity=sim)

    cands = [
        cand("A dog runs.", 0.99),
        cand("a cat runs", 0.8),
        cand("a cat  runs!", 0.79),
        cand("a dog walks", 0.7),
        cand("a fox", 0.1),
    ]
    refs = select_references("a dog runs", cands, k=3)
    assert [r.caption for r in refs] == ["a cat runs", "a dog walks", "a fox"]
    assert normalise_caption(" A  Dog, runs! ") == "a dog runs"


POOL = [
    "a dog sleeps in the park",
    "a dog lies on the grass in the park",
    "a puppy running on the grass",
    "a horse gallops across a field",
    "a cat jumps over a fence",
    "a man rides a bicycle down the street",
    "a woman rides a horse on the beach",
    "a car drives down a road at night",
    "a red ball rolls to the right",
    "a blue box slides to the left",
    "a red ball is pushed by a blue box",
    "a boy kicks a ball in the yard",
    "a girl throws a frisbee to her dog",
    "aerial view of the city at night",
    "a dog runs in the park",
]


@pytest.fixture(scope="module")
def pool(tmp_path_factory):
    folder = tmp_path_factory.mktemp("search-pool")
    csv = write_csv(folder / "pool.csv", [{"videoid": f"c{i}", "name": c} for i, c in enumerate(POOL)])
    store = MemoryStore(folder / "home")
    ingest_csv(store, csv, pool="real", embedder=get_embedder(), parser=get_parser(), progress=False)
    return store


def test_retrieve_is_plain_json(pool):
    result = Retriever(pool, config=SearchConfig(hits=3)).retrieve("a puppy runs across the park")
    data = json.loads(json.dumps(result.model_dump()))
    assert data["units"][data["core"]]["motion"] == "run" and data["units"][data["core"]]["actor"] == "puppy"
    assert len(data["motion_hits"]) == 3 and len(data["references"]) == 5
    assert set(data["timings_ms"]) == {"parse", "embed", "ann", "rerank"}
    score = data["motion_hits"][0]["score"]
    assert set(score) == {"total", "sentence", "motion", "actor", "recipient", "units"}


def test_motion_prior_prefers_the_same_motion(pool):
    retriever = Retriever(pool)
    result = retriever.retrieve("a dog sleeps on the grass")
    assert result.motion_hits[0].units[result.motion_hits[0].core].motion == "sleep"
    result = retriever.retrieve("a puppy runs through a park")
    top = result.motion_hits[0]
    assert top.units[top.core].motion == "run"
    # Where the sentence baseline (POS eq. 3) picks by scene, the prior keeps the motion.
    result = retriever.retrieve("a horse runs on the beach")
    top = result.motion_hits[0]
    assert top.units[top.core].motion == "run"
    assert result.nearest.caption == "a woman rides a horse on the beach"


def test_exact_prompt_is_its_own_nearest_video_but_not_a_reference(pool):
    retriever = Retriever(pool)
    nearest = retriever.nearest_video("a red ball rolls to the right")
    assert nearest.caption == "a red ball rolls to the right" and nearest.similarity == pytest.approx(
        1.0, abs=1e-4
    )
    refs = retriever.references("a red ball rolls to the right", k=5)
    assert len(refs) == 5 and all(r.caption != "a red ball rolls to the right" for r in refs)
    sims = [r.similarity for r in refs]
    assert sims == sorted(sims, reverse=True)


def test_ann_and_exhaustive_rank_the_same_on_a_small_pool(pool):
    ann = Retriever(pool, config=SearchConfig(candidates=50, hits=5))
    exact = Retriever(pool, config=SearchConfig(candidates=50, hits=5), index=ExhaustiveIndex(pool))
    for prompt in ["a horse runs on the beach", "a ball slides to the right", "a kid kicks a ball"]:
        a, e = ann.retrieve(prompt), exact.retrieve(prompt)
        assert [h.id for h in a.motion_hits] == [h.id for h in e.motion_hits]
        assert [h.score.total for h in a.motion_hits] == pytest.approx(
            [h.score.total for h in e.motion_hits], abs=1e-4
        )


def test_odd_prompts_do_not_crash(pool):
    retriever = Retriever(pool)
    for prompt in ["", "🐶🏃‍♂️💨", "一只狗在公园里跑", "x" * 3000]:
        result = retriever.retrieve(prompt)
        assert len(result.motion_hits) == 5
        json.dumps(result.model_dump())


def test_empty_pool(tmp_path):
    result = Retriever(MemoryStore(tmp_path)).retrieve("a dog runs")
    assert result.motion_hits == [] and result.references == [] and result.nearest is None
    assert result.units[result.core].motion == "run"


@pytest.fixture(scope="module")
def toy_pool(tmp_path_factory):
    from memory.ingest import ingest_toy

    home = tmp_path_factory.mktemp("toy-pool")
    store = MemoryStore(home)
    stats = ingest_toy(
        store, home, 400, seed=3, frames=8, embedder=get_embedder(), parser=get_parser(), progress=False
    )
    assert stats.added == 400
    return store


def test_toy_world_motion_prior_beats_sentence_similarity(toy_pool):
    """A small version of bench/toy_retrieval.py: fresh toy prompts, top hit's label vs the prompt's."""
    from bench.toy_retrieval import agreement, fresh_prompts

    exhaustive = ExhaustiveIndex(toy_pool, "toy")
    rows, _ = fresh_prompts(40, 31, {normalise_caption(r.caption) for r in exhaustive.records})
    retriever = Retriever(toy_pool, config=SearchConfig(candidates=150))
    prior = baseline = shape = 0
    for row in rows:
        result = retriever.retrieve(row["prompt"], references=0)
        motion_ok, shape_ok = agreement(result.motion_hits[0].metadata.get("label"), row["label"])
        prior, shape = prior + motion_ok, shape + shape_ok
        baseline += agreement(result.nearest.metadata.get("label"), row["label"])[0]
    assert prior / len(rows) >= 0.85, (prior, baseline, shape)
    assert shape / len(rows) >= 0.7, (prior, baseline, shape)
    assert prior >= baseline + 12, (prior, baseline)  # the baseline picks by colour and scene, not motion


def test_toy_hits_carry_label_and_video(toy_pool):
    hit = Retriever(toy_pool).search("a red ball rolls to the right", k=1)[0]
    assert set(hit.metadata["label"]) >= {"actor", "motion", "recipient", "background"}
    assert hit.video.endswith(".mp4") and hit.metadata["frames"] == 8
