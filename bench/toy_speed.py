"""Speed of the embedded toy model: one 8-frame clip, 25 DDIM steps, classifier-free guidance, decoded.

Target (issue 3): <= 3 s per clip on this CPU, including the prompt encoding,
the 25 guided UNet calls (cond + uncond batched, batch 2) and the VAE decode.

Two parts:

* end to end: ``generation.loaders.load_video_model`` + ``generation.sampling.sample_ddim``
  + ``VideoModel.decode_latents`` on the model folder (the committed
  ``toyworld/model`` by default; ``--random`` times freshly initialised weights of
  ``toyworld.architecture``'s configs instead, which cost exactly the same);
* ``--candidates``: the sizing measurement behind ``toyworld.architecture``: one
  batch-2 UNet forward of each candidate config, times 25, plus the measured decode.

The machine is shared, so every figure is the minimum and the median of
``--repeats`` runs; the minimum is the least disturbed one.

    python bench/toy_speed.py [--model toy] [--threads 2] [--repeats 5] [--candidates]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch

from bench.common import write_result

# (name, block widths, block types top-down: C = cross-attention block, D = plain block, attention_head_dim)
CANDIDATES = [
    ("32-64-64 CCD h8 (chosen)", (32, 64, 64), "CCD", 8),
    ("32-64-64 CCC h8", (32, 64, 64), "CCC", 8),
    ("32-64-64 CCD h32", (32, 64, 64), "CCD", 32),
    ("64-64 CC h8 (two levels)", (64, 64), "CC", 8),
    ("64-96-128 DCC h8", (64, 96, 128), "DCC", 8),
    ("64-128-128 CCD h8", (64, 128, 128), "CCD", 8),
]


def _timed(fn, repeats: int) -> list[float]:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def _random_model_folder() -> Path:
    from toyworld import architecture
    from toyworld.training import save_model_folder

    folder = Path(tempfile.mkdtemp(prefix="toy-speed-"))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        unet, vae = architecture.build_unet(), architecture.build_vae()
    return save_model_folder(folder, unet, vae, architecture.SCHEDULER_CONFIG)


def end_to_end(model_path: str, repeats: int, steps: int, guidance: float, prompt: str) -> dict:
    from generation.loaders import load_video_model
    from generation.sampling import sample_ddim

    model = load_video_model(model_path, device="cpu")
    generator = torch.Generator().manual_seed(0)
    parts: dict[str, list[float]] = {"encode": [], "denoise": [], "decode": []}

    @torch.no_grad()
    def one_clip() -> None:
        t0 = time.perf_counter()
        embeds = model.encode_prompt([prompt]).embeds
        negative = model.encode_prompt([""]).embeds
        t1 = time.perf_counter()
        latents = torch.randn(model.latent_shape(1, model.info.num_frames), generator=generator)
        latents = sample_ddim(
            model,
            model.make_scheduler(),
            latents,
            embeds,
            negative,
            num_inference_steps=steps,
            guidance_scale=guidance,
        )
        t2 = time.perf_counter()
        model.decode_latents(latents)
        t3 = time.perf_counter()
        parts["encode"].append(t1 - t0)
        parts["denoise"].append(t2 - t1)
        parts["decode"].append(t3 - t2)

    total = _timed(one_clip, repeats)
    for values in parts.values():
        del values[0]  # the warm-up
    return {"total": total, **parts, "unet_parameters": model.info.unet_parameters}


def planner_estimate(model_path: str, steps: int, guidance: float) -> float:
    """Seconds that ``plan`` would predict for the same clip on this device kind."""
    from generation.estimate import estimate_clip
    from generation.model_info import locate_model, read_model_info

    folder, model_id = locate_model(model_path)
    info = read_model_info(folder, model_id)
    return estimate_clip(info, info.num_frames, steps, guidance, "cpu")[0]


def candidates(repeats: int, steps: int, decode_s: float) -> list[tuple[str, float, float, float]]:
    from toyworld import architecture

    rows = []
    x = torch.randn(2, 4, 8, 8, 8)
    context = torch.randn(2, architecture.TEXT_TOKENS, architecture.TEXT_DIM)
    t = torch.tensor([500, 500])
    for name, widths, types, head_dim in CANDIDATES:
        config = {
            **architecture.UNET_CONFIG,
            "block_out_channels": widths,
            "down_block_types": tuple("CrossAttnDownBlock3D" if c == "C" else "DownBlock3D" for c in types),
            "up_block_types": tuple(
                "CrossAttnUpBlock3D" if c == "C" else "UpBlock3D" for c in reversed(types)
            ),
            "attention_head_dim": head_dim,
        }
        unet = architecture.build_unet(config).eval()
        with torch.no_grad():
            times = _timed(lambda unet=unet: unet(x, t, encoder_hidden_states=context), repeats)
        params = architecture.parameter_count(unet) / 1e6
        rows.append((name, params, min(times), min(times) * steps + decode_s))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default="toy")
    parser.add_argument("--random", action="store_true", help="time random weights of the architecture")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--steps", type=int, default=25)
    parser.add_argument("--guidance", type=float, default=7.5)
    parser.add_argument("--prompt", default="a red ball rolls to the right")
    parser.add_argument("--candidates", action="store_true")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    model_path = str(_random_model_folder()) if args.random else args.model
    result = end_to_end(model_path, args.repeats, args.steps, args.guidance, args.prompt)
    total = result["total"]
    lines = [
        f"Model `{'random weights of toyworld.architecture' if args.random else args.model}` "
        f"({result['unet_parameters'] / 1e6:.2f} M UNet parameters): one 8-frame 32x32 clip, "
        f"{args.steps} DDIM steps, guidance {args.guidance} (cond + uncond in one batch-2 UNet call), "
        f"fp32 on the CPU, {args.repeats} runs after a warm-up.",
        "",
        "| part | min s | median s |",
        "|---|---|---|",
    ]
    for part in ("encode", "denoise", "decode"):
        lines.append(f"| {part} | {min(result[part]):.3f} | {statistics.median(result[part]):.3f} |")
    lines.append(f"| **total** | **{min(total):.3f}** | **{statistics.median(total):.3f}** |")
    lines += ["", f"Target <= 3 s per clip: **{'met' if min(total) <= 3.0 else 'NOT met'}** (minimum run)."]
    estimate = planner_estimate(model_path, args.steps, args.guidance)
    lines += [
        "",
        f"The planner's estimate (`generation/estimate.py`, CPU constants): {estimate:.3f} s; "
        f"measured median / estimate = {statistics.median(total) / estimate:.2f} "
        "(the estimate promises a factor of about two).",
    ]
    if args.candidates:
        decode = min(result["decode"])
        lines += [
            "",
            "## Sizing: candidate UNet configs",
            "",
            f"One batch-2 forward (min of {args.repeats}), x {args.steps} steps + the decode above "
            f"({decode:.3f} s). C = cross-attention block, D = plain block, top level first; "
            "h = `attention_head_dim` (per-head width; `transformer_in` is 8 x h wide).",
            "",
            "| config | UNet params (M) | forward s | est. clip s |",
            "|---|---|---|---|",
        ]
        for name, params, forward, clip in candidates(args.repeats, args.steps, decode):
            lines.append(f"| {name} | {params:.2f} | {forward:.3f} | {clip:.2f} |")
    write_result("toy_speed", "Toy model speed: one clip, 25 guided DDIM steps, decoded", "\n".join(lines))


if __name__ == "__main__":
    main()
