"""A contact sheet of toy-model samples: one row of frames per prompt, the prompt under it.

``python -m toyworld.samples --out docs/toy_samples.png`` draws the README's
sheet from the embedded model with our own sampler (``generation.sampling``).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

DEFAULT_PROMPTS = (
    "a red ball rolls to the right",
    "a blue box moves to the left on the grass",
    "a yellow triangle spins on the sand",
    "a green ball bounces on the road",
    "a big white square grows",
    "a purple ball is falling down at night",
    "an orange triangle orbits in a circle",
    "a cyan block rises on the sand",
)


def sample_clips(
    model_path: str | None,
    prompts: list[str],
    seed: int = 0,
    steps: int = 25,
    guidance: float | None = None,
    device: str = "cpu",
) -> np.ndarray:
    """One clip per prompt: uint8 ``(N, F, H, W, 3)``; ``guidance`` defaults to the model's own."""
    import torch

    from generation.loaders import load_video_model
    from generation.sampling import sample_ddim

    model = load_video_model(model_path, device=device)
    scale = model.info.guidance_scale if guidance is None else guidance
    generator = torch.Generator().manual_seed(seed)
    latents = torch.randn(model.latent_shape(len(prompts), model.info.num_frames), generator=generator)
    with torch.no_grad():
        embeds = model.encode_prompt(list(prompts)).embeds
        negative = model.encode_prompt([""]).embeds
        latents = sample_ddim(
            model,
            model.make_scheduler(),
            latents.to(model.device, model.dtype),
            embeds,
            negative,
            num_inference_steps=steps,
            guidance_scale=scale,
        )
        frames = model.decode_latents(latents)  # (N, 3, F, H, W) in [-1, 1]
    return ((frames.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 4, 1).numpy()


def sample_sheet(clips: np.ndarray, prompts: list[str]) -> np.ndarray:
    """Stack one contact sheet per clip (``generation.outputs.contact_sheet``) into one image."""
    from generation.outputs import contact_sheet

    sheets = [contact_sheet(clip, prompt) for clip, prompt in zip(clips, prompts, strict=True)]
    width = max(s.shape[1] for s in sheets)
    padded = [np.pad(s, ((0, 0), (0, width - s.shape[1]), (0, 0)), constant_values=255) for s in sheets]
    return np.concatenate(padded, axis=0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default=None, help="model folder (default: the embedded toy model)")
    parser.add_argument("--out", type=Path, default=Path("docs/toy_samples.png"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=int, default=25)
    parser.add_argument("--guidance", type=float, default=None)
    parser.add_argument("prompts", nargs="*", default=list(DEFAULT_PROMPTS))
    args = parser.parse_args()

    from reelgraph.media import write_png

    clips = sample_clips(args.model, args.prompts, args.seed, args.steps, args.guidance)
    print(write_png(sample_sheet(clips, args.prompts), args.out))


if __name__ == "__main__":
    main()
