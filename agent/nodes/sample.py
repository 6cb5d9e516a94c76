"""Denoise the current scene's first clip."""

from __future__ import annotations

from typing import Any

from agent.services import Services
from agent.state import RunState


def sample(state: RunState, services: Services) -> dict[str, Any]:
    """Denoise the current scene's first clip."""
    scene = state.scene
    label = f"scene {scene.index + 1}/{len(state.scenes)}" if len(state.scenes) > 1 else "sampling"
    path = state.work_dir / f"scene-{scene.index:02d}" / "clip-000.safetensors"
    result = services.generator.sample_clip(state.clip_request(scene), path, label=label)
    sampling = scene.sampling.model_copy(
        update={"status": "done", "seconds": round(result.seconds, 2), **result.details}
    )
    return {
        "clips": [*state.clips, result],
        "scenes": state.with_scene(scene.index, sampling=sampling),
        "warnings": [*state.warnings, *result.warnings],
    }
