"""``cache stats`` and ``cache prune``: the content-addressed caches in the data directory."""

from __future__ import annotations

import typer

from reelgraph.commands.common import out, print_json, settings_from
from reelgraph.errors import ReelgraphError

cache_app = typer.Typer(no_args_is_help=True, help="The content-addressed caches in the data directory.")


@cache_app.command("stats")
def cache_stats(
    ctx: typer.Context, as_json: bool = typer.Option(False, "--json", help="Print JSON only.")
) -> None:
    """Entries and disk use per cache: LLM answers, retrievals, inversions, LoRAs, clips."""
    from agent.caches import cache_stats as stats_of

    settings = settings_from(ctx).settings
    stats = stats_of(settings.cache_dir)
    if as_json:
        print_json({"cache_dir": str(settings.cache_dir), "kinds": [s.model_dump() for s in stats]})
        return
    from datetime import datetime

    from rich.table import Table

    def when(stamp):
        return datetime.fromtimestamp(stamp).strftime("%Y-%m-%d %H:%M") if stamp else "-"

    table = Table(title=f"caches in {settings.cache_dir}", title_justify="left")
    for column in ("cache", "entries", "MB", "least recently used", "most recently used"):
        table.add_column(column)
    for s in stats:
        table.add_row(s.kind, str(s.entries), f"{s.bytes / 1e6:.2f}", when(s.oldest), when(s.newest))
    out.print(table)


@cache_app.command("prune")
def cache_prune(
    ctx: typer.Context,
    older_than: float = typer.Option(None, "--older-than", min=0, help="Remove entries unused for DAYS."),
    max_gb: float = typer.Option(
        None, "--max-gb", min=0, help="Then keep at most this much (LRU first out)."
    ),
    kinds: list[str] = typer.Option(
        None, "--kind", help="Only these caches (repeatable): llm, retrievals, ..."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON only."),
) -> None:
    """Remove cache entries by age and/or total size, least recently used first."""
    from agent.caches import KINDS, prune

    unknown = sorted(set(kinds or []) - set(KINDS))
    if unknown:
        raise ReelgraphError(f"Unknown cache: {', '.join(unknown)}.", fix=f"choose from {', '.join(KINDS)}.")
    if older_than is None and max_gb is None:
        raise ReelgraphError("Nothing to prune by.", fix="give --older-than DAYS and/or --max-gb GB.")
    settings = settings_from(ctx).settings
    result = prune(
        settings.cache_dir,
        kinds or KINDS,
        older_than_days=older_than,
        max_bytes=None if max_gb is None else int(max_gb * 1e9),
    )
    if as_json:
        print_json(result.model_dump())
        return
    out.print(
        f"Removed {result.removed} entries ({result.freed_bytes / 1e6:.2f} MB); "
        f"{result.kept} remain ({result.kept_bytes / 1e6:.2f} MB)."
    )
