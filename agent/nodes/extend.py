"""Extend the current scene by one clip (VidRD §4.3); when its clips are all made, move to the next scene."""

from __future__ import annotations

from typing import Any

from agent import long_video
from agent.services import Services
from agent.state import RunState


def extend(state: RunState, services: Services) -> dict[str, Any]:
    """Make the scene's next clip from the previous clip's prompt frames; the graph loops here until done.

    One clip per call, so every clip is checkpointed (a killed run resumes at
    the next clip, :mod:`agent.resume`). Each clip's latents go to the work
    folder and only the hand-off to the next clip is kept, so memory does not
    grow with the number of clips; hand-offs the checkpointed clips no longer
    need are removed at the start of the next call.
    """
    for done in state.clips[:-1]:
        long_video.unused_handoff(done)
    scene = state.scene
    slots = long_video.planned_slots(scene)
    made = long_video.clips_made(state, scene.index)
    update: dict[str, Any] = {}
    extension = scene.extension
    if made < len(slots):
        previous = state.clips[-1]
        request, path, extra = long_video.clip_call(state, scene.index, made, previous)
        label = long_video.clip_label(state, scene.index, made, len(slots))
        result = services.generator.sample_clip(request, path, label=label, **extra)
        update["clips"] = [long_video.finish_clip(result, slots[made])]
        update["warnings"] = [w for w in result.warnings if w not in state.warnings]
        seconds = (extension.seconds or 0.0) + result.seconds
        extension = extension.model_copy(update={"seconds": round(seconds, 2)})
        made += 1
    if made >= len(slots):
        update["scene_index"] = state.scene_index + 1
        if len(slots) > 1 or extension.status == "planned":
            extension = extension.model_copy(update={"status": "done"})
    if extension is not scene.extension:
        update["scenes"] = state.with_scene(scene.index, extension=extension)
    return update
