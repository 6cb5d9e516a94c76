"""The semantic guard of rewriting (POS §4.3): does a rewrite keep the original's meaning?

A rewrite is accepted when

1. the original's core unit (Search-T2V §4.1, via :mod:`reelgraph.text.units`)
   is among the rewrite's units with the same motion and actor lemmas (and
   recipient, when the original has one), and the core motion's direction
   words ("left", "upward") survive;
2. the original's colour, number and negation words survive;
3. the MiniLM cosine similarity of rewrite and original is at least
   ``min_similarity`` (0.70 by default: ``bench/rewrite_guard.py`` measured it on
   toy and real-world rewrite pairs, ``bench/results/rewrite_guard.md``).

The guard looks only at the original prompt and the answer, never at the
references, so nothing a pool caption says can widen what it accepts.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from agent.wording import CANONICAL_DIRECTION, DIRECTION_WORDS, GUARDED_WORDS, lowercase_words


class GuardDecision(BaseModel):
    """Why a rewrite was accepted or rejected."""

    accepted: bool
    similarity: float | None = None
    min_similarity: float
    core: dict[str, str | None] | None = Field(None, description="the original's core unit")
    problems: list[str] = Field(default_factory=list)


def _directions(phrase: str | None) -> set[str]:
    words = set(lowercase_words(phrase or ""))
    return {CANONICAL_DIRECTION.get(w, w) for w in words if w in DIRECTION_WORDS}


class SemanticGuard:
    """Accepts a rewrite only if it keeps the original's core unit, key words and meaning (see module doc).

    Args:
        parser: a :class:`reelgraph.text.units.UnitParser` (``parse(text) -> ParsedPrompt``).
        embedder: MiniLM with ``embed(texts) -> (N, 384)`` unit vectors.
        min_similarity: least cosine similarity of rewrite and original.
    """

    def __init__(self, parser, embedder, min_similarity: float = 0.70):
        self.parser = parser
        self.embedder = embedder
        self.min_similarity = min_similarity

    def core_of(self, text: str) -> dict[str, str | None] | None:
        unit = self.parser.parse(text).core_unit
        if unit is None:
            return None
        return {
            "motion": unit.motion,
            "actor": unit.actor,
            "recipient": unit.recipient,
            "motion_phrase": unit.motion_phrase,
        }

    def check(self, original: str, candidate: str) -> GuardDecision:
        problems: list[str] = []
        parsed_original, parsed_candidate = self.parser.parse_many([original, candidate])
        core = parsed_original.core_unit
        core_view = None
        if core is not None:
            core_view = {
                "motion": core.motion,
                "actor": core.actor,
                "recipient": core.recipient,
                "motion_phrase": core.motion_phrase,
            }
            same = [
                unit
                for unit in parsed_candidate.units
                if unit.motion == core.motion
                and unit.actor == core.actor
                and (core.recipient is None or unit.recipient == core.recipient)
            ]
            if not same:
                found = ", ".join(f"({u.motion}, {u.actor})" for u in parsed_candidate.units) or "none"
                problems.append(
                    f"the core unit ({core.motion}, {core.actor}) is missing; the rewrite has {found}"
                )
            else:
                wanted = _directions(core.motion_phrase)
                if wanted and not any(wanted <= _directions(u.motion_phrase) for u in same):
                    problems.append(f"the motion lost its direction {' '.join(sorted(wanted))!r}")
        kept = set(lowercase_words(candidate))
        lost = [w for w in dict.fromkeys(lowercase_words(original)) if w in GUARDED_WORDS and w not in kept]
        if lost:
            problems.append(f"the words {', '.join(repr(w) for w in lost)} were dropped")
        vectors = self.embedder.embed([original, candidate])
        similarity = round(float(vectors[0] @ vectors[1]), 4)
        if similarity < self.min_similarity:
            problems.append(f"similarity {similarity:.2f} < {self.min_similarity:.2f}")
        return GuardDecision(
            accepted=not problems,
            similarity=similarity,
            min_similarity=self.min_similarity,
            core=core_view,
            problems=problems,
        )
