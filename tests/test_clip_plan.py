"""Clip plans for long scenes: clip counts, kept frames, seeds; and storyboard parsing with its errors."""

from __future__ import annotations

import json

import pytest

from agent.storyboard import parse_storyboard
from generation.clip_plan import ExtensionParams, clip_seed, plan_scene_clips
from reelgraph.errors import ReelgraphError

VIDRD = ExtensionParams()  # M = N/2, keep "new"


def total(slots) -> int:
    return sum(slot.kept_frames for slot in slots)


def test_one_clip_scene_is_a_plain_clip():
    (slot,) = plan_scene_clips(5, 8, VIDRD, 7)
    assert slot.num_frames == 5 and slot.kept == (0, 5) and slot.start == "noise" and slot.seed == 7


@pytest.mark.parametrize("frames", [9, 12, 20, 21, 32, 100])
def test_new_frames_only_never_repeat_the_overlap(frames):
    slots = plan_scene_clips(frames, 8, VIDRD, 1)
    assert total(slots) == frames
    assert slots[0].kept == (0, 8) and slots[0].start == "noise"
    for slot in slots[1:]:
        assert slot.start == "previous_clip" and slot.num_frames == 8
        assert slot.kept[0] == 4  # the M = 4 prompt frames are the previous clip's last frames
    # F = N + k (N - M): (F - 8) / 4 extension clips, rounded up.
    assert len(slots) == 1 + -(-(frames - 8) // 4)


def test_two_and_a_half_clips():
    slots = plan_scene_clips(20, 8, VIDRD.model_copy(update={"keep": "all"}), 1)
    assert [s.kept for s in slots] == [(0, 8), (0, 8), (0, 4)]
    slots = plan_scene_clips(20, 8, ExtensionParams(mode="independent"), 1)
    assert [s.kept for s in slots] == [(0, 8), (0, 8), (0, 4)] and {s.start for s in slots} == {"noise"}


def test_continued_scene_keeps_the_end_of_its_last_clip():
    slots = plan_scene_clips(10, 8, VIDRD, 1, continued=True)
    assert [s.kept for s in slots] == [(0, 8), (6, 8)]
    (slot,) = plan_scene_clips(5, 8, VIDRD, 1, continued=True)
    assert slot.num_frames == 8 and slot.kept == (3, 8)  # the next scene's prompt frames follow frame 7


def test_scene_that_continues_the_previous_one_starts_from_it():
    slots = plan_scene_clips(8, 8, VIDRD, 3, first_start="previous_scene")
    assert [(s.start, s.kept) for s in slots] == [("previous_scene", (4, 8)), ("previous_clip", (4, 8))]
    (slot,) = plan_scene_clips(6, 8, VIDRD, 3, first_start="image")
    assert slot.start == "image" and slot.kept == (0, 6)  # the image's frames are the video's start


def test_clip_seeds_are_stable_distinct_and_start_at_the_scene_seed():
    assert clip_seed(42, 0) == 42
    seeds = [clip_seed(42, k) for k in range(50)]
    assert len(set(seeds)) == 50 and seeds == [clip_seed(42, k) for k in range(50)]
    assert clip_seed(42, 1) != clip_seed(43, 1) and all(0 <= s < 2**31 for s in seeds)


def test_prompt_frames_must_fit_in_a_clip():
    with pytest.raises(ReelgraphError, match="do not fit"):
        plan_scene_clips(20, 8, ExtensionParams(prompt_frames=8), 1)
    assert ExtensionParams().resolved(16).prompt_frames == 8
    assert ExtensionParams(pns=False, dsg=False).strategies == "FNR"
    assert "β=0.4" in ExtensionParams().describe(8)


# -- storyboards -----------------------------------------------------------------------------------


def test_yaml_json_and_text_storyboards(tmp_path):
    yaml_file = tmp_path / "story.yaml"
    yaml_file.write_text(
        "scenes:\n  - prompt: a red ball rolls to the right\n    frames: 12\n  - prompt: the red ball bounces\n"
    )
    scenes = parse_storyboard(yaml_file)
    assert [(s.prompt, s.num_frames) for s in scenes] == [
        ("a red ball rolls to the right", 12),
        ("the red ball bounces", None),
    ]
    json_file = tmp_path / "story.json"
    json_file.write_text(json.dumps({"scenes": [{"prompt": "a ball", "frames": 4}, "a box"]}))
    assert [(s.prompt, s.num_frames) for s in parse_storyboard(json_file)] == [("a ball", 4), ("a box", None)]
    text_file = tmp_path / "story.txt"
    text_file.write_text("# my film\na red ball rolls\n\n  the red ball   bounces \n")
    assert [s.prompt for s in parse_storyboard(text_file)] == ["a red ball rolls", "the red ball bounces"]


def test_storyboard_image_is_relative_to_its_folder(tmp_path):
    from PIL import Image

    Image.new("RGB", (8, 8), (200, 30, 30)).save(tmp_path / "start.png")
    story = tmp_path / "story.yaml"
    story.write_text("scenes:\n  - {prompt: a red ball, image: start.png}\n")
    (scene,) = parse_storyboard(story)
    assert scene.image == str((tmp_path / "start.png").resolve())


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("empty.yaml", "scenes:\n  - prompt: a ball\n  - prompt: '  '\n", "Scene 2 is empty"),
        ("nop.yaml", "scenes:\n  - frames: 8\n", "Scene 1 is empty"),
        ("zero.yaml", "scenes:\n  - {prompt: a ball, frames: 0}\n", "Scene 1 asks for 0 frames"),
        (
            "neg.json",
            '{"scenes": [{"prompt": "a", "frames": 4}, {"prompt": "b", "frames": -3}]}',
            "Scene 2 asks for -3",
        ),
        ("frac.yaml", "scenes:\n  - {prompt: a ball, frames: 2.5}\n", "not a whole number"),
        (
            "long.yaml",
            "scenes:\n  - {prompt: a, frames: 60}\n  - {prompt: b, frames: 50}\n",
            "110 frames; the limit is 100",
        ),
        ("none.yaml", "scenes: []\n", "has no scenes"),
        ("blank.txt", "\n  \n# only a comment\n", "has no scenes"),
        ("bad.yaml", "scenes: [unclosed\n", "is not valid YAML"),
        ("bad.json", "{scenes: }", "is not valid JSON"),
        ("shape.yaml", "scenes: {prompt: a}\n", "has no list of scenes"),
        ("typo.yaml", "scenes:\n  - {prompt: a, frame: 8}\n", "unknown keys: frame"),
        ("img.yaml", "scenes:\n  - {prompt: a, image: missing.png}\n", "image 'missing.png' does not exist"),
    ],
)
def test_storyboard_errors(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(ReelgraphError, match=message):
        parse_storyboard(path, max_frames=100)


def test_unreadable_storyboard(tmp_path):
    with pytest.raises(ReelgraphError, match="does not exist"):
        parse_storyboard(tmp_path / "nope.yaml")
    binary = tmp_path / "story.txt"
    binary.write_bytes(b"\xff\xfe\x00bad")
    with pytest.raises(ReelgraphError, match="cannot be read"):
        parse_storyboard(binary)
