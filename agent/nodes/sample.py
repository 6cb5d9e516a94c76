"""Denoise the current scene's first clip."""

from __future__ import annotations

from typing import Any

from agent import long_video
from agent.services import Services
from agent.state import RunState


def sample(state: RunState, services: Services) -> dict[str, Any]:
    """Denoise the current scene's first clip (from noise, an image, or the previous scene's last frames)."""
    scene = state.scene
    slots = long_video.planned_slots(scene)
    label = long_video.clip_label(state, scene.index, 0, len(slots))
    previous = state.clips[-1] if state.clips else None
    request, path, extra = long_video.clip_call(state, scene.index, 0, previous)
    result = services.generator.sample_clip(request, path, label=label, **extra)
    result = long_video.finish_clip(result, slots[0])
    sampling = scene.sampling.model_copy(
        update={"status": "done", "seconds": round(result.seconds, 2), **result.details}
    )
    return {
        "clips": [result],
        "scenes": state.with_scene(scene.index, sampling=sampling),
        "warnings": list(result.warnings),
    }
