"""``batch FILE``: many generation requests (JSONL: prompt or storyboard, seed, overrides), one work item each."""

from __future__ import annotations

from pathlib import Path

import typer

from reelgraph.commands.common import JsonOpt, err, out, print_json, settings_from
from reelgraph.commands.progress import ProgressBars
from reelgraph.commands.sampling import Sampling, sampling_options
from reelgraph.errors import ReelgraphError
from reelgraph.terminal_text import escape


@sampling_options()  # the flags are every request's defaults; a request's overrides win
def batch_command(
    ctx: typer.Context,
    file: Path = typer.Argument(
        ..., help='JSONL: {"prompt" | "storyboard" | "scenes", "seed", "overrides", "name"}.'
    ),
    out_dir: Path = typer.Option(
        ..., "--out", help="Parent folder: one run folder per request, summary.json."
    ),
    sampling: Sampling = None,
    as_json: bool = JsonOpt,
) -> None:
    """Generate every request of a batch file; finished ones are skipped, failed ones reported with the reason."""
    from agent.batch import read_batch, run_batch

    settings = settings_from(ctx, **sampling.flags()).settings
    jobs = read_batch(file, settings, out_dir)
    with ProgressBars(enabled=not as_json) as bars:
        summary = run_batch(jobs, settings, out_dir, progress=bars.counter("requests"))
    if as_json:
        print_json(summary)
    else:
        out.print(
            f"{summary['done']} done, {summary['skipped']} skipped (already done), {summary['failed']} failed "
            f"of {len(jobs)} requests; summary in {escape(str(out_dir / 'summary.json'))}"
        )
        for entry in summary["items"]:
            if entry["status"] == "failed":
                err.print(
                    f"[bold red]failed:[/] {escape(entry['name'])} after {entry['attempts']} tries: "
                    f"{escape(entry['reason'] or '')}"
                )
    if summary["failed"]:
        raise ReelgraphError(
            f"{summary['failed']} of {len(jobs)} requests failed.",
            fix="fix their cause and rerun the same command: finished requests are skipped.",
        )
