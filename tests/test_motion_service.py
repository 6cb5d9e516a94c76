"""The motion tuner end to end on a tiny model: policy, plan, cache, sampling with the LoRA, graph, CLI."""

from __future__ import annotations

import json

import pytest
import torch
from typer.testing import CliRunner

import cli
from agent import runner
from agent.services import Services
from generation.service import GenerationService
from motion_prior.search import MotionHit, RetrievalResult, ScoreBreakdown
from motion_prior.service import UnitParsing
from motion_prior.tuner import MotionTuner, detection_queries, mentions, third_person, training_prompt
from reelgraph.contracts.clips import ClipRequest
from reelgraph.settings import Settings
from reelgraph.text.models import TextModels
from reelgraph.text.units import ParsedPrompt, Unit
from tests.motion_helpers import toy_video, tunable_model_dir

TEXT = TextModels()  # the suite shares one parser, as a run does
PROMPT = "a red ball zigzags to the right on the grass"


pytestmark = pytest.mark.usefixtures("one_torch_thread")


class OneHitRetriever:
    """Stands in for the pool search: always the same motion-prior hit."""

    def __init__(self, video: str):
        self.hit = MotionHit(
            id="toy:zz01",
            videoid="zz01",
            pool="toy",
            caption="a green ball zigzags along",
            video=video,
            score=ScoreBreakdown(total=3.1, sentence=0.8, motion=1.0, actor=1.0, recipient=1.0, units=0.6),
            metadata={},
            units=[Unit(motion="zigzag", actor="ball", motion_phrase="zigzag along", actor_phrase="ball")],
            core=0,
        )
        self.calls = 0

    def search(self, prompt: str, k: int | None = None):
        self.calls += 1
        return [self.hit]


class OneHitPool:
    """Stands in for the agent's pool retrieval service (the retrieve node's side)."""

    location = "<test pool>"
    unavailable = None

    def __init__(self, video: str):
        self.hit = OneHitRetriever(video).hit

    def pool_size(self) -> int:
        return 1

    def retrieve(self, prompt: str) -> RetrievalResult:
        return RetrievalResult(
            prompt=prompt,
            units=[],
            core=None,
            references=[],
            motion_hits=[self.hit],
            nearest=None,
            timings_ms={},
        )


@pytest.fixture(scope="module")
def model_dir(tiny_model_dir, tmp_path_factory):
    return tunable_model_dir(tiny_model_dir, tmp_path_factory.mktemp("tunable") / "model")


@pytest.fixture(scope="module")
def pool_video(tmp_path_factory):
    return toy_video(tmp_path_factory.mktemp("pool") / "zz01.mp4")


def _settings(home, model_dir, **extra) -> Settings:
    values = {"model": str(model_dir), "tune_steps": 2, "num_inference_steps": 2, "seed": 3, **extra}
    return Settings(home=home, **values)


def _tuner(settings, video):
    generator = GenerationService(settings)
    return MotionTuner(settings, generator, OneHitRetriever(str(video)), TEXT.parser), generator


def test_words():
    assert [third_person(v) for v in ("zigzag", "push", "fly", "play", "go")] == [
        "zigzags",
        "pushes",
        "flies",
        "plays",
        "goes",
    ]
    assert mentions("a box moves in a zig-zag", "zigzag") and mentions("zigzagging ball", "zigzag")
    assert not mentions("a ball rolls", "zigzag")
    parsed = ParsedPrompt(
        text="a red ball pushes a blue box",
        units=[
            Unit(
                motion="push",
                actor="ball",
                recipient="box",
                motion_phrase="push",
                actor_phrase="ball",
                recipient_phrase="box",
            )
        ],
        core=0,
    )
    assert training_prompt(parsed) == "a ball pushes a box"
    orb = ParsedPrompt(
        text="a red orb zigzags",
        units=[Unit(motion="zigzag", motion_phrase="zigzag", actor_phrase="orb")],
        core=0,
    )
    assert training_prompt(orb) == "an orb zigzags"
    assert training_prompt(ParsedPrompt(text="sunset over the sea")) == "sunset over the sea"


def test_policy(tmp_path, model_dir, pool_video):
    tuner, _ = _tuner(_settings(tmp_path, model_dir), pool_video)
    decision = tuner.decide(PROMPT)
    assert decision.wanted and decision.rare_motion == "zigzag" and "planning.json" in decision.reason
    assert not tuner.decide("a red ball rolls to the left").wanted
    always, _ = _tuner(_settings(tmp_path, model_dir, motion_tuning="always"), pool_video)
    assert always.decide("a red ball rolls to the left").wanted
    never, _ = _tuner(_settings(tmp_path, model_dir, motion_tuning="never"), pool_video)
    assert not never.decide(PROMPT).wanted
    custom, _ = _tuner(_settings(tmp_path, model_dir, rare_motions="orbit, spin"), pool_video)
    assert custom.decide("a box spins").wanted and not custom.decide(PROMPT).wanted


def test_queries_come_from_the_matched_units_of_the_video(pool_video):
    parsed = ParsedPrompt(
        text=PROMPT, units=[Unit(motion="zigzag", actor="ball", actor_phrase="ball")], core=0
    )
    hit = OneHitRetriever(str(pool_video)).hit.model_dump()
    tuner = MotionTuner.__new__(MotionTuner)
    assert detection_queries(parsed, tuner.video_from_hit(hit)) == ["ball"]


def test_tune_caches_and_sampling_leaves_the_base_model_unchanged(tmp_path, model_dir, pool_video):
    settings = _settings(tmp_path / "home", model_dir)
    tuner, generator = _tuner(settings, pool_video)
    job = tuner.plan(PROMPT)
    assert job.video.id == "toy:zz01" and job.training_prompt == "a ball zigzags to the right"
    assert job.keyframes.found == {"ball": 4} and job.keyframes.fallback is None
    assert len(job.keyframes.indices) == 4 and not job.cached and job.estimated_seconds > 0
    assert job.cache_path.startswith(str(tmp_path / "home" / "cache" / "lora"))

    unet = generator.model.unet
    before = {k: v.clone() for k, v in unet.state_dict().items()}
    first = tuner.run(job)
    assert not first.cache_hit and first.lora_path == job.cache_path
    record = json.loads((tmp_path / "home" / "cache" / "lora" / f"{job.key}.json").read_text())
    assert record["job"]["video"]["id"] == "toy:zz01" and len(record["losses"]) == 2

    again = tuner.plan(PROMPT)
    assert again.key == job.key and again.cached and again.estimated_seconds == 0
    second = tuner.run(again)
    assert second.cache_hit and second.lora_path == first.lora_path
    # A different config is a different LoRA.
    assert tuner.plan(PROMPT, steps=3).key != job.key

    request = ClipRequest(prompt=PROMPT, num_frames=4, num_inference_steps=2, guidance_scale=3.0, seed=1)
    plain = generator.sample_clip(request, tmp_path / "plain.safetensors")
    tuned = generator.sample_clip(
        request.model_copy(update={"lora_path": first.lora_path}), tmp_path / "tuned.safetensors"
    )
    from safetensors.torch import load_file

    a, b = (load_file(r.latents_path)["latents"] for r in (plain, tuned))
    assert not torch.equal(a, b)  # the LoRA was applied while sampling
    state = unet.state_dict()
    assert state.keys() == before.keys() and all(torch.equal(state[k], before[k]) for k in before)
    replay = generator.sample_clip(request, tmp_path / "replay.safetensors")
    assert torch.equal(load_file(replay.latents_path)["latents"], a)  # and removed afterwards


def test_graph_plans_tunes_and_records_the_cache_hit(tmp_path, model_dir, pool_video):
    settings = _settings(tmp_path / "home", model_dir)
    generator = GenerationService(settings)
    tuner = MotionTuner(
        settings, generator, None, TEXT.parser
    )  # the video comes from the retrieve node's motion hits
    services = Services(
        generator=generator,
        device="cpu",
        parser=UnitParsing(TEXT),
        retriever=OneHitPool(str(pool_video)),
        tuner=tuner,
    )

    plan = runner.plan(settings, PROMPT, services=services).plan_view()
    tuning = plan["scenes"][0]["tuning"]
    assert tuning["status"] == "planned" and "zigzag" in tuning["reason"]
    span = tuning["keyframes"]["span"]
    assert (
        tuning["video"]["id"] == "toy:zz01"
        and span[1] - span[0] == 3
        and f"{span[0]}-{span[1]}" in tuning["reason"]
    )
    assert tuning["config"]["steps"] == 2 and tuning["estimated_seconds"] > 0
    assert plan["estimates"]["seconds"] >= tuning["estimated_seconds"]

    manifests = []
    for name in ("first", "second"):
        state = runner.generate(settings, PROMPT, tmp_path / name, services=services)
        manifests.append(json.loads((tmp_path / name / "manifest.json").read_text()))
        assert state.clips[0].latents_path
    first, second = (m["plan"]["scenes"][0]["tuning"] for m in manifests)
    assert first["status"] == second["status"] == "done"
    assert first["key"] == second["key"] and first["cache_hit"] is False and second["cache_hit"] is True
    assert first["lora_path"] == second["lora_path"]
    assert (
        0 < first["train_seconds"] <= first["seconds"] and second["train_seconds"] == second["seconds"] == 0
    )
    assert "tune_motion" in manifests[0]["timings"]

    # A prompt without a rare motion plans no tuning, with the reason; so does a rare one without a pool.
    rolling = runner.plan(settings, "a red ball rolls to the left", services=services).plan_view()
    step = rolling["scenes"][0]["tuning"]
    assert step["status"] == "skipped" and "not rare" in step["reason"]
    no_pool = Services(generator=generator, device="cpu", parser=UnitParsing(TEXT), tuner=tuner)
    step = runner.plan(settings, PROMPT, services=no_pool).plan_view()["scenes"][0]["tuning"]
    assert step["status"] == "skipped" and "no motion-prior video" in step["reason"]
    assert not (tmp_path / "home" / "chroma").exists()


def test_every_clip_of_an_extended_scene_samples_with_the_lora(tmp_path, model_dir, pool_video):
    """A scene longer than one clip: the extension clips carry the LoRA too, and the base model is untouched."""
    settings = _settings(tmp_path / "home", model_dir, num_frames=7)
    generator = GenerationService(settings)
    services = Services(
        generator=generator,
        device="cpu",
        parser=UnitParsing(TEXT),
        retriever=OneHitPool(str(pool_video)),
        tuner=MotionTuner(settings, generator, None, TEXT.parser),
    )
    before = {k: v.clone() for k, v in generator.model.unet.state_dict().items()}
    calls = []
    sample_clip = generator.sample_clip

    def recording(request, path, label="sampling", extension=None):
        calls.append((request.lora_path, extension is not None))
        return sample_clip(request, path, label=label, extension=extension)

    generator.sample_clip = recording
    runner.generate(settings, PROMPT, tmp_path / "run", services=services)
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    lora = manifest["plan"]["scenes"][0]["tuning"]["lora_path"]
    assert len(calls) >= 2 and any(extended for _, extended in calls)
    assert all(path == lora for path, _ in calls)
    state = generator.model.unet.state_dict()
    assert all(torch.equal(state[k], before[k]) for k in before)


def test_cli_tune_reports_miss_then_hit(tmp_path, model_dir, pool_video, monkeypatch):
    monkeypatch.setenv("REELGRAPH_HOME", str(tmp_path / "home"))
    args = ["tune", "--prompt", PROMPT, "--video", str(pool_video), "--steps", "2", "--model", str(model_dir)]
    first = CliRunner().invoke(cli.app, args)
    assert first.exit_code == 0, first.output
    assert "cache miss" in first.output and "zz01" in first.output
    second = CliRunner().invoke(cli.app, [*args, "--json"])
    assert second.exit_code == 0, second.output
    data = json.loads(second.stdout)
    assert data["outcome"]["cache_hit"] is True and data["job"]["video"]["source"] == "given"
    assert data["outcome"]["lora_path"].endswith(".safetensors")

    missing = CliRunner().invoke(
        cli.app,
        ["tune", "--prompt", PROMPT, "--video", str(tmp_path / "nope.mp4"), "--model", str(model_dir)],
    )
    assert missing.exit_code == 1 and "error:" in missing.output


def test_planning_hints_come_from_the_model_folder_not_its_name(tmp_path, model_dir, pool_video):
    """Rare motions and the keyframe detector are the model's own planning hints; they stay out of
    the weights hash, and the committed toy model's hints are what its trainer writes."""
    import shutil
    from pathlib import Path

    from reelgraph.hashing import folder_hash
    from reelgraph.resolve import resolve_video_model
    from toyworld.training.model_folder import planning_hints

    model_dir = Path(shutil.copytree(model_dir, tmp_path / "model"))
    for name, distribution in (("toy", "flow_train"), ("toy-unet", "train")):  # what each trained on
        toy_folder = Path(resolve_video_model(name))
        assert json.loads((toy_folder / "planning.json").read_text()) == planning_hints(distribution)
    tuner, _ = _tuner(_settings(tmp_path, model_dir), pool_video)
    assert tuner.detector_name == "toy" and tuner.rare_motions[0] == ["zigzag"]
    before = folder_hash(model_dir)
    (model_dir / "planning.json").write_text(json.dumps({"rare_motions": ["orbit"], "detector": "toy"}))
    assert folder_hash(model_dir) == before  # hints change the plan, never a cached sample
    tuner, _ = _tuner(_settings(tmp_path, model_dir), pool_video)
    assert tuner.rare_motions[0] == ["orbit"] and "planning.json" in tuner.rare_motions[1]
    (model_dir / "planning.json").unlink()
    tuner, _ = _tuner(_settings(tmp_path, model_dir), pool_video)
    assert tuner.detector_name == "grounding-dino" and tuner.rare_motions[0] == []
