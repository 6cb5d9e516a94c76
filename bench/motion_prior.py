"""Proof on the toy world: does distilling a retrieved video's motion make the rare motion (Search-T2V §4.3)?

For ``--prompts`` zigzag prompts (the toy model's rare motion: 3 % of the flow
model's training captions, 0.8 % of toy-unet's) and as many prompts of a common motion (``--common``), each
sampled ``--samples`` times with the same seeds in every condition:

* **base**: the toy model as it is;
* **retrieved**: tuned (VMC eq. 10) on the keyframes of the pool video that
  motion-prior search ranks first for the prompt (Search-T2V eq. 9);
* **random**: tuned the same way on a random pool video (the paper's
  ablation without retrieval).

The pool is a toy pool (``--pool-size`` videos, every motion equally likely)
indexed into a fresh data directory under ``--work``. Motion accuracy is the
probe's motion label against the prompt's (``toyworld.metrics.score``);
colour and all-correct accuracy are reported beside it, and so is how often
the retrieved video's own label has the prompt's motion.

    python bench/motion_prior.py [--prompts 20] [--common-prompts 20] [--samples 1] [--common move_right] [--steps 150]

The two prompt sets can run in two processes (``--only zigzag`` / ``--only
common``, each with its own ``--work``; a copy of the indexed home is fine),
then one table is written from their rows:

    python bench/motion_prior.py --merge WORK_A WORK_B
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np

from bench.common import command, machine, write_result
from reelgraph.atomic import write_json

CONDITIONS = ("base", "retrieved", "random")


def _accuracy(rows: list[dict], condition: str, key: str) -> float:
    values = [s[key] for r in rows for s in r["samples"][condition]]
    return float(np.mean(values)) if values else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default="toy")
    parser.add_argument("--prompts", type=int, default=20, help="zigzag prompts")
    parser.add_argument(
        "--common-prompts", type=int, default=None, help="prompts of the common motion (default: --prompts)"
    )
    parser.add_argument("--only", choices=("zigzag", "common"), default=None, help="run one prompt set")
    parser.add_argument(
        "--range",
        type=int,
        nargs=2,
        default=None,
        metavar=("START", "STOP"),
        help="only prompts START..STOP-1 of each set (same seeds and videos as in a whole run)",
    )
    parser.add_argument(
        "--merge", type=Path, nargs="+", default=None, help="only write the table from these --work folders"
    )
    parser.add_argument("--samples", type=int, default=1, help="samples per prompt and condition")
    parser.add_argument("--common", default="move_right", help="the common motion checked for harm")
    parser.add_argument("--steps", type=int, default=None, help="tuning steps (default: the setting's)")
    parser.add_argument("--inference-steps", type=int, default=25)
    parser.add_argument("--pool-size", type=int, default=600)
    parser.add_argument("--pool-seed", type=int, default=7)
    parser.add_argument("--seed", type=int, default=0, help="prompt, sampling and random-video seed")
    parser.add_argument("--work", type=Path, default=Path("/tmp/reelgraph-motion-bench"))
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--name", default="motion_prior_toy")
    args = parser.parse_args()
    if args.merge:
        runs = [json.loads((work / "rows.json").read_text()) for work in args.merge]
        report(args.name, [row for run in runs for row in run["rows"]], [run["meta"] for run in runs])
        return
    run = collect(args)
    report(args.name, run["rows"], [run["meta"]])


def collect(args: argparse.Namespace) -> dict:
    """Tune, sample and probe every prompt of the chosen sets; rows and settings go to ``<work>/rows.json``."""
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    from agent.composition import build_services
    from memory.ingest import ingest_toy
    from reelgraph.contracts.clips import ClipRequest
    from reelgraph.settings import Settings
    from toyworld.captions import prompt_set
    from toyworld.metrics import score
    from toyworld.probe import probe

    home = args.work / "home"
    overrides = {"tune_steps": args.steps} if args.steps else {}
    settings = Settings(home=home, model=args.model, device="cpu", **overrides)
    services = build_services(settings)
    store, text = services.pool.store, services.text
    if store.count("toy") < args.pool_size:
        ingest_toy(
            store,
            home,
            n=args.pool_size,
            seed=args.pool_seed,
            pool="toy",
            embedder=text.embedder,
            parser=text.parser,
            progress=False,
        )
    pool_ids = sorted(record.id for records, _ in store.iter_all("toy") for record in records)

    generator, tuner = services.generation, services.tuner
    info = generator.model_info
    guidance = generator.default_guidance()

    common_n = args.prompts if args.common_prompts is None else args.common_prompts
    sets = {
        "zigzag": prompt_set(args.prompts, seed=args.seed, distribution="eval", motions=["zigzag"]),
        args.common: prompt_set(common_n, seed=args.seed + 1, distribution="eval", motions=[args.common]),
    }
    if args.only is not None:
        sets = {m: v for m, v in sets.items() if (m == "zigzag") == (args.only == "zigzag")}
    out = args.work / "runs"
    rows: list[dict] = []
    started = time.perf_counter()

    def save(finished: bool) -> dict:
        """Rows so far and the settings, to ``<work>/rows.json`` (after every prompt: a cut-off run keeps its rows)."""
        meta = {
            "model": args.model,
            "weights_hash": info.weights_hash,
            "frames": f"{info.num_frames} frames of {info.height}x{info.width}",
            "inference_steps": args.inference_steps,
            "guidance": guidance,
            "tuning": tuner.config().model_dump(mode="json"),
            "lora_scale": settings.lora_scale,
            "pool": f"{args.pool_size} toy videos (seed {args.pool_seed})",
            "prompts": {
                m: f"prompt_set(n={len(v)}, seed={args.seed if m == 'zigzag' else args.seed + 1})"
                + (f"[{start}:{stop}]" if args.range else "")
                for m, v in sets.items()
            },
            "samples": args.samples,
            "seconds": round(time.perf_counter() - started, 1),
            "work": str(args.work),
            "command": command(),
            "machine": machine(),
        }
        meta["finished"] = finished
        result = {"rows": rows, "meta": meta}
        args.work.mkdir(parents=True, exist_ok=True)
        write_json(args.work / "rows.json", result)
        return result

    start, stop = args.range or (0, None)
    for motion, prompts in sets.items():
        for index, item in list(enumerate(prompts))[start:stop]:
            prompt, label = item["prompt"], item["label"]
            # a random video per (set, prompt): the control does not depend on which prompts a process runs
            rng = np.random.default_rng([args.seed, 0 if motion == "zigzag" else 1, index])
            random_id = pool_ids[int(rng.integers(len(pool_ids)))]
            jobs = {"retrieved": tuner.plan(prompt), "random": tuner.plan(prompt, video=random_id)}
            outcomes = {name: tuner.run(job) for name, job in jobs.items()}
            row = {
                "motion": motion,
                "prompt": prompt,
                "label": label,
                "videos": {
                    name: {
                        "id": job.video.id,
                        "caption": job.video.caption,
                        "span": job.keyframes.span,
                        "fallback": job.keyframes.fallback,
                        "training_prompt": job.training_prompt,
                        "cache_hit": outcomes[name].cache_hit,
                        "tune_seconds": outcomes[name].seconds,
                        "loss": outcomes[name].loss,
                    }
                    for name, job in jobs.items()
                },
                "samples": {name: [] for name in CONDITIONS},
            }
            for name, job in jobs.items():
                record = store.get([job.video.id])
                row["videos"][name]["label_motion"] = (
                    (record[0].label or {}).get("motion") if record else None
                )
            for k in range(args.samples):
                base = ClipRequest(
                    prompt=prompt,
                    num_frames=info.num_frames,
                    num_inference_steps=args.inference_steps,
                    guidance_scale=guidance,
                    seed=args.seed * 1000 + index * 10 + k,
                )
                for name in CONDITIONS:
                    request = base
                    if name != "base":
                        request = base.model_copy(
                            update={"lora_path": outcomes[name].lora_path, "lora_scale": settings.lora_scale}
                        )
                    path = out / f"{motion}-{index:02d}-{k}-{name}.safetensors"
                    generator.sample_clip(request, path)
                    result = probe(generator.decode_clip(path))
                    verdict = score(label, result)
                    row["samples"][name].append(
                        {
                            "seen_motion": result.motion,
                            "motion_ok": bool(verdict["motion_ok"]),
                            "color_ok": bool(verdict["color_ok"]),
                            "all_ok": bool(verdict["all_ok"]),
                        }
                    )
            rows.append(row)
            save(finished=False)
            seen = {n: [s["seen_motion"] for s in row["samples"][n]] for n in CONDITIONS}
            print(
                f"[{time.perf_counter() - started:7.0f}s] {motion} {index + 1}/{len(prompts)} {prompt!r}: {seen}",
                flush=True,
            )

    return save(finished=True)


def report(name: str, rows: list[dict], metas: list[dict]) -> None:
    """The accuracy table (one line per prompt set and condition) and what the tuning runs did."""
    meta = metas[0]
    motions = list(dict.fromkeys(r["motion"] for r in rows))
    lines = [
        "| prompts | condition | motion acc | colour acc | all-correct acc |",
        "|---|---|---|---|---|",
    ]
    for motion in motions:
        subset = [r for r in rows if r["motion"] == motion]
        samples = len(subset[0]["samples"]["base"]) if subset else 0
        for condition in CONDITIONS:
            lines.append(
                f"| {motion} ({len(subset)} x {samples}) | {condition} | "
                f"{_accuracy(subset, condition, 'motion_ok'):.2f} | "
                f"{_accuracy(subset, condition, 'color_ok'):.2f} | {_accuracy(subset, condition, 'all_ok'):.2f} |"
            )
    video_motion = {
        f"{motion} {condition}": float(
            np.mean([r["videos"][condition]["label_motion"] == motion for r in rows if r["motion"] == motion])
        )
        for motion in motions
        for condition in ("retrieved", "random")
    }
    tuned = [v for r in rows for v in r["videos"].values() if not v["cache_hit"]]
    fallbacks = sum(1 for r in rows for v in r["videos"].values() if v["fallback"])
    tune_seconds = statistics.median(v["tune_seconds"] for v in tuned) if tuned else 0.0
    losses = [(v["loss"].get("first"), v["loss"].get("last")) for v in tuned if v["loss"]]
    loss_line = (
        f"{np.mean([a for a, _ in losses]):.3f} -> {np.mean([b for _, b in losses]):.3f}" if losses else "n/a"
    )
    runs = "\n".join(
        f"  - `{m['command']}` ({m['seconds']:.0f} s on {m['machine']}; rows `{m['work']}/rows.json`)"
        + ("" if m.get("finished", True) else " **cut off before its last prompt**")
        for m in metas
    )
    prompts = "; ".join(f"{k}: `toyworld.captions.{v}`" for m in metas for k, v in m["prompts"].items())
    body = f"""
Model `{meta["model"]}` (weights `{meta.get("weights_hash", "?")}`, {meta["frames"]}), {meta["inference_steps"]} sampling steps, guidance {meta["guidance"]:g};
tuning: `{json.dumps(meta["tuning"])}` (`projections` are the UNet3D's temporal ones; on a flow
transformer the LoRA goes on every block's self-attention, `blocks.N.attn1.to_q/k/v/to_out.0`);
LoRA scale {meta["lora_scale"]}.
Pool: {meta["pool"]}, all 14 motions equally likely.
Prompts ("eval" distribution, one motion each): {prompts}; the same sampling seeds in every condition.
Judge: the toy probe (`toyworld.probe`, scored by `toyworld.metrics.score`).

{chr(10).join(lines)}

- tuning video's pool label has the prompt's motion: {", ".join(f"{k} {v:.2f}" for k, v in video_motion.items())}
- keyframe fallbacks (nothing detected): {fallbacks} of {2 * len(rows)} tuning videos
- tuning runs: {len(tuned)} (others were cache hits), median {tune_seconds:.1f} s each;
  mean loss first tenth -> last tenth: {loss_line}
- runs:
{runs}
"""
    write_result(
        name, "Motion priors on the toy world: base vs tuned on the retrieved vs a random video", body
    )


if __name__ == "__main__":
    main()
