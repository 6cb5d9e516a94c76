"""Choose each scene's initial noise: ONA, NPNet or Gaussian (POS §4.1-4.2)."""

from __future__ import annotations

from typing import Any

from agent.policies.pos_policy import choose_noise_for_scene, nearest_of
from agent.services import Services
from agent.state import RunState
from agent.steps import NoiseStep


def choose_noise(state: RunState, services: Services) -> dict[str, Any]:
    """ONA with the nearest pool video (POS eq. 3-5), else NPNet (§4.2), else the seed's Gaussian; with why."""
    scenes = []
    refusals = services.generator.model_info.unsupported
    for scene in state.scenes:
        fields = choose_noise_for_scene(
            services.pos,
            services.noise,
            nearest_of(scene.references, services.pos.ona_pick),
            state.request.num_inference_steps,
            scene.num_frames,
            refusals,
        )
        scenes.append(scene.model_copy(update={"noise": NoiseStep(**fields)}))
    return {"scenes": scenes}
