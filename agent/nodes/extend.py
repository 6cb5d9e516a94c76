"""Extend the current scene beyond its first clip (VidRD §4.3), then move to the next scene."""

from __future__ import annotations

from typing import Any

from agent import long_video
from agent.services import Services
from agent.state import RunState


def extend(state: RunState, services: Services) -> dict[str, Any]:
    """Make the scene's remaining clips, each from the previous clip's prompt frames, then move on.

    Each clip's latents go to the work folder and only the small hand-off to
    the next clip is kept, so memory does not grow with the number of clips.
    """
    scene = state.scene
    slots = long_video.planned_slots(scene)
    clips = list(state.clips)
    warnings = list(state.warnings)
    seconds = 0.0
    for clip in range(1, len(slots)):
        previous = clips[-1]
        request, path, extra = long_video.clip_call(state, scene.index, clip, previous)
        label = long_video.clip_label(state, scene.index, clip, len(slots))
        result = services.generator.sample_clip(request, path, label=label, **extra)
        clips.append(long_video.finish_clip(result, slots[clip]))
        warnings.extend(w for w in result.warnings if w not in warnings)
        long_video.unused_handoff(previous)
        seconds += result.seconds
    update: dict[str, Any] = {"scene_index": state.scene_index + 1}
    if len(slots) > 1 or scene.extension.status == "planned":
        extension = scene.extension.model_copy(update={"status": "done", "seconds": round(seconds, 2)})
        update.update(
            clips=clips, warnings=warnings, scenes=state.with_scene(scene.index, extension=extension)
        )
    return update
