"""How fast the toy renderer makes training clips on one core.

Usage: python bench/render_speed.py [--clips 2000] [--frames 8] [--repeats 3]

Writes bench/results/render_speed.md. Each step runs ``--repeats`` times; the
table gives the best CPU time of the process (``time.process_time``: the work
one core did, which other programs on a shared machine disturb far less than
wall time) and the best wall time.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

from reelgraph.atomic import write_text
from toyworld.captions import describe, sample_label
from toyworld.dataset import sample_batch
from toyworld.render import plan_scene, rasterize


def _best(fn, repeats: int) -> tuple[float, float]:
    """Best (CPU seconds, wall seconds) over ``repeats`` runs."""
    cpu, wall = [], []
    for _ in range(repeats):
        start_cpu, start_wall = time.process_time(), time.perf_counter()
        fn()
        cpu.append(time.process_time() - start_cpu)
        wall.append(time.perf_counter() - start_wall)
    return min(cpu), min(wall)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=2000)
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "render_speed.md"))
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    labels = [sample_label(rng, "train") for _ in range(args.clips)]
    scenes = [plan_scene(label, args.frames, rng) for label in labels]
    n = args.clips
    rows = [
        (
            "labels (sample_label)",
            _best(lambda: [sample_label(rng, "train") for _ in range(n)], args.repeats),
        ),
        ("captions (describe)", _best(lambda: [describe(label, rng) for label in labels], args.repeats)),
        (
            "motion plans (plan_scene)",
            _best(lambda: [plan_scene(lb, args.frames, rng) for lb in labels], args.repeats),
        ),
        ("rasterise (analytic AA, default)", _best(lambda: rasterize(scenes), args.repeats)),
        (
            "rasterise (4x4 supersampled, reference)",
            _best(lambda: rasterize(scenes, supersample=4), args.repeats),
        ),
        ("render_batch = plans + rasterise", None),
        (
            "sample_batch (labels + clips + captions)",
            _best(lambda: sample_batch(n, rng, args.frames), args.repeats),
        ),
    ]
    plan, raster = rows[2][1], rows[3][1]
    rows[5] = (rows[5][0], (plan[0] + raster[0], plan[1] + raster[1]))
    lines = [
        "# Toy renderer speed",
        "",
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores shared with other work, "
        f"one thread (OMP_NUM_THREADS=1), numpy {np.__version__}, Python {platform.python_version()}; "
        f"load average {os.getloadavg()[0]:.1f} when the run ended (above 2 the cores were shared, "
        "so wall times run long; CPU times much less so).",
        "",
        f"Command: `python bench/render_speed.py --clips {n} --frames {args.frames} --repeats {args.repeats}`",
        "",
        f"{n} clips of {args.frames} frames, 32x32, `train` label distribution; best of {args.repeats} runs.",
        "",
        "| step | CPU s | clips per CPU s | wall s | clips/s wall |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, (cpu, wall) in rows:
        lines.append(f"| {name} | {cpu:.3f} | {n / cpu:,.0f} | {wall:.3f} | {n / wall:,.0f} |")
    text = "\n".join(lines) + "\n"
    write_text(args.out, text)
    print(text)


if __name__ == "__main__":
    main()
