"""The toy world's commands: ``toy render``, ``toy train``, ``probe`` and the ``eval`` harness."""

from __future__ import annotations

from pathlib import Path

import typer

from reelgraph.commands.common import out, print_json, settings_from
from reelgraph.commands.progress import ProgressBars
from reelgraph.commands.sampling import Sampling, sampling_options

toy_app = typer.Typer(
    no_args_is_help=True, help="The toy world: render captioned videos, train the embedded model."
)


@toy_app.command("render")
def toy_render(
    n: int = typer.Option(..., "--n", min=1, help="Number of videos."),
    out_dir: Path = typer.Option(..., "--out", help="Folder for videos/ and captions.csv."),
    seed: int = typer.Option(0, "--seed", min=0, help="Pool seed (the same seed renders the same pool)."),
    frames: int = typer.Option(24, "--frames", min=8, help="Frames per video."),
) -> None:
    """Render a captioned toy pool in WebVid's layout: DIR/videos/<id>.mp4 and DIR/captions.csv."""
    from toyworld.dataset import render_pool

    csv_path = render_pool(n, out_dir, seed=seed, frames=frames)
    out.print(f"Rendered {n} videos of {frames} frames: {csv_path}")


@toy_app.command("train")
def toy_train(
    out_dir: Path = typer.Option(
        ..., "--out", help="Model folder to write (resume state in DIR/.checkpoint)."
    ),
    minutes: float = typer.Option(
        85.0, "--minutes", min=0.1, help="Wall-time budget, counted across resumes."
    ),
    device: str = typer.Option("auto", "--device", help="auto, cpu or cuda."),
    seed: int = typer.Option(0, "--seed", min=0),
    fresh: bool = typer.Option(False, "--fresh", help="Ignore an existing checkpoint and start over."),
    network: str = typer.Option(
        "wan", "--network", help="wan (the flow transformer, default) or unet3d (DDIM, as toy-unet)."
    ),
    vae_from: Path | None = typer.Option(
        None, "--vae-from", help="Reuse this model folder's trained VAE (skips the VAE phase)."
    ),
    distribution: str | None = typer.Option(
        None, "--distribution", help="Label mix: flow_train (the wan default) or train (toy-unet's)."
    ),
    init_from: Path | None = typer.Option(
        None, "--init-from", help="Start the transformer from this model folder's (needs --vae-from)."
    ),
    continuation: bool = typer.Option(
        False,
        "--continuation",
        help="Train ART-V's continuation inputs (noise-augmented given frames, an anchor frame); "
        "with --init-from, the shipped model's second stage.",
    ),
) -> None:
    """Train the toy text-to-video model (VAE, then the denoiser) on freshly rendered toy clips."""
    from toyworld.training import train_toy_model
    from toyworld.training.config import continuation_finetune

    overrides = {"network": network, "vae_from": None if vae_from is None else str(vae_from)}
    if init_from is not None:
        overrides["init_from"] = str(init_from)
    if continuation:
        overrides |= continuation_finetune()
    if distribution is not None:
        overrides["distribution"] = distribution
    folder = train_toy_model(
        out_dir, minutes=minutes, device=device, resume=not fresh, seed=seed, **overrides
    )
    out.print(f"Model: {folder}  (loss curve: {folder / 'loss_curve.png'}, card: {folder / 'MODEL_CARD.md'})")


def probe_command(
    video: Path = typer.Argument(..., help="A video file (any size; read back at 32x32)."),
    as_json: bool = typer.Option(False, "--json", help="Print tracks and label as JSON."),
) -> None:
    """Read a toy-world video back into labels: background, objects, motions."""
    from toyworld.probe import probe

    result = probe(video)
    if as_json:
        print_json(result.to_dict())
        return
    label = result.label()
    out.print(
        f"background: {result.background}; {len(result.tracks)} object(s); scene motion: {result.motion}"
    )
    for number, track in enumerate(result.tracks):
        role = {result.actor: "actor", result.recipient: "recipient"}.get(number, "object")
        seen = sum(track.present)
        out.print(
            f"  {role}: {track.size} {track.color} {track.shape}, {track.motion}, seen in {seen}/{result.frames} frames"
        )
    out.print(f"label: {label.to_json() if label else 'none recognised'}")


@sampling_options(exclude=("seed",))  # --seed here is the harness's base seed
def eval_command(
    ctx: typer.Context,
    prompts: Path = typer.Option(..., "--prompts", help='JSONL: {"prompt": ..., "label": {...}} per line.'),
    out_dir: Path = typer.Option(
        ..., "--out", help="Folder for metrics.json, rows.jsonl, grid.png, samples/."
    ),
    samples: int = typer.Option(1, "--samples", min=1, help="Samples per prompt."),
    seed: int = typer.Option(0, "--seed", min=0, help="Sample k of prompt i uses seed + i*K + k."),
    ablation: Path = typer.Option(None, "--ablation", help="YAML: configs: {name: {setting: value}}."),
    sampling: Sampling = None,
) -> None:
    """Generate K samples per labelled prompt and score them with the toy-world probe."""
    from toyworld.evaluation import ablation_table, read_ablation, read_prompts, run_eval

    settings = settings_from(ctx, **sampling.flags()).settings
    rows = read_prompts(prompts)
    configs = read_ablation(ablation) if ablation else None
    with ProgressBars() as progress:
        results = run_eval(
            settings,
            rows,
            out_dir,
            samples=samples,
            seed=seed,
            configs=configs,
            progress=lambda done, total: progress("samples", done, total),
        )
    if configs is None:
        results = {"eval": results}
    out.print(ablation_table(results))
    out.print(f"Results in {out_dir}")
