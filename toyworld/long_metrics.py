"""Long-video metrics on toy-world videos: joins, identity over clips, content cycling, motion per clip.

Inputs are the joined video's frames ``(F, 32, 32, 3)`` uint8 and its
*segments*: the output frames ``[a, b)`` that each clip contributed (from the
manifest's ``long_video.clips[*].kept``, :func:`segments_from_manifest`).

* :func:`boundary_smoothness`: the mean frame-to-frame change across clip
  boundaries divided by the mean change inside clips. 1.0 is seamless, above
  1 a visible jump (a still video gets 1.0 from a ``1e-5`` floor on both).
* :func:`identity_persistence`: the probe reads the actor (colour, shape,
  size) in a clip-length window ending at each clip's last frame; the share of
  clips after the first whose reading matches the first clip's.
* :func:`content_cycling`: how much clip ``k + 2`` repeats clip ``k``:
  ``1 - min(1, D(k, k+2) / D(k, k+1))`` averaged over ``k``, with ``D`` the
  mean absolute pixel difference between aligned segments. 0: clip ``k + 2`` is
  at least as far from clip ``k`` as the clip between them (the video moves
  on); 1: it repeats clip ``k`` exactly.
* :func:`motion_per_clip`: the probe's motion in each clip window against the
  prompt's motion.
* :func:`scene_change`: for storyboards, the actor read in the window before
  and after a scene boundary: same colour, same shape.
* :func:`direction_consistency` (issue 18): at each join, the actor's
  displacement over the ``window`` frames before it and over the ``window``
  frames after it (measured from the last frame before the join, so a jump
  back counts); the share of joins where the two keep their sign (positive
  dot product). Joins where the actor moved less than ``min_shift`` pixels
  before are not counted (nothing to keep).
* whole-video motion accuracy: the probe's label of the whole joined video
  against the prompt's motion (``motion_whole``).
* drift: the actor read in the last clip's window against the first clip's
  (``color_kept_at_end``, ``shape_kept_at_end``, ``identity_kept_at_end``):
  after 8 clips, the drift row of bench/long_video_direction.py.

All frame differences are in [0, 1] units (pixel values / 255).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

Segment = tuple[int, int]
EPS = 1e-5  # keeps ratios defined for still videos; far below a moving toy object's ~1e-2 change


@dataclass(frozen=True)
class Reading:
    """What the probe saw in one window: the actor's colour, shape and size, and the scene's motion."""

    color: str | None
    shape: str | None
    size: str | None
    motion: str | None

    @classmethod
    def from_probe(cls, result: Any) -> Reading:
        """The probe's actor, or its largest track when it named no actor; all None when it saw nothing."""
        if not result.tracks:
            return cls(None, None, None, result.motion)
        track = result.tracks[result.actor if result.actor is not None else 0]
        return cls(track.color, track.shape, track.size, result.motion)

    def identity(self) -> tuple[str | None, str | None, str | None]:
        return (self.color, self.shape, self.size)


def segments_from_manifest(manifest: dict[str, Any]) -> list[Segment]:
    """Output frame ranges of each clip, from ``manifest["long_video"]["clips"][*]["kept"]``; [] when absent."""
    clips = (manifest.get("long_video") or {}).get("clips") or []
    segments, start = [], 0
    for clip in clips:
        a, b = clip["kept"]
        segments.append((start, start + b - a))
        start += b - a
    return segments


def scene_boundaries(manifest: dict[str, Any]) -> list[int]:
    """Output frame indices where a new scene starts (its first frame)."""
    clips = (manifest.get("long_video") or {}).get("clips") or []
    boundaries = []
    for clip, (start, _) in zip(clips, segments_from_manifest(manifest), strict=True):
        if clip["clip"] == 0 and clip["scene"] > 0:
            boundaries.append(start)
    return boundaries


def frame_changes(frames: np.ndarray) -> np.ndarray:
    """``(F - 1,)``: mean absolute difference between consecutive frames, in [0, 1]."""
    x = np.asarray(frames, dtype=np.float32) / 255.0
    return np.abs(np.diff(x, axis=0)).mean(axis=(1, 2, 3))


def boundary_smoothness(frames: np.ndarray, segments: Sequence[Segment]) -> float | None:
    """Mean change across clip boundaries / mean change within clips (1.0 seamless); None for one clip."""
    if len(segments) < 2:
        return None
    changes = frame_changes(frames)
    boundary = np.zeros(len(changes), dtype=bool)
    for a, _ in segments[1:]:
        if 0 < a <= len(changes):
            boundary[a - 1] = True  # the change from the previous clip's last frame to this clip's first
    if not boundary.any() or boundary.all():
        return None
    return float((changes[boundary].mean() + EPS) / (changes[~boundary].mean() + EPS))


def content_cycling(frames: np.ndarray, segments: Sequence[Segment]) -> float | None:
    """How much clip ``k + 2`` repeats clip ``k`` in [0, 1] (module docstring); None below three clips."""
    if len(segments) < 3:
        return None
    x = np.asarray(frames, dtype=np.float32) / 255.0
    length = min(b - a for a, b in segments)
    parts = [x[a : a + length] for a, _ in segments]

    def distance(p: np.ndarray, q: np.ndarray) -> float:
        return float(np.abs(p - q).mean())

    near = np.mean([distance(parts[k], parts[k + 1]) for k in range(len(parts) - 2)])
    far = np.mean([distance(parts[k], parts[k + 2]) for k in range(len(parts) - 2)])
    return float(1.0 - min(1.0, (far + EPS) / (near + EPS)))


def clip_windows(segments: Sequence[Segment], length: int) -> list[Segment]:
    """A window of ``length`` frames ending at each segment's end (shorter at the video's start)."""
    return [(max(0, b - length), b) for _, b in segments]


def read_windows(
    frames: np.ndarray, windows: Sequence[Segment], probe: Callable[[np.ndarray], Any] | None = None
) -> list[Reading]:
    """The probe's reading of each window."""
    if probe is None:
        from toyworld.probe import probe
    return [Reading.from_probe(probe(frames[a:b])) for a, b in windows]


def identity_persistence(readings: Sequence[Reading]) -> dict[str, float] | None:
    """Share of windows after the first whose actor has the first window's colour, shape, size (and all three)."""
    if len(readings) < 2 or readings[0].color is None:
        return None
    first, rest = readings[0], readings[1:]
    return {
        "color": float(np.mean([r.color == first.color for r in rest])),
        "shape": float(np.mean([r.shape == first.shape for r in rest])),
        "size": float(np.mean([r.size == first.size for r in rest])),
        "identity": float(np.mean([r.identity() == first.identity() for r in rest])),
    }


def motion_per_clip(readings: Sequence[Reading], expected_motion: str) -> list[bool]:
    return [r.motion == expected_motion for r in readings]


def scene_change(
    frames: np.ndarray, boundary: int, window: int, probe: Callable | None = None
) -> dict[str, Any]:
    """The actor in the ``window`` frames before a scene boundary and the ``window`` frames after it."""
    before, after = read_windows(
        frames,
        [(max(0, boundary - window), boundary), (boundary, min(len(frames), boundary + window))],
        probe,
    )
    return {
        "before": before.__dict__,
        "after": after.__dict__,
        "color_kept": before.color is not None and before.color == after.color,
        "shape_kept": before.shape is not None and before.shape == after.shape,
    }


def direction_consistency(
    centroids: Sequence[Sequence[float] | None],
    segments: Sequence[Segment],
    window: int = 4,
    min_shift: float = 0.5,
) -> float | None:
    """Share of joins where the actor's motion vector keeps its sign (module docstring); None when none counts.

    Args:
        centroids: the actor's ``(x, y)`` per output frame (None where the probe did not see it).
        segments: each clip's output frames ``[a, b)``.
    """
    kept = []
    for (start, _), (a, _) in itertools.pairwise(segments):
        if a < 1 or a >= len(centroids):
            continue
        first = max(start, a - window)
        last = min(len(centroids) - 1, a + window - 1)
        points = (centroids[first], centroids[a - 1], centroids[last])
        if any(p is None for p in points) or first == a - 1:
            continue
        before = np.subtract(points[1], points[0])
        after = np.subtract(points[2], points[1])
        if float(np.hypot(*before)) < min_shift:
            continue
        kept.append(float(np.dot(before, after)) > 0.0)
    return float(np.mean(kept)) if kept else None


def actor_centroids(result: Any) -> list[tuple[float, float] | None]:
    """The probe's actor (or largest track) centroid per frame; [] when it saw nothing."""
    if not result.tracks:
        return []
    track = result.tracks[result.actor if result.actor is not None else 0]
    return [None if c is None else (float(c[0]), float(c[1])) for c in track.centroid]


LONG_COLUMNS = (
    "boundary_smoothness",
    "identity_persistence",
    "color_persistence",
    "content_cycling",
    "motion_acc_per_clip",
    "direction_consistency",
    "motion_whole",
    "identity_kept_at_end",
    "color_kept_at_end",
    "shape_kept_at_end",
)


def long_video_row(
    frames: np.ndarray, manifest: dict[str, Any], label: dict[str, Any], probe: Callable | None = None
) -> dict[str, Any]:
    """The long-video metrics of one sample; ``{}`` for a one-clip video."""
    segments = segments_from_manifest(manifest)
    if len(segments) < 2 or segments[-1][1] != len(frames):
        return {}
    clip_frames = int(manifest["long_video"].get("clip_frames") or max(b - a for a, b in segments))
    readings = read_windows(frames, clip_windows(segments, clip_frames), probe)
    identity = identity_persistence(readings)
    motions = motion_per_clip(readings, label["motion"])
    if probe is None:
        from toyworld.probe import probe
    whole = probe(frames)
    first, last = readings[0], readings[-1]
    seen = first.color is not None
    return {
        "clips": len(segments),
        "boundary_smoothness": boundary_smoothness(frames, segments),
        "identity_persistence": None if identity is None else identity["identity"],
        "color_persistence": None if identity is None else identity["color"],
        "shape_persistence": None if identity is None else identity["shape"],
        "content_cycling": content_cycling(frames, segments),
        "motion_per_clip": motions,
        "motion_acc_per_clip": float(np.mean(motions)),
        "direction_consistency": direction_consistency(actor_centroids(whole), segments),
        "motion_whole": whole.motion == label["motion"],
        "whole_motion": whole.motion,
        "identity_kept_at_end": None if not seen else last.identity() == first.identity(),
        "color_kept_at_end": None if not seen else last.color == first.color,
        "shape_kept_at_end": None if not seen else last.shape == first.shape,
        "clip_readings": [r.__dict__ for r in readings],
    }


def summarize(rows: Sequence[dict[str, Any]]) -> dict[str, float | None]:
    """Means of the long-video columns over the rows that have them (None where none has)."""
    out: dict[str, float | None] = {}
    for key in (*LONG_COLUMNS, "shape_persistence"):
        values = [r[key] for r in rows if r.get(key) is not None]
        out[key] = round(float(np.mean(values)), 4) if values else None
    return out
