"""The sampling flags, declared once: every command that samples takes them through :func:`sampling_options`.

``@sampling_options()`` adds ``--seed --steps --guidance --frames --model --device --tune/--no-tune
--budget-seconds --extension`` to a command and hands them over as one :class:`Sampling` (argument
``sampling``), which turns them into settings flags. A command leaves out flags that mean
nothing to it (``exclude=``), never redeclares one.
"""

from __future__ import annotations

import enum
import functools
import inspect
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any

import typer

from reelgraph.settings import EXTENSION_MODES

Extension = enum.Enum("Extension", {mode.replace("-", "_"): mode for mode in EXTENSION_MODES}, type=str)
"""The ``--extension`` choices: the settings' ``extension_mode`` values."""


@dataclass(frozen=True)
class Sampling:
    """The sampling flags as given (``None``: not given, so environment / config / default decide)."""

    seed: int | None = None
    steps: int | None = None
    guidance: float | None = None
    frames: int | None = None
    model: str | None = None
    device: str | None = None
    tune: bool | None = None
    budget: float | None = None
    extension: str | None = None

    def flags(self) -> dict[str, Any]:
        """Settings flags under the settings' names (diffusers' vocabulary)."""
        return {
            "seed": self.seed,
            "num_inference_steps": self.steps,
            "guidance_scale": self.guidance,
            "num_frames": self.frames,
            "model": self.model,
            "device": self.device,
            "motion_tuning": None if self.tune is None else ("always" if self.tune else "never"),
            "budget_seconds": self.budget,
            "extension_mode": _value(self.extension),
        }


def _value(choice: Any) -> Any:
    return choice.value if isinstance(choice, enum.Enum) else choice


_OPTIONS: dict[str, tuple[Any, Any]] = {
    "seed": (
        int,
        typer.Option(None, "--seed", min=0, help="Base seed (default: drawn at random, recorded)."),
    ),
    "steps": (int, typer.Option(None, "--steps", min=1, help="Denoising steps (default 25).")),
    "guidance": (
        float,
        typer.Option(None, "--guidance", min=0.0, help="Classifier-free guidance (default: the model's)."),
    ),
    "frames": (int, typer.Option(None, "--frames", min=1, help="Number of frames (default: one clip).")),
    "model": (str, typer.Option(None, "--model", help="'toy', a diffusers folder or a hub id.")),
    "device": (str, typer.Option(None, "--device", help="auto, cpu, cuda, cuda:N or mps.")),
    "tune": (
        bool,
        typer.Option(
            None, "--tune/--no-tune", help="Motion-prior tuning always / never (default: for rare motions)."
        ),
    ),
    "budget": (
        float,
        typer.Option(
            None, "--budget-seconds", min=0.001, help="Time budget; over it the rules drop optional tools."
        ),
    ),
    "extension": (
        Extension,
        typer.Option(
            None,
            "--extension",
            help="How clips after the first continue: vidrd (VidRD keeping direction), vidrd-literal "
            "(eq. 6-8 as printed), artv (needs a continuation network), independent.",
        ),
    ),
}
assert set(_OPTIONS) == {f.name for f in fields(Sampling)}


def sampling_options(exclude: tuple[str, ...] = ()) -> Callable[[Callable], Callable]:
    """Add the sampling flags (less ``exclude``) to a Typer command taking ``sampling: Sampling``."""
    unknown = set(exclude) - set(_OPTIONS)
    if unknown:
        raise ValueError(f"no sampling flags named {sorted(unknown)}")
    names = [name for name in _OPTIONS if name not in exclude]

    def decorate(command: Callable) -> Callable:
        signature = inspect.signature(command)
        if "sampling" not in signature.parameters:
            raise TypeError(f"{command.__name__} must take a 'sampling' parameter")

        @functools.wraps(command)
        def run(*args, **kwargs):
            given = {name: kwargs.pop(name) for name in names}
            return command(*args, sampling=Sampling(**given), **kwargs)

        own = [p for p in signature.parameters.values() if p.name != "sampling"]
        added = [
            inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=option, annotation=kind)
            for name, (kind, option) in ((n, _OPTIONS[n]) for n in names)
        ]
        run.__signature__ = signature.replace(parameters=[*own, *added])
        # Typer reads the hints too: the command's own, resolved, plus the added flags' types.
        hints = {k: v for k, v in _resolved_hints(command).items() if k != "sampling"}
        run.__annotations__ = {**hints, **{name: _OPTIONS[name][0] for name in names}}
        del run.__wrapped__  # Typer must see the new signature, not the command's
        return run

    return decorate


def _resolved_hints(command: Callable) -> dict[str, Any]:
    import typing

    return typing.get_type_hints(command)
