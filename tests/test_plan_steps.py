"""Typed plan steps (agent/steps.py) and the caching generator's explicit delegation."""

from __future__ import annotations

import inspect

import pytest
from pydantic import ValidationError

from agent.caches import CachingGenerator
from agent.services import VideoGenerator
from agent.state import TOOL_FIELDS, ScenePlan
from agent.steps import STEP_TYPES, NoiseStep, ReferencesStep, TuningStep


def test_every_scene_field_has_its_own_step_type():
    assert set(TOOL_FIELDS) == set(STEP_TYPES)
    for name, step_type in STEP_TYPES.items():
        assert ScenePlan.model_fields[name].annotation is step_type


def test_a_step_refuses_fields_it_does_not_declare():
    with pytest.raises(ValidationError):
        ReferencesStep(status="done", reason="", motion_hitz=[])


def test_a_step_serialises_only_the_fields_that_were_set():
    assert NoiseStep.skipped("off").model_dump() == {"status": "skipped", "reason": "off"}
    step = NoiseStep(status="done", reason="ona", source="ona", video_id=None)
    assert step.model_dump() == {"status": "done", "reason": "ona", "source": "ona", "video_id": None}
    done = TuningStep(status="planned", reason="r").model_copy(update={"status": "done", "lora_path": "/x"})
    assert done.model_dump() == {"status": "done", "reason": "r", "lora_path": "/x"}


def test_a_scene_round_trips_through_json_unchanged():
    scene = ScenePlan(
        index=0,
        prompt="a ball",
        num_frames=8,
        seed=1,
        references=ReferencesStep(status="done", reason="1 hit", nearest={"id": "toy:1"}, motion_hits=[]),
    )
    again = ScenePlan.model_validate_json(scene.model_dump_json())
    assert again.plan_view() == scene.plan_view()
    assert again.references.nearest == {"id": "toy:1"}


def test_the_caching_generator_delegates_the_protocol_explicitly():
    assert "__getattr__" not in vars(CachingGenerator)
    members = [n for n in vars(VideoGenerator) if not n.startswith("_")]
    assert {"model_info", "sample_clip", "check_clip", "write_outputs"} <= set(members)
    for name in members:
        assert name in vars(CachingGenerator), f"CachingGenerator does not offer {name}"
        if callable(vars(VideoGenerator)[name]):
            wanted = list(inspect.signature(vars(VideoGenerator)[name]).parameters)
            have = list(inspect.signature(vars(CachingGenerator)[name]).parameters)
            assert have[: len(wanted)] == wanted or "extra" in have, name


def test_updating_a_step_validates_the_update():
    step = TuningStep(status="planned", reason="r", estimated_seconds=3.0)
    with pytest.raises(ValidationError):
        step.model_copy(update={"status": "done", "lora_pth": "/x"})
    done = step.model_copy(update={"status": "done", "seconds": 2.0})
    assert done.model_dump() == {"status": "done", "reason": "r", "estimated_seconds": 3.0, "seconds": 2.0}


def test_cache_kinds_come_from_the_owning_layers_registry():
    from agent.caches import KINDS
    from generation.inversion_cache import INVERSIONS
    from motion_prior.tuning import LORAS
    from reelgraph.cache_kinds import CacheKind, lookup, register
    from reelgraph.errors import ReelgraphError

    assert KINDS == ("llm", "retrievals", "inversions", "lora", "clips")
    assert lookup("inversions") is INVERSIONS and lookup("lora") is LORAS
    with pytest.raises(ReelgraphError):
        register(CacheKind("lora", "entry_folders", rank=1, owner="elsewhere"))


def test_the_scenes_reducer_changes_one_scene_or_replaces_the_plan():
    from agent.state import ScenePlan, SceneUpdate, merge_scenes
    from agent.steps import TuningStep

    scenes = [ScenePlan(index=i, prompt=f"scene {i}", num_frames=8, seed=i) for i in range(3)]
    tuned = TuningStep.skipped("not rare")
    merged = merge_scenes(scenes, [SceneUpdate(index=1, steps={"tuning": tuned})])
    assert merged[1].tuning == tuned and merged[0] is scenes[0] and merged[2] is scenes[2]
    assert scenes[1].tuning != tuned  # the old list is untouched
    assert merge_scenes(scenes, scenes[:1]) == scenes[:1]  # a list of scenes is the new plan
