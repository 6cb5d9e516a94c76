"""The embedded toy model against the toy-world issue's targets, beside a random-init model.

    python bench/toy_model.py --n 200 --seed 20261122

writes ``bench/results/toy_model.md`` (``--name`` picks another file) and the eval folders under
``--out``: 200 prompts drawn from the caption templates with a seed the training never used
(training draws its captions from ``train`` labels with seed 0; these come from the ``eval``
distribution), one sample each at 25 DDIM steps, scored by the toy probe. Both models sample
plainly (no rewrite, random noise, no tuning) on the same seeds; ``fvd_toy_reference`` is
rendered clips against rendered clips.
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
TARGETS = {"color_acc": 0.90, "motion_acc_single": 0.60, "all_acc": 0.45}


def random_model_folder(parent: Path) -> Path:
    """The toy architecture with seeded random weights, saved like the trained model."""
    import torch

    from toyworld import architecture
    from toyworld.training import save_model_folder

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        unet, vae = architecture.build_unet(), architecture.build_vae()
    return save_model_folder(parent / "random-init", unet, vae, architecture.SCHEDULER_CONFIG)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--seed", type=int, default=20261122, help="prompt draw and first sample seed")
    parser.add_argument("--model", default="toy")
    parser.add_argument("--steps", type=int, default=25)
    parser.add_argument("--out", type=Path, default=Path("outputs/bench-toy-model"))
    parser.add_argument("--no-random", action="store_true", help="skip the random-init reference")
    parser.add_argument(
        "--name",
        default="toy_model",
        help="write bench/results/NAME.md (keeps toy_model.md for the committed model)",
    )
    args = parser.parse_args()

    from reelgraph.settings import load_settings
    from toyworld.captions import prompt_set, write_prompt_file
    from toyworld.evaluation import ablation_table, read_prompts, run_eval

    args.out.mkdir(parents=True, exist_ok=True)
    prompts_path = write_prompt_file(args.out / "prompts.jsonl", prompt_set(args.n, args.seed, "eval"))
    configs = {"trained": {**PLAIN, "model": args.model}}
    if not args.no_random:
        configs["random-init"] = {**PLAIN, "model": str(random_model_folder(Path(tempfile.mkdtemp())))}
    home = Path(tempfile.mkdtemp(prefix="bench-home-"))  # no pool: nothing to retrieve
    settings = load_settings({"num_inference_steps": args.steps}, home=home).settings
    results = run_eval(settings, read_prompts(prompts_path), args.out, seed=args.seed, configs=configs)

    trained = results["trained"]
    verdict = "\n".join(
        f"- {key}: {trained[key]:.3f} (target >= {target:.2f}: {'met' if trained[key] >= target else 'missed'})"
        for key, target in TARGETS.items()
    )
    body = (
        f"{args.n} prompts (`toyworld.captions.prompt_set(n, {args.seed}, 'eval')`), one sample each, "
        f"{args.steps} DDIM steps, the model's guidance, plain sampling (no rewrite, random noise, no "
        "tuning), seeds shared by both models. `fvd_toy_reference`: rendered clips against rendered "
        "clips of the same labels.\n\n"
        f"{ablation_table(results, COLUMNS)}\n\nTargets (toy-world issue):\n{verdict}\n\n"
        f"Grid of samples: `{args.out}/trained/grid.png`."
    )
    write_result(args.name, "Embedded toy model: probe accuracy on held-out prompts", body)


if __name__ == "__main__":
    main()
