"""POS in the graph: the rewrite and choose_noise nodes' decisions, the clip requests and the manifest."""

from __future__ import annotations

import json

import pytest

from agent import nodes
from agent.graph import build_graph
from agent.policies.pos_policy import PosPolicy, choose_noise_for_scene
from agent.rewriting.rewriter import GuardDecision, RewriteAttempt, RewriteOutcome
from agent.services import Services
from agent.state import RunState
from agent.steps import ReferencesStep as ToolStep
from tests.test_graph import FakeGenerator, _state

NEAREST = {
    "id": "toy:000042",
    "caption": "a red ball rolls left",
    "video": "/pool/000042.mp4",
    "similarity": 0.91,
}
REFS = [
    {"id": "toy:000042", "caption": "a red ball rolls left", "video": "/pool/000042.mp4", "similarity": 0.91},
    {
        "id": "toy:000007",
        "caption": "a shiny red ball rolls to the left",
        "video": "/pool/7.mp4",
        "similarity": 0.88,
    },
]


class FakeRewriter:
    def __init__(self, text: str | None = "a shiny red ball rolls to the left", offline: bool = True):
        self.text, self.offline, self.calls = text, offline, []

    def needs_references(self) -> bool:
        return self.offline

    def rewrite(self, prompt, references):
        self.calls.append((prompt, list(references)))
        guard = GuardDecision(
            accepted=self.text is not None, similarity=0.93, min_similarity=0.75, core={"motion": "roll"}
        )
        attempt = RewriteAttempt(
            engine="offline", strict=False, answer=self.text, text=self.text, guard=guard
        )
        return RewriteOutcome(
            original=prompt,
            text=self.text,
            decision="accepted" if self.text else "fallback",
            engine="offline",
            attempts=[attempt],
        )


class FakeNoise:
    def __init__(self, cached=True, npnet=None, skill=None):
        self.cached, self.npnet_path, self.skill = cached, npnet, skill

    def inversion_cached(self, video_id, num_steps, num_frames):
        return self.cached

    def npnet(self):
        return (
            (self.npnet_path, "found") if self.npnet_path else (None, "no NPNet was trained for this model")
        )

    def npnet_skill(self, path):
        return self.skill


@pytest.fixture
def with_references(monkeypatch):
    def retrieve(state, services):
        step = ToolStep(status="done", reason="2 references", references=REFS, nearest=NEAREST)
        return {"scenes": state.with_all_scenes(references=step)}

    monkeypatch.setattr(nodes, "retrieve", retrieve)


def _run(services, mode="plan", run_dir=None):
    return RunState.model_validate(
        build_graph(services).invoke(_state(mode, ["a red ball rolls left"], run_dir))
    )


def test_plan_records_rewrite_guard_gamma_and_ona_pick(with_references):
    services = Services(
        FakeGenerator(), rewriter=FakeRewriter(), noise=FakeNoise(), pos=PosPolicy(gamma=0.4, eta=0.2)
    )
    view = _run(services).plan_view()["scenes"][0]
    rewrite, noise = view["rewrite"], view["noise"]
    assert rewrite["status"] == "done" and rewrite["text"] == "a shiny red ball rolls to the left"
    assert rewrite["decision"] == "accepted" and rewrite["guard"]["similarity"] == 0.93
    assert rewrite["gamma"] == 0.4 and rewrite["rewrite_steps"] == 2  # ⌊5 · 0.4⌋
    assert [r["caption"] for r in rewrite["references"]] == [r["caption"] for r in REFS]
    assert noise["source"] == "ona" and noise["video_id"] == "toy:000042" and noise["similarity"] == 0.91
    assert noise["eta"] == 0.2 and noise["cache"] == "hit"
    assert "similarity 0.91 >= 0.80" in noise["reason"] and "inversion cached" in noise["reason"]


def test_generate_sends_rewrite_gamma_and_noise_to_the_sampler_and_the_manifest(with_references, tmp_path):
    generator = FakeGenerator()
    services = Services(
        generator, rewriter=FakeRewriter(), noise=FakeNoise(), pos=PosPolicy(gamma=0.4, eta=0.2)
    )
    _run(services, "generate", str(tmp_path))
    (request,) = generator.sampled
    assert (
        request.prompt == "a red ball rolls left"
        and request.rewritten_prompt == "a shiny red ball rolls to the left"
    )
    assert request.gamma == 0.4
    assert (
        request.noise.source == "ona" and request.noise.video_id == "toy:000042" and request.noise.eta == 0.2
    )
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["rewritten_prompt"] == ["a shiny red ball rolls to the left"]
    scene = manifest["plan"]["scenes"][0]
    assert scene["rewrite"]["guard"]["accepted"] and scene["noise"]["source"] == "ona"


def test_a_rejected_rewrite_leaves_the_original_text_to_the_sampler(with_references, tmp_path):
    generator = FakeGenerator()
    services = Services(generator, rewriter=FakeRewriter(text=None), noise=FakeNoise())
    state = _run(services, "generate", str(tmp_path))
    assert state.scenes[0].rewrite.decision == "fallback"
    assert generator.sampled[0].rewritten_prompt is None and generator.sampled[0].gamma == 0.0


def test_rewrite_is_skipped_with_reasons():
    off = _run(Services(FakeGenerator(), rewriter=FakeRewriter(), pos=PosPolicy(rewrite=False)))
    assert off.scenes[0].rewrite.status == "skipped" and "rewrite = false" in off.scenes[0].rewrite.reason
    rewriter = FakeRewriter()
    no_refs = _run(Services(FakeGenerator(), rewriter=rewriter))  # retrieve skipped: no pool
    assert (
        no_refs.scenes[0].rewrite.status == "skipped"
        and "no reference captions" in no_refs.scenes[0].rewrite.reason
    )
    assert rewriter.calls == []
    llm = FakeRewriter(offline=False)  # an LLM rewrites without references (POS with k = 0)
    assert _run(Services(FakeGenerator(), rewriter=llm)).scenes[0].rewrite.status == "done"
    assert llm.calls == [("a red ball rolls left", [])]


def test_noise_choice_cascade_and_reasons(tmp_path):
    video = tmp_path / "v.mp4"
    video.write_bytes(b"x")
    near = {**NEAREST, "video": str(video)}
    auto = PosPolicy(noise_source="auto", eta=0.5, ona_min_similarity=0.8)

    def choose(policy=auto, noise=None, nearest=near):
        return choose_noise_for_scene(policy, noise or FakeNoise(), nearest, 25, 8)

    assert choose()["source"] == "ona"
    miss = choose(noise=FakeNoise(cached=False))
    assert (
        miss["source"] == "ona" and miss["cache"] == "miss" and "inverted once at sampling" in miss["reason"]
    )
    gone = choose(noise=FakeNoise(cached=False), nearest={**near, "video": str(tmp_path / "gone.mp4")})
    assert gone["source"] == "random" and "is missing" in gone["reason"]
    far = {**near, "similarity": 0.55}
    to_npnet = choose(noise=FakeNoise(npnet="/np.safetensors"), nearest=far)
    assert to_npnet["source"] == "npnet" and "similarity 0.55 < 0.80" in to_npnet["reason"]
    assert to_npnet["spec"] == {"source": "npnet", "eta": 0.5, "npnet": "/np.safetensors"}
    # auto leaves out an NPNet without skill; an explicit npnet still uses it
    skilled = PosPolicy(noise_source="auto", eta=0.5, npnet_min_skill=0.1)
    unskilled = choose(skilled, FakeNoise(npnet="/np.safetensors", skill=0.03), far)
    assert (
        unskilled["source"] == "random"
        and "explains 3% of held-out inversion variance" in unskilled["reason"]
    )
    assert choose(skilled, FakeNoise(npnet="/np.safetensors", skill=0.2), far)["source"] == "npnet"
    asked = PosPolicy(noise_source="npnet", npnet_min_skill=0.1)
    assert choose(asked, FakeNoise(npnet="/np.safetensors", skill=0.03), far)["source"] == "npnet"
    to_random = choose(nearest=far)
    assert (
        to_random["source"] == "random"
        and "0.55 < 0.80" in to_random["reason"]
        and "NPNet" in to_random["reason"]
    )
    explicit_ona = choose(PosPolicy(noise_source="ona"), FakeNoise(npnet="/np.safetensors"), far)
    assert explicit_ona["source"] == "random"  # an explicit choice is not swapped for another method
    assert choose(PosPolicy(noise_source="npnet"), FakeNoise(npnet="/np.safetensors"))["source"] == "npnet"
    assert choose(PosPolicy(noise_source="random"))["reason"].endswith("(noise_source = random)")
    assert "η = 0" in choose(PosPolicy(eta=0.0))["reason"]
    assert "no pool video" in choose(nearest=None)["reason"]


def test_ona_can_pick_the_top_motion_prior_hit(tmp_path):
    from agent.policies.pos_policy import nearest_of

    hit = {
        "id": "toy:9",
        "caption": "a red ball rolls to the left",
        "video": "/v/9.mp4",
        "score": {"sentence": 0.83, "total": 2.7},
    }
    step = ToolStep(status="done", reason="", nearest=NEAREST, motion_hits=[hit])
    assert nearest_of(step)["id"] == "toy:000042"
    picked = nearest_of(step, "motion")
    assert picked["id"] == "toy:9" and picked["similarity"] == 0.83
    assert nearest_of(ToolStep(status="done", reason="", nearest=NEAREST), "motion") is None
    assert nearest_of(ToolStep(status="skipped", reason="no pool")) is None
