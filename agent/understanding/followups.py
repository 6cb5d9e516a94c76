"""Follow-up messages that edit the last request instead of starting a new one.

Recognised (case-insensitive, deterministic):

* "show me the plan again", "show the plan": show, change nothing;
* "make it longer" / "shorter": every scene's length doubled / halved;
  "make it 10 seconds (long)": the whole video that long;
* "now the ball is blue", "make the ball blue", "the ball should be blue",
  "make it blue": the entity's colour words replaced in every scene;
* "same seed", "new seed" / "different seed", "seed 42";
* "add a second scene where it bounces", "add another scene: the ball
  stops": a scene appended, its subject resolved like the parser's.

Anything else is a new request (``kind == "new"``). Several edits can share a
message ("now the ball is blue, same seed").
"""

from __future__ import annotations

import math
import re
from typing import Literal

from pydantic import BaseModel

from agent.understanding.parser import NUMBERS, EntityTracker, parse_request
from agent.understanding.request import SceneSpec, StructuredRequest
from agent.wording import COLOUR_WORDS
from reelgraph.errors import ReelgraphError

EditKind = Literal[
    "new",
    "show_plan",
    "longer",
    "shorter",
    "length",
    "recolour",
    "same_seed",
    "new_seed",
    "seed",
    "add_scene",
]
SeedChoice = Literal["keep", "new"] | int

_SHOW = re.compile(r"\b(?:show|see|print|display|repeat)\b.*\bplan\b|^\s*plan\s*\??\s*$", re.IGNORECASE)
_LONGER = re.compile(r"\b(?:make\s+it\s+|a\s+bit\s+|much\s+)?(longer|shorter)\b", re.IGNORECASE)
_LENGTH = re.compile(
    r"\bmake\s+it\s+(\d+(?:\.\d+)?|" + "|".join(NUMBERS) + r")\s*(?:seconds?|secs?|s)\b", re.IGNORECASE
)
_COLOURS = "|".join(sorted(COLOUR_WORDS, key=len, reverse=True))
_RECOLOUR = re.compile(
    r"\b(?:now\s+)?(?:make\s+)?(?P<what>it|the\s+(?P<noun>[a-z]+))\s+(?:is\s+|be\s+|should\s+be\s+|turns?\s+|becomes?\s+)?"
    rf"(?:now\s+)?(?P<colour>{_COLOURS})\b(?!\s+[a-z]+\s+(?:rolls|moves|bounces))",
    re.IGNORECASE,
)
_SAME_SEED = re.compile(r"\b(?:same|keep\s+the)\s+seed\b", re.IGNORECASE)
_NEW_SEED = re.compile(r"\b(?:new|different|another|other)\s+seed\b", re.IGNORECASE)
_SEED = re.compile(r"\bseed\s*[:=]?\s*(\d+)\b", re.IGNORECASE)
_ADD_SCENE = re.compile(
    r"\badd\s+(?:a\s+|an\s+)?(?:second|third|fourth|fifth|another|new|next|last|final|\d+(?:st|nd|rd|th))?\s*"
    r"scene\b\s*(?:where|in\s+which|that\s+shows|showing|with|:|-)?\s*(?P<text>.+)$",
    re.IGNORECASE,
)


class Interpretation(BaseModel):
    """What a chat message does: the request after it, the seed choice, and what changed (for people)."""

    kinds: list[EditKind]
    request: StructuredRequest | None
    seed: SeedChoice = "keep"
    notes: list[str] = []

    @property
    def is_new(self) -> bool:
        return self.kinds == ["new"]

    @property
    def shows_plan_only(self) -> bool:
        return self.kinds == ["show_plan"]


def _scale(request: StructuredRequest, factor: float, default_seconds: float) -> StructuredRequest:
    scenes = []
    for scene in request.scenes:
        if scene.frames is not None:
            scenes.append(scene.model_copy(update={"frames": max(2, math.ceil(scene.frames * factor))}))
        else:
            seconds = scene.seconds if scene.seconds is not None else default_seconds
            scenes.append(scene.model_copy(update={"seconds": round(seconds * factor, 3)}))
    return request.model_copy(update={"scenes": scenes})


def _set_total(request: StructuredRequest, seconds: float) -> StructuredRequest:
    share = round(seconds / len(request.scenes), 3)
    scenes = [s.model_copy(update={"seconds": share, "frames": None}) for s in request.scenes]
    return request.model_copy(update={"scenes": scenes})


def _recolour(request: StructuredRequest, noun: str | None, colour: str) -> tuple[StructuredRequest, str]:
    entities = {k: list(v) for k, v in request.entities.items()}
    if noun is None:  # "make it blue": the first subject
        if not entities:
            raise ReelgraphError(
                f"I don't know what should be {colour}.", fix="name it, e.g. 'now the ball is blue'."
            )
        noun = next(iter(entities))
    if noun not in entities and not any(re.search(rf"\b{noun}\b", s.prompt) for s in request.scenes):
        raise ReelgraphError(
            f"The video has no {noun}.",
            fix=f"the subjects are: {', '.join(entities) or 'none named'}.",
        )
    old = [w for w in entities.get(noun, []) if w in COLOUR_WORDS]
    entities[noun] = [w for w in entities.get(noun, []) if w not in COLOUR_WORDS] + [colour]
    phrase = re.compile(rf"\b(?P<det>a|an|the|one)\s+(?P<adjs>(?:[a-z]+\s+)*?){noun}\b", re.IGNORECASE)

    def swap(match: re.Match[str]) -> str:
        adjs = [w for w in match.group("adjs").split() if w.lower() not in COLOUR_WORDS]
        det = match.group("det")
        if det.lower() in ("a", "an"):
            det = "an" if colour[0] in "aeiou" and not adjs else "a"
        return " ".join([det, *adjs, colour, noun])

    scenes = [s.model_copy(update={"prompt": phrase.sub(swap, s.prompt)}) for s in request.scenes]
    was = f" (was {' '.join(old)})" if old else ""
    return request.model_copy(
        update={"scenes": scenes, "entities": entities}
    ), f"the {noun} is now {colour}{was}"


def _add_scene(request: StructuredRequest, text: str) -> tuple[StructuredRequest, str]:
    tracker = EntityTracker()
    tracker.entities = {k: list(v) for k, v in request.entities.items()}
    tracker.last = next(iter(request.entities), None)
    added = parse_request(text)
    prompt = tracker.resolve(added.scenes[0].prompt)
    scene = SceneSpec(prompt=prompt, seconds=added.scenes[0].seconds)
    entities = {**tracker.entities}
    updated = request.model_copy(update={"scenes": [*request.scenes, scene], "entities": entities})
    return updated, f"scene {len(updated.scenes)} added: {prompt!r}"


def interpret(message: str, current: StructuredRequest | None, default_seconds: float) -> Interpretation:
    """Read a chat message against the current request (see the module doc).

    ``default_seconds`` is one scene's length when the request did not give
    one (a clip of the model), so "longer" has something to double.
    """
    text = " ".join((message or "").split())
    if not text:
        raise ReelgraphError("The message is empty.", fix="describe a video, or say what to change.")
    if current is None:
        return Interpretation(kinds=["new"], request=parse_request(text))
    if _SHOW.search(text):
        return Interpretation(kinds=["show_plan"], request=current, notes=["the plan, unchanged"])
    kinds: list[EditKind] = []
    notes: list[str] = []
    request = current
    seed: SeedChoice = "keep"
    added = _ADD_SCENE.search(text)
    if added:
        request, note = _add_scene(request, added.group("text"))
        kinds.append("add_scene")
        notes.append(note)
        text = text[: added.start()]
    length = _LENGTH.search(text)
    if length:
        value = length.group(1).lower()
        seconds = float(NUMBERS.get(value, 0) or value)
        request = _set_total(request, seconds)
        kinds.append("length")
        notes.append(f"the video is now {seconds:g} seconds long")
    else:
        longer = _LONGER.search(text)
        if longer:
            factor = 2.0 if longer.group(1).lower() == "longer" else 0.5
            request = _scale(request, factor, default_seconds)
            kinds.append("longer" if factor > 1 else "shorter")
            notes.append(f"every scene is {'twice as long' if factor > 1 else 'half as long'}")
    for match in _RECOLOUR.finditer(text):
        noun = match.group("noun")
        if noun and noun.lower() in COLOUR_WORDS:
            continue
        request, note = _recolour(request, noun.lower() if noun else None, match.group("colour").lower())
        kinds.append("recolour")
        notes.append(note)
    if _SAME_SEED.search(text):
        kinds.append("same_seed")
        notes.append("the same seed as before")
    elif _NEW_SEED.search(text):
        seed = "new"
        kinds.append("new_seed")
        notes.append("a new seed")
    elif _SEED.search(text):
        seed = int(_SEED.search(text).group(1))
        kinds.append("seed")
        notes.append(f"seed {seed}")
    if not kinds:
        return Interpretation(kinds=["new"], request=parse_request(message))
    return Interpretation(kinds=kinds, request=request, seed=seed, notes=notes)
