"""The deterministic request parser: free text to a :class:`StructuredRequest` without an LLM.

* Scenes: lines, sentences and "then" split the text ("a red ball rolls
  right, then it bounces" is two scenes).
* Lengths: "10 seconds" in a scene sets that scene's length; in a one-scene
  request or as a closing "(in) total" it is the whole video's, shared out;
  "3 seconds each" gives every scene without its own length that long;
  "3 scenes" repeats a single scene three times. Number words ("ten seconds", "three scenes") count too.
* Seed ("seed 42"), style ("in watercolor style"), constraints ("no trees",
  "without shadows").
* Entities: a noun after a determiner with its appearance words (colour,
  size, shape) is remembered; later mentions of the noun without appearance
  words ("the ball", "it") get the first mention's words, so every scene
  names its subject the same way.
"""

from __future__ import annotations

import re

from agent.understanding.request import SceneSpec, StructuredRequest
from agent.wording import COLOUR_WORDS, DIRECTION_WORDS, SHAPE_WORDS, SIZE_WORDS, SPEED_WORDS, wordset
from reelgraph.errors import ReelgraphError

# "square" names a shape as often as it describes one ("a red square"), so it counts as a noun.
APPEARANCE_WORDS = (
    COLOUR_WORDS | SIZE_WORDS | SHAPE_WORDS | wordset("striped spotted shiny dark bright")
) - {"square"}
NUMBERS = {
    "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9,
    "ten": 10, "eleven": 11, "twelve": 12, "fifteen": 15, "twenty": 20, "thirty": 30,
}  # fmt: skip
_NUMBER = r"\b(\d+(?:\.\d+)?|" + "|".join(sorted(NUMBERS, key=len, reverse=True)) + r")"
_SECONDS = re.compile(
    rf"\s*,?\s*\b(?:for|lasting|of|in)?\s*(?:about|around|roughly)?\s*{_NUMBER}[\s-]*"
    rf"(?:seconds?|secs?|s)\b(?:\s+long)?(?P<total>\s+(?:in\s+)?total)?(?P<each>\s+(?:each|per\s+scene))?",
    re.IGNORECASE,
)
_SCENE_COUNT = re.compile(
    rf"\s*,?\s*\b(?:in|with|as|over)?\s*{_NUMBER}\s+(?:scenes|shots|parts)\b(?:\s+of\b)?", re.IGNORECASE
)
_SEED = re.compile(r"\s*,?\s*\b(?:with\s+|using\s+)?seed\s*[:=]?\s*(\d+)\b", re.IGNORECASE)
_STYLE = re.compile(r"\s*,?\s*\bin\s+(?:an?\s+|the\s+)?([a-z][a-z -]{1,30}?)\s+style\b", re.IGNORECASE)
_CONSTRAINT = re.compile(r"\s*,?\s*\b(?:no|without)\s+([a-z]+(?:\s+[a-z]+)?)\s*(?=[,.;]|$)", re.IGNORECASE)
_PREAMBLE = re.compile(
    r"^\s*(?:please\s+)?(?:(?:can|could|would)\s+you\s+)?(?:i\s+want\s+|i'd\s+like\s+)?"
    r"(?:(?:make|create|generate|render|show|give)\s+(?:me\s+)?)?"
    r"(?:an?\s+)?(?:short\s+|long\s+|little\s+)?(?:video|clip|animation|movie|story)\s*"
    r"(?:of|where|in\s+which|showing|about|with|:)?\s*",
    re.IGNORECASE,
)
_THEN = re.compile(r"\s*(?:,\s*)?(?:\band\s+)?\bthen\b\s*,?\s*|\s*;\s*", re.IGNORECASE)
_SENTENCE = re.compile(r"(?<=[.!?])\s+")
DETERMINERS = wordset("a an the one")
# Words that end a noun phrase before a noun is found ("the red and ...", "a very ...").
NOT_NOUNS = (
    wordset("and or but with of to from in on at by is are was were very it its")
    | DIRECTION_WORDS
    | SPEED_WORDS
)
_PRONOUN = re.compile(r"^(?P<pro>it|he|she|they)\b", re.IGNORECASE)
_TOKEN = re.compile(r"[A-Za-z]+|[^A-Za-z]+")


def _number(text: str) -> float:
    text = text.lower()
    return float(NUMBERS[text]) if text in NUMBERS else float(text)


def split_scenes(text: str) -> list[str]:
    """Lines, then sentences, then "then" / ";" split a text into scene texts."""
    parts: list[str] = []
    for line in text.splitlines():
        for sentence in _SENTENCE.split(line.strip()):
            parts.extend(p for p in _THEN.split(sentence) if p and p.strip(" ,.;!?"))
    return [p.strip().strip(",;").rstrip(".!?").strip() for p in parts]


def _take(pattern: re.Pattern[str], text: str) -> tuple[list[re.Match[str]], str]:
    matches = list(pattern.finditer(text))
    return matches, pattern.sub("", text)


def _capitalised_meta(text: str) -> str:
    cleaned = _PREAMBLE.sub("", text, count=1)
    return " ".join(cleaned.split())


class EntityTracker:
    """Keeps each subject's appearance words, and fills them in at later mentions (see module doc)."""

    def __init__(self) -> None:
        self.entities: dict[str, list[str]] = {}
        self.last: str | None = None

    def mention(self, noun: str) -> str:
        return " ".join(["the", *self.entities.get(noun, []), noun])

    def resolve(self, prompt: str) -> str:
        """The prompt with a leading pronoun named and known subjects' appearance words filled in."""
        pronoun = _PRONOUN.match(prompt)
        if pronoun and self.last is not None:
            prompt = self.mention(self.last) + prompt[pronoun.end() :]
        tokens = _TOKEN.findall(prompt)
        words = [i for i, t in enumerate(tokens) if t[0].isalpha()]
        out = list(tokens)
        first_subject = True
        k = 0
        while k < len(words):
            if tokens[words[k]].lower() not in DETERMINERS:
                k += 1
                continue
            j = k + 1
            while j < len(words) and tokens[words[j]].lower() in APPEARANCE_WORDS:
                j += 1
            if j >= len(words) or tokens[words[j]].lower() in NOT_NOUNS | DETERMINERS:
                k = j
                continue
            noun = tokens[words[j]].lower()
            given = [tokens[words[i]].lower() for i in range(k + 1, j)]
            if given:
                self.entities[noun] = given
            elif self.entities.get(noun):
                out[words[j]] = " ".join(self.entities[noun]) + " " + tokens[words[j]]
            else:
                self.entities.setdefault(noun, [])
            if first_subject:
                self.last, first_subject = noun, False
            k = j + 1
        return "".join(out)


def parse_request(text: str) -> StructuredRequest:
    """Free text to a structured request (see the module doc). Raises on a text with no scene."""
    if not text or not text.strip():
        raise ReelgraphError(
            "The request is empty.", fix="describe the video, e.g. 'a red ball rolls right'."
        )
    seeds, text = _take(_SEED, text)
    styles, text = _take(_STYLE, text)
    counts, text = _take(_SCENE_COUNT, text)
    constraints, text = _take(_CONSTRAINT, text)
    raw_scenes = [_capitalised_meta(s) for s in split_scenes(text)]
    tracker = EntityTracker()
    scenes: list[SceneSpec] = []
    total_seconds: float | None = None
    each_seconds: float | None = None  # "3 seconds each": every scene without its own length
    for raw in raw_scenes:
        lengths, prompt = _take(_SECONDS, raw)
        prompt = " ".join(prompt.split()).strip(" ,.")
        seconds = None
        for match in lengths:
            if match.group("total"):
                total_seconds = _number(match.group(1))
            elif match.group("each"):
                each_seconds = _number(match.group(1))
            else:
                seconds = _number(match.group(1))
        if not prompt:  # a sentence that only gave a length ("It lasts 10 seconds.")
            if seconds is not None:
                total_seconds = seconds
            continue
        scenes.append(SceneSpec(prompt=tracker.resolve(prompt), seconds=seconds))
    if not scenes:
        raise ReelgraphError(
            "The request names no scene.", fix="describe what the video shows, e.g. 'a red ball rolls right'."
        )
    if each_seconds is not None:
        scenes = [
            s if s.seconds is not None else s.model_copy(update={"seconds": each_seconds}) for s in scenes
        ]
    if counts:
        wanted = int(_number(counts[-1].group(1)))
        if len(scenes) == 1 and wanted > 1:
            scenes = [scenes[0].model_copy() for _ in range(wanted)]
    if total_seconds is not None:
        unset = [s for s in scenes if s.seconds is None]
        left = total_seconds - sum(s.seconds or 0 for s in scenes)
        if unset and left > 0:
            share = round(left / len(unset), 3)
            scenes = [s if s.seconds is not None else s.model_copy(update={"seconds": share}) for s in scenes]
    return StructuredRequest(
        scenes=scenes,
        style=styles[-1].group(1).strip() if styles else None,
        seed=int(seeds[-1].group(1)) if seeds else None,
        constraints=[m.group(1).strip().lower() for m in constraints],
        entities={noun: words for noun, words in tracker.entities.items()},
    )


def subjects(request: StructuredRequest) -> set[str]:
    """The nouns a request is about: its entities, for checking that a rewrite kept them."""
    return set(request.entities)
