"""Keyframe extraction from a retrieved video (Search-T2V §4.3, "Keyframe Extraction").

Given the retrieved video and the text of its units that match the prompt
(the queries: "ball", "box"), we

1. detect the queries in every frame (:mod:`motion_prior.detectors`);
2. pick the time span: the window of ``num_frames`` frames (``stride`` apart)
   where the queries are seen most (the sum over its frames of each query's
   best score); among equally covered windows, the one where the detected
   objects move most (the path length of the boxes' centre), since we are
   after motion; then the earliest;
3. pick the region: the union of the queries' boxes over the span, widened
   by ``margin`` of its size on each side and to at least ``min_crop`` of
   the frame's shorter side, then grown to the model's aspect ratio and
   shifted (or, when too large, shrunk) to lie inside the frame;
4. crop each frame of the span to the region and resize it to the model's
   resolution: the ``(num_frames, H, W, 3)`` clip to tune on.

When no query is detected anywhere (Search-T2V appendix C: detectors miss
whole-scene dynamics), the whole frame is used (centre-cropped to the
model's aspect ratio) over the window with the most frame-to-frame change,
and ``fallback`` records why.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydantic import BaseModel, Field

from motion_prior.detectors import Box, Detection, Detector
from reelgraph.errors import ReelgraphError


class KeyframeConfig(BaseModel):
    """How keyframes are cut from a video for a model of ``num_frames`` frames of ``height`` x ``width``."""

    num_frames: int = Field(ge=2)
    height: int = Field(ge=1)
    width: int = Field(ge=1)
    stride: int = Field(1, ge=1, description="frames of the video between keyframes")
    margin: float = Field(0.25, ge=0, description="context around the objects, as a fraction of their box")
    min_crop: float = Field(
        0.75, ge=0, le=1, description="the crop's shorter side is at least this fraction of the frame's"
    )


class KeyframeInfo(BaseModel):
    """Where the keyframes came from: plain data for plans, manifests and cache keys."""

    video: str
    video_frames: int
    indices: list[int] = Field(description="the video frames used, in order")
    span: tuple[int, int] = Field(description="first and last video frame of the span (inclusive)")
    crop: tuple[float, float, float, float] = Field(description="x0, y0, x1, y1 in the video's pixels")
    queries: list[str]
    detector: str
    found: dict[str, int] = Field(description="per query: span frames in which it was detected")
    fallback: str | None = Field(None, description="why whole frames were used, when they were")

    def key(self) -> dict:
        """What decides the pixels of the clip (for cache keys)."""
        return {"indices": self.indices, "crop": [round(v, 3) for v in self.crop]}


@dataclass
class Keyframes:
    frames: np.ndarray  # (num_frames, H, W, 3) uint8 at the model's resolution
    info: KeyframeInfo


def _window_indices(total: int, count: int, stride: int) -> list[list[int]]:
    """Every window of ``count`` frames ``stride`` apart; a short video repeats frames evenly."""
    stride = max(1, min(stride, (total - 1) // max(count - 1, 1)))
    length = (count - 1) * stride + 1
    if total < length:  # fewer frames than keyframes: spread the indices with repeats
        return [list(np.linspace(0, total - 1, count).round().astype(int))]
    return [list(range(start, start + length, stride)) for start in range(total - length + 1)]


def _best_boxes(detections: Sequence[Detection]) -> dict[tuple[int, str], Detection]:
    best: dict[tuple[int, str], Detection] = {}
    for d in detections:
        key = (d.frame, d.query)
        if key not in best or d.score > best[key].score:
            best[key] = d
    return best


def _union(boxes: Sequence[Box]) -> Box:
    array = np.array(boxes, dtype=np.float64)
    return (array[:, 0].min(), array[:, 1].min(), array[:, 2].max(), array[:, 3].max())


def _path_length(
    indices: Sequence[int], best: dict[tuple[int, str], Detection], queries: Sequence[str]
) -> float:
    """How far the detected objects travel over the keyframes: each query's box centre, summed."""
    total = 0.0
    for query in queries:
        centres = [
            ((d.box[0] + d.box[2]) / 2, (d.box[1] + d.box[3]) / 2)
            for f in indices
            if (d := best.get((f, query))) is not None
        ]
        total += sum(float(np.hypot(b[0] - a[0], b[1] - a[1])) for a, b in itertools.pairwise(centres))
    return total


def fit_crop(box: Box, frame_hw: tuple[int, int], aspect: float, margin: float, min_crop: float) -> Box:
    """Grow ``box`` by ``margin``, to at least ``min_crop`` of the frame's shorter side, to ``aspect`` (w/h).

    The result lies inside the frame: shifted when it sticks out, shrunk
    about its centre (keeping the aspect) when it is larger than the frame.
    """
    height, width = frame_hw
    x0, y0, x1, y1 = box
    w, h = (x1 - x0) * (1 + 2 * margin), (y1 - y0) * (1 + 2 * margin)
    side = min_crop * min(height, width)
    w, h = max(w, side), max(h, side)
    if w / h < aspect:
        w = h * aspect
    else:
        h = w / aspect
    scale = min(1.0, width / w, height / h)
    w, h = w * scale, h * scale
    cx = min(max((x0 + x1) / 2, w / 2), width - w / 2)
    cy = min(max((y0 + y1) / 2, h / 2), height - h / 2)
    return (cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2)


def crop_and_resize(frames: np.ndarray, crop: Box, height: int, width: int) -> np.ndarray:
    """Cut ``crop`` (sub-pixel) out of each ``(H, W, 3)`` frame and resize it to ``height`` x ``width``.

    Pillow's bilinear filter widens its support when shrinking, so
    downscaling averages like an area filter rather than aliasing.
    """
    from PIL import Image

    out = np.empty((len(frames), height, width, 3), dtype=np.uint8)
    for i, frame in enumerate(frames):
        image = Image.fromarray(np.ascontiguousarray(frame))
        out[i] = np.asarray(image.resize((width, height), Image.Resampling.BILINEAR, box=crop))
    return out


def select_keyframes(
    frames: np.ndarray, detections: Sequence[Detection], queries: Sequence[str], config: KeyframeConfig
) -> tuple[list[int], Box, dict[str, int], str | None]:
    """Choose the span's frame indices and the crop box from per-frame detections.

    Returns ``(indices, crop, found, fallback)``.
    """
    total, height, width = frames.shape[0], frames.shape[1], frames.shape[2]
    aspect = config.width / config.height
    windows = _window_indices(total, config.num_frames, config.stride)
    best = _best_boxes(detections)
    if not best:
        change = (
            np.abs(np.diff(frames.astype(np.int16), axis=0)).mean(axis=(1, 2, 3))
            if total > 1
            else np.zeros(1)
        )
        energy = [float(sum(change[i] for i in w[:-1] if i < len(change))) for w in windows]
        indices = windows[int(np.argmax(energy))]
        names = ", ".join(repr(q) for q in queries) or "no queries"
        crop = fit_crop((0, 0, width, height), (height, width), aspect, margin=0.0, min_crop=1.0)
        return indices, crop, dict.fromkeys(queries, 0), f"nothing detected for {names}: whole frames"

    per_frame = np.zeros(total)
    boxes_by_frame: dict[int, list[Box]] = {}
    for (frame, _query), d in best.items():
        per_frame[frame] += d.score
        boxes_by_frame.setdefault(frame, []).append(d.box)
    coverage = np.array([per_frame[w].sum() for w in windows])
    top = [i for i, c in enumerate(coverage) if c >= coverage.max() - 1e-9]
    motion = [_path_length(windows[i], best, queries) for i in top]
    indices = windows[top[int(np.argmax(motion))]]  # argmax keeps the first of equals: the earliest

    span_boxes = [box for f in dict.fromkeys(indices) for box in boxes_by_frame.get(f, [])]
    crop = fit_crop(_union(span_boxes), (height, width), aspect, config.margin, config.min_crop)
    found = {q: sum(1 for f in dict.fromkeys(indices) if (f, q) in best) for q in queries}
    return indices, crop, found, None


def read_frames(video: str | os.PathLike[str]) -> np.ndarray:
    from reelgraph.media import read_video

    path = Path(video)
    if not path.is_file():
        raise ReelgraphError(
            f"The motion-prior video {str(path)!r} does not exist.",
            fix="re-index the pool, or pass an existing video with --video.",
        )
    return read_video(path)


def extract_keyframes(
    video: str | os.PathLike[str] | np.ndarray,
    queries: Sequence[str],
    detector: Detector,
    config: KeyframeConfig,
    video_name: str | None = None,
) -> Keyframes:
    """The clip to tune on: ``config.num_frames`` frames of the video's most relevant span and region."""
    frames = np.asarray(video) if isinstance(video, np.ndarray) else read_frames(video)
    if frames.ndim != 4 or frames.shape[-1] != 3 or len(frames) == 0:
        raise ReelgraphError(f"Expected video frames (F, H, W, 3), got shape {frames.shape}.")
    queries = list(dict.fromkeys(q.strip() for q in queries if q and q.strip()))
    detections = detector.detect(frames, queries) if queries else []
    indices, crop, found, fallback = select_keyframes(frames, detections, queries, config)
    clip = crop_and_resize(frames[indices], crop, config.height, config.width)
    info = KeyframeInfo(
        video=video_name
        if video_name is not None
        else (str(video) if not isinstance(video, np.ndarray) else "<array>"),
        video_frames=len(frames),
        indices=[int(i) for i in indices],
        span=(int(min(indices)), int(max(indices))),
        crop=tuple(round(float(v), 3) for v in crop),
        queries=queries,
        detector=detector.name,
        found=found,
        fallback=fallback,
    )
    return Keyframes(frames=clip, info=info)
