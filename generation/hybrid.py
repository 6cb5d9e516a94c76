"""Denoising with hybrid semantics (POS §4.3, eq. 8).

The rewritten prompt ``C^r`` conditions the first ``m = ⌊T·γ⌋`` DDIM steps
(the high-noise ones, where layout and detail are decided) and the original
prompt ``C`` the remaining ``T - m`` (pulling the semantics back to what the
user wrote). ``γ = 0`` is plain sampling with the original text, ``γ = 1``
plain sampling with the rewrite.

:func:`hybrid_conditioning` returns the ``step -> context`` callable that
:func:`generation.sampling.sample_ddim` accepts as ``prompt_embeds``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the planner imports rewrite_steps, and planning never imports torch
    import torch

# ⌊T·γ⌋ with γ read as the decimal the user typed: 10 × 0.3 is 3.0000000000000004 and
# 100 × 0.29 is 28.999999999999996 in floating point; the tolerance makes both exact.
_FLOOR_TOLERANCE = 1e-9


def rewrite_steps(num_steps: int, gamma: float) -> int:
    """``m = ⌊T·γ⌋`` (POS eq. 8): how many of the ``T`` steps the rewritten text conditions."""
    if not 0.0 <= gamma <= 1.0:
        raise ValueError(f"gamma must lie in [0, 1], got {gamma}")
    return min(num_steps, max(0, math.floor(num_steps * gamma + _FLOOR_TOLERANCE)))


def hybrid_conditioning(
    rewritten: torch.Tensor, original: torch.Tensor, num_steps: int, gamma: float
) -> torch.Tensor | Callable[[int], torch.Tensor]:
    """POS eq. 8: ``C^r`` for steps ``0 .. m-1``, ``C`` for steps ``m .. T-1`` (0-based, noisiest first).

    Args:
        rewritten: ``(B, L, D)`` context of the rewritten prompt.
        original: ``(B, L, D)`` context of the original prompt.
        num_steps: ``T``, the DDIM steps of the sampling run.
        gamma: the share of steps given to the rewrite.

    Returns:
        A tensor when one text conditions every step (``m = 0`` or ``m = T``), otherwise
        ``step -> (B, L, D)``.
    """
    m = rewrite_steps(num_steps, gamma)
    if m == 0:
        return original
    if m == num_steps:
        return rewritten

    def at(step: int) -> torch.Tensor:
        return rewritten if step < m else original

    return at
