"""Motion-prior search (Search-T2V §4.2) and reference retrieval (POS eq. 3, 6).

Candidates come from Chroma's HNSW index: the top ``candidates`` captions by
sentence similarity. They are then filtered and ranked exactly with the unit
phrase vectors:

* coarse filter (§4.2): keep ``sim_total >= t_total``, then core-motion
  similarity ``>= t_mot``, then core-actor similarity ``>= t_atr``; every round
  keeps at least the ``keep_at_least`` best of that round (the paper's
  fail-safe). A round whose role the prompt's core unit lacks is skipped
  (a noun-only prompt has no motion to filter on).
* ranking: ``Score = sim_total + α·sim(core mot) + β·sim(core atr) + γ·sim'(S_i, S_P)``
  (eq. 6-7) with ``sim'`` the mean over prompt units of the best-matching
  candidate unit's ``sim(mot) + sim(atr) + sim(rec)`` (eq. 8).

Role similarity when a phrase is missing: both sides lack the role (two units
without a recipient) -> ``absent_role_match`` (1.0: they agree); one side lacks
it -> 0. A side without any unit scores 0. Two phrases whose direction words
contradict ("to the left" / "to the right") lose ``direction_conflict`` (1.0),
because MiniLM hardly tells opposite directions apart.

References (POS eq. 6) are the top-k captions by sentence similarity, without
the prompt itself or repeated captions; the nearest video (POS eq. 3) is the
top-1 by sentence similarity, the plain baseline and ONA's pick.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np
from pydantic import BaseModel, Field

from memory.record_table import ABSENT, NO_VECTOR, CandidateRows, caption_key, normalise_caption
from memory.store import Candidate, MemoryStore, PoolRecord
from reelgraph.text.units import ROLES, ParsedPrompt, Unit, UnitParser, unit_phrases


class SearchConfig(BaseModel):
    """Search-T2V §4.2 parameters (paper values by default) and retrieval sizes."""

    t_total: float = Field(0.3, description="coarse filter: sentence similarity threshold")
    t_mot: float = Field(0.9, description="coarse filter: core motion similarity threshold")
    t_atr: float = Field(0.4, description="coarse filter: core actor similarity threshold")
    t_rec: float | None = Field(None, description="core recipient threshold; None: no recipient round")
    keep_at_least: int = Field(10, ge=1, description="every filter round keeps at least this many")
    alpha: float = Field(1.0, description="weight of the core motion similarity (eq. 7)")
    beta: float = Field(1.0, description="weight of the core actor similarity (eq. 7)")
    gamma: float = Field(0.5, description="weight of the unit-set similarity sim' (eq. 7-8)")
    absent_role_match: float = Field(1.0, description="role similarity when both units lack the role")
    direction_conflict: float = Field(
        1.0,
        ge=0,
        description="subtracted from a phrase similarity when the directions contradict (left/right)",
    )
    candidates: int = Field(200, ge=1, description="K: captions fetched from the ANN index for re-ranking")
    hits: int = Field(5, ge=1, description="motion-prior hits returned")
    references: int = Field(5, ge=0, description="k of POS eq. 6")
    pool: str | None = Field(None, description="search one pool only; None: all pools")


class ScoreBreakdown(BaseModel):
    """Eq. 6-8 terms of one hit; ``total = sentence + α·motion + β·actor + γ·units``."""

    total: float
    sentence: float
    motion: float
    actor: float
    recipient: float
    units: float


class MotionHit(BaseModel):
    """A ranked motion-prior candidate."""

    id: str
    videoid: str
    pool: str
    caption: str
    video: str
    score: ScoreBreakdown
    metadata: dict[str, Any] = Field(description="frames, fps, duration and the toy label when present")
    units: list[Unit]
    core: int | None


class Reference(BaseModel):
    """A caption (and its video) chosen by sentence similarity alone (POS eq. 3, 6)."""

    id: str
    caption: str
    video: str
    similarity: float
    metadata: dict[str, Any]


class RetrievalResult(BaseModel):
    """What the agent's retrieve node records: all plain, JSON-serialisable data."""

    prompt: str
    units: list[Unit]
    core: int | None
    references: list[Reference]
    motion_hits: list[MotionHit]
    nearest: Reference | None
    timings_ms: dict[str, float] = Field(description="parse, embed, ann, rerank")


def _record_metadata(record: PoolRecord) -> dict[str, Any]:
    meta: dict[str, Any] = {"frames": record.frames, "fps": record.fps, "duration": record.duration}
    if record.label is not None:
        meta["label"] = record.label
    return meta


def _reference(candidate: Candidate) -> Reference:
    record = candidate.record
    return Reference(
        id=record.id,
        caption=record.caption,
        video=record.video,
        similarity=float(candidate.similarity),
        metadata=_record_metadata(record),
    )


# Direction words by the axis end they name; opposite ends of one axis contradict each other.
_DIRECTIONS = {
    "left": "left", "leftward": "left", "leftwards": "left",
    "right": "right", "rightward": "right", "rightwards": "right",
    "up": "up", "upward": "up", "upwards": "up",
    "down": "down", "downward": "down", "downwards": "down",
}  # fmt: skip
_OPPOSITE = {"left": "right", "right": "left", "up": "down", "down": "up"}


def phrase_directions(phrase: str) -> frozenset[str]:
    """Canonical directions a motion phrase states ("slide to the left" -> {"left"})."""
    return frozenset(_DIRECTIONS[w] for w in phrase.split() if w in _DIRECTIONS)


def directions_conflict(a: frozenset[str], b: frozenset[str]) -> bool:
    """True when one phrase's directions contain the opposite of the other's, and they share none."""
    return bool(a and b) and not (a & b) and any(_OPPOSITE[d] in b for d in a)


def _phrase_table(
    prompt_vectors: dict[str, np.ndarray], phrases: list[str], vectors: np.ndarray, direction_conflict: float
) -> np.ndarray:
    """``(P, C)`` cosine similarity of prompt phrases and candidate phrases ``(C, 384)``.

    MiniLM barely separates opposite directions (cos("slide to the left",
    "slide to the right") = 0.96), so pairs whose direction words contradict
    each other lose ``direction_conflict``.
    """
    if prompt_vectors and phrases:
        table = np.stack(list(prompt_vectors.values())) @ vectors.T  # unit vectors: dot = cosine
    else:
        table = np.zeros((len(prompt_vectors), len(phrases)), np.float32)
    if direction_conflict:
        mine = [phrase_directions(p) for p in prompt_vectors]
        if any(mine):
            theirs = [phrase_directions(p) for p in phrases]
            for i, directions in enumerate(mine):
                for j, other in enumerate(theirs):
                    if directions and directions_conflict(directions, other):
                        table[i, j] -= direction_conflict
    return table


def _role_sims(table: np.ndarray, prompt: np.ndarray, cand: np.ndarray, absent: float) -> np.ndarray:
    """``(a, b)`` role similarity of prompt slots ``(a,)`` and candidate slots ``(b,)``.

    Slots are phrase indices, ``ABSENT`` or ``NO_VECTOR``: both absent -> ``absent``
    (they agree), one absent or a phrase without a vector -> 0.
    """
    valid = (prompt >= 0)[:, None] & (cand >= 0)[None, :]
    out = np.zeros(valid.shape)
    if valid.any():
        rows, cols = np.nonzero(valid)
        out[rows, cols] = table[prompt[rows], cand[cols]]  # float32 table values, summed in float64
    out[(prompt == ABSENT)[:, None] & (cand == ABSENT)[None, :]] = absent
    return out


def _keep(idx: np.ndarray, values: np.ndarray, threshold: float, keep: int) -> np.ndarray:
    """Coarse filter round: rows with ``value >= threshold``, or at least the ``keep`` best (fail-safe)."""
    passing = idx[values[idx] >= threshold]
    if len(passing) >= keep:
        return passing
    return idx[np.argsort(-values[idx], kind="stable")[:keep]]


def score_rows(
    parsed: ParsedPrompt,
    prompt_phrase_vectors: dict[str, np.ndarray],
    rows: CandidateRows,
    config: SearchConfig,
    limit: int | None = None,
) -> list[tuple[int, dict[str, float]]]:
    """Coarse filter then Search-T2V eq. 6-8 over gathered candidates, vectorised over units.

    Returns ``(candidate index, score terms)`` for the best ``limit`` (all when None), best
    first, ties by id.
    """
    n = len(rows.ids)
    absent = config.absent_role_match
    table = _phrase_table(prompt_phrase_vectors, rows.phrases, rows.vectors, config.direction_conflict)
    index = {p: i for i, p in enumerate(prompt_phrase_vectors)}

    def slots(unit: Unit) -> np.ndarray:
        return np.array(
            [index.get(p, NO_VECTOR) if (p := unit.phrase(r)) else ABSENT for r in ROLES], np.int64
        )

    terms = {key: np.zeros(n) for key in (*ROLES, "units")}
    terms["sentence"] = np.asarray(rows.similarities, np.float64)
    has_units = rows.counts > 0
    if parsed.units and has_units.any():
        prompt_slots = np.stack([slots(u) for u in parsed.units])  # (U, 3)
        # (U, T): sum over roles of the role similarity, for every prompt unit and candidate unit (eq. 8)
        summed = _role_sims(table, prompt_slots[:, 0], rows.units[:, 0], absent)
        for r in range(1, len(ROLES)):
            summed = summed + _role_sims(table, prompt_slots[:, r], rows.units[:, r], absent)
        best = np.maximum.reduceat(summed, rows.starts[has_units], axis=1)  # (U, K') best unit per candidate
        terms["units"][has_units] = best.sum(axis=0) / len(parsed.units)
    prompt_core = parsed.core_unit
    with_core = rows.cores >= 0
    if prompt_core is not None and with_core.any():
        core_slots = slots(prompt_core)
        core_units = rows.units[(rows.starts + rows.cores)[with_core]]  # (K'', 3)
        for r, role in enumerate(ROLES):
            terms[role][with_core] = _role_sims(table, core_slots[r : r + 1], core_units[:, r], absent)[0]
    keep = config.keep_at_least
    idx = _keep(np.arange(n), terms["sentence"], config.t_total, keep)
    if prompt_core is not None:
        rounds = [("motion", config.t_mot), ("actor", config.t_atr), ("recipient", config.t_rec)]
        for role, threshold in rounds:
            if threshold is not None and prompt_core.phrase(role) is not None:
                idx = _keep(idx, terms[role], threshold, keep)
    total = (
        terms["sentence"]
        + config.alpha * terms["motion"]
        + config.beta * terms["actor"]
        + config.gamma * terms["units"]
    )
    order = sorted(idx.tolist(), key=lambda i: (-total[i], rows.ids[i]))
    if limit is not None:
        order = order[:limit]
    return [
        (i, {"total": float(total[i]), **{key: float(values[i]) for key, values in terms.items()}})
        for i in order
    ]


def rows_from_candidates(
    candidates: Sequence[Candidate], candidate_phrase_vectors: dict[str, np.ndarray]
) -> CandidateRows:
    """Candidates with their records (an exhaustive index, tests) as the re-rank's arrays."""
    phrases = list(candidate_phrase_vectors)
    index = {p: i for i, p in enumerate(phrases)}
    starts, counts, cores, slots = [], [], [], []
    for candidate in candidates:
        record = candidate.record
        starts.append(len(slots))
        counts.append(len(record.units))
        cores.append(-1 if record.core is None else record.core)
        for unit in record.units:
            slots.append([index.get(p, NO_VECTOR) if (p := unit.phrase(r)) else ABSENT for r in ROLES])
    vectors = (
        np.stack([candidate_phrase_vectors[p] for p in phrases]).astype(np.float32)
        if phrases
        else np.zeros((0, 0), np.float32)
    )
    return CandidateRows(
        ids=[c.record.id for c in candidates],
        similarities=np.array([float(c.similarity) for c in candidates], np.float64),
        caption_keys=np.array([caption_key(c.record.caption) for c in candidates], np.uint64),
        starts=np.array(starts, np.int64),
        counts=np.array(counts, np.int64),
        cores=np.array(cores, np.int64),
        units=np.array(slots, np.int64).reshape(-1, len(ROLES)),
        phrases=phrases,
        vectors=vectors,
    )


def rank_candidates(
    parsed: ParsedPrompt,
    prompt_phrase_vectors: dict[str, np.ndarray],
    candidates: Sequence[Candidate],
    candidate_phrase_vectors: dict[str, np.ndarray],
    config: SearchConfig,
    limit: int | None = None,
) -> list[MotionHit]:
    """Coarse filter then Search-T2V eq. 6-8 ranking; the best ``limit`` (all when None), best first."""
    rows = rows_from_candidates(candidates, candidate_phrase_vectors)
    # Build result models only for what is returned: validation costs more than scoring.
    return [
        _motion_hit(candidates[i].record, terms)
        for i, terms in score_rows(parsed, prompt_phrase_vectors, rows, config, limit)
    ]


def _motion_hit(record: PoolRecord, terms: dict[str, float]) -> MotionHit:
    return MotionHit(
        id=record.id,
        videoid=record.videoid,
        pool=record.pool,
        caption=record.caption,
        video=record.video,
        score=ScoreBreakdown(**{key: terms[key] for key in ScoreBreakdown.model_fields}),
        metadata=_record_metadata(record),
        units=record.units,
        core=record.core,
    )


def select_references(prompt: str, candidates: Sequence[Candidate], k: int) -> list[Reference]:
    """POS eq. 6: top-k by sentence similarity, without the prompt itself or repeated captions."""
    seen = {normalise_caption(prompt)}
    out: list[Reference] = []
    if k <= 0:
        return out
    for candidate in sorted(candidates, key=lambda c: -c.similarity):
        key = normalise_caption(candidate.record.caption)
        if key in seen:
            continue
        seen.add(key)
        out.append(_reference(candidate))
        if len(out) >= k:
            break
    return out


def _reference_rows(prompt: str, rows: CandidateRows, by_sentence: np.ndarray, k: int) -> list[int]:
    """:func:`select_references` on gathered rows: candidate indices, by caption key instead of text."""
    seen = {caption_key(prompt)}
    out: list[int] = []
    if k <= 0:
        return out
    for i, key in zip(by_sentence.tolist(), rows.caption_keys[by_sentence].tolist(), strict=True):
        if key in seen:
            continue
        seen.add(key)
        out.append(i)
        if len(out) >= k:
            break
    return out


class ExhaustiveIndex:
    """All caption vectors of a pool in memory: exact top-K, for measuring the ANN's recall cost."""

    def __init__(self, store: MemoryStore, pool: str | None = None):
        records, vectors = [], []
        for page_records, page_vectors in store.iter_all(pool):
            records.extend(page_records)
            vectors.append(page_vectors)
        self.records = records
        self.vectors = np.concatenate(vectors) if vectors else np.zeros((0, 384), np.float32)

    def nearest(self, vector: np.ndarray, k: int) -> list[Candidate]:
        sims = self.vectors @ np.asarray(vector, np.float32)
        k = min(k, len(sims))
        top = np.argpartition(-sims, k - 1)[:k] if k else np.array([], int)
        top = top[np.argsort(-sims[top], kind="stable")]
        return [Candidate(record=self.records[i], similarity=float(sims[i])) for i in top]


class Retriever:
    """The retrieve step: units, references, motion-prior hits and the nearest video.

    Args:
        store: the memory store.
        embedder: MiniLM embedder with ``embed(texts) -> (N, 384)``; default :func:`reelgraph.text.embeddings.get_embedder`.
        parser: unit parser; default :func:`reelgraph.text.units.get_parser`.
        config: search parameters.
        index: where candidates come from; default Chroma's ANN (``store.nearest``);
            an :class:`ExhaustiveIndex` ranks exactly.
    """

    def __init__(
        self,
        store: MemoryStore,
        embedder=None,
        parser: UnitParser | None = None,
        config: SearchConfig | None = None,
        index: ExhaustiveIndex | None = None,
    ):
        if embedder is None:
            from reelgraph.text.embeddings import get_embedder

            embedder = get_embedder()
        if parser is None:
            from reelgraph.text.units import get_parser

            parser = get_parser()
        self.store = store
        self.embedder = embedder
        self.parser = parser
        self.config = config or SearchConfig()
        self.index = index

    @classmethod
    def open(
        cls,
        home=None,
        url: str | None = None,
        text_model: str | None = None,
        spacy_model: str | None = None,
        config: SearchConfig | None = None,
    ) -> Retriever:
        """A retriever on the store in ``home`` (or the server at ``url``) with the named models."""
        from reelgraph.text.embeddings import get_embedder
        from reelgraph.text.units import get_parser

        return cls(MemoryStore(home, url=url), get_embedder(text_model), get_parser(spacy_model), config)

    def _candidates(self, vector: np.ndarray, k: int) -> list[Candidate]:
        if self.index is not None:
            return self.index.nearest(vector, k)
        return self.store.nearest(vector, k, pool=self.config.pool)

    def retrieve(
        self, prompt: str, hits: int | None = None, references: int | None = None
    ) -> RetrievalResult:
        """Units of ``prompt``, its references (POS eq. 6), motion-prior hits (Search-T2V eq. 9) and nearest video."""
        config = self.config
        timings: dict[str, float] = {}
        clock = _Clock(timings)
        with clock("parse"):
            parsed = self.parser.parse(prompt)
        with clock("embed"):
            # Most prompt phrases ("ball", "roll to the right") are stored already.
            phrases = unit_phrases(parsed.units)
            phrase_vectors = self.store.phrase_vectors(phrases)
            unknown = [p for p in phrases if p not in phrase_vectors]
            vectors = self.embedder.embed([prompt, *unknown])
            prompt_vector = vectors[0]
            phrase_vectors.update(zip(unknown, vectors[1:], strict=True))
            phrase_vectors = {p: phrase_vectors[p] for p in phrases}
        k_refs = config.references if references is None else references
        limit = hits or config.hits
        if self.index is not None:
            with clock("ann"):
                candidates = self.index.nearest(prompt_vector, config.candidates)
            with clock("rerank"):
                needed = unit_phrases(u for c in candidates for u in c.record.units)
                ranked = rank_candidates(
                    parsed, phrase_vectors, candidates, self.store.phrase_vectors(needed), config, limit=limit
                )
            by_sentence = sorted(candidates, key=lambda c: -c.similarity)
            return RetrievalResult(
                prompt=prompt,
                units=parsed.units,
                core=parsed.core,
                references=select_references(prompt, candidates, k_refs),
                motion_hits=ranked,
                nearest=_reference(by_sentence[0]) if by_sentence else None,
                timings_ms=timings,
            )
        with clock("ann"):
            ids, similarities = self.store.nearest_ids(prompt_vector, config.candidates, pool=config.pool)
        with clock("rerank"):
            rows = self.store.candidate_rows(ids, similarities)
            scored = score_rows(parsed, phrase_vectors, rows, config, limit=limit)
            by_sentence = np.argsort(-rows.similarities, kind="stable")
            refs = _reference_rows(prompt, rows, by_sentence, k_refs)
            nearest = by_sentence[:1].tolist()
            # Only the returned records are read from Chroma (a handful, not K).
            wanted = [rows.ids[i] for i in dict.fromkeys([i for i, _ in scored] + refs + nearest)]
            records = {r.id: r for r in self.store.get(wanted)}

        def candidate(i: int) -> Candidate:
            return Candidate(record=records[rows.ids[i]], similarity=float(rows.similarities[i]))

        return RetrievalResult(
            prompt=prompt,
            units=parsed.units,
            core=parsed.core,
            references=[_reference(candidate(i)) for i in refs],
            motion_hits=[_motion_hit(records[rows.ids[i]], terms) for i, terms in scored],
            nearest=_reference(candidate(nearest[0])) if nearest else None,
            timings_ms=timings,
        )

    def search(self, prompt: str, k: int | None = None) -> list[MotionHit]:
        """Motion-prior hits for ``prompt``, best first (Search-T2V eq. 6-9)."""
        return self.retrieve(prompt, hits=k, references=0).motion_hits

    def references(self, prompt: str, k: int = 5) -> list[Reference]:
        """POS eq. 6: the top-k captions by sentence similarity, the prompt itself excluded."""
        vector = self.embedder.embed([prompt])[0]
        # Ask for more than k so that removing duplicates still leaves k.
        return select_references(prompt, self._candidates(vector, max(4 * k, k + 10)), k)

    def nearest_video(self, prompt: str) -> Reference | None:
        """POS eq. 3: the pool video whose caption is most similar to ``prompt``."""
        vector = self.embedder.embed([prompt])[0]
        found = self._candidates(vector, 1)
        return _reference(found[0]) if found else None


class _Clock:
    def __init__(self, timings: dict[str, float]):
        self.timings = timings

    def __call__(self, name: str) -> _Clock:
        self.name = name
        return self

    def __enter__(self) -> None:
        self.start = time.perf_counter()

    def __exit__(self, *exc) -> None:
        self.timings[self.name] = (time.perf_counter() - self.start) * 1000
