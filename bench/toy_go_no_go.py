"""Go / no-go check of a toy-world model: does the caption decide the motion?

    python bench/toy_go_no_go.py --model toy --model toy-unet --name toy_go_no_go

Three figures per model (the embedded-model issue's check), each on held-out clips and prompts:

a. **Motion by denoising error** (as a diffusion classifier): for each of ``--clips`` rendered
   single-object clips, every single-object motion's caption (the clip's own wording with the
   motion swapped) is scored by the error of the model's clean-signal estimate, averaged over
   noise levels t / 1000 in {0.3, 0.5, 0.7, 0.9} with the same noise for every caption; the
   lowest error picks the motion. Chance is 1 / 11.
b. **Drift at high noise**: for ``--clips`` / 2 rendered move_right clips at t = 900, the x drift
   (last frame minus first, latent pixels) of the model's clean estimate under the clip's caption
   saying "right" and the same caption saying "left", beside the clean clip's own drift. A model
   whose caption decides the direction gives opposite signs.
c. **Probe**: ``--prompts`` held-out prompts sampled plainly at the model's defaults and read by
   the toy probe (``toyworld.evaluation``).

Works on both toy denoisers: ε prediction on DDIM (``toy-unet``: ``x̂₀ = (x_t − √(1−ᾱ) ε̂) / √ᾱ``)
and rectified flow (``toy``: ``x_σ = (1 − σ) x₀ + σ ε``, ``x̂₀ = x_σ − σ v̂``, σ = t / 1000).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import write_result

LEVELS = (300, 500, 700, 900)
PLAIN = {"rewrite": False, "noise_source": "random", "motion_tuning": "never"}


class CleanEstimator:
    """The clean-signal estimate ``x̂₀`` of a loaded toy model at integer timesteps."""

    def __init__(self, model):
        import torch

        from generation.wan_backend import WanModel

        self.model = model
        self.flow = isinstance(model, WanModel)
        if not self.flow:
            self.alphas = model.make_scheduler().alphas_cumprod.to(torch.float32)

    def embeds(self, prompts: list[str]):
        if self.flow:
            return self.model.encode_prompt(prompts, self.model.info.max_prompt_tokens)
        return self.model.encode_prompt(prompts).embeds

    def noised(self, x0, noise, t: int):
        if self.flow:
            s = t / 1000.0
            return (1.0 - s) * x0 + s * noise
        a = self.alphas[t]
        return a.sqrt() * x0 + (1.0 - a).sqrt() * noise

    def clean(self, noisy, t: int, embeds):
        import torch

        timestep = torch.full((noisy.shape[0],), t, dtype=torch.float32 if self.flow else torch.long)
        if self.flow:
            v = self.model.transformer(noisy, timestep, embeds, return_dict=False)[0]
            return noisy - (t / 1000.0) * v
        eps = self.model.predict_noise(noisy, timestep, embeds)
        a = self.alphas[t]
        return (noisy - (1.0 - a).sqrt() * eps) / a.sqrt()


def latents_of(model, clips):
    """uint8 ``(N, F, H, W, 3)`` clips to the model's latents ``(N, C, F, h, w)``."""
    import torch

    from generation.backend import uint8_to_frames

    video = torch.cat([uint8_to_frames(clip) for clip in clips])
    return model.encode_video(video.to(model.device, model.dtype)).float()


def x_drift(latents) -> list[float]:
    """Per clip, the x centroid's change from the first to the last frame, in latent pixels: the
    centroid of each frame's |latent − its spatial median| (the background is the median)."""
    import torch

    dev = (latents - latents.flatten(3).median(dim=-1).values[..., None, None]).abs().sum(dim=1)
    xs = torch.arange(dev.shape[-1], dtype=dev.dtype)
    centroid = (dev.sum(dim=-2) * xs).sum(-1) / dev.sum(dim=(-2, -1)).clamp(min=1e-6)  # (N, F)
    return (centroid[:, -1] - centroid[:, 0]).tolist()


def held_out_clips(n: int, seed: int, motions=None):
    """``n`` eval-distribution labels (single-object motions), their captions' rng seeds and clips."""
    import numpy as np

    from toyworld.captions import sample_label
    from toyworld.render import render_batch
    from toyworld.spec import SINGLE_MOTIONS

    rng = np.random.default_rng(seed)
    labels = [sample_label(rng, "eval", motions or SINGLE_MOTIONS) for _ in range(n)]
    clips = render_batch(labels, 8, np.random.default_rng([seed, 1]))
    return labels, clips


def caption_with(label, motion: str, seed: int) -> str | None:
    """The caption of ``label`` with its motion replaced, same wording draw; None where the motion
    cannot apply (spin needs a square or triangle)."""
    import numpy as np

    from toyworld.captions import describe

    try:
        swapped = label.model_copy(update={"motion": motion})
        swapped = type(label).model_validate(swapped.model_dump())
    except ValueError:
        return None
    if motion == "spin" and label.actor.shape not in ("square", "triangle"):
        return None
    return describe(swapped, np.random.default_rng(seed)).text


def motion_by_denoising_error(estimator: CleanEstimator, clips: int, seed: int) -> float:
    import torch

    from toyworld.spec import SINGLE_MOTIONS

    labels, rendered = held_out_clips(clips, seed)
    x0 = latents_of(estimator.model, rendered)
    generator = torch.Generator().manual_seed(seed)
    correct = 0
    for i, label in enumerate(labels):
        motions = [m for m in SINGLE_MOTIONS if caption_with(label, m, seed + i) is not None]
        embeds = estimator.embeds([caption_with(label, m, seed + i) for m in motions])
        clean = x0[i : i + 1].expand(len(motions), -1, -1, -1, -1)
        errors = torch.zeros(len(motions))
        for t in LEVELS:
            noise = torch.randn(x0[i : i + 1].shape, generator=generator).expand_as(clean)
            estimate = estimator.clean(estimator.noised(clean, noise, t), t, embeds)
            errors += (estimate - clean).pow(2).flatten(1).mean(1)
        correct += motions[int(errors.argmin())] == label.motion
    return correct / len(labels)


def drift_at_high_noise(estimator: CleanEstimator, clips: int, seed: int) -> dict[str, float]:
    import torch

    labels, rendered = held_out_clips(clips, seed + 7, motions=("move_right",))
    x0 = latents_of(estimator.model, rendered)
    noise = torch.randn(x0.shape, generator=torch.Generator().manual_seed(seed + 7))
    noisy = estimator.noised(x0, noise, 900)
    out = {"true": sum(x_drift(x0)) / len(labels)}
    for word in ("move_right", "move_left"):
        embeds = estimator.embeds([caption_with(label, word, seed + i) for i, label in enumerate(labels)])
        out[word] = sum(x_drift(estimator.clean(noisy, 900, embeds))) / len(labels)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", action="append", help="a model name or folder (repeat); default toy")
    parser.add_argument("--clips", type=int, default=60)
    parser.add_argument("--prompts", type=int, default=24)
    parser.add_argument("--seed", type=int, default=4242)
    parser.add_argument("--out", type=Path, default=Path("outputs/bench-go-no-go"))
    parser.add_argument("--name", default="toy_go_no_go")
    parser.add_argument("--note", default="", help="a line under the table (training time of each model)")
    parser.add_argument(
        "--no-probe", action="store_true", help="skip (c), the sampled prompts (checkpoint curves)"
    )
    args = parser.parse_args()

    import torch

    from agent.composition import build_services
    from reelgraph.settings import load_settings
    from toyworld.captions import prompt_set, write_prompt_file
    from toyworld.evaluation import read_prompts, run_eval

    rows = []
    for model_name in args.model or ["toy"]:
        home = Path(tempfile.mkdtemp(prefix="bench-home-"))
        settings = load_settings({"model": model_name}, home=home).settings
        services = build_services(settings)
        model = services.generation.model
        estimator = CleanEstimator(model)
        with torch.inference_mode():
            accuracy = motion_by_denoising_error(estimator, args.clips, args.seed)
            drift = drift_at_high_noise(estimator, max(2, args.clips // 2), args.seed)
        probe = {"color_acc": None, "motion_acc_single": None, "all_acc": None}
        if not args.no_probe:
            out = args.out / Path(model_name).name
            out.mkdir(parents=True, exist_ok=True)
            drawn = prompt_set(args.prompts, args.seed, "eval")
            prompts = read_prompts(write_prompt_file(out / "prompts.jsonl", drawn))
            probe = run_eval(settings, prompts, out, seed=args.seed, configs={"plain": PLAIN})["plain"]
        read = [probe[key] for key in ("color_acc", "motion_acc_single", "all_acc")]
        cells = " | ".join("-" if value is None else f"{value:.3f}" for value in read)
        rows.append(
            f"| {model_name} | {model.info.weights_hash} | {accuracy:.3f} | {drift['move_right']:+.2f} | "
            f"{drift['move_left']:+.2f} | {drift['true']:+.2f} | {cells} |"
        )
        print(rows[-1], flush=True)
    table = (
        '| model | weights | motion by denoising error | drift "right" | drift "left" | true drift | '
        "probe colour | probe single motion | probe all |\n|---|---|---|---|---|---|---|---|---|\n"
        + "\n".join(rows)
    )
    body = (
        f"(a) {args.clips} held-out single-object clips, 11 motion captions each, noise levels "
        f"{', '.join(str(t) for t in LEVELS)} (chance 1/11 = 0.091). (b) {max(2, args.clips // 2)} move_right "
        f"clips at t = 900: mean x drift of the clean estimate in latent pixels. (c) {args.prompts} held-out "
        f"prompts (`prompt_set({args.prompts}, {args.seed}, 'eval')`), one sample each at the model's default "
        f"steps and guidance, plain sampling.\n\n{table}\n\n{args.note}"
    )
    write_result(args.name, "Go / no-go: does the caption decide the motion?", body)


if __name__ == "__main__":
    main()
