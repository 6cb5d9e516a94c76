"""The embedded toy model against the embedded-model issue's targets, beside its predecessor and a
random-init model of its own architecture.

    python bench/toy_model.py --n 200 --seed 20261122

writes ``bench/results/toy_model.md`` (``--name`` picks another file) and the eval folders under
``--out``: 200 prompts drawn from the caption templates with a seed the training never used
(training draws its captions from ``train`` / ``flow_train`` labels with seed 0 or 1; these come
from the ``eval`` distribution), one sample each, scored by the toy probe. Every model samples
plainly (no rewrite, random noise, no tuning) on the same seeds, at the default steps
(the settings' ``num_inference_steps``, 25, which ``generate`` uses; ``--steps`` overrides the
new model's and the random model's; the UNet3D ``toy-unet`` row keeps its 25 DDIM steps);
``fvd_toy_reference`` is rendered clips against rendered clips.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import write_result

PLAIN = {"rewrite": False, "noise_source": "random", "motion_tuning": "never"}
COLUMNS = (
    "color_acc",
    "shape_acc",
    "motion_acc_single",
    "motion_acc_pair",
    "all_acc",
    "fvd_toy",
    "fvd_toy_reference",
    "seconds",
)
TARGETS = {
    "color_acc": 0.95,
    "shape_acc": 0.95,
    "motion_acc_single": 0.80,
    "motion_acc_pair": 0.40,
    "all_acc": 0.60,
}
UNET_STEPS = 25  # toy-unet's DDIM steps, as in its committed rows


def random_model_folder(parent: Path, model: str) -> Path:
    """``model``'s architecture (its transformer or UNet config and VAE config) with seeded random
    weights, saved like a trained model."""
    import json

    import torch

    from generation.model_info import locate_model
    from toyworld import architecture
    from toyworld.training import save_model_folder
    from toyworld.training.network import NETWORKS

    folder = locate_model(model)[0]
    flow = (folder / "transformer").is_dir()
    network = NETWORKS["wan" if flow else "unet3d"]
    config = json.loads((folder / network.folder / "config.json").read_text())
    config = {k: v for k, v in config.items() if not k.startswith("_")}
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        denoiser, vae = network.build(config), architecture.build_vae()
    return save_model_folder(
        parent / "random-init", denoiser, vae, architecture.SCHEDULER_CONFIG, network=network
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--seed", type=int, default=20261122, help="prompt draw and first sample seed")
    parser.add_argument("--model", default="toy")
    parser.add_argument("--steps", type=int, default=None, help="default: each model's own")
    parser.add_argument(
        "--baseline", default="toy-unet", help="the predecessor's row ('' for none), same prompts and seeds"
    )
    parser.add_argument("--out", type=Path, default=Path("outputs/bench-toy-model"))
    parser.add_argument("--no-random", action="store_true", help="skip the random-init reference")
    parser.add_argument(
        "--name",
        default="toy_model",
        help="write bench/results/NAME.md (keeps toy_model.md for the committed model)",
    )
    args = parser.parse_args()

    from reelgraph.settings import Settings, load_settings
    from toyworld.captions import prompt_set, write_prompt_file
    from toyworld.evaluation import ablation_table, read_prompts, run_eval

    args.out.mkdir(parents=True, exist_ok=True)
    prompts_path = write_prompt_file(args.out / "prompts.jsonl", prompt_set(args.n, args.seed, "eval"))
    from generation.model_info import locate_model, read_model_info

    info = read_model_info(*locate_model(args.model))
    steps = args.steps or Settings.model_fields["num_inference_steps"].default  # what `generate` uses
    configs = {"trained": {**PLAIN, "model": args.model, "num_inference_steps": steps}}
    if args.baseline:
        baseline = read_model_info(*locate_model(args.baseline))
        configs[args.baseline] = {**PLAIN, "model": args.baseline, "num_inference_steps": UNET_STEPS}
    if not args.no_random:
        folder = random_model_folder(Path(tempfile.mkdtemp()), args.model)
        configs["random-init"] = {**PLAIN, "model": str(folder), "num_inference_steps": steps}
    home = Path(tempfile.mkdtemp(prefix="bench-home-"))  # no pool: nothing to retrieve
    settings = load_settings({}, home=home).settings
    results = run_eval(settings, read_prompts(prompts_path), args.out, seed=args.seed, configs=configs)

    trained = results["trained"]

    def verdict_line(key: str, target: float) -> str:
        value = trained[key]
        if value is None:
            return f"- {key}: not measured (no such prompt drawn; target >= {target:.2f})"
        return f"- {key}: {value:.3f} (target >= {target:.2f}: {'met' if value >= target else 'missed'})"

    verdict = "\n".join(verdict_line(key, target) for key, target in TARGETS.items())
    hashes = f"`{args.model}` weights `{info.weights_hash}`"
    if args.baseline:
        hashes += f", `{args.baseline}` weights `{baseline.weights_hash}` ({UNET_STEPS} DDIM steps)"
    body = (
        f"{args.n} prompts (`toyworld.captions.prompt_set(n, {args.seed}, 'eval')`), one sample each, "
        f"{steps} steps for `trained` and `random-init` ({hashes}), each model's guidance, plain "
        "sampling (no rewrite, random noise, no tuning), the same seeds for every row. "
        "`fvd_toy_reference`: rendered clips against rendered clips of the same labels.\n\n"
        f"{ablation_table(results, COLUMNS)}\n\nTargets (embedded-model issue):\n{verdict}\n\n"
        f"Grid of samples: `{args.out}/trained/grid.png`."
    )
    write_result(args.name, "Embedded toy model: probe accuracy on held-out prompts", body)


if __name__ == "__main__":
    main()
