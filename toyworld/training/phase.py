"""The one training loop, run by both the VAE phase and the denoiser phase.

A :class:`Phase` names what differs between them (module, optimiser, learning-rate schedule,
budget, how to draw a batch and score it); :func:`run_phase` does the rest: stop on the step or
time budget, set the learning rate, take an optimiser step with gradient clipping, record the
loss in :class:`~toyworld.training.state.TrainingProgress`, update the bar, checkpoint when due.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from toyworld.training.console import PhaseBar
from toyworld.training.schedules import warmup_cooldown_lr
from toyworld.training.state import TrainingClock, TrainingProgress


def _nothing() -> None:
    return None


@dataclass
class Phase:
    """One optimisation phase. ``name`` is its key in :class:`TrainingProgress` ("vae" or "unet")."""

    name: str
    module: torch.nn.Module
    optimizer: torch.optim.Optimizer
    base_lr: float
    warmup_steps: int
    cooldown: float
    grad_clip: float
    step_budget: int | None  # when set, replaces the time budget
    time_start_s: float  # run time at which the phase's time budget starts
    time_end_s: float  # run time at which it ends
    draw_batch: Callable[[], Any]
    # (batch) -> (loss to minimise, the figure to record); runs under autocast
    loss: Callable[[Any], tuple[torch.Tensor, torch.Tensor]]
    after_step: Callable[[], None] = _nothing  # after the optimiser step, before the step counts

    def fraction_done(self, steps: int, elapsed: float) -> float:
        if self.step_budget is not None:
            return steps / max(1, self.step_budget)
        return (elapsed - self.time_start_s) / max(1e-9, self.time_end_s - self.time_start_s)

    def finished(self, steps: int, elapsed: float) -> bool:
        if self.step_budget is not None:
            return steps >= self.step_budget
        return elapsed >= self.time_end_s


def optimizer_step(phase: Phase, steps: int, clock: TrainingClock, autocast: bool) -> float:
    """Draw a batch, take one clipped optimiser step at the scheduled learning rate; the recorded figure."""
    batch = phase.draw_batch()
    lr = warmup_cooldown_lr(
        phase.base_lr, steps, phase.warmup_steps, phase.fraction_done(steps, clock.elapsed), phase.cooldown
    )
    for group in phase.optimizer.param_groups:
        group["lr"] = lr
    phase.module.train()
    with torch.autocast("cuda", dtype=torch.bfloat16, enabled=autocast):
        loss, figure = phase.loss(batch)
    phase.optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(phase.module.parameters(), phase.grad_clip)
    phase.optimizer.step()
    phase.after_step()
    return figure.item()


def run_phase(
    phase: Phase,
    progress: TrainingProgress,
    clock: TrainingClock,
    autocast: bool,
    maybe_checkpoint: Callable[[], None],
    show_bar: bool,
) -> None:
    """Step ``phase`` until its budget is spent (resuming at ``progress``'s step count)."""
    bar = None
    if show_bar:
        by_steps = phase.step_budget is not None
        bar = PhaseBar(
            phase.name,
            total=phase.step_budget if by_steps else phase.time_end_s,
            completed=progress.steps_done(phase.name) if by_steps else clock.elapsed,
            by_steps=by_steps,
        )
    try:
        while not phase.finished(progress.steps_done(phase.name), clock.elapsed):
            loss = optimizer_step(phase, progress.steps_done(phase.name), clock, autocast)
            progress.record_step(phase.name, loss)
            if bar is not None:
                bar.update(progress.steps_done(phase.name), clock.elapsed, loss)
            maybe_checkpoint()
    finally:
        if bar is not None:
            bar.stop()
