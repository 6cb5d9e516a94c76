"""What the planner asks of the generation service: plain, serialisable requests.

These models import no torch, so the agent can build them, keep them in its
graph state and print them in a plan.
"""

from __future__ import annotations

from pydantic import BaseModel, Field


class ClipRequest(BaseModel):
    """One clip of ``num_frames`` frames from one prompt (diffusers' vocabulary)."""

    prompt: str
    negative_prompt: str = ""
    num_frames: int = Field(ge=1)
    num_inference_steps: int = Field(ge=1)
    guidance_scale: float = Field(ge=0)
    eta: float = Field(0.0, ge=0, le=1)
    seed: int = Field(ge=0)
    lora_path: str | None = Field(None, description="temporal LoRA applied while sampling (motion priors)")
    lora_scale: float = Field(1.0, ge=0)


class ClipResult(BaseModel):
    """Where a clip's latents ``(1, C, F, h, w)`` were saved (safetensors), and how it went."""

    latents_path: str
    num_frames: int
    seed: int
    seconds: float
    warnings: list[str] = []


class OutputFiles(BaseModel):
    video: str
    gif: str
    sheet: str
    num_frames: int
    fps: int
    height: int
    width: int
