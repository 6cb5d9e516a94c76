"""Long videos that keep direction (issue 18): one run, same prompts and seeds, one row per method.

Rows (all through the normal generate path, probe-scored by ``eval``):

* ``single clip``: one clip per prompt, the reference for motion accuracy;
* ``independent``: every clip from its own noise, joined end to end;
* ``VidRD literal``: eq. 6-8 as printed (``--extension vidrd-literal``);
* ``VidRD keeping direction``: eq. 6'-8' (``--extension vidrd``, the default);
* ``ART-V``: masked continuation (``--extension artv``) with noise-augmented given frames, no anchor;
* ``ART-V + anchor``: the same with the video's first frame as anchor (ART-V §3.4, Fig. 8);
  both only on a model with a continuation network (``reelgraph.json``: ``conditioning_frames``,
  ``anchor_frame``).

Part A: ``--prompts`` prompts with a direction (move left / right / up / down) x ``--clips`` clips.
Part B (drift): ``--drift-prompts`` prompts x ``--drift-clips`` clips, for identity at the last clip.
Columns: direction consistency at joins, whole-video motion accuracy (the probe's label of the
joined video), motion accuracy per clip window, boundary smoothness, identity persistence, content
cycling, colour / shape / identity kept at the last clip (``toyworld.long_metrics``).

Samples are made prompt by prompt, every row in turn (a run cut short leaves every row with the
same prompts), into ``--work``; a re-run reads finished samples back. Writes
``bench/results/long_video_direction.{md,json,png}``.

    python bench/long_video_direction.py [--prompts 6] [--clips 4] [--drift-prompts 3] [--drift-clips 8]
        [--steps 20] [--samples 1] [--model toy]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import RESULTS, write_result
from reelgraph.atomic import atomic_path, write_json

DIRECTIONS = ("move_left", "move_right", "move_up", "move_down")
COLUMNS = (
    ("direction_consistency", "direction kept at joins"),
    ("motion_acc", "motion acc (whole video)"),
    ("motion_acc_per_clip", "motion acc per clip"),
    ("boundary_smoothness", "boundary smoothness"),
    ("identity_persistence", "identity persistence"),
    ("content_cycling", "content cycling"),
    ("color_acc", "colour acc"),
    ("shape_acc", "shape acc"),
)
DRIFT_COLUMNS = (
    ("color_kept_at_end", "colour kept at last clip"),
    ("shape_kept_at_end", "shape kept at last clip"),
    ("identity_kept_at_end", "identity kept at last clip"),
    ("direction_consistency", "direction kept at joins"),
    ("boundary_smoothness", "boundary smoothness"),
)


def arms(
    clip: int,
    prompt_frames: int,
    clips: int,
    single: bool = True,
    extra: bool = False,
    baseline: bool = True,
    artv: tuple[bool, bool] = (False, False),
) -> dict[str, dict[str, Any]]:
    """Settings overrides per row; the VidRD rows show ``clip + (clips-1)(clip-M)`` frames of ``clips`` clips."""
    new = clip + (clips - 1) * (clip - prompt_frames)
    rows = {"single clip": {"num_frames": clip}} if single else {}
    if baseline:
        rows["independent"] = {"extension_mode": "independent", "num_frames": clip * clips}
    rows |= {
        "VidRD literal": {"extension_mode": "vidrd-literal", "num_frames": new},
        "VidRD keeping direction": {"extension_mode": "vidrd", "num_frames": new},
    }
    masked, anchored = artv  # the model takes given frames / an anchor frame
    if masked:
        rows["ART-V"] = {"extension_mode": "artv", "num_frames": new, "anchor_first_clip": False}
    if anchored:
        rows["ART-V + anchor"] = {"extension_mode": "artv", "num_frames": new, "anchor_first_clip": True}
    if extra:
        rows["VidRD keeping direction, α=0, β=1"] = {
            "extension_mode": "vidrd",
            "extension_alpha": 0.0,
            "extension_beta": 1.0,
            "num_frames": new,
        }
    return rows


def generate(
    settings, rows, configs: dict[str, dict[str, Any]], out_dir: Path, seed: int, samples: int = 1
) -> None:
    """Every row's samples of prompt 0, then of prompt 1, ... (the folders and seeds ``run_eval`` reads:
    sample k of prompt i at seed ``seed + i·K + k``), so a run cut short leaves every row the same prompts."""
    from toyworld.evaluation import _config_settings, generate_samples, sample_jobs

    named = {name: _config_settings(settings, overrides) for name, overrides in configs.items()}
    per_row = {
        name: sample_jobs(config, rows, out_dir / name, samples, seed) for name, config in named.items()
    }
    jobs = [(name, per_row[name][i]) for i in range(len(rows) * samples) for name in named]
    started = time.perf_counter()

    def progress(done: int, total: int) -> None:
        if done % (len(named) * 10) == 0 or done == total:
            print(
                f"{out_dir.name}: {done}/{total} videos ({time.perf_counter() - started:.0f} s)", flush=True
            )

    generate_samples(jobs, settings, progress)


def table(results: dict[str, dict[str, Any]], columns) -> str:
    def cell(value: Any) -> str:
        return "–" if value is None else f"{value:.2f}" if isinstance(value, float) else str(value)

    head = "| row | " + " | ".join(label for _, label in columns) + " |\n"
    head += "|---|" + "---|" * len(columns) + "\n"
    return head + "".join(
        f"| {name} | " + " | ".join(cell(metrics.get(key)) for key, _ in columns) + " |\n"
        for name, metrics in results.items()
    )


def plot(part_a: dict[str, dict[str, Any]], drift: dict[str, dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    keys = ("direction_consistency", "motion_acc", "motion_acc_per_clip", "identity_persistence")
    names = [n for n in part_a if n != "single clip"]
    fig, (left, middle, right) = plt.subplots(1, 3, figsize=(13, 4.2), width_ratios=[3, 1.2, 1.6])
    width = 0.8 / len(keys)
    x = np.arange(len(names))
    for j, key in enumerate(keys):
        left.bar(x + j * width, [part_a[n].get(key) or 0 for n in names], width, label=key)
    single = part_a.get("single clip", {}).get("motion_acc")
    if single is not None:
        left.axhline(single, color="black", lw=0.8, ls="--", label="single-clip motion acc")
    left.set_xticks(x + 0.4 - width / 2, names, rotation=15, ha="right")
    left.set_ylim(0, 1.05)
    left.legend(fontsize=7, loc="upper left")
    left.set_title("4-clip videos")
    middle.bar(x, [part_a[n].get("boundary_smoothness") or 0 for n in names], color="gray")
    middle.axhline(1.0, color="black", lw=0.8, ls="--")
    middle.set_xticks(x, names, rotation=30, ha="right")
    middle.set_title("boundary smoothness (1 = seamless)")
    dnames = list(drift)
    dx = np.arange(len(dnames))
    dkeys = ("color_kept_at_end", "shape_kept_at_end", "identity_kept_at_end")
    dw = 0.8 / len(dkeys)
    for j, key in enumerate(dkeys):
        right.bar(dx + j * dw, [drift[n].get(key) or 0 for n in dnames], dw, label=key)
    right.set_xticks(dx + 0.4 - dw / 2, dnames, rotation=15, ha="right")
    right.set_ylim(0, 1.05)
    right.legend(fontsize=7)
    right.set_title("drift: kept at the last clip")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="toy")
    parser.add_argument("--prompts", type=int, default=6)
    parser.add_argument("--clips", type=int, default=4)
    parser.add_argument("--drift-prompts", type=int, default=3)
    parser.add_argument("--drift-clips", type=int, default=8)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--threads", type=int, default=2, help="torch threads (1 beside another job)")
    parser.add_argument("--samples", type=int, default=1, help="seeds per prompt (paired across rows)")
    parser.add_argument(
        "--drift-baseline", action="store_true", help="also run independent clips in the drift part"
    )
    parser.add_argument(
        "--extra",
        action="store_true",
        help="add a row: keeping direction with fresh noise (α=0) held to the end (β=1)",
    )
    parser.add_argument(
        "--only",
        choices=("part_a", "drift"),
        default=None,
        help="sample one part and stop (a second process can take the other); a later call without "
        "it reads both back and writes the results",
    )
    parser.add_argument("--work", type=Path, default=Path("outputs/bench/long_video_direction"))
    args = parser.parse_args()

    import torch

    from generation.model_info import locate_model, read_model_info
    from reelgraph.settings import load_settings
    from toyworld.captions import prompt_set
    from toyworld.evaluation import PromptRow, run_eval

    torch.set_num_threads(args.threads)
    settings = load_settings(
        {"model": args.model, "device": "cpu", "num_inference_steps": args.steps},
        home=args.work / "home",
    ).settings
    folder, model_id = locate_model(args.model)
    info = read_model_info(folder, model_id)
    clip, m = info.num_frames, max(1, info.num_frames // 2)
    started = time.perf_counter()
    rows = [PromptRow(**r) for r in prompt_set(args.prompts, seed=args.seed, motions=DIRECTIONS)]
    artv = (info.conditioning_frames, info.anchor_frame)
    configs = arms(clip, m, args.clips, extra=args.extra, artv=artv)
    k = args.samples
    drift_rows = rows[: args.drift_prompts]
    drift_configs = arms(
        clip, m, args.drift_clips, single=False, extra=args.extra, baseline=args.drift_baseline, artv=artv
    )
    if args.only is not None:
        part_rows, part_configs = (rows, configs) if args.only == "part_a" else (drift_rows, drift_configs)
        generate(settings, part_rows, part_configs, args.work / args.only, args.seed, k)
        return
    generate(settings, rows, configs, args.work / "part_a", args.seed, k)
    part_a = run_eval(settings, rows, args.work / "part_a", samples=k, seed=args.seed, configs=configs)
    generate(settings, drift_rows, drift_configs, args.work / "drift", args.seed, k)
    drift = run_eval(
        settings, drift_rows, args.work / "drift", samples=k, seed=args.seed, configs=drift_configs
    )
    seconds = time.perf_counter() - started
    part_a = {name: r for name, r in part_a.items() if isinstance(r, dict)}
    drift = {name: r for name, r in drift.items() if isinstance(r, dict)}

    write_json(
        RESULTS / "long_video_direction.json",
        {"part_a": part_a, "drift": drift, "args": vars(args) | {"work": str(args.work)}},
    )
    plot(part_a, drift, RESULTS / "long_video_direction.png")
    sampler = "flow" if info.flow_shift is not None else "DDIM"
    body = f"""Model `{args.model}` (weights `{info.weights_hash}`; clips of {clip} frames, M = {m}, α = 4, β = 0.4,
join `new`), {args.steps} {sampler} steps, {k} sample(s) per prompt (sample k of prompt i at seed
{args.seed} + i·{k} + k), the same for every row. Wall time {seconds / 60:.1f} min.

## A. {args.prompts} prompts with a direction x {k} seed(s) x {args.clips} clips

{table(part_a, COLUMNS)}
## B. Drift: {len(drift_rows)} prompts x {k} seed(s) x {args.drift_clips} clips

{table(drift, DRIFT_COLUMNS)}
![plot](long_video_direction.png)
"""
    write_result("long_video_direction", "Long videos that keep direction (issue 18)", body)
    print(json.dumps({"part_a": part_a, "drift": drift}, default=str)[:2000])


if __name__ == "__main__":
    main()
