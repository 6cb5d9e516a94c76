"""The POS ablation on the toy world (issue 5), end to end, and what explains it.

1. Render and ingest the toy pool (``index toy``: 2,000 videos, seed 0).
2. The prompt file ``bench/data/pos_ablation_prompts.jsonl``: eval prompts
   whose captions are not in the pool (written once, then reused).
3. ``eval --ablation bench/pos_ablation.yaml --samples 2``: every config on the
   same prompts and seeds through the normal generate path (ONA inversions are
   made once on a cache miss and reused by every later config).
4. Analysis from the samples' manifests: for ONA rows, accuracy split by
   whether the inverted video shows the prompt's motion / colour (its label
   in the pool), next to the baseline on the same prompts; the rewrite
   decisions of the SPR rows.

Writes ``bench/results/pos_ablation.md`` (table, analysis, command),
``pos_ablation.json`` and ``pos_ablation.png``.

    python bench/pos_ablation.py [--home /tmp/pos-ablation] [--out /tmp/pos-ablation/eval]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import RESULTS, write_result

HERE = Path(__file__).resolve().parent


def _prompts(path: Path, n: int, pool_captions: set[str]) -> None:
    from toyworld.captions import prompt_set, write_prompt_file

    rows = [
        row for row in prompt_set(4 * n, seed=5, distribution="eval") if row["prompt"] not in pool_captions
    ]
    write_prompt_file(path, rows[:n])


def _rows(folder: Path) -> list[dict]:
    rows = [json.loads(line) for line in (folder / "rows.jsonl").read_text().splitlines() if line]
    for row in rows:
        manifest = json.loads((Path(row["video"]).parent / "manifest.json").read_text())
        scene = manifest["plan"]["scenes"][0]
        row["noise_step"], row["rewrite_step"] = scene["noise"], scene["rewrite"]
    return rows


def sign_test(gained: int, lost: int) -> float:
    """Two-sided exact sign test (McNemar's exact test): P(a split at least this uneven | no effect)."""
    n = gained + lost
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, k) for k in range(min(gained, lost) + 1)) / 2**n
    return min(1.0, 2 * tail)


def _paired(name: str, rows: list[dict], base: dict) -> str:
    """One row: wins / losses against the baseline's sample of the same prompt and seed, with the sign
    test's p-value; noise sources."""
    cells = []
    for key in ("all_ok", "motion_ok", "color_ok"):
        pairs = [(r[key], base[(r["index"], r["sample"])][key]) for r in rows]
        gained, lost = sum(a and not b for a, b in pairs), sum(b and not a for a, b in pairs)
        cells.append(f"{gained} / {lost} ({sign_test(gained, lost):.2f})")
    used = Counter(r["noise_step"].get("source", "random") for r in rows)
    return (
        f"| {name} | "
        + " | ".join(cells)
        + " | "
        + ", ".join(f"{k} {v}" for k, v in sorted(used.items()))
        + " |"
    )


def _acc(rows: list[dict], key: str) -> str:
    return f"{np.mean([r[key] for r in rows]):.3f} (n={len(rows)})" if rows else "–"


def _check_params(out: Path, args: argparse.Namespace, configs: dict) -> None:
    """Finished configs are only reused by a run with the same model, prompts, seeds and overrides."""
    from reelgraph.atomic import write_json

    params = {
        "model": args.model,
        "steps": args.steps,
        "samples": args.samples,
        "seed": args.seed,
        "pool": args.pool,
        "chunk": args.chunk,
        "prompts": Path(args.prompts).read_text(),
    }
    path = out / "bench_params.json"
    if path.is_file():
        old = json.loads(path.read_text())
        if old["params"] != params:
            raise SystemExit(f"{out} holds an ablation with other parameters: pass a new --out")
        configs = {**old["configs"], **configs}
        for name, overrides in old["configs"].items():
            if name in configs and configs[name] != overrides:
                raise SystemExit(f"config {name!r} changed since {out} was written: pass a new --out")
    write_json(path, {"params": params, "configs": configs})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", default="/tmp/pos-ablation")
    parser.add_argument("--out", default=None, help="eval folder (default: <home>/eval)")
    parser.add_argument("--model", default="toy")
    # 2 threads on 2 cores that other jobs share run several times slower than 1
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--pool", type=int, default=2000)
    parser.add_argument("--n-prompts", type=int, default=60)
    parser.add_argument("--samples", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=int, default=25, help="sampling steps (DDIM or flow: the model's)")
    parser.add_argument("--ablation", default=str(HERE / "pos_ablation.yaml"))
    parser.add_argument("--prompts", default=str(HERE / "data" / "pos_ablation_prompts.jsonl"))
    parser.add_argument(
        "--only",
        nargs="+",
        default=None,
        help="run just these configs and stop (e.g. in a second process); a later run without "
        "--only reuses every finished config and writes the report",
    )
    parser.add_argument(
        "--chunk",
        type=int,
        default=0,
        help="run all configs on N prompts at a time, writing the report after each chunk (0: all at once)",
    )
    parser.add_argument(
        "--start",
        type=int,
        default=0,
        help="with --chunk: begin at this prompt (a second process can take later chunks)",
    )
    parser.add_argument(
        "--report",
        action="store_true",
        help="with --chunk: sample nothing, only write the report from the finished chunks",
    )
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    from memory.ingest import ingest_toy
    from memory.store import MemoryStore
    from reelgraph.settings import Settings
    from toyworld.evaluation import read_ablation, read_prompts, run_eval

    started = time.perf_counter()
    home = Path(args.home)
    out = Path(args.out) if args.out else home / "eval"
    store = MemoryStore(home)
    ingest_toy(store, home, args.pool, seed=0, progress=False)
    records = {r.id: r for page, _ in store.iter_all() for r in page}
    prompts_path = Path(args.prompts)
    if not prompts_path.is_file():
        _prompts(prompts_path, args.n_prompts, {r.caption for r in records.values()})
    prompts = read_prompts(prompts_path)
    configs = read_ablation(args.ablation)
    settings = Settings(home=home, model=args.model, num_inference_steps=args.steps)
    _check_params(out, args, configs)

    def progress(done: int, total: int) -> None:
        if done % 20 == 0 or done == total:
            print(f"{done}/{total} samples, {time.perf_counter() - started:.0f} s", flush=True)

    # A config whose metrics.json exists is finished (same parameters, checked above): resume from there.
    wanted = {n: c for n, c in configs.items() if args.only is None or n in args.only}
    if args.chunk:
        # Prompts in chunks, every config on a chunk before the next: a run cut short still leaves
        # paired results on its first chunks. Sample seeds are those of the unchunked run.
        for lo in range(args.start - args.start % args.chunk, len(prompts), args.chunk):
            part = out / f"part-{lo:03d}"
            todo = {n: c for n, c in wanted.items() if not (part / n / "metrics.json").is_file()}
            if todo and not args.report:
                chunk = prompts[lo : lo + args.chunk]
                seed = args.seed + lo * args.samples
                run_eval(
                    settings, chunk, part, samples=args.samples, seed=seed, configs=todo, progress=progress
                )
            results, rows, n_prompts = _merged(out, list(wanted), args.samples)
            _report(args, out, wanted, results, rows, records, prompts_path, n_prompts, settings, started)
        return
    todo = {n: c for n, c in wanted.items() if not (out / n / "metrics.json").is_file()}
    if todo:
        run_eval(
            settings, prompts, out, samples=args.samples, seed=args.seed, configs=todo, progress=progress
        )
    if args.only is not None:
        return
    results = {name: json.loads((out / name / "metrics.json").read_text()) for name in configs}
    rows = {name: _rows(out / name) for name in configs}
    _report(args, out, configs, results, rows, records, prompts_path, len(prompts), settings, started)


def _merged(out: Path, names: list[str], samples: int) -> tuple[dict, dict, int]:
    """Results and rows over the prompt chunks that every config has finished (``--chunk``).

    Accuracies and temporal consistency are means over all samples; diversity is weighted by prompts;
    fvd_toy (a Fréchet distance, biased on small sets) is the mean over chunks."""
    parts = sorted(p for p in out.glob("part-*") if all((p / n / "metrics.json").is_file() for n in names))
    results, rows, n_prompts = {}, {}, 0
    for name in names:
        rows[name], per_part = [], []
        for part in parts:
            lo = int(part.name.split("-")[1])
            for row in _rows(part / name):
                row["index"] += lo
                rows[name].append(row)
            per_part.append(json.loads((part / name / "metrics.json").read_text()))
        n_prompts = sum(m["n_prompts"] for m in per_part)
        merged = {"n_prompts": n_prompts, "n_samples": len(rows[name]), "chunks": len(parts)}
        for key in ("color_ok", "shape_ok", "motion_ok", "all_ok"):
            merged[key.replace("_ok", "_acc")] = round(float(np.mean([r[key] for r in rows[name]])), 4)
        merged["temporal_consistency"] = round(
            float(np.mean([r["temporal_consistency"] for r in rows[name]])), 4
        )
        for key in ("fvd_toy", "fvd_toy_reference"):
            merged[key] = round(float(np.mean([m[key] for m in per_part])), 4)
        merged["diversity"] = (
            round(float(sum(m["diversity"] * m["n_prompts"] for m in per_part) / max(n_prompts, 1)), 4)
            if samples > 1
            else None
        )
        results[name] = merged
    return results, rows, n_prompts


def _report(args, out, configs, results, rows, records, prompts_path, n_prompts, settings, started) -> None:
    """Table, plot and analysis into bench/results/pos_ablation.{md,json,png}."""
    from reelgraph.atomic import write_json
    from toyworld.evaluation import ablation_plot, ablation_table

    if not results or not next(iter(results.values()))["n_samples"]:
        return
    write_json(out / "ablation.json", {"configs": configs, "results": results})
    ablation_plot(results, out / "ablation.png")
    follow: list[str] = []
    base = {(r["index"], r["sample"]): r for r in rows["baseline"]}
    first = json.loads((Path(rows["baseline"][0]["video"]).parent / "manifest.json").read_text())
    weights = first["model"].get("weights_hash", "?")
    scheduler = first.get("scheduler", {}).get("_class_name", "?")
    lines = [
        f"{n_prompts} toy eval prompts not in the {args.pool}-video pool (`{os.path.relpath(prompts_path, HERE.parent)}`), "
        f"{args.samples} seeds each (sample k of prompt i: seed {args.seed} + i·{args.samples} + k, the same in "
        f"every config); model `{args.model}` (weights `{weights}`), {settings.num_inference_steps} steps of "
        f"`{scheduler}`, the model's guidance. Configs: `{os.path.relpath(args.ablation, HERE.parent)}`. "
        f"This call: {time.perf_counter() - started:.0f} s (configs already sampled, e.g. by earlier calls "
        "with `--only`, are read back, not sampled again).",
        "",
        ablation_table(results),
        f"fvd_toy between two independent renders of the same labels (the floor): "
        f"{results['baseline']['fvd_toy_reference']:.3f}."
        + (
            f" Run in chunks of {args.chunk} prompts (`--chunk`), all configs on a chunk before the next; "
            f"{results['baseline']['chunks']} chunk(s) finished. fvd_toy is the mean over chunks."
            + (
                " This report was written with `--report` from chunks sampled by the same command without "
                "it (see the command line; a second process may have taken later chunks with `--start`)."
                if args.report
                else ""
            )
            if args.chunk
            else ""
        ),
        "",
        f"Against the baseline on the same (prompt, seed) pairs: how many samples each config turns from "
        f"wrong to right / right to wrong (all-correct; motion; colour), with the exact sign test's two-sided "
        f"p-value in brackets (the chance of a split at least this uneven if the config changed nothing), and "
        f"the noise each config actually used (a standard error of an accuracy near p over "
        f"n = {len(rows['baseline'])} samples is sqrt(p(1-p)/n), about "
        f"{np.sqrt(0.25 / max(len(rows['baseline']), 1)):.3f} at p = 0.5).",
        "",
        "| config | all: gained / lost (p) | motion: gained / lost (p) | colour: gained / lost (p) | noise used |",
        "|---|---|---|---|---|",
        *(_paired(name, config_rows, base) for name, config_rows in rows.items()),
        "",
        "## ONA: what the inverted video shows",
        "",
        "Per ONA config, samples split by whether the inverted pool video's label has the prompt's "
        "motion / actor colour; `baseline` is the same prompts and seeds with random noise.",
        "",
        "| config | pick shares | n | motion_acc | baseline motion_acc | color_acc | baseline color_acc | mean pick similarity |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, config_rows in rows.items():
        ona = [r for r in config_rows if r["noise_step"].get("source") == "ona"]
        if not ona:
            continue
        for r in ona:
            label = records.get(r["noise_step"]["video_id"])
            label = label.label if label is not None else None
            r["pick_label"] = label
            r["pick_motion"] = bool(label) and label["motion"] == r["label"]["motion"]
            r["pick_color"] = bool(label) and label["actor"]["color"] == r["label"]["actor"]["color"]
        # Does the sample copy the inverted video instead of the prompt? Among picks with another motion
        # (colour), how often the probe sees the pick's motion (colour), against the baseline's samples.
        for key, field in (("motion", ("motion",)), ("colour", ("actor", "color"))):
            differ = [
                r for r in ona if r["pick_label"] and not r[f"pick_{'color' if key == 'colour' else key}"]
            ]

            def get(label, field=field):
                for part in field:
                    label = (label or {}).get(part)
                return label

            copied = (
                np.mean([get(r["seen"]) == get(r["pick_label"]) for r in differ]) if differ else float("nan")
            )
            twins = [base[(r["index"], r["sample"])] for r in differ]
            by_chance = (
                np.mean([get(t["seen"]) == get(r["pick_label"]) for r, t in zip(differ, twins, strict=True)])
                if differ
                else float("nan")
            )
            follow.append(f"| {name} | {key} | {len(differ)} | {copied:.3f} | {by_chance:.3f} |")
        for key, title in (("pick_motion", "motion"), ("pick_color", "colour")):
            for value in (True, False):
                part = [r for r in ona if r[key] is value]
                if not part:
                    continue
                twins = [base[(r["index"], r["sample"])] for r in part]
                sim = np.mean([r["noise_step"]["similarity"] for r in part])
                lines.append(
                    f"| {name} | {title}: {'yes' if value else 'no'} | {len(part)} | {np.mean([r['motion_ok'] for r in part]):.3f} "
                    f"| {np.mean([r['motion_ok'] for r in twins]):.3f} | {np.mean([r['color_ok'] for r in part]):.3f} "
                    f"| {np.mean([r['color_ok'] for r in twins]):.3f} | {sim:.3f} |"
                )
    buckets = [(-1.0, 0.75), (0.75, 0.8), (0.8, 0.85), (0.85, 1.01)]
    lines += [
        "",
        "By the similarity of the inverted video's caption to the prompt (what `ona_min_similarity` "
        "thresholds), all-correct and motion accuracy against the baseline on the same samples:",
        "",
        "| config | similarity | n | all_acc | baseline all_acc | motion_acc | baseline motion_acc |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, config_rows in rows.items():
        ona = [r for r in config_rows if r["noise_step"].get("source") == "ona"]
        for low, high in buckets if ona else []:
            part = [r for r in ona if low <= r["noise_step"]["similarity"] < high]
            if not part:
                continue
            twins = [base[(r["index"], r["sample"])] for r in part]
            span = f"< {high:.2f}" if low < 0 else (f">= {low:.2f}" if high > 1 else f"{low:.2f}-{high:.2f}")
            lines.append(
                f"| {name} | {span} | {len(part)} | {np.mean([r['all_ok'] for r in part]):.3f} "
                f"| {np.mean([r['all_ok'] for r in twins]):.3f} | {np.mean([r['motion_ok'] for r in part]):.3f} "
                f"| {np.mean([r['motion_ok'] for r in twins]):.3f} |"
            )
    lines += [
        "",
        "Copying: among samples whose inverted video has another motion (colour) than the prompt, how often "
        "the probe sees the inverted video's motion (colour) in the sample, against the baseline's sample "
        "of the same prompt and seed:",
        "",
        "| config | attribute | n | sample shows the pick's | baseline shows the pick's |",
        "|---|---|---|---|---|",
        *follow,
        "",
        "## Rewrites",
        "",
    ]
    for name, config_rows in rows.items():
        steps = [r["rewrite_step"] for r in config_rows if r["sample"] == 0]
        decisions = Counter(s.get("decision", s["status"]) for s in steps)
        if any(s["status"] == "done" for s in steps):
            lines.append(f"- {name}: " + ", ".join(f"{k} {v}" for k, v in sorted(decisions.items())))
    examples = [
        r for r in rows.get("spr_gamma0.5", []) if r["sample"] == 0 and r["rewrite_step"].get("text")
    ][:6]
    if examples:
        lines += ["", "Examples (spr_gamma0.5):", ""]
        lines += [f"- {r['prompt']!r} -> {r['rewrite_step']['text']!r}" for r in examples]
    write_result("pos_ablation", "POS ablation on the toy world", "\n".join(lines))
    data = {"configs": configs, "results": results, "prompts": str(prompts_path)}
    write_json(RESULTS / "pos_ablation.json", data)
    shutil.copyfile(out / "ablation.png", RESULTS / "pos_ablation.png")


if __name__ == "__main__":
    main()
