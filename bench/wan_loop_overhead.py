"""Our flow-matching loop vs diffusers' WanPipeline on the same tiny Wan, side by side.

Both encode the prompt, draw the same noise and run the same flow-matching
Euler steps with classifier-free guidance (and, with ``--two-experts``, Wan
2.2's expert switch), stopping at latents (no VAE decode). Runs are
interleaved (ours, theirs, ours, ...) so load from other processes hits both
alike; the ratio of medians is the figure. Target: <= 1.02.

    python bench/wan_loop_overhead.py [--steps 20] [--frames 17] [--size 64] [--repeats 25] [--two-experts]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch

from bench.common import interleaved_timings, write_result
from generation.wan_backend import load_wan_model
from tests.tiny_wan import save_tiny_wan

MAX_TOKENS = 16


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--guidance", type=float, default=5.0)
    parser.add_argument("--frames", type=int, default=17)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=25)
    parser.add_argument("--two-experts", action="store_true")
    parser.add_argument("--prompt", default="a red ball rolls to the right")
    args = parser.parse_args()

    from diffusers import WanPipeline

    folder = save_tiny_wan(Path(tempfile.mkdtemp()) / "wan", two_experts=args.two_experts)
    model = load_wan_model(folder, torch.device("cpu"), torch.float32)
    pipe = WanPipeline(
        transformer=model.transformer,
        transformer_2=model.transformer_2,
        vae=model.vae,
        text_encoder=model.text_encoder,
        tokenizer=model.tokenizer,
        scheduler=model.make_scheduler(),
        boundary_ratio=model.boundary_ratio,
    )
    pipe.set_progress_bar_config(disable=True)

    def ours() -> torch.Tensor:
        generator = torch.Generator().manual_seed(0)
        latents = torch.randn(model.latent_shape(1, args.frames, args.size, args.size), generator=generator)
        cond = model.encode_prompt([args.prompt], MAX_TOKENS)
        uncond = model.encode_prompt([""], MAX_TOKENS)
        return model.sample(cond, uncond, latents, args.steps, args.guidance)

    def theirs() -> torch.Tensor:
        return pipe(
            args.prompt,
            num_frames=args.frames,
            height=args.size,
            width=args.size,
            num_inference_steps=args.steps,
            guidance_scale=args.guidance,
            generator=torch.Generator().manual_seed(0),
            output_type="latent",
            max_sequence_length=MAX_TOKENS,
        ).frames

    difference, times, ratio = interleaved_timings(ours, theirs, args.repeats)
    med = {name: statistics.median(values) for name, values in times.items()}
    with open("/proc/loadavg") as handle:
        load = " ".join(handle.read().split()[:3])
    parameters = sum(p.numel() for p in model.transformer.parameters())
    experts = " x 2 experts" if model.transformer_2 is not None else ""
    body = f"""
Tiny random {model.family.name} (`tests/tiny_wan.py`, {parameters / 1e3:.0f}k transformer parameters{experts}),
{args.frames} frames of {args.size}x{args.size},
{args.steps} {model.scheduler_class} steps (flow shift {model.flow_shift}), guidance {args.guidance}, fp32 on the
CPU; {args.repeats} interleaved repeats after a warm-up; load average before writing: {load}.

| loop | median s | min s | max s |
|---|---|---|---|
| ours (`generation.flow_sampling.flow_sample`) | {med["ours"]:.4f} | {min(times["ours"]):.4f} | {max(times["ours"]):.4f} |
| diffusers `WanPipeline` | {med["diffusers"]:.4f} | {min(times["diffusers"]):.4f} | {max(times["diffusers"]):.4f} |

**ratio ours / diffusers = {ratio:.3f}** by medians, {min(times["ours"]) / min(times["diffusers"]):.3f} by the
fastest runs (target <= 1.02); max |latents difference| = {difference:.2e}. On a shared machine the
fastest run is the one least disturbed by other processes, so both ratios are shown.
"""
    suffix = "_wan22" if args.two_experts else ""
    write_result(
        f"wan_loop_overhead{suffix}", "Flow loop overhead: our Wan loop vs diffusers' WanPipeline", body
    )


if __name__ == "__main__":
    main()
