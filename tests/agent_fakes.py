"""Fake services for the agent's tests: a pool, noise support, a tuner and an LLM tool advisor."""

from __future__ import annotations

from pydantic import BaseModel

from agent.policies.pos_policy import PosPolicy
from agent.policies.tool_policy import ProposalSource, ToolProposals
from agent.services import Services
from tests.test_graph import FakeGenerator

POOL = {
    # prompt word -> (nearest caption, similarity, video id)
    "rolls": ("a red ball rolls to the right", 0.91, "toy:000042"),
    "bounces": ("a red ball bounces up and down", 0.72, "toy:000311"),
    "falls": ("a blue square falls down", 0.86, "toy:000207"),
}


class Found(BaseModel):
    references: list[dict]
    motion_hits: list[dict]
    nearest: dict | None
    timings_ms: dict


class FakeRetriever:
    """A pool of 500 videos; files exist for the ids in ``files`` (under ``folder``)."""

    location = "fake://pool"
    unavailable = None

    def __init__(self, folder=None, files=()):
        self.folder, self.files = folder, set(files)
        for video_id in self.files:
            (folder / f"{video_id}.mp4").write_bytes(b"video")

    def pool_size(self) -> int:
        return 500

    def retrieve(self, prompt: str) -> Found:
        key = next((word for word in POOL if word in prompt), None)
        if key is None:
            return Found(references=[], motion_hits=[], nearest=None, timings_ms={"ann": 1.0})
        caption, similarity, video_id = POOL[key]
        video = f"{self.folder}/{video_id}.mp4" if video_id in self.files else f"/pool/{video_id}.mp4"
        hit = {"id": video_id, "caption": caption, "video": video, "similarity": similarity}
        return Found(references=[hit], motion_hits=[hit], nearest=hit, timings_ms={"ann": 1.0})


class FakeNoise:
    """Inversions cached for the given ids; NPNet weights when ``npnet`` is set."""

    def __init__(self, cached=("toy:000042", "toy:000207"), npnet="/home/npnet/0000.safetensors"):
        self.cached, self.path = set(cached), npnet

    def inversion_cached(self, video_id, num_steps, num_frames) -> bool:
        return video_id in self.cached

    def npnet(self):
        return (self.path, "found") if self.path else (None, "no NPNet was trained for this model")

    def npnet_skill(self, path):
        return None


class FakeTuner:
    """Plans a LoRA for scenes whose prompt bounces (the rare motion), 30 s each."""

    def plan_scene(self, prompt, parsed, hits, no_hits_reason="no pool search ran"):
        if "bounces" not in prompt:
            return {"status": "skipped", "reason": "'roll' and 'fall' are common motions: no tuning"}
        return {
            "status": "planned",
            "reason": "'bounce' is a rare motion: distil toy:000311 frames 0-15, 150 steps",
            "video_id": "toy:000311",
            "estimated_seconds": 30.0,
        }

    def tune(self, job):
        return {"lora_path": "/cache/lora/x.safetensors", "cache_hit": False, "seconds": 1.0, "loss": {}}


class FakeAdvisor:
    name = "llm:fake"

    def __init__(self, proposals: ToolProposals | None, note: str = "scripted"):
        self.proposals, self.note, self.summaries = proposals, note, []

    def propose(self, summary):
        self.summaries.append(summary)
        return self.proposals, ProposalSource(engine=self.name if self.proposals else None, note=self.note)


def fake_services(advisor=None, noise=None, retriever=None, **pos) -> Services:
    return Services(
        generator=FakeGenerator(),
        retriever=retriever or FakeRetriever(),
        noise=noise or FakeNoise(),
        pos=PosPolicy(rewrite=False, **pos),
        tuner=FakeTuner(),
        advisor=advisor,
    )
