"""``npnet train``: the noise prediction network of POS §4.2, trained on the pool's cached inversions."""

from __future__ import annotations

from pathlib import Path

import typer

from reelgraph.commands.common import (
    ChromaUrlOpt,
    DeviceOpt,
    JsonOpt,
    ModelOpt,
    StepsOpt,
    out,
    pool_job,
    print_json,
)
from reelgraph.commands.progress import ProgressBars

npnet_app = typer.Typer(no_args_is_help=True, help="The noise prediction network (POS §4.2).")


@npnet_app.command("train")
def npnet_train(
    ctx: typer.Context,
    model: str = ModelOpt,
    device: str = DeviceOpt,
    steps: int = StepsOpt,
    minutes: float = typer.Option(5.0, "--minutes", min=0.01, help="Training time budget."),
    max_steps: int = typer.Option(None, "--max-steps", min=1, help="Stop after this many updates."),
    out_path: Path = typer.Option(
        None, "--out", help="Weights file (default: <home>/npnet/<model hash>.safetensors)."
    ),
    pool: str = typer.Option(None, "--pool", help="Train on this pool only (default: all)."),
    limit: int = typer.Option(None, "--limit", min=1, help="Use the first N videos (by id)."),
    chroma_url: str = ChromaUrlOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Train NPNet on (caption, cached inversion) pairs of the pool (run `index invert` first)."""
    from generation.pos_jobs import train_npnet_on_pool

    settings, services, records = pool_job(
        ctx, model=model, device=device, steps=steps, chroma_url=chroma_url, pool=pool, limit=limit
    )
    budget = max_steps

    with ProgressBars(enabled=not as_json) as bars:
        progress = bars.counter("training NPNet")
        path, report = train_npnet_on_pool(
            settings,
            services.generation.model,
            records,
            out=out_path,
            minutes=minutes,
            max_steps=max_steps,
            pool=pool,
            progress=(lambda step, loss: progress(step, budget or step + 1)),
        )
    if as_json:
        print_json(report)
        return
    out.print(
        f"NPNet trained on {report['train_pairs']} pairs for {report['steps']} steps ({report['seconds']} s): "
        f"held-out MSE {report['val_mse']:.4f} (zero {report['val_mse_zero']:.4f}, "
        f"mean inversion {report['val_mse_mean']:.4f}), cosine {report['val_cosine']:.3f}."
    )
    out.print(f"Saved {path}")
