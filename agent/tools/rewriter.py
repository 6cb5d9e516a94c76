"""Reference-guided, semantics-preserving rewriting (POS §4.3, eq. 6-7) behind a semantic guard.

:class:`Rewriter` asks an engine for a rewrite of the prompt given its
reference captions (POS eq. 6, found by the retrieve step), parses the
answer strictly and lets :class:`SemanticGuard` judge it. A rejected rewrite
is retried once with a stricter instruction; a second rejection falls back to
the original prompt. Every attempt and the decision are recorded.

Engines:

* :class:`LLMClient`: any OpenAI-compatible chat endpoint through
  langchain-openai's ``ChatOpenAI`` (POS eq. 7 with the §5.2 template of
  :mod:`agent.prompts.rewrite`). Answers are cached on disk by (model,
  template hash, prompt, references). An unreachable endpoint hands the run
  to the offline engine, once, and the plan says so.
* :class:`OfflineEnricher`: deterministic reference-guided enrichment with no
  LLM. It borrows, from the references, the adjective, the manner adverb and
  the scene phrase that most of them use, skipping words that could change
  the prompt's units (colours, sizes, numbers, speeds, directions,
  negations). Its stricter retry borrows words only, no scene phrase.

The guard (:class:`SemanticGuard`) accepts a rewrite when

1. the original's core unit (Search-T2V §4.1, via :mod:`motion_prior.units`)
   is among the rewrite's units with the same motion and actor lemmas (and
   recipient, when the original has one), and the core motion's direction
   words ("left", "upward") survive;
2. the original's colour, number and negation words survive;
3. the MiniLM cosine similarity of rewrite and original is at least
   ``min_similarity`` (0.70 by default: see ``bench/results/rewrite_guard.md``
   for the measurements it was chosen from).

Reference captions are data: the LLM sees them as quoted strings under a
system message that says so, and whatever the LLM makes of them must still
pass the guard, which looks only at the original prompt and the answer.
"""

from __future__ import annotations

import contextlib
import json
import re
import time
from collections import Counter, OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

from agent.prompts.rewrite import rewrite_messages, template_hash
from reelgraph.atomic import write_json
from reelgraph.hashing import key_hash


def _wordset(text: str) -> frozenset[str]:
    return frozenset(text.split())


# Words whose change changes what a video shows: the guard keeps colours, numbers and negations; the
# offline engine never borrows any of these.
COLOUR_WORDS = _wordset(
    "red orange yellow green cyan blue purple white black pink brown gray grey golden silver violet "
    "magenta scarlet turquoise crimson beige maroon navy teal gold"
)
NUMBER_WORDS = _wordset(
    "one two three four five six seven eight nine ten eleven twelve dozen hundred single pair couple "
    "several many few both"
)
NEGATIONS = _wordset("no not never without nobody nothing none neither nor")
SIZE_WORDS = _wordset(
    "small little tiny big large huge giant enormous massive miniature mini tall short long wide "
    "narrow thin thick"
)
SPEED_WORDS = _wordset(
    "slow slowly fast quickly quick rapidly rapid swiftly swift speedily briskly hurriedly "
    "leisurely sluggishly"
)
DIRECTION_WORDS = _wordset(
    "left right up down upward upwards downward downwards leftward leftwards rightward rightwards "
    "forward forwards backward backwards back away around sideways clockwise counterclockwise "
    "anticlockwise across along over under through toward towards into onto top bottom"
)
_CANONICAL_DIRECTION = {
    "leftward": "left",
    "leftwards": "left",
    "rightward": "right",
    "rightwards": "right",
    "upward": "up",
    "upwards": "up",
    "downward": "down",
    "downwards": "down",
    "forwards": "forward",
    "backwards": "backward",
    "towards": "toward",
}
SHAPE_WORDS = _wordset(
    "square round triangular circular rectangular oval spherical cubic cubical conical cylindrical flat "
    "pointed curved straight"
)
_GUARDED_WORDS = COLOUR_WORDS | NUMBER_WORDS | NEGATIONS
_NEVER_BORROWED = (
    COLOUR_WORDS | NUMBER_WORDS | NEGATIONS | SIZE_WORDS | SPEED_WORDS | DIRECTION_WORDS | SHAPE_WORDS
)
# Prepositions that place a scene ("on the grass", "at night"), not a path or a recipient.
_SCENE_PREPOSITIONS = frozenset({"on", "in", "at", "under", "near", "beside", "inside", "underneath"})
_WORD = re.compile(r"[A-Za-z]+(?:'[a-z]+)?")


def _words(text: str) -> list[str]:
    return [w.lower() for w in _WORD.findall(text)]


# -- strict answer parsing ---------------------------------------------------------------------------
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
    if not text or not _WORD.search(text):
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


# -- the semantic guard ---------------------------------------------------------------------------------
class GuardDecision(BaseModel):
    """Why a rewrite was accepted or rejected."""

    accepted: bool
    similarity: float | None = None
    min_similarity: float
    core: dict[str, str | None] | None = Field(None, description="the original's core unit")
    problems: list[str] = Field(default_factory=list)


def _directions(phrase: str | None) -> set[str]:
    words = set(_words(phrase or ""))
    return {_CANONICAL_DIRECTION.get(w, w) for w in words if w in DIRECTION_WORDS}


class SemanticGuard:
    """Accepts a rewrite only if it keeps the original's core unit, key words and meaning (see module doc).

    Args:
        parser: a :class:`motion_prior.units.UnitParser` (``parse(text) -> ParsedPrompt``).
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
        kept = set(_words(candidate))
        lost = [w for w in dict.fromkeys(_words(original)) if w in _GUARDED_WORDS and w not in kept]
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


# -- the LLM engine -------------------------------------------------------------------------------------
class LLMUnavailable(RuntimeError):
    """The endpoint could not answer (down, timing out, refusing): the offline engine takes over."""


class LLMClient:
    """An OpenAI-compatible chat model through langchain-openai, with an on-disk answer cache.

    Args:
        model: the model name the server knows.
        base_url: e.g. ``http://127.0.0.1:8000/v1`` (vLLM, llama.cpp, Ollama); ``None``: OpenAI's.
        api_key: the key; local servers accept any, so a placeholder is sent when unset.
        timeout: seconds per request. max_retries: retries on timeouts, 429 and 5xx.
        cache_dir: answers are kept under ``cache_dir/llm/<key>.json``; ``None``: no cache.
    """

    def __init__(
        self,
        model: str,
        base_url: str | None = None,
        api_key: str | None = None,
        timeout: float = 30.0,
        max_retries: int = 2,
        cache_dir: str | Path | None = None,
    ):
        self.model = model
        self.base_url = base_url
        self.api_key = api_key
        self.timeout = timeout
        self.max_retries = max_retries
        self.cache_root = Path(cache_dir) / "llm" if cache_dir is not None else None
        self._chat = None

    @property
    def name(self) -> str:
        return f"llm:{self.model}"

    def _client(self):
        if self._chat is None:
            from langchain_openai import ChatOpenAI

            self._chat = ChatOpenAI(
                model=self.model,
                base_url=self.base_url,
                api_key=self.api_key or "not-needed",
                timeout=self.timeout,
                max_retries=self.max_retries,
                temperature=0,
            )
        return self._chat

    def cache_key(self, messages: Sequence[tuple[str, str]]) -> str:
        return key_hash({"model": self.model, "template": template_hash(), "messages": list(messages)}, 32)

    def complete(self, messages: Sequence[tuple[str, str]], record: dict[str, Any]) -> tuple[str, bool]:
        """``(answer, from_cache)``. ``record`` (prompt, references) is stored beside a fresh answer.

        Raises:
            LLMUnavailable: connection refused, timeouts, rate limits or server errors after the
                retries, or any other failure of the request itself.
        """
        key = self.cache_key(messages)
        path = self.cache_root / f"{key}.json" if self.cache_root is not None else None
        if path is not None and path.is_file():
            try:
                return str(json.loads(path.read_text())["answer"]), True
            except (OSError, ValueError, KeyError):
                pass  # a damaged entry is asked again and overwritten
        import openai

        try:
            message = self._client().invoke(list(messages))
        except openai.OpenAIError as error:
            raise LLMUnavailable(f"{type(error).__name__}: {error}") from error
        except (OSError, ValueError) as error:
            raise LLMUnavailable(f"{type(error).__name__}: {error}") from error
        content = message.content
        if isinstance(content, list):  # content parts
            content = "".join(p.get("text", "") if isinstance(p, dict) else str(p) for p in content)
        answer = str(content)
        if path is not None:
            entry = {"model": self.model, "template_hash": template_hash(), **record, "answer": answer}
            with contextlib.suppress(OSError):  # the cache only saves time
                write_json(path, entry)
        return answer, False


# -- the offline engine ---------------------------------------------------------------------------------
def _article_for(word: str) -> str:
    return "an" if word[:1].lower() in "aeiou" else "a"


def _verb_forms(lemma: str) -> set[str]:
    forms = {lemma, lemma + "s", lemma + "es", lemma + "ing", lemma + "ed", lemma + "d"}
    if lemma.endswith("e"):
        forms |= {lemma[:-1] + "ing"}
    if lemma.endswith("y"):
        forms |= {lemma[:-1] + "ies", lemma[:-1] + "ied"}
    if len(lemma) >= 3 and lemma[-1] not in "aeiouwy" and lemma[-2] in "aeiou" and lemma[-3] not in "aeiou":
        forms |= {lemma + lemma[-1] + "ing", lemma + lemma[-1] + "ed"}  # spin -> spinning
    return forms


# Nouns after "in"/"on"/"at" that describe a motion's manner or an object's state, not a place.
_NOT_PLACES = _wordset(
    "zigzag zigzags circle circles place size loop loops line lines spiral spirals direction motion way "
    "row rows pattern patterns shape shapes half turn turns arc arcs wave waves front orbit pace step steps "
    "unison time slow tandem sync midair opposite contact pairs pair reverse"
)


def _is_modifier(token) -> bool:
    word = token.lower_
    return (
        token.is_alpha
        and (token.pos_ == "ADJ" or token.dep_ in {"amod", "compound"} or word in COLOUR_WORDS | SIZE_WORDS)
        and word not in {"a", "an", "the"}
    )


def _inside_phrase(token) -> bool:
    return any(a.dep_ in {"prep", "agent"} for a in token.ancestors)


class OfflineEnricher:
    """Deterministic reference-guided enrichment (no LLM): borrow what the references agree on.

    From the references' spaCy parses it collects adjectives of the entities
    (``amod`` of a noun outside prepositional phrases, so "sandy" of "on
    sandy ground" is not taken for the actor), manner adverbs (``-ly``
    ``advmod``) and scene phrases (a locative preposition with its object:
    "on the grass", "at night"; objects that name a manner, such as "in a
    zigzag" or "in place", are not places). Anything in the never-borrowed
    word lists is skipped. The most frequent of each kind (first seen wins
    ties) is added where the prompt has none of that kind: the adjective
    after the actor's determiner, the adverb after the core verb, the scene
    phrase at the end, the latter only when at least ``min_scene_votes``
    references share it (one caption's place is an accident; agreement is a
    hint about the prompt's neighbourhood). Additions stop at ``max_words``.
    The stricter retry adds the adjective alone.
    """

    name = "offline"

    def __init__(self, parser, min_scene_votes: int = 2):
        self.parser = parser
        self.min_scene_votes = min_scene_votes

    @staticmethod
    def _scene_phrases(doc, exclude: frozenset[str] = frozenset()) -> list[str]:
        phrases = []
        for token in doc:
            if token.dep_ != "prep" or token.lower_ not in _SCENE_PREPOSITIONS:
                continue
            objects = [c for c in token.children if c.dep_ == "pobj"]
            if not objects or objects[0].lower_ in _NOT_PLACES | exclude:
                continue
            span = doc[token.i : objects[0].right_edge.i + 1]
            words = _words(span.text)
            if len(words) > 5 or any(w in _NEVER_BORROWED for w in words[1:]):
                continue
            if any(t.pos_ in {"VERB", "AUX"} for t in span):
                continue
            phrases.append(" ".join(t.lower_ for t in span))
        return phrases

    def _borrowable(self, docs) -> tuple[Counter, Counter, Counter, dict[str, int]]:
        adjectives: Counter = Counter()
        adverbs: Counter = Counter()
        scenes: Counter = Counter()
        first: dict[str, int] = {}
        order = 0
        for doc in docs:
            for token in doc:
                word = token.lower_
                if not token.is_alpha or word in _NEVER_BORROWED:
                    continue
                if (
                    token.dep_ == "amod"
                    and token.tag_ == "JJ"
                    and token.head.pos_ in {"NOUN", "PROPN"}
                    and not _inside_phrase(token.head)
                ):
                    adjectives[word] += 1
                elif token.dep_ == "advmod" and token.pos_ == "ADV" and word.endswith("ly"):
                    adverbs[word] += 1
                else:
                    continue
                first.setdefault(word, (order := order + 1))
            for phrase in dict.fromkeys(self._scene_phrases(doc)):  # one vote per reference
                scenes[phrase] += 1
                first.setdefault(phrase, (order := order + 1))
        return adjectives, adverbs, scenes, first

    @staticmethod
    def _best(counter: Counter, first: dict[str, int], exclude: set[str]) -> str | None:
        ranked = sorted((w for w in counter if w not in exclude), key=lambda w: (-counter[w], first[w]))
        return ranked[0] if ranked else None

    def enrich(self, prompt: str, references: Sequence[str], max_words: int, strict: bool = False) -> str:
        """The prompt with borrowed words; ``strict`` borrows the adjective alone."""
        prompt = " ".join(prompt.split())
        doc, *ref_docs = self.parser.nlp.pipe([prompt, *(" ".join(r.split()) for r in references)])
        adjectives, adverbs, scenes, first = self._borrowable(ref_docs)
        present = set(_words(prompt))
        tokens = [t.text_with_ws for t in doc]
        inserts: dict[int, str] = {}  # token index -> text to put before it
        core = self.parser.parse(prompt).core_unit
        budget = max_words - len(prompt.split())

        actor = None
        if core is not None and core.actor:
            actor = next(
                (t for t in doc if t.lemma_.lower() == core.actor and t.pos_ in {"NOUN", "PROPN"}), None
            )
        has_adjective = actor is not None and any(
            c.dep_ == "amod" and c.lower_ not in COLOUR_WORDS | SIZE_WORDS for c in actor.lefts
        )
        adjective = self._best(adjectives, first, present)
        if actor is not None and adjective and not has_adjective and budget >= 1:
            # Before the actor's run of modifiers ("a [bright] big red ball"), whatever the parse of the run.
            at = actor.i
            while at > 0 and _is_modifier(doc[at - 1]):
                at -= 1
            inserts[at] = adjective + " "
            if at > 0 and doc[at - 1].lower_ in {"a", "an"}:
                det = doc[at - 1]
                article = _article_for(adjective)
                tokens[det.i] = (article.capitalize() if det.text[0].isupper() else article) + det.whitespace_
            budget -= 1
        verb = None
        if core is not None and core.motion:
            forms = _verb_forms(core.motion)
            verb = next((t for t in doc if t.lower_ in forms), None)
        has_adverb = any(w.endswith("ly") and w in adverbs for w in present) or any(
            t.dep_ == "advmod" and t.lower_.endswith("ly") for t in doc
        )
        adverb = self._best(adverbs, first, present)
        if not strict and verb is not None and adverb and not has_adverb and budget >= 1:
            inserts[verb.i + 1] = adverb + " "
            budget -= 1
        nouns = frozenset(t.lower_ for t in doc if t.pos_ in {"NOUN", "PROPN"})
        own_scene = self._scene_phrases(doc)
        scene = self._best(scenes, first, set())
        scene_ok = (
            scene is not None
            and scenes[scene] >= self.min_scene_votes
            and not own_scene
            and not (set(_words(scene)) & nouns)
        )
        pieces = []
        for i, token in enumerate(tokens):
            if i in inserts:
                pieces.append(inserts[i])
            pieces.append(token)
        if len(tokens) in inserts:  # after the last token
            pieces.append(" " + inserts[len(tokens)].strip())
        text = "".join(pieces).strip()
        if not strict and scene_ok and budget >= len(scene.split()):
            text = text.rstrip(".") + " " + scene + ("." if prompt.endswith(".") else "")
        return " ".join(text.split())


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
            messages, {"prompt": prompt, "references": list(references), "strict": attempt.strict}
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


class _LazyEmbedder:
    """MiniLM loaded on the first guard check, so building the services loads nothing."""

    def __init__(self, model: str | None):
        self.model = model

    def embed(self, texts):
        from memory.embeddings import get_embedder

        return get_embedder(self.model).embed(texts)


class _LazyParser:
    """spaCy loaded on first use, for the same reason; unit parses are memoised (a prompt is parsed by
    the offline engine and by the guard, and scenes repeat prompts)."""

    def __init__(self, model: str | None, memo: int = 512):
        self.model = model
        self._memo: OrderedDict[str, Any] = OrderedDict()
        self._memo_size = memo

    @property
    def _parser(self):
        from motion_prior.units import get_parser

        return get_parser(self.model)

    @property
    def nlp(self):
        return self._parser.nlp

    def parse(self, text: str):
        return self.parse_many([text])[0]

    def parse_many(self, texts):
        texts = list(texts)
        missing = [t for t in dict.fromkeys(texts) if t not in self._memo]
        for text, parsed in zip(missing, self._parser.parse_many(missing) if missing else [], strict=True):
            self._memo[text] = parsed
        result = [self._memo[t] for t in texts]
        for text in texts:
            self._memo.move_to_end(text)
        while len(self._memo) > self._memo_size:
            self._memo.popitem(last=False)
        return result


def make_rewriter(settings) -> Rewriter:
    """The run's rewriter: the LLM from settings when a model is named, the offline engine always."""
    parser = _LazyParser(settings.spacy_model)
    guard = SemanticGuard(parser, _LazyEmbedder(settings.text_model), settings.rewrite_min_similarity)
    llm = None
    if settings.llm_model:
        llm = LLMClient(
            settings.llm_model,
            base_url=settings.llm_base_url,
            api_key=settings.llm_api_key.get_secret_value() if settings.llm_api_key else None,
            timeout=settings.llm_timeout,
            max_retries=settings.llm_max_retries,
            cache_dir=settings.cache_dir,
        )
    return Rewriter(guard, OfflineEnricher(parser), llm=llm, max_words=settings.rewrite_max_words)
