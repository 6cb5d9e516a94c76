"""Probe accuracy on freshly rendered clips, with confusion matrices.

Usage: python bench/probe_accuracy.py [--n 1000] [--seed 20260] [--frames 8] [--distribution pool] [--no-degraded]

Renders ``n`` clips from a seed that no test or pool uses, runs the probe on
each and compares with the ground truth. Writes bench/results/probe_accuracy.md.

Scores:
* colour / shape: per object (actor and recipient), the probe track nearest to
  the object's true centroid on the first frame (within 4 px; none = wrong).
* motion: the probe's scene motion equals the label's, and for two-object
  motions the probe's actor is the true actor.
* label: the probe's whole best-guess label equals the truth (sizes included).

The same clips are probed again after ``toyworld.render.degrade`` (fade to 75 %
contrast, 0.7 px blur, a colour shift of up to 12 per channel, noise of std 8),
a stand-in for a generator's imperfect videos.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from collections import Counter
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

from reelgraph.atomic import write_text
from toyworld.captions import sample_label
from toyworld.probe import probe
from toyworld.render import degrade, plan_scene, rasterize
from toyworld.spec import COLORS, MOTIONS, SHAPES

MISSING = "(none)"


def _match(track_centroids: list, x: float, y: float) -> int | None:
    best, best_d = None, 4.0
    for i, c in enumerate(track_centroids):
        if c is None:
            continue
        d = float(np.hypot(c[0] - x, c[1] - y))
        if d < best_d:
            best, best_d = i, d
    return best


def _confusion(pairs: list[tuple[str, str]], names: list[str], title: str) -> list[str]:
    counts = Counter(pairs)
    columns = [*names, MISSING]
    lines = [f"### {title} (rows: truth, columns: probe)", ""]
    lines.append("| truth \\ probe | " + " | ".join(columns) + " |")
    lines.append("|---|" + "---:|" * len(columns))
    for truth in names:
        if not any(t == truth for t, _ in pairs):
            continue
        cells = [str(counts.get((truth, guess), 0) or ".") for guess in columns]
        lines.append(f"| **{truth}** | " + " | ".join(cells) + " |")
    return [*lines, ""]


def evaluate(n: int, seed: int, frames: int, distribution: str, degraded: bool = False) -> dict:
    rng = np.random.default_rng(seed)
    labels = [sample_label(rng, distribution) for _ in range(n)]
    scenes = [plan_scene(label, frames, rng) for label in labels]
    videos = rasterize(scenes)
    if degraded:
        flaws = np.random.default_rng(seed + 1)
        videos = np.stack([degrade(video, flaws) for video in videos])
    color_pairs, shape_pairs, motion_pairs = [], [], []
    label_ok = 0
    start = time.perf_counter()
    for label, scene, video in zip(labels, scenes, videos, strict=True):
        result = probe(video)
        first = [t.centroid[0] if t.present[0] else next(c for c in t.centroid if c) for t in result.tracks]
        truths = [(scene.actor, label.actor)]
        if label.recipient is not None:
            truths.append((scene.recipient, label.recipient))
        matched = []
        for obj, spec in truths:
            i = _match(first, float(obj.x[0]), float(obj.y[0]))
            matched.append(i)
            color_pairs.append((spec.color, MISSING if i is None else result.tracks[i].color))
            shape_pairs.append((spec.shape, MISSING if i is None else result.tracks[i].shape))
        guess = result.motion or MISSING
        if label.recipient is not None and guess == label.motion and result.actor != matched[0]:
            guess = f"{guess} (roles swapped)"
        motion_pairs.append((label.motion, guess))
        label_ok += result.label() == label
    seconds = time.perf_counter() - start
    return {
        "color": color_pairs,
        "shape": shape_pairs,
        "motion": motion_pairs,
        "label_ok": label_ok,
        "n": n,
        "seconds": seconds,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=20260)
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--distribution", default="pool")
    parser.add_argument("--no-degraded", action="store_true", help="skip the degraded-video run")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "probe_accuracy.md"))
    args = parser.parse_args()
    r = evaluate(args.n, args.seed, args.frames, args.distribution)
    rd = (
        None
        if args.no_degraded
        else evaluate(args.n, args.seed, args.frames, args.distribution, degraded=True)
    )

    def acc(pairs):
        return sum(t == g for t, g in pairs) / len(pairs)

    motion_names = list(MOTIONS)
    extra = sorted({g for _, g in r["motion"] if g not in motion_names and g != MISSING})
    lines = [
        "# Probe accuracy",
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} CPU cores (shared), one thread; "
        f"Python {platform.python_version()}, numpy {np.__version__}.",
        "",
        f"Command: `python bench/probe_accuracy.py --n {args.n} --seed {args.seed} --frames {args.frames} "
        f"--distribution {args.distribution}`",
        "",
        f"{args.n} freshly rendered clips of {args.frames} frames (seed {args.seed}, `{args.distribution}` "
        f"distribution: all 14 motions); probe time {r['seconds']:.1f} s ({1000 * r['seconds'] / args.n:.1f} ms/clip).",
        "",
        "| measure | accuracy | target |",
        "|---|---:|---:|",
        f"| colour (per object, {len(r['color'])} objects) | {acc(r['color']):.2%} | >= 97% |",
        f"| shape (per object) | {acc(r['shape']):.2%} | >= 95% |",
        f"| motion (per clip, actor role included) | {acc(r['motion']):.2%} | >= 95% |",
        f"| whole label (colours, shapes, sizes, motion, roles, background) | {r['label_ok'] / r['n']:.2%} | |",
        "",
    ]
    if rd is not None:
        lines += [
            "Same clips after `degrade` (fade 0.75, blur 0.7 px, colour shift <= 12, noise std 8):",
            "",
            "| measure | accuracy |",
            "|---|---:|",
            f"| colour | {acc(rd['color']):.2%} |",
            f"| shape | {acc(rd['shape']):.2%} |",
            f"| motion | {acc(rd['motion']):.2%} |",
            f"| whole label | {rd['label_ok'] / rd['n']:.2%} |",
            "",
        ]
    per_motion = Counter(t for t, _ in r["motion"])
    right = Counter(t for t, g in r["motion"] if t == g)
    lines += ["| motion | clips | accuracy |", "|---|---:|---:|"]
    for m in motion_names:
        if per_motion[m]:
            lines.append(f"| {m} | {per_motion[m]} | {right[m] / per_motion[m]:.1%} |")
    lines.append("")
    lines += _confusion(r["color"], list(COLORS), "Colour")
    lines += _confusion(r["shape"], list(SHAPES), "Shape")
    lines += _confusion(r["motion"], motion_names + extra, "Motion")
    if rd is not None:
        extra_d = sorted({g for _, g in rd["motion"] if g not in motion_names and g != MISSING})
        lines += ["## Degraded clips", ""]
        lines += _confusion(rd["color"], list(COLORS), "Colour, degraded")
        lines += _confusion(rd["shape"], list(SHAPES), "Shape, degraded")
        lines += _confusion(rd["motion"], motion_names + extra_d, "Motion, degraded")
    text = "\n".join(lines)
    write_text(args.out, text)
    print(text)


if __name__ == "__main__":
    main()
