"""Long videos through the graph with a fake generator: planned clips, extension calls, continuation, manifest."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest

from agent.graph import build_graph
from agent.services import Services
from agent.state import RunRequest, RunState, SceneRequest
from generation.clip_plan import ExtensionParams
from reelgraph.errors import ReelgraphError
from tests.test_graph import FakeGenerator  # clips of 8 frames


def run(run_mode, scenes, tmp_path=None, **extension):
    request = RunRequest(
        scenes=scenes,
        seed=100,
        num_inference_steps=5,
        guidance_scale=7.0,
        extension=ExtensionParams(**extension),
        max_frames=200,
    )
    generator = FakeGenerator()
    state = RunState(mode=run_mode, request=request, run_dir=str(tmp_path) if tmp_path else None)
    return generator, RunState.model_validate(build_graph(Services(generator)).invoke(state))


def test_plan_records_extension_clips_and_time():
    _, short = run("plan", [SceneRequest(prompt="a red ball rolls", num_frames=8)])
    _, state = run("plan", [SceneRequest(prompt="a red ball rolls", num_frames=20)])
    (scene,) = state.scenes
    ext = scene.extension.model_dump()
    assert ext["status"] == "planned" and ext["num_clips"] == 4 and ext["method"] == "FNR+PNS+DSG"
    assert "M=4" in ext["reason"] and "β=0.4" in ext["reason"]
    assert [c["kept"] for c in ext["clips"]] == [[0, 8], [4, 8], [4, 8], [4, 8]]
    assert scene.sampling.model_dump()["num_frames"] == 8
    assert ext["estimated_seconds"] > 0
    assert state.estimates.seconds == pytest.approx(4 * short.estimates.seconds, rel=0.05)
    assert short.scenes[0].extension.status == "skipped"


def test_generate_extends_clip_by_clip(tmp_path):
    generator, state = run("generate", [SceneRequest(prompt="a red ball rolls", num_frames=20)], tmp_path)
    assert [r.num_frames for r in generator.sampled] == [8, 8, 8, 8]
    assert next(r.seed for r in generator.sampled) == 100 and len({r.seed for r in generator.sampled}) == 4
    specs = generator.extensions
    assert specs[0].start == "noise" and specs[0].previous_path is None and specs[0].handoff_path
    for before, spec in itertools.pairwise(specs):
        assert spec.start == "previous_clip" and spec.previous_path == before.handoff_path
    assert specs[-1].handoff_path is None  # nothing follows the last clip
    assert generator.kept == [[(0, 8), (4, 8), (4, 8), (4, 8)]]
    assert state.scenes[0].extension.status == "done"
    manifest = json.loads(Path(state.manifest_path).read_text())
    section = manifest["long_video"]
    assert section["params"]["prompt_frames"] == 4 and section["params"]["alpha"] == 4.0
    assert [c["kept"] for c in section["clips"]] == [[0, 8], [4, 8], [4, 8], [4, 8]]
    assert [c["seed"] for c in section["clips"]] == manifest["seeds"]["clips"]


def test_scenes_continue_from_the_previous_scene(tmp_path):
    scenes = [
        SceneRequest(prompt="a red ball rolls to the right", num_frames=8),
        SceneRequest(prompt="the red ball bounces", num_frames=8),
    ]
    generator, state = run("generate", scenes, tmp_path)
    assert [r.prompt for r in generator.sampled] == [
        "a red ball rolls to the right",
        "the red ball bounces",
        "the red ball bounces",
    ]
    first, second, third = generator.extensions
    assert first.handoff_path and second.start == "previous_scene"
    assert second.previous_path == first.handoff_path and third.start == "previous_clip"
    assert generator.kept == [[(0, 8), (4, 8), (4, 8)]]
    assert "continues scene 1" in state.scenes[1].extension.reason

    generator, _ = run("generate", scenes, tmp_path / "independent", continue_scenes=False)
    assert generator.extensions == [None, None]  # two plain clips, as before long videos


def test_independent_baseline_and_anchor(tmp_path):
    generator, _ = run(
        "generate", [SceneRequest(prompt="a ball", num_frames=20)], tmp_path, mode="independent"
    )
    assert generator.kept == [[(0, 8), (0, 8), (0, 4)]]
    assert all(spec is None or spec.start == "noise" for spec in generator.extensions)
    generator, _ = run(
        "generate", [SceneRequest(prompt="a ball", num_frames=12)], tmp_path / "a", anchor=True
    )
    roles = [spec.anchor_role for spec in generator.extensions]
    assert roles == ["record", "apply"]
    assert generator.extensions[0].anchor_path == generator.extensions[1].anchor_path


def test_too_long_video_is_refused_in_planning(tmp_path):
    with pytest.raises(ReelgraphError, match="250 frames were asked for; the limit is 200"):
        run("plan", [SceneRequest(prompt="a ball", num_frames=250)])
