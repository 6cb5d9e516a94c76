"""What every command shares: the consoles, the global options, settings loading, JSON output.

The options declared here are the ones several commands take; each is declared once.
Sampling flags have their own module (:mod:`reelgraph.commands.sampling`).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import typer
from rich.console import Console

from reelgraph import strict_json

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)


@dataclass
class Globals:
    """The options before the command name: ``--home``, ``--config``, ``--debug``, ``--chroma-url``,
    ``--ray`` / ``--ray-address``."""

    home: Path | None
    config: Path | None
    debug: bool
    chroma_url: str | None = None
    ray: bool | None = None
    ray_address: str | None = None


def settings_from(ctx: typer.Context, **flags: Any):
    """The effective settings (CLI flag > environment > config file > default) and their sources."""
    from reelgraph.settings import load_settings

    g: Globals = ctx.obj
    if g.chroma_url and flags.get("chroma_url") is None:  # the global option reaches every command
        flags = {**flags, "chroma_url": g.chroma_url}
    for name in ("ray", "ray_address"):  # so do the scale-out options
        if getattr(g, name) is not None and flags.get(name) is None:
            flags = {**flags, name: getattr(g, name)}
    return load_settings(flags, home=g.home, config=g.config)


def print_json(data: Any) -> None:
    sys.stdout.write(strict_json.dumps(data, indent=2, default=str) + "\n")


def absolute(path: Path | None) -> Path | None:
    return None if path is None else path.expanduser().resolve()


JsonOpt = typer.Option(False, "--json", help="Print JSON only.")
ModelOpt = typer.Option(None, "--model", help="'toy', a diffusers folder or a hub id.")
DeviceOpt = typer.Option(None, "--device", help="auto, cpu, cuda, cuda:N or mps.")
StepsOpt = typer.Option(None, "--steps", min=1, help="DDIM steps (default 25).")
ChromaUrlOpt = typer.Option(
    None, "--chroma-url", help="Chroma server URL (default: an embedded store in the data directory)."
)


def services_for(settings, progress=None):
    """The run's services from :func:`agent.composition.build_services`, the one place that builds them."""
    from agent.composition import build_services

    return build_services(settings, progress)


def generation_model(settings):
    """The settings' video model, loaded (a work runner's per-worker setup: ``index invert``)."""
    return services_for(settings).generation.model


def pool_job(ctx: typer.Context, *, model, device, steps, chroma_url, pool, limit):
    """Settings, services and the pool's records (sorted by id) for a job over pool videos."""
    settings = settings_from(
        ctx, model=model, device=device, num_inference_steps=steps, chroma_url=chroma_url
    ).settings
    services = services_for(settings)
    return settings, services, services.pool.store.sorted_records(pool, limit)
