"""Fine-tune a temporal LoRA on the scene's motion-prior video when the plan asks (Search-T2V §4.3)."""

from __future__ import annotations

from typing import Any

from agent.services import Services
from agent.state import RunState, ScenePlan
from agent.steps import TuningStep
from reelgraph.errors import ReelgraphError
from reelgraph.text.units import ParsedPrompt


def plan_tuning(scene: ScenePlan, services: Services) -> TuningStep:
    """The scene's tuning decision: the tuner's policy, its video, keyframes, cache key and estimate."""
    if services.tuner is None:
        return TuningStep.skipped("no motion tuner is available to this graph")
    refusal = services.generator.model_info.refusal("motion_lora")
    if refusal is not None:
        return TuningStep.skipped(f"motion LoRA is not available for this model ({refusal})")
    units, references = scene.units, scene.references
    parsed = (
        ParsedPrompt(text=scene.prompt, units=units.items, core=units.core)
        if units.status == "done" and units.items is not None
        else None
    )
    hits = references.motion_hits if references.status == "done" else None
    step = services.tuner.plan_scene(scene.prompt, parsed, hits, references.reason or "no pool search ran")
    return TuningStep(**step)


def tune_motion(state: RunState, services: Services) -> dict[str, Any]:
    """Run the scene's planned motion tuning (or reuse its cached LoRA); other scenes pass through."""
    scene = state.scene
    if scene.tuning.status != "planned":
        return {}
    if services.tuner is None:
        raise ReelgraphError(
            f"Scene {scene.index + 1} plans motion tuning, but no tuner service was given to the graph.",
            fix="build the graph with a motion tuner, or plan without tuning.",
        )
    outcome = services.tuner.tune(scene.tuning.model_dump())
    tuning = scene.tuning.model_copy(
        update={
            "status": "done",
            "lora_path": outcome["lora_path"],
            "cache_hit": outcome["cache_hit"],
            "seconds": outcome["seconds"],
            "train_seconds": outcome.get("train_seconds", 0.0),
            "loss": outcome["loss"],
        }
    )
    return {"scenes": state.with_scene(scene.index, tuning=tuning)}
