"""Ingest throughput of this checkout vs another (a git worktree of the baseline), interleaved.

Each round runs ``bench.search_latency.bench_ingest`` (``ingest_csv`` on distinct toy captions,
no videos, models' lazy loads included) in a fresh process of each checkout, one after the
other, so load from other processes hits both alike. Reports captions/s per run and the ratio
of medians.

    python -m bench.ingest_ab --baseline /path/to/baseline/checkout [--captions 1000] [--rounds 2]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.common import write_result

ROOT = Path(__file__).resolve().parent.parent
SNIPPET = """
import json, sys, torch
from pathlib import Path
torch.set_num_threads(1)
from bench.search_latency import bench_ingest
print(json.dumps(bench_ingest(Path(sys.argv[1]), int(sys.argv[2]), seed=99)))
"""


def run(checkout: Path, work: Path, captions: int) -> float:
    env = {
        **os.environ,
        "PYTHONPATH": str(checkout),
        "HF_HUB_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
    }
    done = subprocess.run(
        [sys.executable, "-c", SNIPPET, str(work), str(captions)],
        cwd=checkout, env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    return json.loads(done.stdout.strip().splitlines()[-1])["rate"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--baseline", type=Path, required=True)
    ap.add_argument("--captions", type=int, default=1000)
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    rates: dict[str, list[float]] = {"baseline": [], "this": []}
    loads = [os.getloadavg()[0]]
    for _ in range(args.rounds):
        for name, checkout in (("baseline", args.baseline), ("this", ROOT)):
            with tempfile.TemporaryDirectory(prefix="reelgraph-ingest-ab-") as work:
                rates[name].append(run(checkout.resolve(), Path(work), args.captions))
            loads.append(os.getloadavg()[0])
    medians = {name: statistics.median(values) for name, values in rates.items()}
    body = f"""
{args.captions} distinct toy captions per run, no videos, batch 256, 1 torch thread, a fresh process per run
(lazy model loads included); checkouts interleaved, {args.rounds} rounds. Load average during the runs:
{", ".join(f"{x:.1f}" for x in loads)} (2 cores shared with a training run and other sessions).

| checkout | captions/s per run | median |
|---|---|---|
| baseline (`{args.baseline}`) | {", ".join(f"{r:.0f}" for r in rates["baseline"])} | {medians["baseline"]:.0f} |
| this | {", ".join(f"{r:.0f}" for r in rates["this"])} | {medians["this"]:.0f} |

Ratio this / baseline = **{medians["this"] / medians["baseline"]:.2f}**.
"""
    write_result("ingest_ab", "Ingest throughput: this checkout vs the baseline, interleaved", body)


if __name__ == "__main__":
    main()
