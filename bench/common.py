"""Shared bits for benchmarks: machine description and result files."""

from __future__ import annotations

import os
import platform
import shlex
import sys
from datetime import datetime, timezone
from pathlib import Path

from reelgraph.atomic import write_text

RESULTS = Path(__file__).resolve().parent / "results"


def machine() -> str:
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as handle:
            cpu = next(line.split(":", 1)[1].strip() for line in handle if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return f"{os.cpu_count()} CPU cores ({cpu}), {gpu}, torch {torch.__version__} ({torch.get_num_threads()} threads)"


def command() -> str:
    # OpenMP's thread count changes CPU timings as much as --threads does (bench/results/toy_speed.md)
    env = "".join(f"{k}={os.environ[k]} " for k in ("OMP_NUM_THREADS",) if k in os.environ)
    return env + "python " + " ".join(shlex.quote(a) for a in sys.argv)


def write_result(name: str, title: str, body: str) -> Path:
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    text = (
        f"# {title}\n\n- machine: {machine()}\n- command: `{command()}`\n- date: {stamp}\n\n{body.strip()}\n"
    )
    path = RESULTS / f"{name}.md"
    write_text(path, text)
    print(text)
    return path


def interleaved_timings(ours, theirs, repeats: int):
    """Time ``ours`` and ``theirs`` alternately (after one warm-up each), so load from other
    processes hits both alike. Returns ``(max |ours - theirs|, {name: [seconds]}, ours/theirs median ratio)``."""
    import statistics
    import time

    import torch

    times: dict[str, list[float]] = {"ours": [], "diffusers": []}
    with torch.inference_mode():
        difference = (ours() - theirs()).abs().max().item()  # also the warm-up of both
        for _ in range(repeats):
            for name, run in (("ours", ours), ("diffusers", theirs)):
                started = time.perf_counter()
                run()
                times[name].append(time.perf_counter() - started)
    medians = {name: statistics.median(values) for name, values in times.items()}
    return difference, times, medians["ours"] / medians["diffusers"]
