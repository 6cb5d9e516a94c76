"""Batch generation items per minute: in process against Ray with 1 and 2 workers, on this machine.

Every engine runs the same batch (``--items`` toy prompts, one seed each, the embedded toy model
by default, ``--steps`` DDIM steps) through :func:`agent.batch.run_batch`, into a fresh data
directory and output folder per run (nothing is skipped or served from a cache). The engines take
turns, ``--repeats`` rounds, so load from other processes hits all of them alike; the table gives
the median and best items per minute, wall time from the first item handed out to the last
result back (each Ray run starts its actors and loads the model in them: that is in the time),
and the seconds the items themselves took (summed over workers).

Rows, every one with ``work_threads`` torch threads per item:

* ``in process``: the default engine;
* ``ray, 1 worker`` / ``ray, 2 workers``: a local cluster (``ray.init(num_cpus=2)``), started once
  before the rounds (its start is reported, not counted).

After the rounds the videos of every engine are compared byte for byte with the in-process ones.

    python bench/scaleout.py [--items 8] [--steps 10] [--repeats 2] [--threads 1] [--model toy]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import write_result


def videos(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("video.mp4"))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=8)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1, help="torch threads per item (work_threads)")
    parser.add_argument("--model", default="toy")
    parser.add_argument("--name", default="scaleout")
    args = parser.parse_args()

    import ray

    from agent.batch import read_batch, run_batch
    from reelgraph.settings import load_settings
    from reelgraph.work_runner import InProcessRunner, RayRunner, local_cluster_options
    from toyworld.captions import prompt_set

    work = Path(tempfile.mkdtemp(prefix="bench-scaleout-"))
    batch = work / "batch.jsonl"
    rows = prompt_set(args.items, seed=11)
    batch.write_text(
        "".join(json.dumps({"prompt": row["prompt"], "seed": i}) + "\n" for i, row in enumerate(rows))
    )
    load_before = os.getloadavg()

    started = time.perf_counter()
    ray.init(**local_cluster_options(num_cpus=2))
    cluster_seconds = time.perf_counter() - started

    engines = {
        "in process": lambda: InProcessRunner(retries=0, threads=args.threads),
        "ray, 1 worker": lambda: RayRunner(workers=1, retries=0, threads=args.threads),
        "ray, 2 workers": lambda: RayRunner(workers=2, retries=0, threads=args.threads),
    }
    timings: dict[str, list[tuple[float, float]]] = {name: [] for name in engines}
    flags = {"model": args.model, "num_inference_steps": args.steps, "clip_cache": False, "rewrite": False}
    for round_number in range(args.repeats):
        for name, make in engines.items():
            folder = work / f"{name.replace(' ', '').replace(',', '-')}-{round_number}"
            settings = load_settings(flags, home=folder / "home").settings
            jobs = read_batch(batch, settings, folder / "out")
            runner = make()
            began = time.perf_counter()
            summary = run_batch(jobs, settings, folder / "out", runner=runner)
            wall = time.perf_counter() - began
            assert summary["done"] == args.items, summary
            timings[name].append((wall, sum(e["seconds"] for e in summary["items"])))
            print(f"round {round_number} {name}: {wall:.1f} s", flush=True)
    reference = videos(work / "inprocess-0" / "out")
    equal = {
        name: all(
            videos(work / f"{name.replace(' ', '').replace(',', '-')}-{r}" / "out") == reference
            for r in range(args.repeats)
        )
        for name in engines
    }
    ray.shutdown()
    load_after = os.getloadavg()
    shutil.rmtree(work, ignore_errors=True)

    table = "| engine | items/min (median) | items/min (best) | wall s (median) | item s summed (median) | videos equal to in process |\n|---|---|---|---|---|---|\n"
    base = statistics.median(w for w, _ in timings["in process"])
    for name, runs in timings.items():
        walls = [w for w, _ in runs]
        table += (
            f"| {name} | {60 * args.items / statistics.median(walls):.1f} | {60 * args.items / min(walls):.1f} "
            f"| {statistics.median(walls):.1f} | {statistics.median(s for _, s in runs):.1f} | "
            f"{'yes' if equal[name] else 'NO'} |\n"
        )
    ratios = {name: base / statistics.median(w for w, _ in runs) for name, runs in timings.items()}
    body = f"""
{args.items} batch items (toy prompts, one seed each), model `{args.model}`, {args.steps} DDIM steps,
{args.threads} torch thread(s) per item, {args.repeats} interleaved rounds. Load average before
{load_before[0]:.1f} / {load_before[1]:.1f} / {load_before[2]:.1f}, after {load_after[0]:.1f} /
{load_after[1]:.1f} / {load_after[2]:.1f}. Local cluster start (`ray.init(num_cpus=2)`, not counted):
{cluster_seconds:.1f} s.

{table}
Speed-up over in process (median wall): {", ".join(f"{k} {v:.2f}x" for k, v in ratios.items())}.
"""
    write_result(args.name, "Batch generation: in process vs Ray with 1 and 2 workers", body)


if __name__ == "__main__":
    main()
