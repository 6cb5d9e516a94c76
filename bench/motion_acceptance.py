"""Motion priors through the CLI: the plan's tuning job and a cached LoRA reused by a second request.

In a fresh data directory (``--home``, removed first):

1. ``reelgraph index toy --n 300``: a toy pool;
2. ``reelgraph plan PROMPT --json``: the plan, whose scene shows the tuning
   job (video, keyframes, training prompt, config, cache key) and its
   estimated seconds, next to the sampling estimate;
3. ``reelgraph generate PROMPT --seed 1`` then ``--seed 2``: the first run
   tunes and stores the LoRA, the second finds it in the cache; both
   manifests' tuning steps are shown.

Every command runs as a subprocess of this interpreter and is listed in the
result with its wall time.

    python bench/motion_acceptance.py [--prompt TEXT] [--model toy] [--home /tmp/reelgraph-motion-acceptance]
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import write_result

ROOT = Path(__file__).resolve().parent.parent

TUNING_KEYS = (
    "status",
    "reason",
    "training_prompt",
    "key",
    "cached",
    "estimated_seconds",
    "cache_hit",
    "seconds",
    "train_seconds",
    "lora_path",
    "loss",
)


def cli(home: Path, *args: str) -> tuple[str, str, float]:
    """Run ``cli.py --home HOME ARGS``; ``(shown command, stdout, seconds)``."""
    command = [sys.executable, str(ROOT / "cli.py"), "--home", str(home), *args]
    started = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, env=os.environ.copy())
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{shlex.join(command)} failed:\n{done.stdout}\n{done.stderr}")
    shown = "python cli.py " + shlex.join(["--home", str(home), *args])
    return shown, done.stdout, seconds


def tuning_view(step: dict) -> dict:
    view = {k: step[k] for k in TUNING_KEYS if k in step}
    view["video"] = {k: step["video"].get(k) for k in ("id", "caption", "source", "score")}
    view["keyframes"] = {
        k: step["keyframes"].get(k) for k in ("span", "crop", "queries", "found", "fallback")
    }
    view["config"] = {k: step["config"].get(k) for k in ("steps", "rank", "learning_rate", "seed")}
    return view


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--prompt", default="a red ball zigzags to the right")
    parser.add_argument("--model", default="toy")
    parser.add_argument("--pool-size", type=int, default=300)
    parser.add_argument("--home", type=Path, default=Path("/tmp/reelgraph-motion-acceptance"))
    parser.add_argument("--name", default="motion_prior_acceptance")
    args = parser.parse_args()

    shutil.rmtree(args.home, ignore_errors=True)
    runs = args.home.parent / f"{args.home.name}-runs"
    shutil.rmtree(runs, ignore_errors=True)
    commands: list[tuple[str, float]] = []

    shown, _, seconds = cli(args.home, "index", "toy", "--n", str(args.pool_size), "--json")
    commands.append((shown, seconds))

    shown, text, seconds = cli(args.home, "plan", args.prompt, "--model", args.model, "--json")
    commands.append((shown, seconds))
    plan = json.loads(text)
    scene = plan["scenes"][0]
    plan_view = {
        "tuning": tuning_view(scene["tuning"]),
        "sampling": {k: scene["sampling"].get(k) for k in ("status", "reason", "estimated_seconds")},
        "estimates": plan["estimates"],
    }

    manifests = []
    for seed in (1, 2):
        out = runs / f"seed{seed}"
        shown, _, seconds = cli(
            args.home,
            "generate",
            args.prompt,
            "--model",
            args.model,
            "--seed",
            str(seed),
            "--out",
            str(out),
            "--json",
        )
        commands.append((shown, seconds))
        manifest = json.loads((out / "manifest.json").read_text())
        step = manifest["plan"]["scenes"][0]["tuning"]
        manifests.append(
            {
                "manifest": str(out / "manifest.json"),
                "tuning": tuning_view(step),
                "timings": {k: manifest["timings"].get(k) for k in ("tune_motion", "sample")},
            }
        )
    first, second = (m["tuning"] for m in manifests)
    verdict = (
        "the second request reused the first one's LoRA (same key and file, cache_hit true, 0 s of tuning)"
        if second.get("cache_hit") is True
        and first.get("cache_hit") is False
        and first["key"] == second["key"]
        and first["lora_path"] == second["lora_path"]
        else "NOT a cache hit: see the manifests"
    )
    listing = "\n".join(f"- `{c}` ({s:.0f} s)" for c, s in commands)
    body = f"""
Prompt: {args.prompt!r}; model `{args.model}`; pool: `index toy --n {args.pool_size}` in a fresh `--home`.

Commands (wall seconds on this machine, shared with other jobs):
{listing}

## `plan --json`: the scene's tuning job and its estimate

```json
{json.dumps(plan_view, indent=1)}
```

## The two manifests' tuning steps (`plan.scenes[0].tuning`)

Request 1 (`--seed 1`):

```json
{json.dumps(manifests[0], indent=1)}
```

Request 2 (`--seed 2`):

```json
{json.dumps(manifests[1], indent=1)}
```

Verdict: {verdict}.
"""
    write_result(
        args.name, "Motion priors through the CLI: tuning in the plan, and a cached LoRA reused", body
    )


if __name__ == "__main__":
    main()
