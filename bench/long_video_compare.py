"""Long videos on the toy model, in one run: VidRD's parts, scene continuation, image starts.

A. Extension (issue 6): toy prompts x 4-clip videos through ``eval`` (the
   normal generate path, probe-scored), one configuration per row: independent
   clips joined end to end (the baseline), FNR, FNR+PNS, FNR+PNS+DSG (all
   clips' frames kept, VidRD's join), the same with the prompt frames not
   repeated, and with the first-clip anchor. Columns: the eval metrics plus
   ``toyworld.long_metrics`` (boundary smoothness, identity persistence,
   content cycling, motion accuracy per clip).
B. Two-scene storyboards ("a red ball rolls to the right" then "the red ball
   bounces", and the like): the actor read by the probe in the clip-length
   windows before and after the scene change; colour and shape kept across it,
   the jump at the change, and scene 2's motion. Continued scenes vs
   independent scenes (vs continued and anchored).
C. Image starts: a rendered first frame as ``--image``; how well frame 0 keeps
   it (PSNR against the image, and the probe's colour/shape/size of the first
   clip against the image's label), for several β.

Writes bench/results/long_video_compare.{md,json,png}; samples go to --work
(re-running reads finished samples back).

    python bench/long_video_compare.py [--model toy] [--prompts 30] [--storyboards 20] [--images 20]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np

from bench.common import RESULTS, write_result
from reelgraph.atomic import atomic_path, write_json

EXTENSION_MOTIONS = (
    "move_left",
    "move_right",
    "move_up",
    "move_down",
    "bounce",
    "orbit",
    "spin",
    "grow",
    "shrink",
)
STORY_MOTIONS = [
    ("move_right", "bounce"),
    ("move_left", "bounce"),
    ("bounce", "move_right"),
    ("bounce", "move_left"),
    ("move_up", "move_down"),
    ("move_right", "stay"),
    ("orbit", "move_left"),
    ("stay", "bounce"),
    ("move_down", "grow"),
    ("move_left", "orbit"),
]


def extension_configs(clip: int, clips: int) -> dict[str, dict[str, Any]]:
    full = clip * clips
    new = clip + (clips - 1) * (clip - clip // 2)
    return {
        "independent": {"extension_mode": "independent", "num_frames": full},
        "FNR": {"extension_pns": False, "extension_dsg": False, "extension_keep": "all", "num_frames": full},
        "FNR+PNS": {"extension_dsg": False, "extension_keep": "all", "num_frames": full},
        "FNR+PNS+DSG": {"extension_keep": "all", "num_frames": full},
        "FNR+PNS+DSG, new frames only": {"extension_keep": "new", "num_frames": new},
        "FNR+PNS+DSG + anchor": {"extension_keep": "all", "num_frames": full, "anchor_first_clip": True},
    }


STORY_CONFIGS = {
    "independent scenes": {"scene_continuation": False},
    "continued scenes": {"extension_keep": "all"},
    "continued + anchor": {"extension_keep": "all", "anchor_first_clip": True},
}


def _frames(run_dir: Path) -> tuple[np.ndarray, dict[str, Any]]:
    from reelgraph.media import read_video
    from toyworld.probe import area_resize

    frames = area_resize(read_video(run_dir / "video.mp4"))
    return np.clip(np.rint(frames), 0, 255).astype(np.uint8), json.loads(
        (run_dir / "manifest.json").read_text()
    )


def part_a(settings, args, clip: int) -> dict[str, Any]:
    from toyworld.captions import prompt_set
    from toyworld.evaluation import PromptRow, run_eval

    rows = [PromptRow(**row) for row in prompt_set(args.prompts, seed=args.seed, motions=EXTENSION_MOTIONS)]
    configs = extension_configs(clip, args.clips)
    if args.configs:
        unknown = sorted(set(args.configs) - set(configs))
        if unknown:
            raise SystemExit(f"unknown --configs {unknown}; choose from {list(configs)}")
        configs = {name: configs[name] for name in args.configs}
    if args.shard is not None:
        generate_interleaved(settings, rows, configs, args.work / "extension", args.seed, args.shard)
        return {}
    return run_eval(settings, rows, args.work / "extension", samples=1, seed=args.seed, configs=configs)


def generate_interleaved(settings, rows, configs, out_dir: Path, seed: int, shard: tuple[int, int]) -> None:
    """Make part A's samples prompt by prompt, every row in turn, for prompts ``index % n == i``.

    The same folders and seeds as ``run_eval`` (one sample per prompt), which then reads them back:
    on a busy machine a run cut short leaves every row with the same prompts done. Shards let two
    processes share the work.
    """
    from agent.batch import GenerationJob, generate_job, new_services_memo
    from toyworld.evaluation import SAMPLE_DIR, _config_settings

    i, n = shard
    services = new_services_memo()  # one set of services per configuration, as run_eval's workers keep
    for index, row in enumerate(rows):
        if index % n != i:
            continue
        for name, overrides in configs.items():
            config = _config_settings(settings, overrides).model_copy(update={"seed": seed + index})
            run_dir = out_dir / name / SAMPLE_DIR / f"{index:04d}-0"
            generate_job(services, GenerationJob(settings=config, run_dir=run_dir, prompt=row.prompt))
        print(f"prompt {index} done, all rows", flush=True)


def storyboards(n: int, seed: int) -> list[dict[str, Any]]:
    from toyworld.captions import describe
    from toyworld.spec import COLORS, SHAPES, Label, ObjectSpec

    rng = np.random.default_rng(seed)
    boards = []
    for i in range(n):
        first, second = STORY_MOTIONS[i % len(STORY_MOTIONS)]
        shape = str(rng.choice(SHAPES))
        actor = ObjectSpec(
            shape=shape, color=str(rng.choice(list(COLORS))), size=str(rng.choice(["small", "big"]))
        )
        labels = [Label(actor=actor, motion=m, background="dark") for m in (first, second)]
        boards.append(
            {
                "prompts": [describe(label, rng).text for label in labels],
                "labels": [label.to_dict() for label in labels],
            }
        )
    return boards


def part_b(settings, args, clip: int) -> dict[str, Any]:
    from agent import runner
    from agent.composition import build_services
    from agent.state import SceneRequest
    from toyworld.long_metrics import boundary_smoothness, read_windows, scene_boundaries

    boards = storyboards(args.storyboards, args.seed + 1)
    results: dict[str, Any] = {}
    story_configs = {
        n: c for n, c in STORY_CONFIGS.items() if not args.story_configs or n in args.story_configs
    }
    for name, overrides in story_configs.items():
        config = settings.model_copy(update=overrides)
        services = build_services(config)
        rows = []
        for i, board in enumerate(boards):
            run_dir = args.work / "storyboards" / name.replace(" ", "_").replace("+", "and") / f"{i:04d}"
            if not (run_dir / "manifest.json").is_file():
                scenes = [SceneRequest(prompt=p, num_frames=clip) for p in board["prompts"]]
                runner.generate_scenes(
                    config.model_copy(update={"seed": args.seed + i}),
                    scenes,
                    run_dir,
                    overwrite=True,
                    services=services,
                )
            frames, manifest = _frames(run_dir)
            (boundary,) = scene_boundaries(manifest) or [clip]
            before, after = read_windows(frames, [(boundary - clip, boundary), (boundary, boundary + clip)])
            expected = board["labels"][0]["actor"]
            rows.append(
                {
                    "color_kept": before.color is not None and before.color == after.color,
                    "shape_kept": before.shape is not None and before.shape == after.shape,
                    "identity_kept": before.color is not None
                    and (before.color, before.shape, before.size) == (after.color, after.shape, after.size),
                    "color_right_after": after.color == expected["color"],
                    "shape_right_after": after.shape == expected["shape"],
                    "motion_right_after": after.motion == board["labels"][1]["motion"],
                    "change_jump": boundary_smoothness(frames, [(0, boundary), (boundary, len(frames))]),
                }
            )
        results[name] = {
            key: round(float(np.mean([r[key] for r in rows if r[key] is not None])), 4) for key in rows[0]
        }
        results[name]["n"] = len(rows)
    return results


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return 99.0 if mse == 0 else 10.0 * np.log10(255.0**2 / mse)


def part_c(settings, args, clip: int) -> dict[str, Any]:
    from agent import runner
    from agent.composition import build_services
    from reelgraph.media import write_png
    from toyworld.captions import describe, sample_label
    from toyworld.long_metrics import Reading
    from toyworld.probe import probe
    from toyworld.render import render_video

    rng = np.random.default_rng(args.seed + 2)
    images = []
    for i in range(args.images):
        label = sample_label(rng, "eval", motions=EXTENSION_MOTIONS)
        label = label.model_copy(update={"background": "dark"})
        first = render_video(label, clip, rng)[0]
        path = args.work / "images" / f"{i:04d}.png"
        if not path.is_file():
            write_png(first, path)
        images.append((path, first, label, describe(label, rng).text))
    results: dict[str, Any] = {}
    for beta in args.betas:
        config = settings.model_copy(update={"extension_beta": beta, "num_frames": clip})
        services = build_services(config)
        rows = []
        for i, (path, image, label, prompt) in enumerate(images):
            run_dir = args.work / "image_start" / f"beta-{beta:g}" / f"{i:04d}"
            if not (run_dir / "manifest.json").is_file():
                runner.generate(
                    config.model_copy(update={"seed": args.seed + i}),
                    prompt,
                    run_dir,
                    overwrite=True,
                    services=services,
                    image=path,
                )
            frames, _ = _frames(run_dir)
            seen = Reading.from_probe(probe(frames))
            image_seen = Reading.from_probe(probe(np.repeat(image[None], 4, axis=0)))
            rows.append(
                {
                    "psnr_first_frame": _psnr(frames[0], image),
                    "psnr_last_frame": _psnr(frames[-1], image),
                    "color_agrees": seen.color == label.actor.color,
                    "shape_agrees": seen.shape == label.actor.shape,
                    "size_agrees": seen.size == image_seen.size,
                    "motion_right": seen.motion == label.motion,
                }
            )
        results[f"β={beta:g}"] = {key: round(float(np.mean([r[key] for r in rows])), 4) for key in rows[0]}
        results[f"β={beta:g}"]["n"] = len(rows)
    return results


def table(results: dict[str, dict[str, Any]], columns: list[str]) -> str:
    lines = ["| config | " + " | ".join(columns) + " |", "|---|" + "---|" * len(columns)]
    for name, row in results.items():
        cells = []
        for c in columns:
            value = row.get(c)
            cells.append("–" if value is None else f"{value:.3f}" if isinstance(value, float) else str(value))
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


A_COLUMNS = [
    "boundary_smoothness",
    "identity_persistence",
    "color_persistence",
    "content_cycling",
    "motion_acc_per_clip",
    "color_acc",
    "shape_acc",
    "motion_acc",
    "temporal_consistency",
    "fvd_toy",
]
B_COLUMNS = [
    "color_kept",
    "shape_kept",
    "identity_kept",
    "color_right_after",
    "shape_right_after",
    "motion_right_after",
    "change_jump",
]
C_COLUMNS = [
    "psnr_first_frame",
    "psnr_last_frame",
    "color_agrees",
    "shape_agrees",
    "size_agrees",
    "motion_right",
]


def _plot_extension(ax, a: dict) -> None:
    names = list(a)
    keys = ["identity_persistence", "content_cycling", "motion_acc_per_clip", "color_acc"]
    width = 0.8 / (len(keys) + 1)
    x = np.arange(len(names))
    for j, key in enumerate(keys):
        ax.bar(x + j * width, [a[n].get(key) or 0 for n in names], width, label=key)
    smooth = ax.twinx()
    smooth.plot(
        x + 0.4 - width / 2,
        [a[n].get("boundary_smoothness") or 0 for n in names],
        "ko-",
        label="boundary smoothness",
    )
    smooth.axhline(1.0, color="k", lw=0.6, ls=":")
    smooth.set_ylabel("boundary smoothness (1 = seamless)")
    ax.set_xticks(x + 0.4 - width / 2, names, rotation=25, ha="right", fontsize=8)
    ax.set_ylim(0, 1.05)
    ax.legend(fontsize=7, loc="upper left")
    smooth.legend(fontsize=7, loc="upper right")
    ax.set_title("A. 4-clip videos")


def _plot_storyboards(ax, b: dict) -> None:
    names = list(b)
    keys = ["color_kept", "shape_kept", "identity_kept", "motion_right_after"]
    width = 0.8 / len(keys)
    for j, key in enumerate(keys):
        ax.bar(np.arange(len(names)) + j * width, [b[n][key] for n in names], width, label=key)
    ax.set_xticks(np.arange(len(names)) + 0.4 - width / 2, names, rotation=15, ha="right", fontsize=8)
    ax.set_ylim(0, 1.05)
    ax.legend(fontsize=7)
    ax.set_title("B. 2-scene storyboards: across the change")


def _plot_images(ax, c: dict) -> None:
    names = list(c)
    ax.bar(names, [c[n]["psnr_first_frame"] for n in names], color="gray", label="frame 0")
    ax.plot(names, [c[n]["psnr_last_frame"] for n in names], "ko-", label="last frame")
    ax.set_ylabel("PSNR vs the image (dB)")
    ax.legend(fontsize=7)
    ax.set_title("C. image starts")


def plot(a: dict, b: dict, c: dict, path: Path) -> None:
    """One panel per part that ran."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [
        (f, d, w)
        for f, d, w in ((_plot_extension, a, 3), (_plot_storyboards, b, 2), (_plot_images, c, 1.4))
        if d
    ]
    if not panels:
        return
    fig, axes = plt.subplots(
        1,
        len(panels),
        figsize=(sum(w for *_, w in panels) * 2.5 + 1, 4.6),
        width_ratios=[w for *_, w in panels],
        squeeze=False,
    )
    for ax, (draw, data, _) in zip(axes[0], panels, strict=True):
        draw(ax, data)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default="toy")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--steps", type=int, default=25)
    parser.add_argument("--prompts", type=int, default=30)
    parser.add_argument("--clips", type=int, default=4)
    parser.add_argument("--storyboards", type=int, default=20)
    parser.add_argument("--images", type=int, default=20)
    parser.add_argument("--betas", type=float, nargs="+", default=[0.4, 0.7, 1.0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work", type=Path, default=Path("outputs/long_video_compare"))
    parser.add_argument("--threads", type=int, default=1)  # 2 threads on 2 busy cores run ~6x slower
    parser.add_argument("--parts", default="abc")
    parser.add_argument("--configs", nargs="+", help="part A rows to run (default: all)")
    parser.add_argument(
        "--shard",
        type=lambda text: tuple(int(v) for v in text.split("/")),
        help="I/N: only make part A's samples for prompts with index %% N == I, rows interleaved; no results",
    )
    parser.add_argument("--story-configs", nargs="+", help="part B rows to run (default: all)")
    args = parser.parse_args()

    import torch

    from generation.model_info import locate_model, read_model_info
    from reelgraph.settings import load_settings

    torch.set_num_threads(args.threads)
    args.work.mkdir(parents=True, exist_ok=True)
    clip = read_model_info(locate_model(args.model)[0]).num_frames
    settings = load_settings(
        # Motion tuning off: the rows compare extension methods, not LoRAs for rare motions.
        {
            "model": args.model,
            "device": args.device,
            "num_inference_steps": args.steps,
            "motion_tuning": "never",
        },
        home=args.work / "home",
        environ={},
    ).settings
    started = time.perf_counter()
    a = part_a(settings, args, clip) if "a" in args.parts else {}
    b = part_b(settings, args, clip) if "b" in args.parts else {}
    c = part_c(settings, args, clip) if "c" in args.parts else {}
    minutes = (time.perf_counter() - started) / 60
    if args.shard is not None:
        return
    write_json(RESULTS / "long_video_compare.json", {"extension": a, "storyboards": b, "image_start": c})
    plot(a, b, c, RESULTS / "long_video_compare.png")
    new = clip + (args.clips - 1) * (clip - clip // 2)
    body = f"""
Model `{args.model}` (clips of N = {clip} frames), {args.steps} DDIM steps, guidance from the model,
{args.device}; VidRD defaults M = N/2 = {clip // 2}, α = 4, β = 0.4 unless a row says otherwise;
{minutes:.0f} minutes in all. Plot: `long_video_compare.png`; numbers: `long_video_compare.json`.

## A. {args.prompts} toy prompts x {args.clips}-clip videos

Single-object prompts (motions {", ".join(EXTENSION_MOTIONS)}), one sample each, the same seeds in
every row. {args.clips * clip} frames per video ({new} when the prompt frames are not repeated).
boundary_smoothness: mean change across clip joins / within clips (1 = seamless); identity / colour
persistence: the probe's actor in each clip window equals the first clip's; content_cycling: how much clip
k+2 repeats clip k (0 none, 1 exact); motion_acc_per_clip: the probe's motion per clip window; the other
columns are `eval`'s on the whole video.

{table(a, A_COLUMNS) if a else "(not run)"}

## B. {args.storyboards} two-scene storyboards

Scene 1 then scene 2 with the same actor and another motion (e.g. "a red ball rolls to the right" then
"a red ball bounces"), {clip} frames each. Read in the {clip}-frame windows before and after the change:
colour / shape / identity kept across it, scene 2's colour, shape and motion right, and change_jump (the
change at the scene boundary / the mean change elsewhere; 1 = seamless).

{table(b, B_COLUMNS) if b else "(not run)"}

## C. {args.images} image starts

A rendered toy frame as `--image` with its caption; PSNR of the video's first and last frame against the
image (after the MP4 round trip), and the probe on the whole clip against the image's label.

{table(c, C_COLUMNS) if c else "(not run)"}
"""
    write_result(
        "long_video_compare",
        "Long videos on the toy model: VidRD parts, scene continuation, image starts",
        body,
    )


if __name__ == "__main__":
    main()
