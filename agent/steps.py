"""One typed model per tool step of a scene's plan (units, references, rewrite, noise, tuning, sampling, extension).

Each step carries ``status`` and ``reason`` plus the fields its readers need;
unknown fields are refused (``extra="forbid"``), so a misspelt field fails
where it is written, not where it is read. A step serialises only the fields
that were set, which is what keeps ``plan --json`` and the manifest in their
documented shape (a skipped step is ``{"status", "reason"}`` and nothing more).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, SerializerFunctionWrapHandler, model_serializer

ToolStatus = Literal["done", "planned", "skipped"]
"""``done``: ran (planning tools run even in a plan); ``planned``: a GPU tool a
``generate`` will run; ``skipped``: won't run, ``reason`` says why."""


class ToolStep(BaseModel):
    """What every tool step has: its status, why, and the rule review's verdict once reviewed."""

    model_config = ConfigDict(extra="forbid")

    status: ToolStatus
    reason: str
    rule: str | None = None  # set by the rule review (agent.policies.tool_policy)

    @model_serializer(mode="wrap")
    def _only_set_fields(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # Fields a node never set stay out of the JSON: the plan view predates these types.
        data = handler(self)
        return {name: value for name, value in data.items() if name in self.model_fields_set}

    @classmethod
    def skipped(cls, reason: str) -> Self:
        return cls(status="skipped", reason=reason)

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Self:
        """A copy with ``update`` applied and validated: pydantic's own copy would keep an unknown
        field without a word and then drop it from the JSON, losing it from the manifest."""
        if not update:
            return super().model_copy(deep=deep)
        kept = {name: getattr(self, name) for name in self.model_fields_set}
        return type(self).model_validate({**kept, **update})


class UnitsStep(ToolStep):
    """``parse_units``: the prompt's atomized units (Search-T2V §4.1) and the core unit's index."""

    items: list[dict[str, Any]] | None = None
    core: int | None = None


class ReferencesStep(ToolStep):
    """``retrieve``: reference captions (POS eq. 6), the nearest video (POS eq. 3), motion hits (Search-T2V eq. 9)."""

    references: list[dict[str, Any]] | None = None
    nearest: dict[str, Any] | None = None
    motion_hits: list[dict[str, Any]] | None = None
    timings_ms: dict[str, Any] | None = None


class RewriteStep(ToolStep):
    """``rewrite``: the guarded rewrite (POS eq. 6-7) and how many steps it conditions (POS eq. 8)."""

    text: str | None = None
    original: str | None = None
    decision: str | None = None
    engine: str | None = None
    references: list[dict[str, Any]] | None = None
    guard: dict[str, Any] | None = None
    attempts: list[dict[str, Any]] | None = None
    notes: list[Any] | None = None
    gamma: float | None = None
    rewrite_steps: int | None = None
    num_steps: int | None = None


class NoiseStep(ToolStep):
    """``choose_noise``: ONA (POS eq. 3-5), NPNet (POS §4.2) or the seed's Gaussian, as a noise spec."""

    source: str | None = None
    video_id: str | None = None
    caption: str | None = None
    similarity: float | None = None
    eta: float | None = None
    cache: str | None = None
    spec: dict[str, Any] | None = None
    npnet: str | None = None
    ona_skipped: str | None = None


class TuningStep(ToolStep):
    """``tune_motion``: the planned motion-LoRA job (Search-T2V §4.3) and, once run, its outcome."""

    prompt: str | None = None
    training_prompt: str | None = None
    video: dict[str, Any] | None = None
    video_id: str | None = None
    video_sha256: str | None = None
    keyframes: dict[str, Any] | None = None
    config: dict[str, Any] | None = None
    weights_hash: str | None = None
    key: str | None = None
    cache_path: str | None = None
    cached: bool | None = None
    estimated_seconds: float | None = None
    lora_scale: float | None = None
    declined_job: str | None = None
    # after tune_motion ran
    lora_path: str | None = None
    cache_hit: bool | None = None
    seconds: float | None = None
    train_seconds: float | None = None
    loss: Any = None


class SamplingStep(ToolStep):
    """``estimate_costs``: the sampling a ``generate`` will run (DDIM, or flow matching for a
    flow-matching family), with its estimate."""

    model: str | None = None
    family: str | None = None  # set for flow-matching families only (UNet3D plans keep their shape)
    flow_shift: float | None = None
    num_frames: int | None = None
    num_inference_steps: int | None = None
    guidance_scale: float | None = None
    seed: int | None = None
    estimated_seconds: float | None = None
    # after sample ran: its time and what the sampler reports (ClipResult.details)
    seconds: float | None = None
    noise: dict[str, Any] | None = None
    rewrite_steps: int | None = None  # POS eq. 8's m
    gamma: float | None = None
    clip_cache: str | None = None
    made_in_seconds: float | None = None
    sampler: str | None = None  # "flow" when the flow-matching loop ran
    extension: dict[str, Any] | None = None  # flow path: how the clip joined the one before (flow_extension)


class ExtensionStep(ToolStep):
    """``estimate_costs``: the scene's clips (VidRD FNR/PNS/DSG or ART-V), with the extra clips' estimate."""

    clips: list[dict[str, Any]] | None = None
    method: str | None = None
    mode: str | None = None  # extension_mode: vidrd, vidrd-literal, artv or independent
    params: dict[str, Any] | None = None
    num_clips: int | None = None
    estimated_seconds: float | None = None
    seconds: float | None = None  # the extra clips' sampling time, once made


STEP_TYPES: dict[str, type[ToolStep]] = {
    "units": UnitsStep,
    "references": ReferencesStep,
    "rewrite": RewriteStep,
    "noise": NoiseStep,
    "tuning": TuningStep,
    "sampling": SamplingStep,
    "extension": ExtensionStep,
}
"""The scene's tool steps in plan order, each with its type."""
