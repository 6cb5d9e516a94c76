"""Deterministic reference-guided rewriting without an LLM (the offline engine of POS §4.3).

:class:`OfflineEnricher` borrows from the reference captions (POS eq. 6) what
most of them use and what cannot change the prompt's units: an adjective of
an entity, a manner adverb and a scene phrase. ``make demo`` and runs without
a reachable LLM use it; its rewrites pass the same semantic guard.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from agent.wording import (
    COLOUR_WORDS,
    DIRECTION_WORDS,
    NEVER_BORROWED,
    SCENE_PREPOSITIONS,
    SIZE_WORDS,
    lowercase_words,
    wordset,
)


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
_NOT_PLACES = wordset(
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
    """Is the noun in a prepositional phrase ("on sandy ground"), however the parse roots it?"""
    return token.dep_ == "pobj" or any(
        a.dep_ in {"prep", "agent"} or a.pos_ == "ADP" for a in token.ancestors
    )


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
            if token.dep_ != "prep" or token.lower_ not in SCENE_PREPOSITIONS:
                continue
            objects = [c for c in token.children if c.dep_ == "pobj"]
            if not objects or objects[0].lower_ in _NOT_PLACES | exclude:
                continue
            span = doc[token.i : objects[0].right_edge.i + 1]
            words = lowercase_words(span.text)
            if len(words) > 5 or any(w in NEVER_BORROWED for w in words[1:]):
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
                if not token.is_alpha or word in NEVER_BORROWED:
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
        present = set(lowercase_words(prompt))
        tokens = [t.text_with_ws for t in doc]
        inserts: dict[int, str] = {}  # token index -> text to put before it
        core = self.parser.parse(prompt).core_unit
        budget = max_words - len(prompt.split())

        actor = None
        if core is not None and core.actor:
            actor = next(
                (t for t in doc if t.lemma_.lower() == core.actor and t.pos_ in {"NOUN", "PROPN"}), None
            )
        # The actor's run of modifiers ("a [bright] big red ball"), whatever the parse of the run.
        at = actor.i if actor is not None else 0
        while at > 0 and _is_modifier(doc[at - 1]):
            at -= 1
        has_adjective = actor is not None and any(
            t.lower_ not in COLOUR_WORDS | SIZE_WORDS for t in doc[at : actor.i]
        )
        adjective = self._best(adjectives, first, present)
        if actor is not None and adjective and not has_adjective and budget >= 1:
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
            # After the verb ("rolls smoothly to the left"), or after its object and the object's
            # direction words when it has one ("pushes a box along smoothly"), as the captions say it.
            after = verb.i + 1
            objects = [c for c in verb.children if c.dep_ in {"dobj", "dative"}]
            if objects:
                after = objects[-1].right_edge.i + 1
                while after < len(doc) and doc[after].lower_ in DIRECTION_WORDS:
                    after += 1
            inserts[after] = adverb + " "
            budget -= 1
        nouns = frozenset(t.lower_ for t in doc if t.pos_ in {"NOUN", "PROPN"})
        own_scene = self._scene_phrases(doc)
        scene = self._best(scenes, first, set())
        scene_ok = (
            scene is not None
            and scenes[scene] >= self.min_scene_votes
            and not own_scene
            and not (set(lowercase_words(scene)) & nouns)
        )
        pieces: list[str] = []
        for i in range(len(tokens) + 1):
            if i in inserts:
                if pieces and not pieces[-1].endswith(" "):  # "box" + "." -> "box smoothly."
                    pieces[-1] += " "
                at_punct = i == len(tokens) or doc[i].is_punct
                pieces.append(inserts[i].strip() if at_punct else inserts[i])
            if i < len(tokens):
                pieces.append(tokens[i])
        text = "".join(pieces).strip()
        if not strict and scene_ok and budget >= len(scene.split()):
            text = text.rstrip(".") + " " + scene + ("." if prompt.endswith(".") else "")
        return " ".join(text.split())
