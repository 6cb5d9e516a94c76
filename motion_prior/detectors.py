"""Open-set detectors for keyframe extraction (Search-T2V §4.3, "open-set object detection [27]").

A detector finds, in each frame of a video, where each text query ("ball",
"box") appears. Two implementations:

* :class:`ToyDetector`: the toy world's probe (colour and shape tracks),
  queries read with the caption word tables ("ball" -> circle, "red" ->
  red). The embedded default: no weights, exact on toy videos.
* :class:`GroundingDinoDetector`: GroundingDINO through ``transformers``
  (``GroundingDinoForObjectDetection`` and its processor) from a local folder
  or a hub id in the local cache. A query's score for a predicted box is the
  highest sigmoid of the box's text logits over the query's own tokens, so
  each query gets its own best box per frame.

Frames are ``(F, H, W, 3)`` uint8; boxes are ``(x0, y0, x1, y1)`` in that
frame's pixels, ``x1``/``y1`` exclusive.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from reelgraph.errors import ReelgraphError

Box = tuple[float, float, float, float]


@dataclass(frozen=True)
class Detection:
    """Query ``query`` seen in frame ``frame`` inside ``box`` with confidence ``score`` in [0, 1]."""

    frame: int
    query: str
    box: Box
    score: float


class Detector(Protocol):
    """Finds text queries in video frames."""

    name: str

    def detect(self, frames: np.ndarray, queries: Sequence[str]) -> list[Detection]:
        """At most one detection per (frame, query): the best one above the detector's threshold."""
        ...


# --- the toy world -------------------------------------------------------------------------------

# Words that name any object of the toy world.
_ANY_OBJECT = {"object", "shape", "thing", "item", "figure"}


def _toy_vocabulary() -> tuple[dict[str, str], dict[str, str]]:
    """Word -> shape and word -> colour, from the caption tables (plurals included)."""
    from toyworld.captions import COLOR_WORDS, SHAPE_NOUNS

    shapes = {}
    for shape, nouns in SHAPE_NOUNS.items():
        for noun in nouns:
            shapes[noun] = shape
            shapes[noun + ("es" if noun.endswith(("x", "s")) else "s")] = shape
    colors = {word: color for color, words in COLOR_WORDS.items() for word in words}
    return shapes, colors


@dataclass(frozen=True)
class ToyQuery:
    """What a text query asks for in the toy world; ``None`` fields accept anything."""

    text: str
    shape: str | None
    color: str | None
    any_object: bool

    @property
    def understood(self) -> bool:
        return self.any_object or self.shape is not None or self.color is not None


def parse_toy_query(text: str) -> ToyQuery:
    """Read "a red ball" as shape circle, colour red; words the toy world lacks are ignored."""
    shapes, colors = _toy_vocabulary()
    shape = color = None
    any_object = False
    for word in re.findall(r"[a-z]+", text.lower()):
        shape = shapes.get(word, shape)
        color = colors.get(word, color)
        any_object = any_object or word in _ANY_OBJECT
    return ToyQuery(text=text, shape=shape, color=color, any_object=any_object)


class ToyDetector:
    """The toy world's detector: the probe's tracks, matched to queries by shape and colour.

    The probe sees 32x32 frames (it area-resizes any video), so its pixel
    boxes are scaled back to the video's size. A track counts in the frames
    where it was seen, with score 1.
    """

    name = "toy"

    def detect(self, frames: np.ndarray, queries: Sequence[str]) -> list[Detection]:
        from toyworld.probe import probe
        from toyworld.spec import FRAME_SIZE

        frames = np.asarray(frames)
        parsed = [parse_toy_query(q) for q in queries]
        if not any(p.understood for p in parsed):
            return []
        result = probe(frames)
        sy, sx = frames.shape[1] / FRAME_SIZE, frames.shape[2] / FRAME_SIZE
        detections = []
        for query in parsed:
            tracks = [
                track
                for track in result.tracks
                if query.understood
                and (query.shape is None or track.shape == query.shape)
                and (query.color is None or track.color == query.color)
            ]
            for f in range(len(frames)):
                # Several matching tracks ("object" in a two-object scene): the largest one in this frame.
                seen = [t for t in tracks if t.present[f] and t.bbox[f] is not None]
                if not seen:
                    continue
                track = max(seen, key=lambda t: t.area[f])
                x0, y0, x1, y1 = track.bbox[f]
                box = (x0 * sx, y0 * sy, (x1 + 1) * sx, (y1 + 1) * sy)
                detections.append(Detection(frame=f, query=query.text, box=box, score=1.0))
        return detections


# --- GroundingDINO ------------------------------------------------------------------------------


def grounding_text(queries: Sequence[str]) -> tuple[str, list[tuple[int, int]]]:
    """GroundingDINO's prompt ("ball. red box.") and each query's character span in it."""
    parts, spans, position = [], [], 0
    for query in queries:
        clean = " ".join(query.lower().replace(".", " ").split())
        spans.append((position, position + len(clean)))
        parts.append(clean + ".")
        position += len(clean) + 2  # the query, its full stop and a space
    return " ".join(parts), spans


def query_token_positions(
    offsets: Sequence[tuple[int, int]], spans: Sequence[tuple[int, int]]
) -> list[list[int]]:
    """Token indices of each query: tokens whose character offsets fall inside its span."""
    positions = []
    for start, end in spans:
        positions.append([i for i, (a, b) in enumerate(offsets) if b > a and a >= start and b <= end])
    return positions


class GroundingDinoDetector:
    """GroundingDINO (Liu et al.) through ``transformers``, one forward pass per batch of frames.

    Args:
        model: a local folder or hub id holding the model and its processor.
        box_threshold: the lowest query score a box may have to count.
        device: torch device for the detector.
        batch_size: frames per forward pass.
    """

    name = "grounding-dino"

    def __init__(self, model: str, box_threshold: float = 0.3, device: str = "cpu", batch_size: int = 8):
        self.model_name = model
        self.box_threshold = box_threshold
        self.device = device
        self.batch_size = batch_size

    @functools.cached_property
    def _components(self):
        import os

        from transformers import AutoProcessor, GroundingDinoForObjectDetection

        offline = os.environ.get("HF_HUB_OFFLINE", "0") not in ("", "0", "false", "False")
        try:
            processor = AutoProcessor.from_pretrained(self.model_name, local_files_only=offline)
            model = GroundingDinoForObjectDetection.from_pretrained(
                self.model_name,
                local_files_only=offline,
                use_safetensors=True,  # never a pickle .bin
            )
        except OSError as error:
            raise ReelgraphError(
                f"GroundingDINO model {self.model_name!r} cannot be loaded.",
                why=str(error).splitlines()[0],
                fix="download it (e.g. IDEA-Research/grounding-dino-tiny) on a machine with internet and set "
                "REELGRAPH_DETECTOR_MODEL to its folder, or use the toy detector (--detector toy).",
            ) from error
        return processor, model.to(self.device).eval()

    def detect(self, frames: np.ndarray, queries: Sequence[str]) -> list[Detection]:
        import torch
        from PIL import Image

        queries = [q for q in queries if q.strip()]
        if not queries:
            return []
        processor, model = self._components
        text, spans = grounding_text(queries)
        encoded = processor.tokenizer(text, return_offsets_mapping=True)
        positions = query_token_positions(encoded["offset_mapping"], spans)
        frames = np.asarray(frames)
        height, width = frames.shape[1:3]
        detections = []
        for start in range(0, len(frames), self.batch_size):
            batch = [Image.fromarray(frame) for frame in frames[start : start + self.batch_size]]
            inputs = processor(images=batch, text=[text] * len(batch), return_tensors="pt").to(self.device)
            with torch.inference_mode():
                outputs = model(**inputs)
            probs = outputs.logits.sigmoid().float().cpu()  # (B, boxes, text positions)
            boxes = outputs.pred_boxes.float().cpu()  # (B, boxes, 4): cx, cy, w, h in [0, 1]
            corners = torch.cat(
                [boxes[..., :2] - boxes[..., 2:] / 2, boxes[..., :2] + boxes[..., 2:] / 2], -1
            )
            corners = (corners * torch.tensor([width, height, width, height])).clamp(min=0)
            for b in range(len(batch)):
                for query, tokens in zip(queries, positions, strict=True):
                    tokens = [t for t in tokens if t < probs.shape[-1]]
                    if not tokens:
                        continue
                    scores = probs[b][:, tokens].max(dim=-1).values
                    best = int(scores.argmax())
                    if float(scores[best]) < self.box_threshold:
                        continue
                    x0, y0, x1, y1 = (float(v) for v in corners[b, best])
                    box = (x0, y0, min(x1, width), min(y1, height))
                    if box[2] <= box[0] or box[3] <= box[1]:
                        continue
                    detections.append(Detection(start + b, query, box, float(scores[best])))
        return detections


def make_detector(name: str, model: str | None = None, device: str = "cpu") -> Detector:
    """``toy`` or ``grounding-dino`` (``model``: folder or hub id)."""
    if name == "toy":
        return ToyDetector()
    if name in ("grounding-dino", "groundingdino", "grounding_dino"):
        if not model:
            raise ReelgraphError(
                "The GroundingDINO detector needs a model.",
                fix="set REELGRAPH_DETECTOR_MODEL (or detector_model in the config) to a folder or hub id.",
            )
        return GroundingDinoDetector(model, device=device)
    raise ReelgraphError(f"Unknown detector {name!r}.", fix="use 'toy' or 'grounding-dino'.")
