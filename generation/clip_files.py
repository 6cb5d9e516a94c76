"""A sampled clip's latents written to disk, and the :class:`ClipResult` that points at them.

Both loops (DDIM in :mod:`generation.service`, flow matching in :mod:`generation.flow_clip`) end
the same way, so they share this.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from reelgraph.contracts.clips import ClipRequest, ClipResult


def save_clip(
    latents,
    latents_path: Path,
    request: ClipRequest,
    started: float,
    details: dict[str, Any],
    extension=None,
    warnings: list[str] | None = None,
) -> ClipResult:
    """Write ``latents`` ``(B, C, F, h, w)`` atomically as safetensors and describe the clip.

    ``started`` is the ``time.perf_counter()`` at the clip's start; ``extension`` the clip's
    :class:`~generation.clip_plan.ClipStartSpec`, if it continues another clip.
    """
    from safetensors.torch import save_file

    from reelgraph.atomic import atomic_path

    with atomic_path(latents_path) as tmp:
        save_file({"latents": latents.float().cpu().contiguous()}, str(tmp))
    return ClipResult(
        latents_path=str(latents_path),
        num_frames=request.num_frames,
        seed=request.seed,
        seconds=time.perf_counter() - started,
        warnings=warnings or [],
        details=details,
        start=extension.start if extension is not None else "noise",
        handoff_path=extension.handoff_path if extension is not None else None,
    )
