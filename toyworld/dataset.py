"""Toy data: rendered pools on disk (WebVid layout) and in-memory training batches.

A pool folder::

    DIR/videos/<videoid>.mp4   lossless H.264, 8 fps, 32x32
    DIR/captions.csv           videoid,contentUrl,duration,page_dir,name,label
    DIR/pool.json              how the pool was made (seed, frames, distribution, n)

The CSV has WebVid's columns in WebVid's order (``videoid``, ``contentUrl``,
``duration`` as an ISO 8601 duration such as ``PT00H00M03S``, ``page_dir``,
``name`` = the caption) plus ``label``, the label as JSON. ``page_dir`` is the
folder the video sits in (``videos``) and ``contentUrl`` its path relative to
DIR, so ``DIR/page_dir/videoid.mp4`` finds every video, as in a WebVid download.

Video ``i`` of seed ``s`` is drawn from its own generator
(``default_rng([s, i])``), so a pool is the same whatever ``n`` it is cut at,
and a re-run renders only what is missing and rewrites the same CSV.
"""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path

import numpy as np

from reelgraph.atomic import write_json, write_text
from reelgraph.errors import ReelgraphError
from reelgraph.media import write_mp4
from toyworld.captions import DISTRIBUTIONS, describe, sample_label
from toyworld.render import render_batch
from toyworld.spec import CLIP_FRAMES, FPS, POOL_FRAMES, Label

CSV_COLUMNS = ("videoid", "contentUrl", "duration", "page_dir", "name", "label")
VIDEO_DIR = "videos"
MANIFEST = "pool.json"


def iso_duration(seconds: float) -> str:
    """WebVid's duration format: ``PT00H00M03S``; fractional seconds keep their decimals."""
    whole = int(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    fraction = round(seconds - whole, 3)
    sec_text = f"{secs:02d}" if fraction == 0 else f"{secs + fraction:06.3f}".rstrip("0")
    return f"PT{hours:02d}H{minutes:02d}M{sec_text}S"


def video_id(seed: int, index: int) -> str:
    return f"toy{seed}-{index:06d}"


def pool_item(seed: int, index: int, frames: int, distribution: str) -> tuple[np.ndarray, str, Label]:
    """Frames ``(F, 32, 32, 3)``, caption and label of video ``index`` of a pool."""
    rng = np.random.default_rng([seed, index])
    label = sample_label(rng, distribution)
    video = render_batch([label], frames, rng)[0]
    return video, describe(label, rng).text, label


def _check_pool_args(n: int, seed: int, frames: int, distribution: str) -> None:
    if n < 0:
        raise ReelgraphError(f"Cannot render {n} videos.", fix="pass --n 1 or more.")
    if seed < 0:
        raise ReelgraphError(f"Seed {seed} is negative.", fix="pass a seed >= 0.")
    if frames < 1:
        raise ReelgraphError(
            f"A video needs at least one frame, got {frames}.", fix="pass --frames 1 or more."
        )
    if distribution not in DISTRIBUTIONS:
        raise ReelgraphError(
            f"Unknown label distribution {distribution!r}.", fix=f"use one of {', '.join(DISTRIBUTIONS)}."
        )


def render_pool(
    n: int,
    out_dir: str | os.PathLike[str],
    seed: int = 0,
    frames: int = POOL_FRAMES,
    distribution: str = "pool",
) -> Path:
    """Render ``n`` captioned videos into ``out_dir`` (layout in the module docstring); returns the CSV path.

    Deterministic for a seed. Existing videos of the same pool are kept (every
    write is atomic, so a file that exists is whole); the CSV is written last.
    A folder holding a pool of another seed, frame count or distribution is
    refused rather than mixed.
    """
    _check_pool_args(n, seed, frames, distribution)
    out = Path(out_dir)
    manifest_path = out / MANIFEST
    recipe = {"seed": seed, "frames": frames, "distribution": distribution, "fps": FPS}
    if manifest_path.is_file():
        try:
            existing = json.loads(manifest_path.read_text(encoding="utf-8"))
        except json.JSONDecodeError:
            existing = {}
        if {k: existing.get(k) for k in recipe} != recipe:
            raise ReelgraphError(
                f"{str(out)!r} already holds a different toy pool.",
                why=f"it was made with {existing}, this run asks for {recipe}.",
                fix="choose another --out folder, or delete the old one.",
            )
    elif (out / "captions.csv").exists():
        raise ReelgraphError(
            f"{str(out)!r} holds a captions.csv that this tool did not write.",
            fix="choose another --out folder.",
        )
    video_dir = out / VIDEO_DIR
    video_dir.mkdir(parents=True, exist_ok=True)
    write_json(manifest_path, {**recipe, "n": n})
    duration = iso_duration(frames / FPS)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for index in range(n):
        vid = video_id(seed, index)
        video, text, label = pool_item(seed, index, frames, distribution)
        path = video_dir / f"{vid}.mp4"
        if not path.is_file():
            write_mp4(video, path, fps=FPS, lossless=True)
        writer.writerow([vid, f"{VIDEO_DIR}/{vid}.mp4", duration, VIDEO_DIR, text, label.to_json()])
    return write_text(out / "captions.csv", buffer.getvalue())


def read_pool(out_dir: str | os.PathLike[str]) -> list[dict]:
    """Rows of a pool's captions.csv, each with ``path`` (the video file) and ``label`` (a :class:`Label`)."""
    out = Path(out_dir)
    csv_path = out / "captions.csv"
    if not csv_path.is_file():
        raise ReelgraphError(
            f"No captions.csv in {str(out)!r}.",
            fix="render a pool first: python cli.py toy render --n N --out DIR",
        )
    with csv_path.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    for row in rows:
        row["path"] = out / row["page_dir"] / f"{row['videoid']}.mp4"
        row["label"] = Label.from_json(row["label"])
    return rows


def sample_batch(
    n: int, rng: np.random.Generator, num_frames: int = CLIP_FRAMES, distribution: str = "train"
) -> tuple[np.ndarray, list[str], list[Label]]:
    """A training batch drawn on the fly: frames ``(N, F, 32, 32, 3)`` uint8, captions, labels."""
    labels = [sample_label(rng, distribution) for _ in range(n)]
    frames = render_batch(labels, num_frames, rng)
    captions = [describe(label, rng).text for label in labels]
    return frames, captions, labels
