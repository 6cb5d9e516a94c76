"""Fine-tune a temporal LoRA on the scene's motion-prior video when the plan asks (Search-T2V §4.3)."""

from __future__ import annotations

from typing import Any

from agent.services import Services
from agent.state import RunState
from reelgraph.errors import ReelgraphError


def tune_motion(state: RunState, services: Services) -> dict[str, Any]:
    """Run the scene's planned motion tuning; scenes whose plan skips tuning pass through."""
    scene = state.scene
    if scene.tuning.status != "planned":
        return {}
    raise ReelgraphError(
        f"Scene {scene.index + 1} plans motion tuning, but no tuner service was given to the graph.",
        fix="build the graph with a motion tuner, or plan without tuning.",
    )
