"""Understand the request: scenes with prompts, lengths and seeds."""

from __future__ import annotations

from typing import Any

from agent.services import Services
from agent.state import RunState, ScenePlan
from reelgraph.errors import ReelgraphError


def understand_request(state: RunState, services: Services) -> dict[str, Any]:
    """Turn the request into scenes with lengths and seeds (scene k gets seed + k)."""
    info = services.generator.model_info
    scenes, warnings = [], []
    for index, scene in enumerate(state.request.scenes):
        prompt = " ".join(scene.prompt.split())
        if not prompt:
            raise ReelgraphError(
                f"Scene {index + 1} has an empty prompt."
                if len(state.request.scenes) > 1
                else "The prompt is empty.",
                fix="describe the video, e.g. 'a red ball rolls to the right'.",
            )
        asked = scene.num_frames or info.num_frames
        frames = info.frames_for(asked)  # a causal 3-D VAE makes k·r + 1 frames (Wan: 4k + 1)
        scenes.append(
            ScenePlan(
                index=index,
                prompt=prompt,
                num_frames=frames,
                seed=state.request.seed + index,
                image=scene.image,
                **({"frames_asked": asked} if frames != asked else {}),
            )
        )
        if frames != asked:
            r = info.temporal_compression
            warnings.append(
                f"scene {index + 1}: {asked} frames rounded up to {frames} ({info.model_id} makes {r}k + 1 "
                f"frames: its VAE compresses time {r}x after the first frame)"
            )
    return {"scenes": scenes, "warnings": warnings}
