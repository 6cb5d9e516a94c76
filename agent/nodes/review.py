"""Review the plan's tool choices with the rules, after an optional LLM proposal (agent.policies.tool_policy)."""

from __future__ import annotations

import dataclasses
from typing import Any

from agent.policies.pos_policy import choose_noise_for_scene, nearest_of
from agent.policies.tool_policy import Availability, ProposalSource, review_scenes
from agent.services import Services
from agent.state import RunState
from agent.steps import STEP_TYPES
from generation.estimate import device_kind

REVIEWED = ("noise", "rewrite", "tuning", "extension")


def availability(state: RunState, services: Services) -> Availability:
    pool = services.retriever.pool_size() if services.retriever is not None else None
    kind = device_kind(services.device)
    return Availability(
        pool_videos=pool,
        llm=services.advisor.name if services.advisor is not None else None,
        gpu=kind not in ("cpu", "mps"),
        device=kind,
        budget_seconds=state.request.budget_seconds,
    )


def _summary(state: RunState, have: Availability) -> dict[str, Any]:
    return {
        "available": have.describe(),
        "scenes": [
            {
                "scene": scene.index + 1,
                "prompt": scene.prompt,
                **{
                    tool: {"status": scene.step(tool).status, "reason": scene.step(tool).reason}
                    for tool in REVIEWED
                },
            }
            for scene in state.scenes
        ],
    }


def review_tools(state: RunState, services: Services) -> dict[str, Any]:
    """Check each scene's noise, rewrite, tuning and extension against the rules and the budget."""
    have = availability(state, services)
    proposals, source = None, ProposalSource(note="none: no LLM is configured; the rules decided")
    if services.advisor is not None:
        proposals, source = services.advisor.propose(_summary(state, have))

    def alternative(index: int, wanted: str) -> dict[str, Any]:
        scene = state.scenes[index]
        policy = dataclasses.replace(services.pos, noise_source=wanted)
        return choose_noise_for_scene(
            policy,
            services.noise,
            nearest_of(scene.references, policy.ona_pick),
            state.request.num_inference_steps,
            scene.num_frames,
        )

    tools = [{tool: scene.step(tool).model_dump() for tool in REVIEWED} for scene in state.scenes]
    sampling = [float(scene.sampling.estimated_seconds or 0.0) for scene in state.scenes]
    reviewed, changes, seconds = review_scenes(tools, have, proposals, alternative, sampling)
    scenes = [
        scene.model_copy(update={tool: STEP_TYPES[tool].model_validate(steps[tool]) for tool in REVIEWED})
        for scene, steps in zip(state.scenes, reviewed, strict=True)
    ]
    update: dict[str, Any] = {
        "scenes": scenes,
        "policy": {"available": have.describe(), "proposals": source.note, "changes": changes},
    }
    if state.estimates is not None:
        update["estimates"] = state.estimates.model_copy(update={"seconds": seconds})
    over = [c for c in changes if c.startswith("over budget")]
    if over:
        update["warnings"] = over
    return update
