"""The rule-checked tool policy in the graph, with fake services: reasons, LLM proposals, the budget,
and the golden plan of a three-scene story."""

from __future__ import annotations

import json
import os
from pathlib import Path

from agent.graph import build_graph
from agent.policies.tool_policy import ToolProposal, ToolProposals
from agent.state import RunRequest, RunState
from agent.understanding.parser import parse_request
from tests.agent_fakes import FakeAdvisor, FakeNoise, FakeRetriever, fake_services

STORY = "A red ball rolls to the right. Then it bounces. Then a blue square falls on the ball."
GOLDEN = Path(__file__).parent / "golden"


def plan(services, budget=None, text=STORY):
    scenes = parse_request(text).scene_requests(fps=8, default_frames=8)
    request = RunRequest(
        scenes=scenes, seed=7, num_inference_steps=10, guidance_scale=7.0, budget_seconds=budget
    )
    return RunState.model_validate(build_graph(services).invoke(RunState(mode="plan", request=request)))


def check_golden(name: str, data: dict) -> None:
    path = GOLDEN / f"{name}.json"
    text = json.dumps(data, indent=2, sort_keys=True) + "\n"
    if os.environ.get("REELGRAPH_UPDATE_GOLDEN") == "1":
        path.write_text(text)
    assert path.is_file(), f"run with REELGRAPH_UPDATE_GOLDEN=1 to write {path}"
    assert text == path.read_text(), f"the plan differs from {path}; check it, then update it"


def test_three_scene_story_has_a_reason_for_every_tool():
    state = plan(fake_services())
    scenes = state.scenes
    assert [s.prompt for s in scenes] == [
        "A red ball rolls to the right",
        "the red ball bounces",
        "a blue square falls on the red ball",
    ]
    noise = [s.noise for s in scenes]
    assert [n.source for n in noise] == ["ona", "npnet", "ona"]
    assert noise[0].reason.startswith("ONA: nearest pool video 'a red ball rolls to the right'")
    assert "similarity 0.91 >= 0.80" in noise[0].reason and "inversion cached" in noise[0].reason
    assert "similarity 0.72 < 0.80" in noise[1].reason and "NPNet" in noise[1].reason
    assert [s.tuning.status for s in scenes] == ["skipped", "planned", "skipped"]
    for scene in scenes:
        for tool in ("noise", "rewrite", "tuning", "extension"):
            step = getattr(scene, tool)
            assert step.reason and step.rule, (scene.index, tool)
    assert state.policy["proposals"] == "none: no LLM is configured; the rules decided"
    assert state.policy["available"] == "a pool of 500 videos, no LLM, no GPU (cpu), no time budget"
    check_golden("plan_three_scene_story", state.plan_view())


def test_llm_proposals_are_checked_by_the_rules():
    proposals = ToolProposals(
        scenes=[
            ToolProposal(scene=1, noise="random", why="more variety"),
            ToolProposal(scene=2, noise="ona", tuning=False, why="keep it quick"),
            ToolProposal(scene=3, tuning=True, rewrite=True),
        ]
    )
    advisor = FakeAdvisor(proposals)
    state = plan(fake_services(advisor=advisor))
    one, two, three = state.scenes
    assert (
        one.noise.source == "random"
        and "changed to random as the LLM proposed (more variety)" in one.noise.rule
    )
    assert two.noise.source == "npnet" and "refused" in two.noise.rule and "0.72 < 0.80" in two.noise.rule
    assert two.tuning.status == "skipped" and two.tuning.rule.startswith("turned off as the LLM proposed")
    assert three.tuning.status == "skipped" and "refused" in three.tuning.rule
    assert three.rewrite.status == "skipped" and "refused" in three.rewrite.rule
    assert state.policy["changes"] == [
        "scene 1: noise ona → random (LLM proposal accepted)",
        "scene 2: LLM's noise ona refused",
        "scene 2: tuning off (LLM proposal accepted)",
        "scene 3: LLM's rewrite refused",
        "scene 3: LLM's tuning refused",
    ]
    (summary,) = advisor.summaries
    assert [s["prompt"] for s in summary["scenes"]] == [s.prompt for s in state.scenes]


def test_budget_drops_tuning_then_uncached_inversions(tmp_path):
    def services():  # scene 3's pool video is not inverted yet, but its file is there
        retriever = FakeRetriever(tmp_path, files=["toy:000207"])
        return fake_services(noise=FakeNoise(cached=["toy:000042"]), retriever=retriever)

    roomy = plan(services(), budget=1000)
    assert (
        roomy.policy["changes"][-1].startswith("estimated")
        and "fits the budget of 1000 s" in roomy.policy["changes"][-1]
    )
    assert roomy.scenes[1].tuning.status == "planned"

    assert roomy.scenes[2].noise.source == "ona" and roomy.scenes[2].noise.cache == "miss"
    tight = plan(services(), budget=roomy.estimates.seconds - 30.0 - 0.01)
    assert tight.scenes[1].tuning.status == "skipped"
    assert tight.scenes[1].tuning.rule.startswith("dropped for the budget: tuning would take 30.0 s")
    assert [s.noise.source for s in tight.scenes] == ["ona", "npnet", "random"]  # one uncached inversion went
    assert tight.scenes[2].noise.rule.startswith("random instead of ONA for the budget")
    assert tight.estimates.seconds <= roomy.estimates.seconds - 30.0
    assert not tight.warnings

    hopeless = plan(services(), budget=0.001)
    assert hopeless.policy["changes"][-1].startswith("over budget: the cheapest plan takes about")
    assert hopeless.warnings == [hopeless.policy["changes"][-1]]
