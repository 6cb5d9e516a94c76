"""Model families: what ``model_index.json`` says a folder is, and what we can do with it.

The pipeline class (``_class_name``) and the components it lists decide the
family; each family declares what the planner needs without loading weights:
latent channels, spatial / temporal compression, text encoder and token
limit, default steps / guidance / flow shift, and which methods apply (with
the reason for each that does not). A folder of a family we do not sample is
refused by name, never with a layout error about a folder it lacks.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path

from reelgraph.errors import ReelgraphError

METHODS = ("hybrid", "ona", "npnet", "motion_lora", "extension", "image2video")


@dataclass(frozen=True)
class Family:
    """One model family and what reelgraph does with it."""

    name: str
    pipeline_classes: tuple[str, ...]
    sampler: str | None  # "ddim", "flow", or None: recognised but not sampled
    latent_channels: int
    spatial_compression: int
    temporal_compression: int
    text_encoder: str
    max_prompt_tokens: int
    default_steps: int
    default_guidance: float
    flow_shift: float | None
    unsupported: dict[str, str] = field(default_factory=dict)  # method -> why not

    @property
    def sampleable(self) -> bool:
        return self.sampler is not None

    def supports(self, method: str) -> bool:
        return method not in self.unsupported

    def frames_for(self, num_frames: int) -> int:
        """Video frames the VAE can produce nearest ``num_frames`` (``k·r + 1`` for temporal ratio ``r``)."""
        r = self.temporal_compression
        if r == 1:
            return num_frames
        return max(0, int((num_frames - 1) / r + 0.5)) * r + 1  # ties round up: more frames, not fewer

    def latent_frames(self, num_frames: int) -> int:
        """Latent frames of a ``num_frames`` clip: ``(F − 1) / r + 1`` for a causal 3-D VAE."""
        r = self.temporal_compression
        return num_frames if r == 1 else (num_frames - 1) // r + 1

    def refuse(self, method: str) -> None:
        """Raise a domain error when ``method`` does not run on this family."""
        if method in self.unsupported:
            raise ReelgraphError(
                f"{method} is not available for {self.name} models.",
                why=self.unsupported[method],
                fix=f"run without {method}, or use a family that supports it: "
                + ", ".join(f.name for f in FAMILIES if f.sampleable and f.supports(method))
                + ".",
            )


_NOT_PORTED = "not yet ported to the flow-matching loop (issue 16)"
_FLOW_PORTED = METHODS  # every method runs on our flow-matching loop (issue 16)
_TWO_EXPERT_LORA = (
    "a motion LoRA is tuned on one transformer; Wan 2.2's high- and low-noise experts would each need "
    "their own (not done yet)"
)
_NOT_SAMPLED = {m: "this family is recognised but not sampled yet" for m in METHODS}

# AnimateDiff (UNetMotionModel) runs our DDIM loop like UNet3D: parity with AnimateDiffPipeline, and every
# method in the table, are tested on it (tests/test_animatediff.py, tests/test_animatediff_methods.py).
_ANIMATEDIFF_UNSUPPORTED = {
    "image2video": "AnimateDiffPipeline has no image-conditioned layout (SparseCtrl is not loaded); "
    "the first latent frame is held instead",
}

UNET3D = Family(
    name="UNet3D text-to-video",
    pipeline_classes=("TextToVideoSDPipeline", "VideoToVideoSDPipeline"),
    sampler="ddim",
    latent_channels=4,
    spatial_compression=8,
    temporal_compression=1,
    text_encoder="CLIPTextModel",
    max_prompt_tokens=77,
    default_steps=25,
    default_guidance=9.0,
    flow_shift=None,
    unsupported={
        "image2video": "ModelScope has no image-conditioned layout; the first latent frame is held instead"
    },
)
# AnimateDiff is SD 1.5 with motion modules: UNet3D's latents, CLIP text encoder and DDIM.
ANIMATEDIFF = replace(
    UNET3D,
    name="AnimateDiff",
    pipeline_classes=("AnimateDiffPipeline",),
    default_guidance=7.5,
    unsupported=_ANIMATEDIFF_UNSUPPORTED,
)
WAN21 = Family(
    name="Wan 2.1",
    pipeline_classes=("WanPipeline",),
    sampler="flow",
    latent_channels=16,
    spatial_compression=8,
    temporal_compression=4,
    text_encoder="UMT5EncoderModel",
    max_prompt_tokens=512,
    default_steps=50,
    default_guidance=5.0,
    flow_shift=5.0,
    unsupported={m: _NOT_PORTED for m in METHODS if m not in _FLOW_PORTED},
)
# Wan 2.2 keeps 2.1's VAE, text encoder and layout; the A14B pair adds a low-noise expert.
WAN22 = replace(
    WAN21,
    name="Wan 2.2 (two experts)",
    default_steps=40,
    default_guidance=4.0,
    flow_shift=12.0,
    unsupported={**WAN21.unsupported, "motion_lora": _TWO_EXPERT_LORA},
)
WAN22_TI2V = replace(
    WAN21,
    name="Wan 2.2 TI2V (5B)",
    sampler=None,
    latent_channels=48,
    spatial_compression=16,
    unsupported={
        m: "recognised, not sampled yet: its 16x16 VAE (48 channels) and per-token timesteps "
        "(model_index expand_timesteps) are not in our flow loop"
        for m in METHODS
    },
)
LTX = Family(
    name="LTX-Video",
    pipeline_classes=("LTXPipeline", "LTXImageToVideoPipeline", "LTXConditionPipeline"),
    sampler=None,
    latent_channels=128,
    spatial_compression=32,
    temporal_compression=8,
    text_encoder="T5EncoderModel",
    max_prompt_tokens=128,
    default_steps=50,
    default_guidance=3.0,
    flow_shift=None,
    unsupported=_NOT_SAMPLED,
)
COGVIDEOX = Family(
    name="CogVideoX",
    pipeline_classes=("CogVideoXPipeline", "CogVideoXImageToVideoPipeline"),
    sampler=None,
    latent_channels=16,
    spatial_compression=8,
    temporal_compression=4,
    text_encoder="T5EncoderModel",
    max_prompt_tokens=226,
    default_steps=50,
    default_guidance=6.0,
    flow_shift=None,
    unsupported=_NOT_SAMPLED,
)
# The embedded default: a small Wan-layout transformer on the toy VAE's 8x8x4 latents, MiniLM text
# (toyworld/training/network.py trains it; generation/toy_flow.py loads it).
TOY_FLOW = Family(
    name="reelgraph toy flow",
    pipeline_classes=("ReelgraphToyFlow",),
    sampler="flow",
    latent_channels=4,
    spatial_compression=4,
    temporal_compression=1,
    text_encoder="sentence-transformers/all-MiniLM-L6-v2",
    max_prompt_tokens=32,
    default_steps=25,  # the settings default that `generate` samples with
    default_guidance=5.0,
    flow_shift=1.0,
    unsupported={},
)
FAMILIES = (TOY_FLOW, UNET3D, ANIMATEDIFF, WAN21, WAN22, WAN22_TI2V, LTX, COGVIDEOX)
_OTHER_VIDEO_PIPELINES = ("HunyuanVideoPipeline", "MochiPipeline", "AllegroPipeline", "LattePipeline")


def support_table() -> str:
    """The method-support table of every family, as Markdown (README's copy is kept equal by a test)."""
    header = ["family", "sampler", *METHODS]
    rows = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for family in FAMILIES:
        cells = [family.name, family.sampler or "not sampled"]
        cells += ["yes" if family.sampleable and family.supports(m) else "no" for m in METHODS]
        rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows)


def support_summary() -> str:
    """One line per family for ``doctor``: sampled (with which loop) or recognised only."""
    sampled = [f"{f.name} ({f.sampler})" for f in FAMILIES if f.sampleable]
    recognised = [f.name for f in FAMILIES if not f.sampleable]
    return f"sampled: {', '.join(sampled)}; recognised, not sampled: {', '.join(recognised)}"


def family_named(name: str | None) -> Family:
    """The family a :class:`~generation.model_info.ModelInfo` names (None: UNet3D, whose manifests predate families)."""
    return next((f for f in FAMILIES if f.name == name), UNET3D)


def _supported_summary() -> str:
    return ", ".join(f.name for f in FAMILIES if f.sampleable)


def family_of_index(index: dict) -> Family:
    """The family a ``model_index.json`` describes (raises for one we do not know)."""
    if not isinstance(index, dict):
        raise ReelgraphError(
            f"model_index.json holds a JSON {type(index).__name__}, not an object.",
            fix="repair or re-download the model.",
        )
    pipeline = str(index.get("_class_name", "?"))
    if pipeline == "WanPipeline":
        if index.get("expand_timesteps"):
            return WAN22_TI2V
        two_experts = index.get("boundary_ratio") is not None and _component(index, "transformer_2")
        return WAN22 if two_experts else WAN21
    for family in FAMILIES:
        if pipeline in family.pipeline_classes:
            return family
    if "unet" in index and "transformer" not in index:
        return UNET3D if _component(index, "unet") == "UNet3DConditionModel" else ANIMATEDIFF
    known = (
        " (a video model family reelgraph does not know yet)" if pipeline in _OTHER_VIDEO_PIPELINES else ""
    )
    raise ReelgraphError(
        f"The model's pipeline {pipeline}{known} is not one reelgraph recognises.",
        why=f"reelgraph samples: {_supported_summary()}.",
        fix="use a folder in one of those layouts, or 'toy' for the embedded model.",
    )


def _component(index: dict, name: str) -> str | None:
    """The class of component ``name`` (``"unet": ["diffusers", "UNet3DConditionModel"]``), or None."""
    entry = index.get(name)
    if isinstance(entry, list) and len(entry) == 2 and isinstance(entry[1], str):
        return entry[1]
    return None


def family_of(folder: Path) -> Family:
    """The family of a model folder, from its ``model_index.json``."""
    try:
        index = json.loads((Path(folder) / "model_index.json").read_text())
    except FileNotFoundError as error:
        raise ReelgraphError(
            f"{folder} has no model_index.json.",
            why="a model folder must be in a diffusers pipeline layout.",
            fix="point --model at such a folder or a hub id, or use 'toy' for the embedded model.",
        ) from error
    except json.JSONDecodeError as error:
        raise ReelgraphError(
            f"{folder}/model_index.json is not valid JSON: {error}.", fix="repair it."
        ) from error
    return family_of_index(index)


def require_sampleable(family: Family, model_id: str, sampler: str | None = None) -> None:
    """Refuse a family we do not sample (or do not sample with ``sampler``) by name."""
    if family.sampleable and (sampler is None or family.sampler == sampler):
        return
    raise ReelgraphError(
        f"Model {model_id!r} is a {family.name} model, which reelgraph recognises but "
        + ("cannot sample yet." if not family.sampleable else "samples only through the flow-matching path."),
        why=f"reelgraph samples: {_supported_summary()}.",
        fix="use a model of a sampled family, or 'toy' for the embedded model.",
    )
