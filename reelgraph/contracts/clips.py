"""What the planner asks of the generation service: plain, serialisable requests.

These models import no torch, so the agent can build them, keep them in its
graph state and print them in a plan.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field


class NoiseSpec(BaseModel):
    """Where a clip's initial noise comes from (POS §4.1-4.2), as the planner chose it.

    ``random``: Gaussian from the seed. ``ona``: POS eq. 4 with the inversion of
    pool video ``video_id`` (file ``video``). ``npnet``: eq. 4 with NPNet's
    prediction (weights ``npnet``). The Gaussian part is always the seed's.
    """

    source: Literal["random", "ona", "npnet"] = "random"
    eta: float = Field(0.0, ge=0, description="weight of the inverted noise (POS eq. 4)")
    video_id: str | None = None
    video: str | None = None
    npnet: str | None = None


class ClipRequest(BaseModel):
    """One clip of ``num_frames`` frames from one prompt (diffusers' vocabulary)."""

    prompt: str
    negative_prompt: str = ""
    num_frames: int = Field(ge=1)
    num_inference_steps: int = Field(ge=1)
    guidance_scale: float = Field(ge=0)
    eta: float = Field(0.0, ge=0, le=1)
    seed: int = Field(ge=0)
    rewritten_prompt: str | None = Field(None, description="POS rewrite; conditions the first steps")
    gamma: float = Field(0.0, ge=0, le=1, description="share of steps conditioned on the rewrite (eq. 8)")
    noise: NoiseSpec = Field(default_factory=NoiseSpec)
    lora_path: str | None = Field(None, description="temporal LoRA applied while sampling (motion priors)")
    lora_scale: float = Field(1.0, ge=0)


class ClipResult(BaseModel):
    """Where a clip's latents ``(1, C, F, h, w)`` were saved (safetensors), and how it went."""

    latents_path: str
    num_frames: int
    seed: int
    seconds: float
    warnings: list[str] = []
    details: dict[str, Any] = Field(default_factory=dict, description="what the sampler did, e.g. noise")
    # Long videos (generation.clip_plan): how the clip started, the frames the video keeps, and the
    # file that carries what the next clip needs (VidRD's prompt frames).
    start: str = "noise"
    kept: tuple[int, int] | None = None
    handoff_path: str | None = None


class OutputFiles(BaseModel):
    video: str
    gif: str
    sheet: str
    num_frames: int
    fps: int
    height: int
    width: int
