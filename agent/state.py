"""The graph's state: plain pydantic models (prompts, units, ids, paths, seeds), never tensors.

A plan is the state after the planning nodes; a finished run is the state
after ``finalize``. Both serialise to JSON as they are, which is what
``plan --json`` prints and what the manifest records.
"""

from __future__ import annotations

import operator
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from agent.steps import (
    STEP_TYPES,
    ExtensionStep,
    NoiseStep,
    ReferencesStep,
    RewriteStep,
    SamplingStep,
    ToolStep,
    TuningStep,
    UnitsStep,
)
from generation.clip_plan import ExtensionParams
from reelgraph.contracts.clips import ClipRequest, ClipResult, NoiseSpec, OutputFiles
from reelgraph.errors import ReelgraphError

TOOL_FIELDS = tuple(STEP_TYPES)
UNDECIDED = "not decided yet"


class SceneRequest(BaseModel):
    """A scene as the user asked for it: what to show and for how long."""

    prompt: str
    num_frames: int | None = None
    image: str | None = None  # the scene starts from this image (its first frames)


class RunRequest(BaseModel):
    """What the user asked for, with the sampling options that apply to every scene."""

    scenes: list[SceneRequest]
    seed: int
    num_inference_steps: int
    guidance_scale: float
    eta: float = 0.0
    negative_prompt: str = ""
    extension: ExtensionParams = Field(default_factory=ExtensionParams)
    max_frames: int | None = None  # the longest video a request may ask for (all scenes together)
    budget_seconds: float | None = None  # the time the user gave the run (--budget-seconds); rules enforce


class ScenePlan(BaseModel):
    """The plan for one scene: its prompt, length and seed, and each tool's decision."""

    index: int
    prompt: str
    num_frames: int
    seed: int
    image: str | None = None
    frames_asked: int | None = None  # set when the model's frame rule rounded num_frames up
    units: UnitsStep = Field(default_factory=lambda: UnitsStep.skipped(UNDECIDED))
    references: ReferencesStep = Field(default_factory=lambda: ReferencesStep.skipped(UNDECIDED))
    rewrite: RewriteStep = Field(default_factory=lambda: RewriteStep.skipped(UNDECIDED))
    noise: NoiseStep = Field(default_factory=lambda: NoiseStep.skipped(UNDECIDED))
    tuning: TuningStep = Field(default_factory=lambda: TuningStep.skipped(UNDECIDED))
    sampling: SamplingStep = Field(default_factory=lambda: SamplingStep.skipped(UNDECIDED))
    extension: ExtensionStep = Field(default_factory=lambda: ExtensionStep.skipped(UNDECIDED))

    def step(self, name: str) -> ToolStep:
        """The scene's step ``name`` (one of :data:`TOOL_FIELDS`)."""
        return getattr(self, name)

    def plan_view(self) -> dict[str, Any]:
        """The scene as ``plan --json`` shows it (the documented, stable shape)."""
        view: dict[str, Any] = {"prompt": self.prompt}
        for name in TOOL_FIELDS:
            view[name] = self.step(name).model_dump()
        return view


class Estimates(BaseModel):
    seconds: float
    peak_memory_gb: float
    device: str
    notes: str = ""


class SceneUpdate(BaseModel):
    """New tool decisions for one scene; :func:`merge_scenes` applies it to the scene list."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    index: int
    steps: dict[str, Any]


def merge_scenes(current: list[ScenePlan], update: list[ScenePlan] | list[SceneUpdate]) -> list[ScenePlan]:
    """The ``scenes`` reducer: a list of :class:`SceneUpdate` changes those scenes only (the GPU
    nodes work on one scene at a time); a list of scenes replaces the plan (the planning nodes
    decide for every scene at once)."""
    if update and all(isinstance(u, SceneUpdate) for u in update):
        scenes = list(current)
        for change in update:
            scenes[change.index] = scenes[change.index].model_copy(update=change.steps)
        return scenes
    return list(update)


class RunState(BaseModel):
    """Everything a run knows, checkpointable between nodes."""

    mode: Literal["plan", "generate"]
    request: RunRequest
    run_dir: str | None = None
    scenes: Annotated[list[ScenePlan], merge_scenes] = []
    estimates: Estimates | None = None
    scene_index: int = 0
    # LangGraph reducers: a node returns only the clips and warnings it adds, and a GPU node only
    # the scene it changed.
    clips: Annotated[list[ClipResult], operator.add] = []
    outputs: OutputFiles | None = None
    manifest_path: str | None = None
    timings: dict[str, float] = {}
    warnings: Annotated[list[str], operator.add] = []
    policy: dict[str, Any] = {}  # the rule review: what was available, the LLM's proposals, what changed
    origin: dict[str, Any] = {}  # where the request came from (a chat turn and its edits), for the manifest

    @property
    def scene(self) -> ScenePlan:
        """The scene the GPU nodes are working on."""
        return self.scenes[self.scene_index]

    def with_scene(self, index: int, **tools: ToolStep) -> list[SceneUpdate]:
        """The ``scenes`` update that replaces scene ``index``'s tool decisions (see :func:`merge_scenes`)."""
        for name, step in tools.items():  # refuse a wrong step here, in the node that made it
            if not isinstance(step, STEP_TYPES.get(name, ())):
                raise TypeError(f"scene step {name!r} takes a {STEP_TYPES.get(name)}, not {type(step)}")
        return [SceneUpdate(index=index, steps=tools)]

    def with_all_scenes(self, **tools: ToolStep) -> list[ScenePlan]:
        """The scene list with the same tool decision in every scene."""
        return [scene.model_copy(update=tools) for scene in self.scenes]

    def clip_request(
        self, scene: ScenePlan, num_frames: int | None = None, seed: int | None = None
    ) -> ClipRequest:
        """The sampling request for a scene's clip, from the run's options and the POS decisions.

        ``num_frames`` and ``seed`` default to the scene's; a long scene's clips
        pass their own (see :mod:`agent.long_video`).
        """
        rewritten = scene.rewrite.text if scene.rewrite.status == "done" else None
        return ClipRequest(
            prompt=scene.prompt,
            negative_prompt=self.request.negative_prompt,
            num_frames=scene.num_frames if num_frames is None else num_frames,
            num_inference_steps=self.request.num_inference_steps,
            guidance_scale=self.request.guidance_scale,
            eta=self.request.eta,
            seed=scene.seed if seed is None else seed,
            rewritten_prompt=rewritten,
            gamma=(scene.rewrite.gamma or 0.0) if rewritten else 0.0,
            noise=NoiseSpec.model_validate(scene.noise.spec or {}),
            **self._lora(scene),
        )

    @staticmethod
    def _lora(scene: ScenePlan) -> dict[str, Any]:
        """The scene's tuned motion LoRA for sampling, once ``tune_motion`` has made it."""
        if scene.tuning.status != "done":
            return {}
        tuning = scene.tuning
        return {
            "lora_path": tuning.lora_path,
            "lora_scale": 1.0 if tuning.lora_scale is None else tuning.lora_scale,
        }

    @property
    def work_dir(self) -> Path:
        """Where GPU nodes keep intermediate results (clip latents) until ``finalize``."""
        if self.run_dir is None:
            raise ReelgraphError("A generate run needs an output folder.", fix="pass --out DIR.")
        return Path(self.run_dir) / "work"

    def plan_view(self) -> dict[str, Any]:
        """``{"scenes": [...], "estimates": {...}, "policy": {...}}``: the plan's JSON.

        ``policy`` (the rule review, :mod:`agent.policies.tool_policy`) and ``understanding`` (how a
        chat message became scenes) appear once they exist.
        """
        estimates = (
            self.estimates.model_dump() if self.estimates else {"seconds": None, "peak_memory_gb": None}
        )
        view: dict[str, Any] = {
            "scenes": [scene.plan_view() for scene in self.scenes],
            "estimates": estimates,
        }
        if self.policy:
            view["policy"] = self.policy
        if self.origin.get("understanding"):
            view["understanding"] = self.origin["understanding"]
        return view
