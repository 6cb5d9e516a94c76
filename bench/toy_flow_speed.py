"""Speed of the embedded flow model: one 8-frame clip at its default steps, guided, decoded.

Target (the embedded-model issue): <= 1.5 s per clip on this CPU (quiet machine, median),
including the prompt encoding, the guided transformer calls (two per step, conditional and
unconditional, as ``WanPipeline`` makes them) and the VAE decode, through the same
``load_wan_model`` / ``WanModel.sample`` / ``decode_latents`` the generation service runs.
``--model toy-unet`` times the UNet on its DDIM path beside it (``bench/toy_speed.py``'s loop).

    python bench/toy_flow_speed.py [--threads 2] [--repeats 7]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch

from bench.common import write_result

PROMPT = "a red ball rolls to the right"


def flow_clip_timer(model_name: str, steps: int | None):
    from generation.model_info import locate_model, read_model_info
    from generation.wan_backend import load_wan_model

    folder, model_id = locate_model(model_name)
    info = read_model_info(folder, model_id)
    model = load_wan_model(folder, torch.device("cpu"), torch.float32)
    model.info = info
    steps = steps or 25  # the settings default that `generate` samples with
    generator = torch.Generator().manual_seed(0)

    @torch.no_grad()
    def one_clip() -> None:
        embeds = model.encode_prompt([PROMPT], info.max_prompt_tokens)
        negative = model.encode_prompt([""], info.max_prompt_tokens)
        latents = torch.randn(
            model.latent_shape(1, info.num_frames, info.height, info.width), generator=generator
        )
        model.decode_latents(model.sample(embeds, negative, latents, steps, info.guidance_scale))

    return one_clip, steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="toy")
    parser.add_argument("--steps", type=int, default=None, help="default: 25, what generate uses")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    one_clip, steps = flow_clip_timer(args.model, args.steps)
    one_clip()  # warm-up
    times = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        one_clip()
        times.append(time.perf_counter() - start)
    load = os.getloadavg()
    body = (
        f"Model `{args.model}`, one 8-frame 32x32 clip, {steps} flow steps with guidance (two transformer "
        f"calls a step), prompt encoding and VAE decode included; {args.repeats} runs after a warm-up.\n\n"
        f"| median s | min s | max s | load average (1/5/15 min) |\n|---|---|---|---|\n"
        f"| {statistics.median(times):.3f} | {min(times):.3f} | {max(times):.3f} | "
        f"{load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f} |\n\nTarget: median <= 1.5 s on a quiet machine."
    )
    print(body)
    write_result("toy_flow_speed", "Embedded flow model: seconds per clip on this CPU", body)


if __name__ == "__main__":
    main()
