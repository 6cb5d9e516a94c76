"""The cost tool: seconds and memory of one scene under a choice of tools, before anything loads."""

from __future__ import annotations

from typing import Literal

from langchain_core.tools import BaseTool, StructuredTool
from pydantic import BaseModel, Field

from agent.policies.tool_policy import INVERSION_SHARE
from agent.services import VideoGenerator
from generation.estimate import device_kind, estimate_clip


class CostArgs(BaseModel):
    num_frames: int = Field(ge=1, le=1024, description="frames of the clip")
    num_inference_steps: int = Field(ge=1, le=1000, description="sampling steps")
    guidance_scale: float = Field(ge=0.0, le=50.0, description="classifier-free guidance scale")
    noise: Literal["ona", "npnet", "random"] = Field("random", description="initial noise source")
    ona_cached: bool = Field(True, description="the ONA inversion is cached (no extra cost)")
    tuning_seconds: float = Field(
        0.0, ge=0.0, description="a planned motion LoRA's estimated_seconds from the plan; 0: none"
    )


class CostAnswer(BaseModel):
    device: str
    sampling_seconds: float
    inversion_seconds: float
    tuning_seconds: float
    total_seconds: float
    peak_memory_gb: float
    note: str = "rough: within a factor of about two"


def cost_tool(generator: VideoGenerator, device: str) -> BaseTool:
    def estimate_cost(
        num_frames: int,
        num_inference_steps: int,
        guidance_scale: float,
        noise: str = "random",
        ona_cached: bool = True,
        tuning_seconds: float = 0.0,
    ) -> dict:
        sampling, memory = estimate_clip(
            generator.model_info, num_frames, num_inference_steps, guidance_scale, device
        )
        # The same share the rule policy charges an uncached inversion (agent/policies/tool_policy.py).
        inversion = INVERSION_SHARE * sampling if noise == "ona" and not ona_cached else 0.0
        return CostAnswer(
            device=device_kind(device),
            sampling_seconds=round(sampling, 2),
            inversion_seconds=round(inversion, 2),
            tuning_seconds=round(tuning_seconds, 2),
            total_seconds=round(sampling + inversion + tuning_seconds, 2),
            peak_memory_gb=round(memory, 3),
        ).model_dump()

    return StructuredTool.from_function(
        func=estimate_cost,
        name="estimate_cost",
        description=(
            "Estimate one scene's time and peak memory for a choice of tools: sampling, an "
            "uncached ONA inversion (about half a sampling pass) and a motion LoRA's tuning time."
        ),
        args_schema=CostArgs,
    )
