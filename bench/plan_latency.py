"""How long a cold `plan` takes: a fresh process, imports included, against a toy pool.

`plan` is the dry run people call before spending GPU time, so its cold start
is what they wait for. Each run is a new interpreter (`python cli.py plan
PROMPT --json`, as a user types it), after one untimed run that renders and
ingests the pool and warms the OS file cache. Reports wall time per run and
where a cold process spends its imports (`python -X importtime`).

    python bench/plan_latency.py [--home /tmp/plan-latency] [--pool 300] [--runs 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import write_result

ROOT = Path(__file__).resolve().parent.parent
BUDGET_S = 10.0


def _cli(home: Path, *args: str, python_flags: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    """``python cli.py --home HOME ARGS`` in a fresh, offline interpreter."""
    return subprocess.run(
        [sys.executable, *python_flags, "cli.py", "--home", str(home), *args],
        cwd=ROOT,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
        capture_output=True,
        text=True,
        check=True,
    )


def _plan(home: Path, prompt: str, *python_flags: str) -> subprocess.CompletedProcess:
    return _cli(home, "plan", prompt, "--json", python_flags=python_flags)


def _top_imports(stderr: str, n: int = 6) -> list[tuple[str, float]]:
    """The slowest top-level packages by cumulative import time (``-X importtime`` lines)."""
    totals: dict[str, float] = {}
    for line in stderr.splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        _, cumulative, name = (part.strip() for part in line.split(":", 1)[1].split("|"))
        if name and "." not in name and cumulative.isdigit():  # packages, at any nesting depth
            totals[name] = max(totals.get(name, 0.0), int(cumulative) / 1e6)
    return sorted(totals.items(), key=lambda item: -item[1])[:n]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, default=Path("/tmp/plan-latency"))
    parser.add_argument("--pool", type=int, default=300)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--prompt", default="a red ball rolls to the right")
    args = parser.parse_args()

    _cli(args.home, "index", "toy", "--n", str(args.pool), "--json")
    _plan(args.home, args.prompt)  # untimed: warms the OS file cache
    times = []
    for _ in range(args.runs):
        started = time.perf_counter()
        _plan(args.home, args.prompt)
        times.append(time.perf_counter() - started)
    imports = _top_imports(_plan(args.home, args.prompt, "-X", "importtime").stderr)
    load = os.getloadavg()[0]
    median = statistics.median(times)
    lines = [
        f"`python cli.py plan {args.prompt!r} --json` in a fresh process, {args.pool}-video toy pool, "
        f"{args.runs} runs after one untimed warm-up; load average {load:.1f} when it finished.",
        "",
        "| runs | min s | median s | max s |",
        "|---|---|---|---|",
        f"| {args.runs} | {min(times):.2f} | {median:.2f} | {max(times):.2f} |",
        "",
        f"Budget {BUDGET_S:.0f} s: **{'met' if median <= BUDGET_S else 'NOT met'}** (median).",
        "",
        "Slowest top-level imports of one cold run (`-X importtime`, cumulative, seconds; spaCy's thinc "
        "imports torch, which the query embedding needs anyway):",
        "",
        "| package | s |",
        "|---|---|",
        *(f"| {name} | {seconds:.2f} |" for name, seconds in imports),
    ]
    path = write_result("plan_latency", "Cold `plan` latency", "\n".join(lines))
    print(path.read_text())


if __name__ == "__main__":
    main()
