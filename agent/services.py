"""The services the graph's nodes call, passed in when the graph is built.

Nodes never build a model or a client: they get these objects. Each is a
Protocol, so tests hand in fakes and the agent package imports no torch.
A service that is ``None`` is not available, and its node routes around
itself, recording why.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from agent.llm.llm_client import LLMClient
from agent.policies.pos_policy import NoiseSupport, PosPolicy
from generation.clip_plan import ClipStartSpec
from generation.model_info import ModelInfo
from reelgraph.contracts.clips import ClipRequest, ClipResult

if TYPE_CHECKING:  # annotations only: the concrete services load torch, spaCy and MiniLM
    from generation.service import GenerationService
    from motion_prior.service import PoolRetrieval
    from reelgraph.text.models import TextModels


class VideoGenerator(Protocol):
    """Samples clips and writes viewing files (implemented by ``generation.service``)."""

    @property
    def model_info(self) -> ModelInfo: ...

    def default_guidance(self) -> float: ...

    def check_clip(self, request: ClipRequest) -> None: ...

    def sample_clip(
        self,
        request: ClipRequest,
        latents_path: Path,
        label: str = ...,
        extension: ClipStartSpec | None = ...,
    ) -> ClipResult: ...

    def write_outputs(
        self,
        latents_paths: list[Path],
        run_dir: Path,
        caption: str,
        kept: list[tuple[int, int] | None] | None = ...,
    ) -> dict: ...

    def scheduler_config(self) -> dict: ...


class MotionTuner(Protocol):
    """Plans and runs motion-prior tuning (implemented by ``motion_prior.tuner.MotionTuner``)."""

    def plan_scene(
        self, prompt: str, units: dict[str, Any] | None, references: dict[str, Any] | None
    ) -> dict[str, Any]: ...

    def tune(self, job: dict[str, Any]) -> dict[str, Any]: ...


class UnitParser(Protocol):
    """Atomized units of a prompt: ``parse(text)`` returns a pydantic model with ``units`` and ``core``."""

    def parse(self, text: str) -> Any: ...


class Retriever(Protocol):
    """The reference pool: ``retrieve(prompt)`` returns a pydantic model with ``references``,
    ``motion_hits`` and ``nearest``."""

    location: str
    unavailable: str | None  # why the pool could not be reached (its server is down), else None

    def pool_size(self) -> int: ...

    def retrieve(self, prompt: str) -> Any: ...


class PromptRewriter(Protocol):
    """Reference-guided rewriting behind the semantic guard (``agent.rewriting.rewriter.Rewriter``)."""

    def rewrite(self, prompt: str, references: list[str]): ...

    def needs_references(self) -> bool: ...


class ToolAdvisor(Protocol):
    """Proposes tool choices per scene (``agent.llm.tool_advisor.LLMToolAdvisor``); rules decide."""

    name: str

    def propose(self, summary: dict[str, Any]) -> tuple[Any, Any]: ...


@dataclass
class Services:
    """What a graph can use. Only ``generator`` is required (a plan reads its model info).

    :func:`agent.composition.build_services` fills every field; tests hand in fakes. ``llm``,
    ``text``, ``pool`` and ``generation`` are the shared objects behind the nodes' services, for the
    commands that work on them directly (indexing, inversion, NPNet training, tuning).
    """

    generator: VideoGenerator
    device: str = "auto"
    parser: UnitParser | None = None
    retriever: Retriever | None = None
    rewriter: PromptRewriter | None = None
    noise: NoiseSupport | None = None
    pos: PosPolicy = field(default_factory=PosPolicy)
    tuner: MotionTuner | None = None
    advisor: ToolAdvisor | None = None
    llm: LLMClient | None = None
    text: TextModels | None = None
    pool: PoolRetrieval | None = None
    generation: GenerationService | None = None
