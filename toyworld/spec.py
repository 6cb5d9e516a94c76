"""The toy world's fixed vocabulary and the label every toy video carries.

Benchmarks depend on these numbers, so they are constants, not settings
(issue 3, "The world"). A label is::

    {"actor": {"shape", "color", "size"}, "motion", "recipient": {...} or null, "background"}

``size`` may be ``None`` where a caption does not state it (eval prompts); the
renderer then draws one.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator, model_validator

from reelgraph.errors import ReelgraphError

FRAME_SIZE = 32
CLIP_FRAMES = 8
POOL_FRAMES = 24
FPS = 8

SHAPES: tuple[str, ...] = ("circle", "square", "triangle")

# Nominal extent across, in pixels: circle diameter, square side, triangle base.
SIZES: dict[str, float] = {"small": 6.0, "big": 10.0}
# Extents below this read as small, above as big (the probe's boundary).
SIZE_BOUNDARY_PX = 8.0

COLORS: dict[str, tuple[int, int, int]] = {
    "red": (220, 40, 40),
    "orange": (245, 140, 30),
    "yellow": (240, 220, 50),
    "green": (50, 190, 70),
    "cyan": (40, 200, 210),
    "blue": (50, 90, 230),
    "purple": (150, 70, 200),
    "white": (235, 235, 235),
}

BACKGROUNDS: dict[str, tuple[int, int, int]] = {
    "dark": (10, 10, 20),
    "grass": (25, 80, 35),
    "sand": (170, 140, 95),
    "road": (70, 70, 75),
}
DEFAULT_BACKGROUND = "dark"
# Other names a label or caption may use for a background.
BACKGROUND_ALIASES: dict[str, str] = {
    "at night": "dark",
    "in the dark": "dark",
    "night": "dark",
}

SINGLE_MOTIONS: tuple[str, ...] = (
    "move_left",
    "move_right",
    "move_up",
    "move_down",
    "bounce",
    "spin",
    "grow",
    "shrink",
    "orbit",
    "stay",
    "zigzag",
)
TWO_OBJECT_MOTIONS: tuple[str, ...] = ("push", "chase", "jump_over")
MOTIONS: tuple[str, ...] = SINGLE_MOTIONS + TWO_OBJECT_MOTIONS
# A spinning circle looks exactly like a still one.
SPIN_SHAPES: tuple[str, ...] = ("square", "triangle")
RARE_MOTION = "zigzag"


def _choices(options: Any) -> str:
    return ", ".join(options)


def normalize_background(name: str) -> str:
    """Canonical background name for a name or alias ("at night" -> "dark")."""
    key = name.strip().lower()
    key = BACKGROUND_ALIASES.get(key, key)
    if key not in BACKGROUNDS:
        raise ValueError(
            f"unknown background {name!r}; choose one of {_choices(BACKGROUNDS)} "
            f"(aliases: {_choices(BACKGROUND_ALIASES)})"
        )
    return key


class ObjectSpec(BaseModel):
    """One object: its shape, colour and (optionally) size class."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    shape: str
    color: str
    size: str | None = None

    @field_validator("shape")
    @classmethod
    def _known_shape(cls, value: str) -> str:
        if value not in SHAPES:
            raise ValueError(f"unknown shape {value!r}; choose one of {_choices(SHAPES)}")
        return value

    @field_validator("color")
    @classmethod
    def _known_color(cls, value: str) -> str:
        if value not in COLORS:
            raise ValueError(f"unknown colour {value!r}; choose one of {_choices(COLORS)}")
        return value

    @field_validator("size")
    @classmethod
    def _known_size(cls, value: str | None) -> str | None:
        if value is not None and value not in SIZES:
            raise ValueError(f"unknown size {value!r}; choose one of {_choices(SIZES)} or null")
        return value

    def to_dict(self) -> dict[str, Any]:
        return {"shape": self.shape, "color": self.color, "size": self.size}


class Label(BaseModel):
    """What a toy video shows: an actor doing a motion, maybe to a recipient, on a background."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    actor: ObjectSpec
    motion: str
    recipient: ObjectSpec | None = None
    background: str = DEFAULT_BACKGROUND

    @field_validator("motion")
    @classmethod
    def _known_motion(cls, value: str) -> str:
        if value not in MOTIONS:
            raise ValueError(f"unknown motion {value!r}; choose one of {_choices(MOTIONS)}")
        return value

    @field_validator("background")
    @classmethod
    def _known_background(cls, value: str) -> str:
        return normalize_background(value)

    @model_validator(mode="after")
    def _consistent(self) -> Label:
        if self.motion in TWO_OBJECT_MOTIONS and self.recipient is None:
            raise ValueError(f"motion {self.motion!r} needs a recipient object")
        if self.motion in SINGLE_MOTIONS and self.recipient is not None:
            raise ValueError(
                f"motion {self.motion!r} takes no recipient (only {_choices(TWO_OBJECT_MOTIONS)} do)"
            )
        if self.motion == "spin" and self.actor.shape not in SPIN_SHAPES:
            raise ValueError(f"only a {' or '.join(SPIN_SHAPES)} can spin, not a {self.actor.shape}")
        return self

    @property
    def objects(self) -> list[ObjectSpec]:
        """Actor first, then the recipient if there is one."""
        return [self.actor] if self.recipient is None else [self.actor, self.recipient]

    def to_dict(self) -> dict[str, Any]:
        """The issue's label schema, keys in schema order."""
        return {
            "actor": self.actor.to_dict(),
            "motion": self.motion,
            "recipient": None if self.recipient is None else self.recipient.to_dict(),
            "background": self.background,
        }

    def to_json(self) -> str:
        """Compact, key-ordered JSON: byte-stable for a given label."""
        return json.dumps(self.to_dict(), separators=(",", ":"))

    @classmethod
    def from_dict(cls, data: Any) -> Label:
        """Validate a label dict; bad input raises :class:`ReelgraphError` naming the problem."""
        try:
            return cls.model_validate(data)
        except ValidationError as error:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'label'}: {e['msg'].removeprefix('Value error, ')}"
                for e in error.errors()
            )
            raise ReelgraphError(
                f"Invalid toy label {data!r}.",
                why=problems,
                fix='use {"actor": {"shape", "color", "size"}, "motion", "recipient": {...} or null, '
                '"background"} with the names listed in docs/toyworld.md.',
            ) from error

    @classmethod
    def from_json(cls, text: str) -> Label:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as error:
            raise ReelgraphError(f"Toy label {text!r} is not JSON.", why=str(error)) from error
        return cls.from_dict(data)
