"""Learning-rate and EMA schedules, shared by the VAE and denoiser phases."""

from __future__ import annotations


def warmup_cooldown_lr(
    base_lr: float, step: int, warmup_steps: int, fraction: float, cooldown: float
) -> float:
    """Linear warmup over ``warmup_steps``, constant, then linear decay to 0 over the last ``cooldown``
    of the phase; ``fraction`` is how much of the phase has passed (steps or wall time)."""
    warm = min(1.0, (step + 1) / max(1, warmup_steps))
    cool = min(1.0, (1.0 - fraction) / cooldown) if cooldown > 0 else 1.0
    return base_lr * warm * max(cool, 0.0)


def ema_decay(step: int, max_decay: float) -> float:
    """EMA decay warmed up as ``(1 + step) / (10 + step)`` so early weights do not dominate."""
    return min(max_decay, (1 + step) / (10 + step))
