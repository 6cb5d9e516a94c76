"""Keyframe extraction (Search-T2V §4.3): span and crop choice, fallbacks, the toy and GroundingDINO detectors."""

from __future__ import annotations

import numpy as np
import pytest

from motion_prior.detectors import (
    Detection,
    GroundingDinoDetector,
    ToyDetector,
    ToyQuery,
    grounding_text,
    parse_toy_query,
    query_token_positions,
)
from motion_prior.keyframes import KeyframeConfig, extract_keyframes, fit_crop, select_keyframes
from toyworld.render import render_video


class ScriptedDetector:
    """Returns the detections it was given (only for the queries asked)."""

    name = "scripted"

    def __init__(self, detections: list[Detection]):
        self.detections = detections

    def detect(self, frames, queries):
        return [d for d in self.detections if d.query in queries]


def _render(label: dict, frames: int = 24, seed: int = 0) -> np.ndarray:
    return render_video(label, frames, np.random.default_rng(seed))


def test_fit_crop_keeps_aspect_and_stays_inside_the_frame():
    # A small box near the right edge, a wide model: grown to 16:9 and shifted inside.
    x0, y0, x1, y1 = fit_crop((50, 20, 60, 30), (64, 64), aspect=16 / 9, margin=0.25, min_crop=0.5)
    assert (x1 - x0) / (y1 - y0) == pytest.approx(16 / 9)
    assert x0 >= 0 and x1 <= 64 and y0 >= 0 and y1 <= 64
    assert min(x1 - x0, y1 - y0) >= 0.5 * 64 - 1e-9
    assert x0 <= 50 and x1 >= 60 and y0 <= 20 and y1 >= 30  # the objects stay in view
    # Larger than the frame at this aspect: shrunk to the widest crop that fits.
    x0, y0, x1, y1 = fit_crop((0, 0, 64, 64), (64, 64), aspect=2.0, margin=0.0, min_crop=1.0)
    assert (x0, x1) == (0, 64) and y1 - y0 == pytest.approx(32)


def test_span_is_where_the_objects_are_seen_and_move():
    frames = np.zeros((30, 40, 40, 3), np.uint8)
    detections = []
    for f in range(5, 30):
        x = 4 + f if f >= 12 else 16  # still until frame 12, then moving right
        detections.append(Detection(f, "ball", (x, 10, x + 6, 16), 0.9))
    for f in range(8, 20):
        detections.append(Detection(f, "box", (2, 30, 8, 36), 0.5))
    config = KeyframeConfig(num_frames=8, height=32, width=32, stride=2, margin=0.0, min_crop=0.0)
    indices, crop, found, fallback = select_keyframes(frames, detections, ["ball", "box"], config)
    assert fallback is None
    # Windows starting at 5-9 all see the ball in every keyframe and the box in six (the most);
    # of those, the one starting at 9 sees the ball travel furthest.
    assert indices == list(range(9, 24, 2))
    assert found == {"ball": 8, "box": 6}
    x0, _, x1, y1 = crop
    assert x0 <= 2 and y1 >= 36 and x1 >= 4 + 23 + 6  # ball and box over the whole span


def test_nothing_detected_falls_back_to_whole_frames_and_says_so():
    frames = np.zeros((20, 24, 32, 3), np.uint8)
    frames[12:, 5:9, 5:9] = 200  # the only change in the video: frame 11 -> 12
    config = KeyframeConfig(num_frames=4, height=16, width=16)
    clip = extract_keyframes(frames, ["ball"], ScriptedDetector([]), config)
    info = clip.info
    assert info.fallback is not None and "'ball'" in info.fallback
    assert info.found == {"ball": 0}
    assert 11 in info.indices and 12 in info.indices  # the window with the most change
    assert info.crop == (4.0, 0.0, 28.0, 24.0)  # the whole frame, centre-cropped to the model's square
    assert clip.frames.shape == (4, 16, 16, 3) and clip.frames.dtype == np.uint8
    # No queries at all: also a recorded fallback.
    assert extract_keyframes(frames, [], ScriptedDetector([]), config).info.fallback is not None


def test_short_videos_repeat_frames_evenly():
    frames = np.zeros((3, 16, 16, 3), np.uint8)
    clip = extract_keyframes(
        frames, [], ScriptedDetector([]), KeyframeConfig(num_frames=6, height=8, width=8)
    )
    assert clip.info.indices == [0, 0, 1, 1, 2, 2]
    assert clip.frames.shape == (6, 8, 8, 3)


def test_toy_queries_read_shape_and_colour_words():
    assert parse_toy_query("a red ball") == ToyQuery("a red ball", "circle", "red", False)
    assert parse_toy_query("boxes").shape == "square"
    assert (
        parse_toy_query("scarlet wedge").color == "red"
        and parse_toy_query("scarlet wedge").shape == "triangle"
    )
    assert not parse_toy_query("a dog").understood
    assert parse_toy_query("the object").any_object


def test_toy_detector_finds_each_object_of_a_two_object_scene():
    label = {
        "actor": {"shape": "circle", "color": "red", "size": "small"},
        "motion": "push",
        "recipient": {"shape": "square", "color": "blue", "size": "small"},
        "background": "sand",
    }
    frames = _render(label)
    big = frames.repeat(2, axis=1).repeat(2, axis=2)  # boxes come back in the video's own pixels
    detections = ToyDetector().detect(big, ["ball", "blue box", "triangle", "green ball"])
    by_query = {
        q: [d for d in detections if d.query == q] for q in ("ball", "blue box", "triangle", "green ball")
    }
    assert len(by_query["ball"]) == 24 and len(by_query["blue box"]) == 24
    assert by_query["triangle"] == [] and by_query["green ball"] == []
    for d in by_query["ball"]:
        x0, y0, x1, y1 = (int(v) for v in d.box)
        patch = big[d.frame, y0:y1, x0:x1].reshape(-1, 3).astype(int)
        red = np.abs(patch - np.array([220, 40, 40])).sum(axis=1) < 60
        assert red.any()  # the ball's own colour lies inside its box
        assert 0 <= x0 < x1 <= 64 and 0 <= y0 < y1 <= 64


def test_toy_keyframes_of_a_zigzag_still_zigzag():
    from toyworld.probe import probe

    frames = _render({"actor": {"shape": "circle", "color": "red", "size": "big"}, "motion": "zigzag"})
    config = KeyframeConfig(num_frames=8, height=32, width=32)
    clip = extract_keyframes(frames, ["ball"], ToyDetector(), config, video_name="toy:zz")
    assert clip.info.fallback is None and clip.info.found == {"ball": 8} and clip.info.detector == "toy"
    assert probe(clip.frames).tracks[0].motion == "zigzag"
    # A query the toy world cannot see: whole frames, recorded.
    missed = extract_keyframes(frames, ["a dog"], ToyDetector(), config)
    assert missed.info.fallback is not None and missed.info.found == {"a dog": 0}


def test_grounding_text_spans_and_token_positions():
    from transformers import BertTokenizerFast

    from tests.motion_helpers import GD_WORDS

    text, spans = grounding_text(["a red ball", "Box."])
    assert text == "a red ball. box."
    assert [text[a:b] for a, b in spans] == ["a red ball", "box"]
    tokenizer = BertTokenizerFast(vocab={w: i for i, w in enumerate(GD_WORDS)})
    offsets = tokenizer(text, return_offsets_mapping=True)["offset_mapping"]
    assert query_token_positions(offsets, spans) == [[1, 2, 3], [5]]  # [CLS] a red ball . box . [SEP]


def test_grounding_dino_tiny_round_trip(tmp_path):
    from tests.motion_helpers import tiny_grounding_dino

    folder = tiny_grounding_dino(tmp_path / "gdino")
    frames = _render({"actor": {"shape": "circle", "color": "red", "size": "big"}, "motion": "move_right"}, 6)
    detector = GroundingDinoDetector(str(folder), box_threshold=0.0, batch_size=4)
    detections = detector.detect(frames, ["ball", "red box"])
    # Random weights: no claim about where, but one box per frame and query, inside the frame, scored in [0, 1].
    assert sorted((d.frame, d.query) for d in detections) == sorted(
        (f, q) for f in range(6) for q in ("ball", "red box")
    )
    for d in detections:
        x0, y0, x1, y1 = d.box
        assert 0 <= x0 < x1 <= 32 and 0 <= y0 < y1 <= 32 and 0.0 <= d.score <= 1.0
    # A threshold nothing reaches: no detections, so keyframes fall back to whole frames.
    strict = GroundingDinoDetector(str(folder), box_threshold=1.01)
    clip = extract_keyframes(frames, ["ball"], strict, KeyframeConfig(num_frames=4, height=16, width=16))
    assert clip.info.fallback is not None and clip.info.detector == "grounding-dino"
