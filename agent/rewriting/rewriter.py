"""Reference-guided, semantics-preserving rewriting (POS §4.3, eq. 6-7) behind a semantic guard.

:class:`Rewriter` asks an engine for a rewrite of the prompt given its
reference captions (POS eq. 6, found by the retrieve step), parses the
answer strictly and lets :class:`SemanticGuard` judge it. A rejected rewrite
is retried once with a stricter instruction; a second rejection falls back to
the original prompt. Every attempt and the decision are recorded.

Engines:

* :class:`agent.llm.llm_client.LLMClient`: any OpenAI-compatible chat endpoint through
  langchain-openai's ``ChatOpenAI`` (POS eq. 7 with the §5.2 template of
  :mod:`agent.prompts.rewrite`). Answers are cached on disk by (model,
  template hash, prompt, references). An unreachable endpoint hands the run
  to the offline engine, once, and the plan says so.
* :class:`agent.rewriting.offline_rewriter.OfflineEnricher`: deterministic reference-guided enrichment with no
  LLM. It borrows, from the references, the adjective, the manner adverb and
  the scene phrase that most of them use, skipping words that could change
  the prompt's units (colours, sizes, numbers, speeds, directions,
  negations). Its stricter retry borrows the adjective alone.

The guard (:class:`agent.rewriting.semantic_guard.SemanticGuard`) keeps the
original's core unit, direction, colour/number/negation words and meaning.

Reference captions are data: the LLM sees them as quoted strings under a
system message that says so, and whatever the LLM makes of them must still
pass the guard, which looks only at the original prompt and the answer.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, Field

from agent.llm.llm_client import LLMClient, LLMUnavailable
from agent.prompts.rewrite import rewrite_messages, template_hash
from agent.rewriting.offline_rewriter import OfflineEnricher
from agent.rewriting.semantic_guard import GuardDecision, SemanticGuard
from agent.wording import WORD

if TYPE_CHECKING:  # annotations only: the text models load spaCy and MiniLM
    from reelgraph.settings import RewriteSettings
    from reelgraph.text.models import TextModels

__all__ = [
    "AnswerError",
    "GuardDecision",
    "LLMClient",
    "LLMUnavailable",
    "OfflineEnricher",
    "RewriteAttempt",
    "RewriteOutcome",
    "Rewriter",
    "SemanticGuard",
    "make_rewriter",
    "parse_answer",
]


class AnswerError(ValueError):
    """The engine's answer is not one sentence of at most N words."""


_PREAMBLE = re.compile(r"^\s*(?:rewritten(?: sentence| prompt)?|rewrite|answer|output)\s*:\s*", re.IGNORECASE)
_QUOTES = "\"'`“”‘’«»"


def parse_answer(raw: str, max_words: int) -> str:
    """The rewrite in an engine's answer: one sentence, one line, at most ``max_words`` words.

    Tolerated: surrounding whitespace and quotes, and a leading "Rewritten
    sentence:" label. Everything else that is not a single sentence is an
    :class:`AnswerError`.
    """
    text = _PREAMBLE.sub("", (raw or "").strip()).strip().strip(_QUOTES).strip()
    if not text or not WORD.search(text):
        raise AnswerError("the answer was empty")
    if "\n" in text:
        raise AnswerError("the answer had more than one line")
    sentences = [s for s in re.split(r"(?<=[.!?])\s+", text) if s.strip()]
    if len(sentences) > 1:
        raise AnswerError(f"the answer had {len(sentences)} sentences, not one")
    count = len(text.split())
    if count > max_words:
        raise AnswerError(f"the answer had {count} words, more than {max_words}")
    return text


# -- the rewriter ---------------------------------------------------------------------------------------
Decision = Literal["accepted", "accepted_on_retry", "fallback", "unchanged"]


class RewriteAttempt(BaseModel):
    engine: str
    strict: bool
    answer: str | None = None
    text: str | None = None
    cached: bool = False
    error: str | None = None
    guard: GuardDecision | None = None
    seconds: float = 0.0


def _attempt_problem(attempt: RewriteAttempt) -> str:
    if attempt.guard is not None and attempt.guard.problems:
        return attempt.guard.problems[0]
    return attempt.error or "rejected"


class RewriteOutcome(BaseModel):
    """The rewrite step's record: what was tried, what the guard said, what will condition sampling."""

    original: str
    text: str | None = Field(description="the accepted rewrite; None when the original is used")
    decision: Decision
    engine: str
    attempts: list[RewriteAttempt]
    notes: list[str] = Field(default_factory=list)

    @property
    def reason(self) -> str:
        last = self.attempts[-1] if self.attempts else None
        sim = (
            f"similarity {last.guard.similarity:.2f}"
            if last and last.guard and last.guard.similarity is not None
            else ""
        )
        if self.decision == "accepted":
            return f"{self.engine} rewrite accepted by the guard ({sim}, core unit kept)"
        if self.decision == "accepted_on_retry":
            return f"{self.engine} rewrite accepted on the stricter retry ({sim}, core unit kept)"
        if self.decision == "unchanged":
            return f"{self.engine} found nothing to add; the original prompt is used"
        problems = "; ".join(_attempt_problem(a) for a in self.attempts)
        return f"both rewrites rejected ({problems}); the original prompt is used"


class Rewriter:
    """POS eq. 7 behind the guard: propose, check, retry once stricter, else keep the original.

    Args:
        guard: the :class:`SemanticGuard`.
        offline: the :class:`OfflineEnricher` (also the fallback when the LLM is unreachable).
        llm: an :class:`LLMClient`, or ``None`` for offline rewriting only.
        max_words: the longest rewrite accepted (POS: 20).
    """

    def __init__(
        self,
        guard: SemanticGuard,
        offline: OfflineEnricher,
        llm: LLMClient | None = None,
        max_words: int = 20,
    ):
        self.guard = guard
        self.offline = offline
        self.llm = llm
        self.max_words = max_words
        self.llm_down: str | None = None

    @property
    def engine_name(self) -> str:
        return self.llm.name if self.llm is not None and self.llm_down is None else self.offline.name

    def needs_references(self) -> bool:
        """The offline engine has nothing to borrow without references; an LLM can still rewrite."""
        return self.llm is None or self.llm_down is not None

    def _propose_llm(
        self, prompt: str, references: Sequence[str], strict_problem: str | None, core
    ) -> RewriteAttempt:
        assert self.llm is not None
        started = time.perf_counter()
        messages = rewrite_messages(
            prompt,
            references,
            self.max_words,
            problem=strict_problem,
            actor=(core or {}).get("actor"),
            motion=(core or {}).get("motion_phrase") or (core or {}).get("motion"),
        )
        attempt = RewriteAttempt(engine=self.llm.name, strict=strict_problem is not None)
        answer, cached = self.llm.complete(
            messages,
            {"prompt": prompt, "references": list(references), "strict": attempt.strict},
            template=template_hash(),
        )
        attempt.answer, attempt.cached = answer, cached
        try:
            attempt.text = parse_answer(answer, self.max_words)
        except AnswerError as error:
            attempt.error = str(error)
        attempt.seconds = round(time.perf_counter() - started, 4)
        return attempt

    def _propose_offline(self, prompt: str, references: Sequence[str], strict: bool) -> RewriteAttempt:
        started = time.perf_counter()
        text = self.offline.enrich(prompt, references, self.max_words, strict=strict)
        return RewriteAttempt(
            engine=self.offline.name,
            strict=strict,
            answer=text,
            text=text,
            seconds=round(time.perf_counter() - started, 4),
        )

    def rewrite(self, prompt: str, references: Sequence[str]) -> RewriteOutcome:
        """Rewrite ``prompt`` guided by ``references`` (caption strings, best first)."""
        notes: list[str] = []
        attempts: list[RewriteAttempt] = []
        use_llm = self.llm is not None and self.llm_down is None
        problem: str | None = None
        core = None
        for strict in (False, True):
            attempt = None
            if use_llm:
                if strict and core is None:  # the first answer never reached the guard
                    core = self.guard.core_of(prompt)
                try:
                    attempt = self._propose_llm(prompt, references, problem if strict else None, core)
                except LLMUnavailable as error:
                    self.llm_down = str(error)
                    notes.append(f"the LLM could not be reached ({error}); the offline rewriter took over")
                    use_llm = False
            if attempt is None:
                attempt = self._propose_offline(prompt, references, strict)
            attempts.append(attempt)
            if attempt.text is None:
                problem = attempt.error or "there was no answer"
                continue
            if " ".join(attempt.text.split()).lower().rstrip(".") == " ".join(prompt.split()).lower().rstrip(
                "."
            ):
                if attempt.engine == self.offline.name and not strict:
                    return RewriteOutcome(
                        original=prompt,
                        text=None,
                        decision="unchanged",
                        engine=attempt.engine,
                        attempts=attempts,
                        notes=notes,
                    )
                problem = attempt.error = "it repeated the original sentence"
                continue
            attempt.guard = self.guard.check(prompt, attempt.text)
            core = attempt.guard.core
            if attempt.guard.accepted:
                decision: Decision = "accepted_on_retry" if strict else "accepted"
                return RewriteOutcome(
                    original=prompt,
                    text=attempt.text,
                    decision=decision,
                    engine=attempt.engine,
                    attempts=attempts,
                    notes=notes,
                )
            problem = "; ".join(attempt.guard.problems)
        return RewriteOutcome(
            original=prompt,
            text=None,
            decision="fallback",
            engine=attempts[-1].engine,
            attempts=attempts,
            notes=notes,
        )


def make_rewriter(rewriting: RewriteSettings, text: TextModels, llm: LLMClient | None) -> Rewriter:
    """The run's rewriter: the LLM when the settings name one, the offline engine always (POS §4.3).

    Args:
        rewriting: word budget and the semantic guard's threshold.
        text: the run's text models; the guard and the offline engine share its parser.
        llm: the run's LLM client, or ``None`` (offline only).
    """
    guard = SemanticGuard(text.parser, text.embedder, rewriting.rewrite_min_similarity)
    return Rewriter(guard, OfflineEnricher(text.parser), llm=llm, max_words=rewriting.rewrite_max_words)
