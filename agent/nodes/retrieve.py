"""Retrieve reference captions and motion-prior videos for each scene (POS eq. 3, 6; Search-T2V §4.2)."""

from __future__ import annotations

from typing import Any

from agent.services import Services
from agent.state import RunState
from agent.steps import ReferencesStep

EMPTY_POOL = (
    "the reference pool at {where} is empty: index one with `reelgraph index toy --n 500` "
    "or `reelgraph index add --csv FILE --videos DIR`"
)


def retrieve(state: RunState, services: Services) -> dict[str, Any]:
    """References (top-k captions), motion-prior hits (ranked by units) and the nearest video, per scene."""
    if services.retriever is None:
        return {
            "scenes": state.with_all_scenes(
                references=ReferencesStep.skipped("no reference pool was given to the graph")
            )
        }
    size = services.retriever.pool_size()
    if size == 0:
        down = services.retriever.unavailable
        reason = f"the reference pool is unavailable: {down}; planned without references" if down else None
        reason = reason or EMPTY_POOL.format(where=services.retriever.location)
        return {"scenes": state.with_all_scenes(references=ReferencesStep.skipped(reason))}
    scenes = []
    for scene in state.scenes:
        found = services.retriever.retrieve(scene.prompt).model_dump(mode="json")
        step = ReferencesStep(
            status="done",
            reason=f"{len(found['references'])} reference caption(s) and {len(found['motion_hits'])} "
            f"motion-prior hit(s) from a pool of {size} videos",
            references=found["references"],
            nearest=found["nearest"],
            motion_hits=found["motion_hits"],
            timings_ms=found["timings_ms"],
        )
        scenes.append(scene.model_copy(update={"references": step}))
    return {"scenes": scenes}
