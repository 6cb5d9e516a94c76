"""Captions for toy labels, the label distributions, and eval prompt sets.

A caption states the actor's colour and shape and the motion always, the
sizes sometimes (``small``/``little``/``tiny`` mean small, ``big``/``large``/
``huge`` mean big; no other word touches size), the recipient for two-object
motions, and the background unless it is the default dark one (which may also
be said: "at night", "in the dark"). Everything else (neutral adjectives such
as "shiny", adverbs such as "smoothly", syntax) varies without changing the
label. :func:`describe` returns the caption together with the label the text
states (sizes it leaves out become ``None``), which is what an eval prompt
file records.

The word tables below are public so that parsers can read captions back.

Label distributions (:func:`sample_label`):
    "train": zigzag 0.8 % of labels (``TRAIN_ZIGZAG_SHARE``), the other 13
        motions share the rest equally (7.63 % each). This is the base model's
        training distribution: zigzag is the rare motion.
    "flow_train": the flow model's mix: zigzag 3 % (``FLOW_ZIGZAG_SHARE``),
        push / chase / jump_over 10 % each, the other ten 6.7 % each.
    "pool" and "eval": all 14 motions equally likely (zigzag 7.1 %).
    In all: spin only for squares and triangles; a two-object scene has two
    different colours (the probe tells objects apart by colour) and at most
    one big object (two big objects barely fit side by side in 32 px);
    backgrounds dark 40 %, grass, sand, road 20 % each.
"""

from __future__ import annotations

import bisect
import functools
import itertools
import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from reelgraph.atomic import write_text
from reelgraph.errors import ReelgraphError
from toyworld.spec import (
    COLORS,
    MOTIONS,
    RARE_MOTION,
    SHAPES,
    SPIN_SHAPES,
    TWO_OBJECT_MOTIONS,
    Label,
    ObjectSpec,
)

# --- word tables ------------------------------------------------------------------------------

SHAPE_NOUNS: dict[str, tuple[str, ...]] = {
    "circle": ("ball", "circle", "sphere", "dot", "disc", "orb"),
    "square": ("box", "square", "block", "cube", "tile"),
    "triangle": ("triangle", "wedge", "pyramid"),
}
# First word is the canonical name; the others are used now and then.
COLOR_WORDS: dict[str, tuple[str, ...]] = {
    "red": ("red", "scarlet"),
    "orange": ("orange",),
    "yellow": ("yellow", "golden"),
    "green": ("green",),
    "cyan": ("cyan", "turquoise"),
    "blue": ("blue",),
    "purple": ("purple", "violet"),
    "white": ("white",),
}
SIZE_WORDS: dict[str, tuple[str, ...]] = {
    "small": ("small", "little", "tiny"),
    "big": ("big", "large", "huge"),
}
# Adjectives and adverbs that never change the label (no size, speed, colour or direction words).
NEUTRAL_ADJECTIVES: tuple[str, ...] = ("shiny", "bright", "glossy", "plain", "smooth", "solid", "lone")
ADVERBS: tuple[str, ...] = ("smoothly", "steadily", "gently", "happily", "calmly", "playfully", "quietly")
BACKGROUND_PHRASES: dict[str, tuple[str, ...]] = {
    "dark": ("at night", "in the dark", "on a dark background", "in darkness"),
    "grass": ("on the grass", "on a lawn", "in a grassy field", "on grass", "in the meadow"),
    "sand": ("on the sand", "on a beach", "in the desert", "on sandy ground"),
    "road": ("on the road", "on a street", "on the asphalt", "on a paved road"),
}


@dataclass(frozen=True)
class Verb:
    """A verb phrase in three forms plus an optional tail: "rolls" / "rolling" / "rolled" + "to the left"."""

    present: str  # third person singular
    progressive: str
    participle: str | None = None  # for passives; None where the passive reads badly
    tail: str = ""

    def phrase(self, form: str, adverb: str | None = None) -> str:
        verb = {"present": self.present, "progressive": self.progressive, "participle": self.participle}[form]
        parts = [verb, adverb, self.tail] if adverb else [verb, self.tail]
        return " ".join(p for p in parts if p)


def _moves(verbs: Sequence[tuple[str, str]], tails: Sequence[str]) -> tuple[Verb, ...]:
    return tuple(Verb(present, progressive, tail=tail) for present, progressive in verbs for tail in tails)


_ROLL = (("rolls", "rolling"),)
_GLIDE = (
    ("moves", "moving"),
    ("slides", "sliding"),
    ("glides", "gliding"),
    ("drifts", "drifting"),
    ("travels", "traveling"),
)
_LEFT = ("to the left", "left", "leftward", "towards the left")
_RIGHT = ("to the right", "right", "rightward", "towards the right")

# Verbs per motion; "move_left@circle" entries apply to circles only (balls roll, boxes slide).
MOTION_VERBS: dict[str, tuple[Verb, ...]] = {
    "move_left": _moves(_GLIDE, _LEFT),
    "move_left@circle": _moves(_ROLL, _LEFT),
    "move_right": _moves(_GLIDE, _RIGHT),
    "move_right@circle": _moves(_ROLL, _RIGHT),
    "move_up": (
        Verb("rises", "rising"),
        Verb("floats up", "floating up"),
        Verb("moves up", "moving up"),
        Verb("goes up", "going up"),
        Verb("climbs", "climbing", tail="upward"),
        Verb("drifts", "drifting", tail="upward"),
        Verb("flies up", "flying up"),
        Verb("rises", "rising", tail="towards the top"),
    ),
    "move_down": (
        Verb("falls", "falling"),
        Verb("drops", "dropping"),
        Verb("sinks", "sinking"),
        Verb("descends", "descending"),
        Verb("moves down", "moving down"),
        Verb("goes down", "going down"),
        Verb("falls down", "falling down"),
        Verb("drifts", "drifting", tail="downward"),
    ),
    "bounce": (
        Verb("bounces", "bouncing"),
        Verb("hops", "hopping"),
        Verb("bounces", "bouncing", tail="up and down"),
        Verb("hops", "hopping", tail="up and down"),
        Verb("bounces", "bouncing", tail="in place"),
        Verb("hops", "hopping", tail="in place"),
    ),
    "spin": (
        Verb("spins", "spinning"),
        Verb("rotates", "rotating"),
        Verb("twirls", "twirling"),
        Verb("whirls", "whirling"),
        Verb("turns around", "turning around"),
        Verb("spins", "spinning", tail="in place"),
        Verb("rotates", "rotating", tail="in place"),
    ),
    "grow": (
        Verb("grows", "growing"),
        Verb("expands", "expanding"),
        Verb("swells", "swelling"),
        Verb("inflates", "inflating"),
        Verb("grows", "growing", tail="in size"),
    ),
    "shrink": (
        Verb("shrinks", "shrinking"),
        Verb("contracts", "contracting"),
        Verb("deflates", "deflating"),
        Verb("dwindles", "dwindling"),
        Verb("shrinks", "shrinking", tail="in size"),
    ),
    "orbit": (
        Verb("orbits", "orbiting", tail="around"),
        Verb("orbits", "orbiting", tail="in a circle"),
        Verb("circles", "circling", tail="around"),
        Verb("moves", "moving", tail="in a circle"),
        Verb("goes", "going", tail="around in a circle"),
        Verb("loops", "looping", tail="around"),
        Verb("travels", "traveling", tail="in a circle"),
    ),
    "stay": (
        Verb("stays", "staying", tail="still"),
        Verb("rests", "resting"),
        Verb("sits", "sitting", tail="still"),
        Verb("stays", "staying", tail="in place"),
        Verb("remains", "remaining", tail="still"),
        Verb("stands", "standing", tail="still"),
        Verb("sits", "sitting", tail="motionless"),
        Verb("rests", "resting", tail="in place"),
    ),
    "zigzag": (
        Verb("zigzags", "zigzagging"),
        Verb("zigzags", "zigzagging", tail="along"),
        Verb("moves", "moving", tail="in a zigzag"),
        Verb("travels", "traveling", tail="in a zigzag"),
        Verb("weaves", "weaving", tail="in a zigzag"),
    ),
    "push": (
        Verb("pushes", "pushing", "pushed"),
        Verb("shoves", "shoving", "shoved"),
        Verb("nudges", "nudging", "nudged"),
        Verb("pushes", "pushing", "pushed", tail="along"),
    ),
    "chase": (
        Verb("chases", "chasing", "chased"),
        Verb("follows", "following", "followed"),
        Verb("pursues", "pursuing", "pursued"),
        Verb("runs after", "running after"),
    ),
    "jump_over": (
        Verb("jumps over", "jumping over", "jumped over"),
        Verb("leaps over", "leaping over", "leaped over"),
        Verb("hops over", "hopping over", "hopped over"),
        Verb("vaults over", "vaulting over", "vaulted over"),
        Verb("springs over", "springing over"),
    ),
}


def verbs_for(motion: str, shape: str) -> tuple[Verb, ...]:
    """The verb phrases a caption may use for ``motion`` done by a ``shape``."""
    verbs = MOTION_VERBS[motion] + MOTION_VERBS.get(f"{motion}@{shape}", ())
    if shape == "circle":
        # "a circle circles around" is hard to parse; circles never "circle".
        verbs = tuple(v for v in verbs if v.present != "circles")
    return verbs


# --- label distributions ------------------------------------------------------------------------

TRAIN_ZIGZAG_SHARE = 0.008
# The flow model's mix: zigzag at 3 % (still under half of any other motion, so still the rare one for
# the motion-prior method) and two-object motions weighted x1.5 (31 % of clips instead of 23 %): the
# UNet learnt neither from 0.8 % and 23 %, while zigzag is 9 % and two-object scenes ~20 % of the bench.
FLOW_ZIGZAG_SHARE = 0.03
FLOW_TWO_OBJECT_WEIGHT = 1.5
DISTRIBUTIONS = ("train", "flow_train", "pool", "eval")
BACKGROUND_WEIGHTS: dict[str, float] = {"dark": 0.4, "grass": 0.2, "sand": 0.2, "road": 0.2}
# Size pairs (actor, recipient) for two-object scenes: never two big objects.
PAIR_SIZES: tuple[tuple[str, str], ...] = (("small", "small"), ("small", "big"), ("big", "small"))


def motion_weights(distribution: str, motions: Iterable[str] | None = None) -> dict[str, float]:
    """Probability of each motion under a named distribution, optionally restricted to ``motions``."""
    if distribution not in DISTRIBUTIONS:
        raise ReelgraphError(
            f"Unknown label distribution {distribution!r}.", fix=f"use one of {', '.join(DISTRIBUTIONS)}."
        )
    if distribution == "train":
        rest = (1.0 - TRAIN_ZIGZAG_SHARE) / (len(MOTIONS) - 1)
        weights = {m: TRAIN_ZIGZAG_SHARE if m == RARE_MOTION else rest for m in MOTIONS}
    elif distribution == "flow_train":
        common = {m: FLOW_TWO_OBJECT_WEIGHT if m in TWO_OBJECT_MOTIONS else 1.0 for m in MOTIONS}
        common.pop(RARE_MOTION)
        scale = (1.0 - FLOW_ZIGZAG_SHARE) / sum(common.values())
        weights = {m: FLOW_ZIGZAG_SHARE if m == RARE_MOTION else common[m] * scale for m in MOTIONS}
    else:
        weights = {m: 1.0 / len(MOTIONS) for m in MOTIONS}
    if motions is not None:
        chosen = list(dict.fromkeys(motions))
        unknown = [m for m in chosen if m not in MOTIONS]
        if unknown or not chosen:
            raise ReelgraphError(
                f"Unknown or no motions {unknown or chosen!r}.", fix=f"choose from {', '.join(MOTIONS)}."
            )
        total = sum(weights[m] for m in chosen)
        weights = {m: weights[m] / total for m in chosen}
    return weights


def _pick(rng: np.random.Generator, options: Sequence[str]) -> str:
    return options[int(rng.random() * len(options))]


def _cumulative(weights: dict[str, float]) -> tuple[list[str], list[float]]:
    names = list(weights)
    return names, list(itertools.accumulate(weights[name] for name in names))


@functools.lru_cache(maxsize=64)
def _motion_cdf(distribution: str, motions: tuple[str, ...] | None) -> tuple[list[str], list[float]]:
    return _cumulative(motion_weights(distribution, motions))


_BACKGROUND_CDF = _cumulative(BACKGROUND_WEIGHTS)
_COLOR_NAMES = tuple(COLORS)


def _draw(rng: np.random.Generator, cdf: tuple[list[str], list[float]]) -> str:
    names, cumulative = cdf
    return names[min(bisect.bisect_right(cumulative, rng.random() * cumulative[-1]), len(names) - 1)]


def sample_label(
    rng: np.random.Generator, distribution: str = "train", motions: Iterable[str] | None = None
) -> Label:
    """Draw one label from a named distribution (see the module docstring)."""
    motion = _draw(rng, _motion_cdf(distribution, None if motions is None else tuple(motions)))
    shape = _pick(rng, SPIN_SHAPES if motion == "spin" else SHAPES)
    color = _pick(rng, _COLOR_NAMES)
    recipient = None
    if motion in TWO_OBJECT_MOTIONS:
        size, recipient_size = PAIR_SIZES[int(rng.random() * len(PAIR_SIZES))]
        recipient_color = _pick(rng, [c for c in _COLOR_NAMES if c != color])
        recipient = ObjectSpec(shape=_pick(rng, SHAPES), color=recipient_color, size=recipient_size)
    else:
        size = _pick(rng, ("small", "big"))
    return Label(
        actor=ObjectSpec(shape=shape, color=color, size=size),
        motion=motion,
        recipient=recipient,
        background=_draw(rng, _BACKGROUND_CDF),
    )


# --- captions ---------------------------------------------------------------------------------

SIZE_MENTION = 0.55
COLOR_SYNONYM = 0.2
ADJECTIVE = 0.15
ADVERB = 0.25
DARK_STATED = 0.4


@dataclass(frozen=True)
class Caption:
    """A caption and the label its words state (sizes it leaves out are ``None``)."""

    text: str
    stated: Label


def _article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def _noun_phrase(obj: ObjectSpec, rng: np.random.Generator, definite: bool) -> tuple[str, str | None]:
    """ "a shiny little red ball" and the size it states (or None)."""
    words = []
    if rng.random() < ADJECTIVE:
        words.append(_pick(rng, NEUTRAL_ADJECTIVES))
    stated_size = None
    if obj.size is not None and rng.random() < SIZE_MENTION:
        stated_size = obj.size
        words.append(_pick(rng, SIZE_WORDS[obj.size]))
    color_words = COLOR_WORDS[obj.color]
    words.append(_pick(rng, color_words) if rng.random() < COLOR_SYNONYM else color_words[0])
    words.append(_pick(rng, SHAPE_NOUNS[obj.shape]))
    determiner = "the" if definite else _article(words[0])
    return " ".join([determiner, *words]), stated_size


def _single_clause(
    subject: str, verb: Verb, adverb: str | None, definite: bool, rng: np.random.Generator
) -> str:
    # "there is the ball ..." reads badly: the existential frame only takes "a"/"an".
    frame = int(rng.random() * (4 if definite else 5))
    if frame == 0:
        return f"{subject} {verb.phrase('present', adverb)}"
    if frame == 1:
        return f"{subject} is {verb.phrase('progressive', adverb)}"
    if frame == 2:
        return f"{subject} that {verb.phrase('present', adverb)}"
    if frame == 3:
        return f"{subject} {verb.phrase('progressive', adverb)}"
    return f"there is {subject} {verb.phrase('progressive', adverb)}"


def _pair_clause(actor: str, recipient: str, verb: Verb, adverb: str | None, rng: np.random.Generator) -> str:
    passive = verb.participle is not None and rng.random() < 0.35
    if passive:
        pp = verb.participle
        tail = f" {verb.tail}" if verb.tail else ""
        adverb_part = f" {adverb}" if adverb else ""
        frame = int(rng.random() * 3)
        aux = ("is", "is being", "gets")[frame]
        return f"{recipient} {aux}{adverb_part} {pp}{tail} by {actor}"
    frame = int(rng.random() * 4)
    form = "present" if frame in (0, 2) else "progressive"
    head = verb.present if form == "present" else verb.progressive
    tail = f" {verb.tail}" if verb.tail else ""
    adverb_part = f" {adverb}" if adverb else ""
    predicate = f"{head} {recipient}{tail}{adverb_part}"
    if frame == 0:
        return f"{actor} {predicate}"
    if frame == 1:
        return f"{actor} is {predicate}"
    if frame == 2:
        return f"{actor} that {predicate}"
    return f"{actor} {predicate}"


def describe(label: Label | dict, rng: np.random.Generator) -> Caption:
    """A random caption for ``label`` and the label its words state."""
    if not isinstance(label, Label):
        label = Label.from_dict(label)
    definite = rng.random() < 0.2
    actor_np, actor_size = _noun_phrase(label.actor, rng, definite)
    verb = _pick(rng, verbs_for(label.motion, label.actor.shape))
    adverb = _pick(rng, ADVERBS) if rng.random() < ADVERB else None
    recipient_stated = None
    if label.recipient is None:
        clause = _single_clause(actor_np, verb, adverb, definite, rng)
    else:
        recipient_np, recipient_size = _noun_phrase(label.recipient, rng, rng.random() < 0.3)
        recipient_stated = ObjectSpec(
            shape=label.recipient.shape, color=label.recipient.color, size=recipient_size
        )
        clause = _pair_clause(actor_np, recipient_np, verb, adverb, rng)
    if label.background != "dark" or rng.random() < DARK_STATED:
        scene = _pick(rng, BACKGROUND_PHRASES[label.background])
        clause = f"{scene}, {clause}" if rng.random() < 0.35 else f"{clause} {scene}"
    if rng.random() < 0.3:
        clause = clause[0].upper() + clause[1:]
    if rng.random() < 0.3:
        clause += "."
    stated = Label(
        actor=ObjectSpec(shape=label.actor.shape, color=label.actor.color, size=actor_size),
        motion=label.motion,
        recipient=recipient_stated,
        background=label.background,
    )
    return Caption(text=clause, stated=stated)


def caption(label: Label | dict, rng: np.random.Generator) -> str:
    """A random caption for ``label`` (see :func:`describe`)."""
    return describe(label, rng).text


# --- prompt sets -----------------------------------------------------------------------------


def prompt_set(
    n: int, seed: int, distribution: str = "eval", motions: Iterable[str] | None = None
) -> list[dict]:
    """``n`` eval prompts ``{"prompt": str, "label": dict}``; each label is what its prompt states."""
    rng = np.random.default_rng(seed)
    motions = list(motions) if motions is not None else None
    rows = []
    for _ in range(n):
        described = describe(sample_label(rng, distribution, motions), rng)
        rows.append({"prompt": described.text, "label": described.stated.to_dict()})
    return rows


def write_prompt_file(path: str | os.PathLike[str], rows: Iterable[dict]) -> Path:
    """Write prompt rows as JSONL, atomically."""
    text = "".join(json.dumps(row, separators=(", ", ": ")) + "\n" for row in rows)
    return write_text(path, text)


def read_prompt_file(path: str | os.PathLike[str]) -> list[dict]:
    """Read a prompt JSONL file, validating every label."""
    path = Path(path)
    if not path.is_file():
        raise ReelgraphError(f"Prompt file {str(path)!r} does not exist.", fix="check the path.")
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as error:
            raise ReelgraphError(f"Line {number} of {str(path)!r} is not JSON.", why=str(error)) from error
        if not isinstance(row, dict) or not isinstance(row.get("prompt"), str) or "label" not in row:
            raise ReelgraphError(
                f"Line {number} of {str(path)!r} is not a prompt row.",
                fix='write {"prompt": "...", "label": {...}} on every line.',
            )
        Label.from_dict(row["label"])
        rows.append(row)
    return rows
