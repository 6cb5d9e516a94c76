"""Our DDIM loop vs diffusers' TextToVideoSDPipeline on the same model, side by side.

Both encode the prompt, draw the same noise and run the same DDIM steps with
classifier-free guidance, stopping at latents (no VAE decode). Runs are
interleaved (ours, theirs, ours, ...) so that load from other processes hits
both alike; the ratio of medians is the figure. Target: <= 1.02.

    python bench/sampler_overhead.py [--model toy] [--steps 25] [--repeats 7]
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch

from bench.common import interleaved_timings, write_result
from generation.loaders import load_video_model
from generation.sampling import sample_ddim


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default="toy")
    parser.add_argument("--steps", type=int, default=25)
    parser.add_argument("--guidance", type=float, default=7.5)
    parser.add_argument("--frames", type=int, default=None)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--prompt", default="a red ball rolls to the right")
    args = parser.parse_args()

    from diffusers import TextToVideoSDPipeline

    model = load_video_model(args.model, device="cpu")
    frames = args.frames or model.info.num_frames
    pipe = TextToVideoSDPipeline(
        vae=model.vae,
        # Only CLIP encoders plug into the pipeline; others hand it embeddings (below).
        text_encoder=getattr(model.prompt_encoder, "model", None),
        tokenizer=getattr(model.prompt_encoder, "tokenizer", None),
        unet=model.unet,
        scheduler=model.make_scheduler(),
    )
    pipe.set_progress_bar_config(disable=True)
    if model.prompt_encoder.__class__.__name__ != "CLIPPromptEncoder":
        # The pipeline's encode_prompt is CLIP-specific; hand it our embeddings so both loops do the same work.
        pipe_kwargs = lambda: {  # noqa: E731
            "prompt_embeds": model.encode_prompt([args.prompt]).embeds,
            "negative_prompt_embeds": model.encode_prompt([""]).embeds,
        }
    else:
        pipe_kwargs = lambda: {"prompt": args.prompt}  # noqa: E731

    def ours() -> torch.Tensor:
        generator = torch.Generator().manual_seed(0)
        latents = torch.randn(model.latent_shape(1, frames), generator=generator)
        cond = model.encode_prompt([args.prompt]).embeds
        uncond = model.encode_prompt([""]).embeds
        return sample_ddim(
            model,
            model.make_scheduler(),
            latents,
            cond,
            uncond,
            num_inference_steps=args.steps,
            guidance_scale=args.guidance,
            generator=generator,
        )

    def theirs() -> torch.Tensor:
        return pipe(
            **pipe_kwargs(),
            num_frames=frames,
            num_inference_steps=args.steps,
            guidance_scale=args.guidance,
            generator=torch.Generator().manual_seed(0),
            output_type="latent",
        ).frames

    difference, times, ratio = interleaved_timings(ours, theirs, args.repeats)
    med = {name: statistics.median(values) for name, values in times.items()}
    body = f"""
Model `{args.model}` ({model.info.unet_parameters / 1e6:.1f}M UNet parameters), {frames} frames of
{model.info.width}x{model.info.height}, {args.steps} DDIM steps, guidance {args.guidance}, fp32 on the CPU;
{args.repeats} interleaved repeats after a warm-up.

| loop | median s | min s | max s |
|---|---|---|---|
| ours (`generation.sampling.sample_ddim`) | {med["ours"]:.3f} | {min(times["ours"]):.3f} | {max(times["ours"]):.3f} |
| diffusers `TextToVideoSDPipeline` | {med["diffusers"]:.3f} | {min(times["diffusers"]):.3f} | {max(times["diffusers"]):.3f} |

**ratio ours / diffusers = {ratio:.3f}** (target <= 1.02); max |latents difference| = {difference:.2e}.
"""
    write_result("sampler_overhead", "Sampler overhead: our DDIM loop vs diffusers", body)


if __name__ == "__main__":
    main()
