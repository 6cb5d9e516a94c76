"""``index`` (build and inspect the Chroma pool), ``units`` and ``search``: the memory commands."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from reelgraph.commands.common import (
    ChromaUrlOpt,
    DeviceOpt,
    JsonOpt,
    ModelOpt,
    StepsOpt,
    err,
    out,
    pool_job,
    print_json,
    services_for,
    settings_from,
)
from reelgraph.commands.progress import ProgressBars
from reelgraph.terminal_text import escape

index_app = typer.Typer(no_args_is_help=True, help="Build and inspect the video pool (Chroma).")


def _pool(ctx: typer.Context, chroma_url: str | None):
    """The settings and the services behind the pool commands (store and text models)."""
    settings = settings_from(ctx, chroma_url=chroma_url).settings
    return settings, services_for(settings)


def _print_ingest(stats, as_json: bool) -> None:
    if as_json:
        print_json(stats.model_dump())
        return
    from rich.table import Table

    table = Table(
        title=escape(f"pool {stats.pool!r} from {stats.source}"), title_justify="left", show_header=False
    )
    for name in ("rows", "added", "already_indexed", "duplicates", "invalid_rows", "missing_videos",
                 "corrupt_videos", "total_in_pool"):  # fmt: skip
        table.add_row(name.replace("_", " "), str(getattr(stats, name)))
    table.add_row("captions/s", f"{stats.captions_per_second:.0f}")
    out.print(table)
    if stats.skipped_file:
        out.print("This file was fully ingested before; nothing to add.")
    for problem in stats.problems[:10]:
        err.print(f"[yellow]skipped:[/] {escape(problem)}")


WorkersOpt = typer.Option(
    1, "--workers", min=1, max=2,
    help="2: embed and write a batch in a second thread while the next is parsed (pays on free cores).",
)  # fmt: skip


@index_app.command("add")
def index_add(
    ctx: typer.Context,
    csv: Path = typer.Option(..., "--csv", help="WebVid-style CSV (videoid, name, duration, page_dir, ...)."),
    videos: Path = typer.Option(None, "--videos", help="Folder of videos: <id>.mp4 or <page_dir>/<id>.mp4."),
    pool: str = typer.Option("default", "--pool", help="Pool name."),
    batch: int = typer.Option(256, "--batch", min=1, help="Captions per embedding batch."),
    workers: int = WorkersOpt,
    chroma_url: str = ChromaUrlOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Ingest a captioned video pool; resumable, and a rerun adds nothing."""
    from memory.ingest import ingest_csv

    _, services = _pool(ctx, chroma_url)
    text = services.text
    stats = ingest_csv(services.pool.store, csv, videos, pool=pool, batch=batch, embedder=text.embedder,
                       parser=text.parser, progress=not as_json, workers=workers)  # fmt: skip
    _print_ingest(stats, as_json)


@index_app.command("toy")
def index_toy(
    ctx: typer.Context,
    n: int = typer.Option(..., "--n", min=1, help="Toy videos to render and ingest."),
    seed: int = typer.Option(0, "--seed", min=0, help="Render seed."),
    pool: str = typer.Option("toy", "--pool", help="Pool name."),
    batch: int = typer.Option(256, "--batch", min=1, help="Captions per embedding batch."),
    workers: int = WorkersOpt,
    chroma_url: str = ChromaUrlOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Render a toy pool into the data directory and ingest it."""
    from memory.ingest import ingest_toy

    settings, services = _pool(ctx, chroma_url)
    text = services.text
    stats = ingest_toy(services.pool.store, settings.home, n, seed=seed, pool=pool, batch=batch,
                       embedder=text.embedder, parser=text.parser, progress=not as_json,
                       workers=workers)  # fmt: skip
    _print_ingest(stats, as_json)


@index_app.command("stats")
def index_stats(ctx: typer.Context, chroma_url: str = ChromaUrlOpt, as_json: bool = JsonOpt) -> None:
    """Records per pool, unit phrases, ingests and disk use."""
    from memory.ingest import store_stats

    _, services = _pool(ctx, chroma_url)
    stats = store_stats(services.pool.store)
    if as_json:
        print_json(stats.model_dump())
        return
    out.print(f"{escape(stats.location)}: {stats.captions} captions, {stats.phrases} unit phrases")
    for name, count in stats.pools.items():
        out.print(f"  pool {escape(name)}: {count}")
    if stats.disk_bytes is not None:
        out.print(f"  disk: {stats.disk_bytes / 1e6:.1f} MB")


@index_app.command("remove")
def index_remove(
    ctx: typer.Context,
    pool: str = typer.Option(..., "--pool", help="Pool to delete."),
    chroma_url: str = ChromaUrlOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Delete a pool's records."""
    from memory.ingest import remove_pool

    _, services = _pool(ctx, chroma_url)
    result = remove_pool(services.pool.store, pool)
    if as_json:
        print_json(result.model_dump())
        return
    out.print(escape(f"Removed {result.removed} records of pool {pool!r}; {result.remaining} remain."))


def units(
    ctx: typer.Context, text: str = typer.Argument(..., help="A caption or prompt."), as_json: bool = JsonOpt
) -> None:
    """Atomized semantic units of a text (Search-T2V §4.1): motion, actor, recipient; the core unit."""
    parsed = services_for(settings_from(ctx).settings).text.parser.parse(text)
    data = {"units": [u.model_dump() for u in parsed.units], "core": parsed.core}
    if as_json:
        print_json(data)
        return
    from rich.table import Table

    table = Table(title=escape(text), title_justify="left")
    for column in ("", "motion", "actor", "recipient", "motion phrase", "actor phrase", "recipient phrase"):
        table.add_column(column)
    for i, u in enumerate(parsed.units):
        cells = [u.motion, u.actor, u.recipient, u.motion_phrase, u.actor_phrase, u.recipient_phrase]
        table.add_row("core" if i == parsed.core else "", *(escape(c or "-") for c in cells))
    out.print(table)


def search(
    ctx: typer.Context,
    text: str = typer.Argument(..., help="A prompt."),
    k: int = typer.Option(5, "--k", min=1, help="Motion-prior hits to show."),
    pool: str = typer.Option(None, "--pool", help="Search one pool (default: all)."),
    candidates: int = typer.Option(200, "--candidates", min=1, help="ANN candidates re-ranked (K)."),
    chroma_url: str = ChromaUrlOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Motion-prior search (Search-T2V §4.2) with references (POS eq. 6) and the nearest video (POS eq. 3)."""
    from motion_prior.search import Retriever, SearchConfig

    _, services = _pool(ctx, chroma_url)
    config = SearchConfig(hits=k, pool=pool, candidates=max(candidates, k))
    models = services.text
    result = Retriever(services.pool.store, models.embedder, models.parser, config).retrieve(text)
    if as_json:
        print_json(result.model_dump())
        return
    from rich.table import Table

    if not result.motion_hits:
        out.print("The pool is empty: add videos with `index add` or `index toy`.")
        return
    table = Table(title=escape(f"motion-prior hits for {text!r}"), title_justify="left")
    for column in ("#", "total", "sentence", "motion", "actor", "units", "caption", "video", "label"):
        table.add_column(column)
    for rank, hit in enumerate(result.motion_hits, start=1):
        s = hit.score
        label = hit.metadata.get("label")
        label_text = json.dumps(label, separators=(",", ":")) if label else ""
        table.add_row(str(rank), f"{s.total:.3f}", f"{s.sentence:.3f}", f"{s.motion:.3f}", f"{s.actor:.3f}",
                      f"{s.units:.3f}", escape(hit.caption), escape(hit.video), escape(label_text))  # fmt: skip
    out.print(table)
    if result.nearest is not None:
        out.print(
            f"nearest by sentence (POS eq. 3): {escape(result.nearest.caption)} ({result.nearest.similarity:.3f})"
        )
    for ref in result.references:
        out.print(f"reference (POS eq. 6): {escape(ref.caption)} ({ref.similarity:.3f})")


@index_app.command("invert")
def index_invert(
    ctx: typer.Context,
    model: str = ModelOpt,
    device: str = DeviceOpt,
    steps: int = StepsOpt,
    limit: int = typer.Option(None, "--limit", min=1, help="Invert only the first N videos (by id)."),
    pool: str = typer.Option(None, "--pool", help="Only this pool (default: all)."),
    batch: int = typer.Option(8, "--batch", min=1, help="Videos inverted together."),
    chroma_url: str = ChromaUrlOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Invert pool videos for ONA (POS §4.1) into the inversion cache (DDIM, or flow ODE for Wan); resumable."""
    from generation.pos_jobs import invert_pool

    settings, services, records = pool_job(
        ctx, model=model, device=device, steps=steps, chroma_url=chroma_url, pool=pool, limit=limit
    )
    with ProgressBars(enabled=not as_json) as bars:
        result = invert_pool(
            settings, services.generation.model, records, batch_size=batch, progress=bars.counter("inverting")
        )
    if as_json:
        print_json(result)
        return
    out.print(
        f"Inverted {result['inverted']}, already cached {result['cached']}, unreadable {result['failed']} "
        f"of {result['videos']} videos ({result['num_steps']} inversion steps, {result['seconds']} s)."
    )
