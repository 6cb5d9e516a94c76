"""Motion tuning cost: seconds per VMC step and peak memory (Search-T2V §4.3, eq. 10).

Two set-ups:

* a real model folder (default ``toy``): the keyframes of a rendered toy
  zigzag video are encoded with the model's VAE, the training prompt with its
  text encoder, then :func:`motion_prior.tuning.distill_motion` runs;
* ``--modelscope-size``: a ``UNet3DConditionModel`` with ModelScope's
  configuration (1.4B parameters) and random weights, on random latents of
  ``--frames`` frames at ``--size`` pixels (latents ``size / 8``) and a random
  77x1024 context, in fp16 on a GPU. Needs a GPU (``--device cuda``).

Step times are wall-clock per optimiser step (forward, backward, AdamW),
median after ``--warmup`` steps. Peak memory: the process's peak resident set
on the CPU (``ru_maxrss``, which includes the loaded model), or
``torch.cuda.max_memory_allocated`` on a GPU.

    python bench/tuning.py [--model toy] [--steps 20] [--rank 8]
    python bench/tuning.py --modelscope-size --device cuda [--frames 8] [--size 256] [--rank 16]
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np
import torch

from bench.common import write_result
from motion_prior.tuning import TuningConfig, distill_motion

MODELSCOPE_UNET = {
    "sample_size": 32,
    "in_channels": 4,
    "out_channels": 4,
    "down_block_types": (
        "CrossAttnDownBlock3D",
        "CrossAttnDownBlock3D",
        "CrossAttnDownBlock3D",
        "DownBlock3D",
    ),
    "up_block_types": ("UpBlock3D", "CrossAttnUpBlock3D", "CrossAttnUpBlock3D", "CrossAttnUpBlock3D"),
    "block_out_channels": (320, 640, 1280, 1280),
    "layers_per_block": 2,
    "cross_attention_dim": 1024,
    "attention_head_dim": 64,
    "norm_num_groups": 32,
}


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux reports KiB


def _toy_inputs(model_name: str, device: str):
    from generation.backend import uint8_to_frames
    from generation.loaders import load_video_model
    from motion_prior.detectors import ToyDetector
    from motion_prior.keyframes import KeyframeConfig, extract_keyframes
    from toyworld.render import render_video

    model = load_video_model(model_name, device=device)
    label = {"actor": {"shape": "circle", "color": "red", "size": "big"}, "motion": "zigzag"}
    video = render_video(label, 24, np.random.default_rng(0))
    info = model.info
    keyframes = extract_keyframes(
        video,
        ["ball"],
        ToyDetector(),
        KeyframeConfig(num_frames=info.num_frames, height=info.height, width=info.width),
    )
    latents = model.encode_video(uint8_to_frames(keyframes.frames).to(model.device, model.dtype))
    context = model.encode_prompt(["a ball zigzags"]).embeds
    params = sum(p.numel() for p in model.unet.parameters())
    describe = (
        f"Model `{model_name}` ({params / 1e6:.2f}M UNet parameters, {model.dtype}), "
        f"{info.num_frames} frames of {info.height}x{info.width} (latents {tuple(latents.shape)})"
    )
    return model.unet, model.make_scheduler(), latents, context, describe


def _modelscope_inputs(frames: int, size: int, device: str):
    from diffusers import DDIMScheduler, UNet3DConditionModel

    dtype = torch.float16 if device.startswith("cuda") else torch.float32
    torch.manual_seed(0)  # diffusers initialises weights from the global generator
    unet = UNet3DConditionModel(**MODELSCOPE_UNET).to(device, dtype).eval().requires_grad_(False)
    generator = torch.Generator("cpu").manual_seed(0)
    latents = torch.randn(1, 4, frames, size // 8, size // 8, generator=generator).to(device, dtype)
    context = torch.randn(1, 77, 1024, generator=generator).to(device, dtype)
    scheduler = DDIMScheduler(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012)
    params = sum(p.numel() for p in unet.parameters())
    describe = (
        f"ModelScope-sized `UNet3DConditionModel` with random weights ({params / 1e9:.2f}B parameters, {dtype}), "
        f"{frames} frames of {size}x{size} (latents {tuple(latents.shape)})"
    )
    return unet, scheduler, latents, context, describe


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default="toy")
    parser.add_argument("--modelscope-size", action="store_true")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument(
        "--rank", type=int, default=None, help="default: 16 ModelScope-sized, else the tuner's"
    )
    parser.add_argument("--gradient-checkpointing", action="store_true")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--name", default=None, help="result file name (default: tuning_<set-up>)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.modelscope_size and not args.device.startswith("cuda"):
        sys.exit(
            "--modelscope-size needs a GPU (--device cuda): 1.4B parameters train far too slowly on a CPU."
        )

    rss_before_load = _peak_rss_mb()
    if args.modelscope_size:
        unet, scheduler, latents, context, describe = _modelscope_inputs(args.frames, args.size, args.device)
    else:
        unet, scheduler, latents, context, describe = _toy_inputs(args.model, args.device)
    cuda = args.device.startswith("cuda")
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        weights_gb = torch.cuda.memory_allocated() / 1e9
    rss_loaded = _peak_rss_mb()

    rank = args.rank or (16 if args.modelscope_size else TuningConfig().rank)
    config = TuningConfig(
        steps=args.steps + args.warmup, rank=rank, gradient_checkpointing=args.gradient_checkpointing
    )
    stamps: list[float] = []

    def on_step(step: int, steps: int, loss: float) -> None:
        if cuda:
            torch.cuda.synchronize()
        stamps.append(time.perf_counter())

    start = time.perf_counter()
    state, result = distill_motion(unet, scheduler, latents, context, config, progress=on_step)
    times = np.diff([start, *stamps])[args.warmup :]
    median = statistics.median(times)
    default_steps = TuningConfig().steps
    lora_mb = sum(v.numel() * 4 for v in state.values()) / 1e6

    if cuda:
        memory = (
            f"| peak GPU memory allocated | {torch.cuda.max_memory_allocated() / 1e9:.2f} GB "
            f"(weights {weights_gb:.2f} GB) |"
        )
    else:
        memory = (
            f"| peak resident memory (process) | {_peak_rss_mb():.0f} MB "
            f"(after loading: {rss_loaded:.0f} MB; before: {rss_before_load:.0f} MB) |"
        )
    body = f"""
{describe}; LoRA rank {rank} on {len(result.modules)} temporal attention projections
({result.trainable_parameters:,} trainable parameters, {lora_mb:.2f} MB as float32),
batch 1, gradient checkpointing {"on" if args.gradient_checkpointing else "off"}, device {args.device};
{args.steps} timed steps after {args.warmup} warm-up steps.

| figure | value |
|---|---|
| seconds per step (median) | {median:.3f} |
| seconds per step (min / max) | {min(times):.3f} / {max(times):.3f} |
| projected time for the default {default_steps} steps | {median * default_steps:.1f} s |
{memory}
| loss first / last step | {result.losses[0]:.3f} / {result.losses[-1]:.3f} |
"""
    setup = (
        "modelscope_" + args.device.split(":")[0]
        if args.modelscope_size
        else f"{Path(args.model).name}_{args.device}"
    )
    write_result(args.name or f"tuning_{setup}", "Motion tuning: seconds per step and peak memory", body)


if __name__ == "__main__":
    main()
