"""Word lists shared by the semantic guard and the offline rewriter.

Words whose change changes what a video shows: the guard keeps colours,
numbers and negations of the original; the offline rewriter never borrows
any word of these lists (colours, numbers, negations, sizes, speeds,
directions, shapes). English only, lower case.
"""

from __future__ import annotations

import re


def wordset(text: str) -> frozenset[str]:
    return frozenset(text.split())


COLOUR_WORDS = wordset(
    "red orange yellow green cyan blue purple white black pink brown gray grey golden silver violet "
    "magenta scarlet turquoise crimson beige maroon navy teal gold"
)
NUMBER_WORDS = wordset(
    "one two three four five six seven eight nine ten eleven twelve dozen hundred single pair couple "
    "several many few both"
)
NEGATIONS = wordset("no not never without nobody nothing none neither nor")
SIZE_WORDS = wordset(
    "small little tiny big large huge giant enormous massive miniature mini tall short long wide "
    "narrow thin thick"
)
SPEED_WORDS = wordset(
    "slow slowly fast quickly quick rapidly rapid swiftly swift speedily briskly hurriedly "
    "leisurely sluggishly"
)
DIRECTION_WORDS = wordset(
    "left right up down upward upwards downward downwards leftward leftwards rightward rightwards "
    "forward forwards backward backwards back away around sideways clockwise counterclockwise "
    "anticlockwise across along over under through toward towards into onto top bottom"
)
CANONICAL_DIRECTION = {
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
SHAPE_WORDS = wordset(
    "square round triangular circular rectangular oval spherical cubic cubical conical cylindrical flat "
    "pointed curved straight"
)
GUARDED_WORDS = COLOUR_WORDS | NUMBER_WORDS | NEGATIONS
NEVER_BORROWED = (
    COLOUR_WORDS | NUMBER_WORDS | NEGATIONS | SIZE_WORDS | SPEED_WORDS | DIRECTION_WORDS | SHAPE_WORDS
)
# Prepositions that place a scene ("on the grass", "at night"), not a path or a recipient.
SCENE_PREPOSITIONS = frozenset({"on", "in", "at", "under", "near", "beside", "inside", "underneath"})
WORD = re.compile(r"[A-Za-z]+(?:'[a-z]+)?")


def lowercase_words(text: str) -> list[str]:
    return [w.lower() for w in WORD.findall(text)]
