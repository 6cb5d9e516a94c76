"""A request as the agent understood it: scenes with lengths, style, seed, constraints, entities.

The LLM fills this model through structured output; the deterministic parser
(:mod:`agent.understanding.parser`) fills the same model without one. Lengths
are in seconds or frames; :meth:`StructuredRequest.scene_requests` turns them
into the graph's :class:`~agent.state.SceneRequest` list at the model's
frame rate.
"""

from __future__ import annotations

import math

from pydantic import BaseModel, ConfigDict, Field

from agent.state import SceneRequest


class SceneSpec(BaseModel):
    """One scene: what it shows and, optionally, how long it lasts."""

    model_config = ConfigDict(extra="forbid")

    prompt: str = Field(description="what the scene shows, one plain sentence, naming its subject")
    seconds: float | None = Field(None, gt=0, description="the scene's length in seconds, when asked for")
    frames: int | None = Field(None, ge=1, description="the scene's length in frames, when asked for")


class StructuredRequest(BaseModel):
    """What the user asked for (the LLM's structured-output schema, and the parser's result)."""

    model_config = ConfigDict(extra="forbid")

    scenes: list[SceneSpec] = Field(min_length=1, description="the scenes, in order")
    style: str | None = Field(None, description="a visual style for every scene, when asked for")
    seed: int | None = Field(None, ge=0, description="the seed, when the user named one")
    constraints: list[str] = Field(
        default_factory=list, description="things the video must not show ('no trees')"
    )
    entities: dict[str, list[str]] = Field(
        default_factory=dict,
        description="each recurring subject (a noun) and its appearance words, kept the same in every scene",
    )

    def scene_requests(self, fps: int, default_frames: int | None = None) -> list[SceneRequest]:
        """Scenes for the graph: seconds become frames at ``fps``; a style is appended to each prompt."""
        scenes = []
        for scene in self.scenes:
            frames = scene.frames
            if frames is None and scene.seconds is not None:
                frames = max(2, math.ceil(scene.seconds * fps))
            prompt = scene.prompt if not self.style else f"{scene.prompt}, {self.style} style"
            scenes.append(SceneRequest(prompt=prompt, num_frames=frames or default_frames))
        return scenes

    def negative_prompt(self) -> str:
        """The constraints as the run's negative prompt ("no trees" steers away from "trees")."""
        return ", ".join(self.constraints)
