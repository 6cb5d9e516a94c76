"""The deterministic request parser and follow-up edits (no LLM)."""

from __future__ import annotations

import pytest

from agent.understanding.followups import interpret
from agent.understanding.parser import parse_request, split_scenes
from reelgraph.errors import ReelgraphError


def prompts(request):
    return [scene.prompt for scene in request.scenes]


@pytest.mark.parametrize(
    "text, expected",
    [
        ("a red ball rolls right", ["a red ball rolls right"]),
        ("a red ball rolls right. It bounces!", ["a red ball rolls right", "It bounces"]),
        ("a red ball rolls right, then it bounces", ["a red ball rolls right", "it bounces"]),
        ("a ball rolls\nthe ball stops; it spins", ["a ball rolls", "the ball stops", "it spins"]),
    ],
)
def test_sentences_lines_and_then_split_scenes(text, expected):
    assert split_scenes(text) == expected


def test_entities_stay_consistent_across_scenes():
    request = parse_request(
        "Make a video of a small blue square sliding left. Then it bounces. Then the square spins, "
        "then a red ball hits the square"
    )
    assert prompts(request) == [
        "a small blue square sliding left",
        "the small blue square bounces",
        "the small blue square spins",
        "a red ball hits the small blue square",
    ]
    assert request.entities == {"square": ["small", "blue"], "ball": ["red"]}


def test_lengths_seed_style_and_constraints():
    request = parse_request(
        "a red ball rolls to the right for 10 seconds in watercolor style, no trees, seed 7"
    )
    assert prompts(request) == ["a red ball rolls to the right"]
    assert request.scenes[0].seconds == 10
    assert (request.style, request.seed, request.constraints) == ("watercolor", 7, ["trees"])
    assert request.negative_prompt() == "trees"
    scenes = request.scene_requests(fps=8)
    assert scenes[0].num_frames == 80 and scenes[0].prompt.endswith(", watercolor style")


def test_scene_count_and_total_length():
    request = parse_request("3 scenes of a green triangle moving up, twelve seconds in total")
    assert prompts(request) == ["a green triangle moving up"] * 3
    assert [s.seconds for s in request.scenes] == [4.0, 4.0, 4.0]
    two = parse_request("a ball rolls for 2 seconds, then it bounces. 6 seconds in total")
    assert [s.seconds for s in two.scenes] == [2.0, 4.0]
    each = parse_request("a ball rolls. Then it bounces for 1 second, then it stops, 3 seconds each")
    assert prompts(each) == ["a ball rolls", "the ball bounces", "the ball stops"]
    assert [s.seconds for s in each.scenes] == [3.0, 1.0, 3.0]


@pytest.mark.parametrize("text", ["", "   ", "10 seconds"])
def test_a_request_without_a_scene_is_refused(text):
    with pytest.raises(ReelgraphError):
        parse_request(text)


def test_follow_ups_edit_the_last_request():
    request = interpret("a red ball rolls to the right", None, 0.5).request
    blue = interpret("now the ball is blue", request, 0.5)
    assert blue.kinds == ["recolour"] and prompts(blue.request) == ["a blue ball rolls to the right"]
    assert blue.notes == ["the ball is now blue (was red)"] and blue.request.entities == {"ball": ["blue"]}
    longer = interpret("make it longer", blue.request, 0.5)
    assert longer.kinds == ["longer"] and longer.request.scenes[0].seconds == 1.0
    added = interpret("add a second scene where it bounces", longer.request, 0.5)
    assert prompts(added.request) == ["a blue ball rolls to the right", "the blue ball bounces"]
    assert interpret("same seed", added.request, 0.5).kinds == ["same_seed"]
    assert interpret("show me the plan again", added.request, 0.5).shows_plan_only
    both = interpret("make it green, new seed", added.request, 0.5)
    assert both.kinds == ["recolour", "new_seed"] and both.seed == "new"
    assert prompts(both.request) == ["a green ball rolls to the right", "the green ball bounces"]
    assert interpret("seed 12", added.request, 0.5).seed == 12
    total = interpret("make it 3 seconds", added.request, 0.5).request
    assert [s.seconds for s in total.scenes] == [1.5, 1.5]
    fresh = interpret("a yellow square falls", added.request, 0.5)
    assert fresh.is_new and prompts(fresh.request) == ["a yellow square falls"]


def test_recolouring_something_that_is_not_there():
    request = parse_request("a red ball rolls")
    with pytest.raises(ReelgraphError, match="no square"):
        interpret("now the square is blue", request, 0.5)
