"""Graph routing with a fake generator: plan stops before GPU nodes; scenes loop; timings and reasons recorded."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.graph import build_graph, route_after_planning, route_next_scene
from agent.services import Services
from agent.state import RunRequest, RunState, ScenePlan, SceneRequest
from generation.clip_plan import ExtensionParams
from generation.model_info import ModelInfo
from reelgraph.contracts.clips import ClipRequest, ClipResult
from reelgraph.errors import ReelgraphError

INFO = ModelInfo(
    model_id="fake",
    path="/fake",
    weights_hash="0" * 16,
    unet_class="UNet3DConditionModel",
    scheduler_class="DDIMScheduler",
    num_frames=8,
    height=32,
    width=32,
    fps=8,
    guidance_scale=7.0,
    text_encoder="MiniLM",
    max_prompt_tokens=32,
    unet_parameters=1_000_000,
    unet_max_channels=128,
    latent_channels=4,
    vae_scale_factor=4,
)


class FakeGenerator:
    model_info = INFO

    def __init__(self):
        self.sampled: list[ClipRequest] = []
        self.extensions: list = []  # the ClipStartSpec of each sampled clip (None for plain clips)
        self.written: list[list[Path]] = []
        self.kept: list = []

    def default_guidance(self) -> float:
        return 7.0

    def check_clip(self, request: ClipRequest) -> None:
        if request.num_frames > 8:
            raise ReelgraphError("too long")

    def sample_clip(
        self, request: ClipRequest, latents_path: Path, label: str = "sampling", extension=None
    ) -> ClipResult:
        self.sampled.append(request)
        self.extensions.append(extension)
        latents_path.parent.mkdir(parents=True, exist_ok=True)
        latents_path.write_bytes(b"latents")
        handoff = extension.handoff_path if extension else None
        if handoff:
            Path(handoff).write_bytes(b"handoff")
        return ClipResult(
            latents_path=str(latents_path),
            num_frames=request.num_frames,
            seed=request.seed,
            seconds=0.1,
            start=extension.start if extension else "noise",
            handoff_path=handoff,
        )

    def write_outputs(self, latents_paths, run_dir, caption, kept=None) -> dict:
        self.written.append(list(latents_paths))
        self.kept.append(kept)
        for name in ("video.mp4", "video.gif", "sheet.png"):
            (run_dir / name).write_bytes(b"x")
        return {
            "video": str(run_dir / "video.mp4"),
            "gif": str(run_dir / "video.gif"),
            "sheet": str(run_dir / "sheet.png"),
            "num_frames": 8 * len(latents_paths),
            "height": 32,
            "width": 32,
            "fps": 8,
        }

    def scheduler_config(self) -> dict:
        return {"_class_name": "DDIMScheduler"}


def _state(mode, prompts, run_dir=None, **extension):
    request = RunRequest(
        scenes=[SceneRequest(prompt=p) for p in prompts],
        seed=100,
        num_inference_steps=5,
        guidance_scale=7.0,
        extension=ExtensionParams(**extension),
    )
    return RunState(mode=mode, request=request, run_dir=run_dir)


def test_plan_stops_before_gpu_nodes():
    generator = FakeGenerator()
    result = RunState.model_validate(
        build_graph(Services(generator)).invoke(_state("plan", ["a red ball rolls"]))
    )
    assert generator.sampled == [] and generator.written == []
    assert set(result.timings) == {
        "understand_request",
        "parse_units",
        "retrieve",
        "rewrite",
        "choose_noise",
        "estimate_costs",
        "review_tools",
    }
    (scene,) = result.scenes
    assert scene.sampling.status == "planned" and scene.noise.source == "random"
    assert scene.rewrite.status == "skipped" and "POS" in scene.rewrite.reason
    assert result.estimates.seconds > 0


def test_generate_loops_over_scenes_with_their_seeds(tmp_path):
    generator = FakeGenerator()
    state = _state(
        "generate",
        ["a red ball rolls", "the red ball bounces", "it stops"],
        run_dir=str(tmp_path),
        continue_scenes=False,  # independent scenes: one clip each (continuation: test_long_video_graph.py)
    )
    result = RunState.model_validate(build_graph(Services(generator)).invoke(state))
    assert [r.prompt for r in generator.sampled] == ["a red ball rolls", "the red ball bounces", "it stops"]
    assert [r.seed for r in generator.sampled] == [100, 101, 102]
    assert len(generator.written) == 1 and len(generator.written[0]) == 3
    assert all(scene.sampling.status == "done" for scene in result.scenes)
    assert (tmp_path / "manifest.json").is_file()
    assert not (tmp_path / "work").exists()


def test_invalid_scene_fails_during_planning(tmp_path):
    generator = FakeGenerator()
    # 20 frames need clip extension; 8 prompt frames cannot fit in the fake model's 8-frame clips.
    state = _state("generate", ["a ball"], run_dir=str(tmp_path), prompt_frames=8)
    state.request.scenes[0].num_frames = 20
    with pytest.raises(ReelgraphError, match="do not fit"):
        build_graph(Services(generator)).invoke(state)
    assert generator.sampled == []


def test_routers_return_their_literals():
    assert route_after_planning(_state("plan", ["x"])) == "__end__"
    assert route_after_planning(_state("generate", ["x"])) == "tune_motion"
    scenes = [ScenePlan(index=i, prompt=p, num_frames=8, seed=i) for i, p in enumerate("xy")]
    state = _state("generate", ["x", "y"]).model_copy(update={"scene_index": 1, "scenes": scenes})
    assert route_next_scene(state) == "tune_motion"
    assert route_next_scene(state.model_copy(update={"scene_index": 2})) == "finalize"


def test_state_is_plain_json():
    state = RunState.model_validate(build_graph(Services(FakeGenerator())).invoke(_state("plan", ["a ball"])))
    assert RunState.model_validate_json(state.model_dump_json()) == state


class FakeParsed:
    def __init__(self, text):
        self.units = [FakeModel({"motion": "roll", "actor": "ball", "recipient": None})] if text else []
        self.core = 0 if text else None


class FakeModel:
    def __init__(self, data):
        self.data = data

    def model_dump(self, mode="python"):
        return self.data


class FakeParser:
    def parse(self, text):
        return FakeParsed(text)


class FakeRetriever:
    location = "memory://fake"

    unavailable = None

    def __init__(self, size):
        self.size = size
        self.asked = []

    def pool_size(self):
        return self.size

    def retrieve(self, prompt):
        self.asked.append(prompt)
        hit = {"id": "toy:1", "caption": "a ball rolls right", "video": "/v/1.mp4", "similarity": 0.9}
        return FakeModel(
            {"references": [hit], "motion_hits": [hit], "nearest": hit, "timings_ms": {"ann": 1.0}}
        )


def test_units_and_references_are_recorded_per_scene():
    retriever = FakeRetriever(size=3)
    services = Services(FakeGenerator(), parser=FakeParser(), retriever=retriever)
    result = RunState.model_validate(
        build_graph(services).invoke(_state("plan", ["a ball rolls", "it stops"]))
    )
    assert retriever.asked == ["a ball rolls", "it stops"]
    scene = result.scenes[0]
    assert scene.units.status == "done" and scene.units.items[0]["motion"] == "roll" and scene.units.core == 0
    assert scene.references.status == "done" and "pool of 3 videos" in scene.references.reason
    assert scene.references.nearest["caption"] == "a ball rolls right"
    assert scene.references.motion_hits[0]["video"] == "/v/1.mp4"


def test_an_empty_pool_is_skipped_with_a_hint():
    retriever = FakeRetriever(size=0)
    services = Services(FakeGenerator(), parser=FakeParser(), retriever=retriever)
    result = RunState.model_validate(build_graph(services).invoke(_state("plan", ["a ball rolls"])))
    assert retriever.asked == []
    step = result.scenes[0].references
    assert step.status == "skipped" and "index toy" in step.reason and "memory://fake" in step.reason
