"""Choose each scene's initial noise: ONA, NPNet or Gaussian (POS §4.1-4.2)."""

from __future__ import annotations

from typing import Any

from agent.services import Services
from agent.state import RunState, ToolStep


def choose_noise(state: RunState, services: Services) -> dict[str, Any]:
    noise = ToolStep(
        status="done",
        reason="Gaussian noise from the scene's seed: no pool inversion (ONA) or noise network (NPNet) is available",
        source="random",
    )
    return {"scenes": state.with_all_scenes(noise=noise)}
