"""How far a training run has got (:class:`TrainingProgress`, saved in checkpoints) and its clock."""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from typing import Any


@dataclass
class TrainingProgress:
    """The run's position and history; ``state.json``'s ``state`` entry, key for key.

    ``unet_*`` keys count the denoiser phase whatever network it trains (checkpoint format).
    """

    phase: str = "vae"
    vae_step: int = 0
    unet_step: int = 0
    elapsed_s: float = 0.0
    vae_elapsed_s: float = 0.0
    scaling_factor: float | None = None
    latent_mean: list[float] | None = None
    latent_channel_std: list[float] | None = None
    latent_std: float | None = None
    vae_losses: list[float] = field(default_factory=list)
    unet_losses: list[float] = field(default_factory=list)
    numpy_rngs: dict[str, dict] = field(default_factory=dict)
    device: str = "cpu"

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def steps_done(self, phase: str) -> int:
        """Optimiser steps taken in ``phase`` ("vae" or "unet")."""
        return getattr(self, f"{phase}_step")

    def record_step(self, phase: str, loss: float) -> None:
        setattr(self, f"{phase}_step", self.steps_done(phase) + 1)
        getattr(self, f"{phase}_losses").append(loss)


class TrainingClock:
    """Wall time of a run, counted across resumed calls."""

    def __init__(self, elapsed_at_start: float = 0.0):
        self.elapsed_at_start = elapsed_at_start
        self.session_start = time.perf_counter()
        self.last_checkpoint = time.perf_counter()

    @property
    def elapsed(self) -> float:
        return self.elapsed_at_start + (time.perf_counter() - self.session_start)

    def resume_from(self, elapsed_s: float) -> None:
        self.elapsed_at_start = elapsed_s
        self.session_start = time.perf_counter()

    def checkpoint_due(self, every_minutes: float) -> bool:
        return time.perf_counter() - self.last_checkpoint >= every_minutes * 60.0

    def checkpointed(self) -> None:
        self.last_checkpoint = time.perf_counter()
