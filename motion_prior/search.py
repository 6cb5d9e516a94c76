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

import re
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
from pydantic import BaseModel, Field

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


_PUNCT = re.compile(r"[^\w\s]")


def normalise_caption(text: str) -> str:
    """Lower case, no punctuation, single spaces: what counts as "the same caption"."""
    return " ".join(_PUNCT.sub(" ", text.casefold()).split())


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


class _PhraseSims:
    """Cosine similarity between prompt phrases and candidate phrases, by text.

    MiniLM barely separates opposite directions (cos("slide to the left",
    "slide to the right") = 0.96), so pairs whose direction words contradict
    each other lose ``direction_conflict``.
    """

    def __init__(
        self,
        prompt_vectors: dict[str, np.ndarray],
        candidate_vectors: dict[str, np.ndarray],
        direction_conflict: float = 0.0,
    ):
        self.prompt_index = {p: i for i, p in enumerate(prompt_vectors)}
        self.cand_index = {p: i for i, p in enumerate(candidate_vectors)}
        if prompt_vectors and candidate_vectors:
            left = np.stack(list(prompt_vectors.values()))
            right = np.stack(list(candidate_vectors.values()))
            self.table = left @ right.T  # (P, C) cosine: all vectors are unit length
        else:
            self.table = np.zeros((len(prompt_vectors), len(candidate_vectors)), np.float32)
        if direction_conflict:
            cand_dirs = [phrase_directions(p) for p in candidate_vectors]
            for i, phrase in enumerate(prompt_vectors):
                mine = phrase_directions(phrase)
                if not mine:
                    continue
                for j, theirs in enumerate(cand_dirs):
                    if directions_conflict(mine, theirs):
                        self.table[i, j] -= direction_conflict

    def role(self, prompt_phrase: str | None, cand_phrase: str | None, absent_match: float) -> float:
        if prompt_phrase is None and cand_phrase is None:
            return absent_match
        if prompt_phrase is None or cand_phrase is None:
            return 0.0
        i, j = self.prompt_index.get(prompt_phrase), self.cand_index.get(cand_phrase)
        if i is None or j is None:
            return 0.0
        return float(self.table[i, j])


def _coarse_filter(rows: list[dict[str, Any]], key: str, threshold: float, keep: int) -> list[dict[str, Any]]:
    """Keep rows with ``row[key] >= threshold``, or at least the ``keep`` best (the fail-safe)."""
    passing = [row for row in rows if row[key] >= threshold]
    if len(passing) >= keep:
        return passing
    return sorted(rows, key=lambda row: row[key], reverse=True)[:keep]


def rank_candidates(
    parsed: ParsedPrompt,
    prompt_phrase_vectors: dict[str, np.ndarray],
    candidates: Sequence[Candidate],
    candidate_phrase_vectors: dict[str, np.ndarray],
    config: SearchConfig,
    limit: int | None = None,
) -> list[MotionHit]:
    """Coarse filter then Search-T2V eq. 6-8 ranking; the best ``limit`` (all when None), best first."""
    sims = _PhraseSims(prompt_phrase_vectors, candidate_phrase_vectors, config.direction_conflict)
    absent = config.absent_role_match
    prompt_core = parsed.core_unit
    rows = []
    for candidate in candidates:
        record = candidate.record
        cand_core = record.units[record.core] if record.core is not None else None
        core = dict.fromkeys(ROLES, 0.0)
        if prompt_core is not None and cand_core is not None:
            for role in ROLES:
                core[role] = sims.role(prompt_core.phrase(role), cand_core.phrase(role), absent)
        set_sim = 0.0  # eq. 8
        if parsed.units and record.units:
            best = [
                max(sum(sims.role(p.phrase(r), c.phrase(r), absent) for r in ROLES) for c in record.units)
                for p in parsed.units
            ]
            set_sim = float(np.mean(best))
        rows.append(
            {"candidate": candidate, "sentence": float(candidate.similarity), **core, "units": set_sim}
        )
    keep = config.keep_at_least
    rows = _coarse_filter(rows, "sentence", config.t_total, keep)
    if prompt_core is not None:
        rounds = [("motion", config.t_mot), ("actor", config.t_atr), ("recipient", config.t_rec)]
        for role, threshold in rounds:
            if threshold is not None and prompt_core.phrase(role) is not None:
                rows = _coarse_filter(rows, role, threshold, keep)
    for row in rows:
        row["total"] = (
            row["sentence"]
            + config.alpha * row["motion"]
            + config.beta * row["actor"]
            + config.gamma * row["units"]
        )
    rows.sort(key=lambda row: (-row["total"], row["candidate"].record.id))
    # Build result models only for what is returned: validation costs more than scoring.
    return [_motion_hit(row) for row in (rows if limit is None else rows[:limit])]


def _motion_hit(row: dict[str, Any]) -> MotionHit:
    record = row["candidate"].record
    return MotionHit(
        id=record.id,
        videoid=record.videoid,
        pool=record.pool,
        caption=record.caption,
        video=record.video,
        score=ScoreBreakdown(**{key: row[key] for key in ScoreBreakdown.model_fields}),
        metadata=_record_metadata(record),
        units=record.units,
        core=record.core,
    )


def select_references(prompt: str, candidates: Sequence[Candidate], k: int) -> list[Reference]:
    """POS eq. 6: top-k by sentence similarity, without the prompt itself or repeated captions."""
    seen = {normalise_caption(prompt)}
    out = []
    for candidate in sorted(candidates, key=lambda c: -c.similarity):
        key = normalise_caption(candidate.record.caption)
        if key in seen:
            continue
        seen.add(key)
        out.append(_reference(candidate))
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
        with clock("ann"):
            candidates = self._candidates(prompt_vector, config.candidates)
        with clock("rerank"):
            needed = unit_phrases(u for c in candidates for u in c.record.units)
            candidate_vectors = self.store.phrase_vectors(needed)
            ranked = rank_candidates(
                parsed, phrase_vectors, candidates, candidate_vectors, config, limit=hits or config.hits
            )
        k_refs = config.references if references is None else references
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
