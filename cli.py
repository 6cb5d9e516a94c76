"""reelgraph's command line: `python cli.py ...` or the `reelgraph` console script.

This module only composes commands: it parses options into settings, calls
the toolkit, and prints. Every ReelgraphError becomes a message on stderr and
exit code 1 (`--debug` shows the traceback instead); usage errors exit 2.
Heavy imports (torch, diffusers) happen inside commands, so commands that
don't need them start fast.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape
from typer.core import TyperGroup

from reelgraph.errors import ReelgraphError

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)


class ReelgraphGroup(TyperGroup):
    """Turns the domain error into a message and exit code 1, and Ctrl-C into exit code 130."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except ReelgraphError as error:
            if ctx.params.get("debug"):
                raise
            err.print(f"[bold red]error:[/] {escape(error.message)}")
            raise typer.Exit(1) from None
        except KeyboardInterrupt:
            if ctx.params.get("debug"):
                raise
            err.print("[yellow]Interrupted.[/] Nothing half-written was left behind.")
            raise typer.Exit(130) from None


app = typer.Typer(
    cls=ReelgraphGroup,
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
    help="reelgraph: plan and generate videos from plain language.",
)
config_app = typer.Typer(no_args_is_help=True, help="Inspect the effective configuration.")
app.add_typer(config_app, name="config")
toy_app = typer.Typer(
    no_args_is_help=True, help="The toy world: render captioned videos, train the embedded model."
)
app.add_typer(toy_app, name="toy")


@dataclass
class Globals:
    home: Path | None
    config: Path | None
    debug: bool


@app.callback()
def main(
    ctx: typer.Context,
    home: Path = typer.Option(
        None, "--home", help="Data directory (default: $REELGRAPH_HOME or a per-user folder)."
    ),
    config: Path = typer.Option(None, "--config", help="TOML config file (default: <home>/config.toml)."),
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks instead of short error messages."),
) -> None:
    ctx.obj = Globals(home=home, config=config, debug=debug)


def _settings(ctx: typer.Context, **flags: Any):
    from reelgraph.settings import load_settings

    g: Globals = ctx.obj
    return load_settings(flags, home=g.home, config=g.config)


def _print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


# -- generate / plan ----------------------------------------------------------------------------
PromptArg = typer.Argument(..., help="What the video should show, in plain language.")
SeedOpt = typer.Option(None, "--seed", min=0, help="Base seed (default: drawn at random, recorded).")
StepsOpt = typer.Option(None, "--steps", min=1, help="DDIM steps (default 25).")
GuidanceOpt = typer.Option(
    None, "--guidance", min=0.0, help="Classifier-free guidance (default: the model's)."
)
FramesOpt = typer.Option(None, "--frames", min=1, help="Number of frames (default: one clip).")
ModelOpt = typer.Option(None, "--model", help="'toy', a diffusers folder or a hub id.")
DeviceOpt = typer.Option(None, "--device", help="auto, cpu, cuda, cuda:N or mps.")
ImageOpt = typer.Option(
    None, "--image", help="Start the video from this image: it becomes the first frame, then moves."
)
BudgetOpt = typer.Option(
    None, "--budget-seconds", min=0.001, help="Time budget; over it the rules drop optional tools."
)
TuneOpt = typer.Option(
    None, "--tune/--no-tune", help="Motion-prior tuning always / never (default: for rare motions)."
)


def _tuning_mode(tune: bool | None) -> str | None:
    return None if tune is None else ("always" if tune else "never")


@app.command()
def generate(
    ctx: typer.Context,
    prompt: str = typer.Argument(None, help="What the video should show (not with --resume)."),
    out_dir: Path = typer.Option(None, "--out", help="Run folder (default: outputs/<timestamp>-<slug>/)."),
    seed: int = SeedOpt,
    steps: int = StepsOpt,
    guidance: float = GuidanceOpt,
    frames: int = FramesOpt,
    model: str = ModelOpt,
    device: str = DeviceOpt,
    tune: bool = TuneOpt,
    budget: float = BudgetOpt,
    overwrite: bool = typer.Option(
        False, "--overwrite", help="Replace the results in an existing --out folder."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print only {video, gif, sheet, manifest} as JSON."),
    image: Path = ImageOpt,
    resume: Path = typer.Option(
        None, "--resume", help="Continue a killed run in this folder from its last finished step."
    ),
) -> None:
    """Generate a video: video.mp4, video.gif, sheet.png and manifest.json in a run folder."""
    from agent import runner
    from reelgraph.runs import default_run_dir

    if resume is not None:
        if prompt is not None:
            raise typer.BadParameter("give a PROMPT or --resume RUN_DIR, not both", param_hint="--resume")
        with _step_progress() as progress:
            state = runner.resume(_settings(ctx).settings, resume, progress=progress)
        _report_run(state, as_json)
        return
    if prompt is None:
        raise typer.BadParameter("what should the video show?", param_hint="PROMPT")

    settings = _settings(
        ctx,
        seed=seed,
        num_inference_steps=steps,
        guidance_scale=guidance,
        num_frames=frames,
        model=model,
        device=device,
        motion_tuning=_tuning_mode(tune),
        budget_seconds=budget,
    ).settings
    run_dir = out_dir or default_run_dir(settings.output_dir, prompt)
    with _step_progress() as progress:
        state = runner.generate(
            settings, prompt, run_dir, overwrite=overwrite, progress=progress, image=_absolute(image)
        )
    _report_run(state, as_json)


def _absolute(path: Path | None) -> Path | None:
    return None if path is None else path.expanduser().resolve()


def _report_run(state, as_json: bool) -> None:
    for warning in state.warnings:
        err.print(f"[yellow]warning:[/] {escape(warning)}")
    paths = {
        "video": state.outputs.video,
        "gif": state.outputs.gif,
        "sheet": state.outputs.sheet,
        "manifest": state.manifest_path,
    }
    if as_json:
        _print_json(paths)
        return
    out.print(f"[bold green]Done[/] in {sum(state.timings.values()):.1f}s (seed {state.request.seed}).")
    for name, path in paths.items():
        out.print(f"  {name:9s}{path}")


@app.command()
def storyboard(
    ctx: typer.Context,
    file: Path = typer.Argument(
        ..., help="Scenes: YAML or JSON (scenes: [{prompt, frames}]) or text, one per line."
    ),
    out_dir: Path = typer.Option(None, "--out", help="Run folder (default: outputs/<timestamp>-<slug>/)."),
    seed: int = SeedOpt,
    steps: int = StepsOpt,
    guidance: float = GuidanceOpt,
    model: str = ModelOpt,
    device: str = DeviceOpt,
    overwrite: bool = typer.Option(
        False, "--overwrite", help="Replace the results in an existing --out folder."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print only {video, gif, sheet, manifest} as JSON."),
) -> None:
    """Generate one video from a storyboard; each scene continues from the previous scene's last frames."""
    from agent import runner
    from agent.storyboard import parse_storyboard
    from reelgraph.runs import default_run_dir

    settings = _settings(
        ctx, seed=seed, num_inference_steps=steps, guidance_scale=guidance, model=model, device=device
    ).settings
    scenes = parse_storyboard(file, max_frames=settings.max_video_frames)
    run_dir = out_dir or default_run_dir(settings.output_dir, scenes[0].prompt)
    with _step_progress() as progress:
        state = runner.generate_scenes(settings, scenes, run_dir, overwrite=overwrite, progress=progress)
    _report_run(state, as_json)


class _step_progress:
    """A rich progress bar on stderr, fed by the generation service's per-step hook."""

    def __enter__(self):
        self._progress = None
        self._tasks: dict[str, Any] = {}
        return self.update

    def update(self, label: str, completed: int, total: int) -> None:
        if self._progress is None:  # started on the first step, so errors before sampling print cleanly
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self._progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeRemainingColumn(),
                console=err,
                transient=True,
            )
            self._progress.start()
        if label not in self._tasks:
            self._tasks[label] = self._progress.add_task(label, total=total)
        self._progress.update(self._tasks[label], completed=completed, total=total)

    def __exit__(self, *exc) -> None:
        if self._progress is not None:
            self._progress.stop()


@app.command()
def plan(
    ctx: typer.Context,
    prompt: str = PromptArg,
    seed: int = SeedOpt,
    steps: int = StepsOpt,
    guidance: float = GuidanceOpt,
    frames: int = FramesOpt,
    model: str = ModelOpt,
    device: str = DeviceOpt,
    tune: bool = TuneOpt,
    as_json: bool = typer.Option(
        False, "--json", help="Print the plan as JSON (shape documented in the README)."
    ),
    image: Path = ImageOpt,
    budget: float = BudgetOpt,
    story: bool = typer.Option(
        False, "--story", help="Read PROMPT as a story: sentences, lines and 'then' make scenes."
    ),
) -> None:
    """Show the plan the graph would run: tools, references, costs. Loads no diffusion model."""
    from agent import runner

    settings = _settings(
        ctx,
        seed=seed,
        num_inference_steps=steps,
        guidance_scale=guidance,
        num_frames=frames,
        model=model,
        device=device,
        motion_tuning=_tuning_mode(tune),
        budget_seconds=budget,
    ).settings
    if story:
        state = runner.plan_story(settings, prompt)
    else:
        state = runner.plan(settings, prompt, image=_absolute(image))
    view = state.plan_view()
    if as_json:
        _print_json(view)
        return
    _print_plan(view)


def _print_plan(view: dict) -> None:
    from rich.table import Table

    understanding = view.get("understanding")
    if understanding:
        out.print(f"Understood by the {escape(understanding['reason'])}.")
    for number, scene in enumerate(view["scenes"], start=1):
        table = Table(title=f"Scene {number}: {scene['prompt']}", title_justify="left", show_lines=False)
        table.add_column("tool")
        table.add_column("status")
        table.add_column("why")
        ruled = any(isinstance(step, dict) and step.get("rule") for step in scene.values())
        if ruled:
            table.add_column("rule check")
        for tool, step in scene.items():
            if tool == "prompt":
                continue
            style = {"done": "green", "planned": "cyan", "skipped": "dim"}.get(step["status"], "")
            row = [tool, f"[{style}]{step['status']}[/]", escape(step["reason"])]
            table.add_row(*row, *([escape(step.get("rule") or "")] if ruled else []))
        out.print(table)
    policy = view.get("policy")
    if policy:
        out.print(f"Available: {escape(policy['available'])}. LLM proposals: {escape(policy['proposals'])}.")
        for change in policy["changes"]:
            out.print(f"  rule: {escape(change)}")
    est = view["estimates"]
    out.print(
        f"Estimated: {est['seconds']} s, peak memory {est['peak_memory_gb']} GB on {est.get('device', '?')}."
    )


# -- chat --------------------------------------------------------------------------------------------
@app.command()
def chat(
    ctx: typer.Context,
    messages: list[str] = typer.Option(
        None, "--message", "-m", help="A turn of the conversation (repeatable); none: an interactive chat."
    ),
    yes: bool = typer.Option(False, "--yes", "-y", help="Generate every plan without asking."),
    session: str = typer.Option(
        "default", "--session", help="Conversation name; continues where it left off."
    ),
    new: bool = typer.Option(False, "--new", help="Forget the session's earlier turns first."),
    seed: int = SeedOpt,
    steps: int = StepsOpt,
    guidance: float = GuidanceOpt,
    frames: int = FramesOpt,
    model: str = ModelOpt,
    device: str = DeviceOpt,
    budget: float = BudgetOpt,
    out_dir: Path = typer.Option(None, "--out", help="Parent folder of the turns' run folders."),
) -> None:
    """Talk to reelgraph: describe a video, see the plan, generate; follow-ups edit the last request."""
    from agent.chat import chat_services, open_session

    settings = _settings(
        ctx,
        seed=seed,
        num_inference_steps=steps,
        guidance_scale=guidance,
        num_frames=frames,
        model=model,
        device=device,
        budget_seconds=budget,
        output_dir=out_dir,
    ).settings
    with (
        _step_progress() as progress,
        open_session(settings.home, session, chat_services(settings, progress)) as chat,
    ):
        if new:
            chat.reset()
        earlier = chat.state()
        if earlier is not None and earlier.turns:
            out.print(
                f"Session {session!r}: {len(earlier.turns)} earlier turn(s); the last: {escape(earlier.turns[-1].message)!r}"
            )
        scripted = bool(messages)
        for message in messages or _typed_messages():
            out.print(f"[bold]you>[/] {escape(message)}")
            try:
                reply = chat.send(message, ask=_ask_to_generate, auto_yes=yes)
            except ReelgraphError as error:
                if scripted:
                    raise
                err.print(f"[bold red]error:[/] {escape(error.message)}")
                continue
            _print_turn(reply)


def _typed_messages():
    while True:
        try:
            line = input("you> ")
        except EOFError:
            return
        if line.strip().lower() in ("exit", "quit", "bye"):
            return
        if line.strip():
            yield line


def _ask_to_generate(state) -> bool:
    for note in state.turn.notes:
        out.print(f"  {escape(note)}")
    _print_plan(state.plan)
    try:
        return typer.confirm("Generate this video?", default=False, err=True)
    except typer.Abort:  # no answer (end of input): don't generate
        return False


def _print_turn(reply) -> None:
    state = reply.state
    turn = state.turn
    if not reply.asked:
        for note in turn.notes:
            out.print(f"  {escape(note)}")
        if state.plan is not None:
            _print_plan(state.plan)
    for warning in state.warnings:
        err.print(f"[yellow]warning:[/] {escape(warning)}")
    if state.outputs:
        out.print(f"[bold green]Done[/] (turn {turn.number}, seed {turn.seed}).")
        for name, path in state.outputs.items():
            out.print(f"  {name:9s}{path}")
    elif turn.kinds != ["show_plan"]:
        out.print("Not generated. Say what to change, or run again with --yes.")


# -- caches ------------------------------------------------------------------------------------------
cache_app = typer.Typer(no_args_is_help=True, help="The content-addressed caches in the data directory.")
app.add_typer(cache_app, name="cache")


@cache_app.command("stats")
def cache_stats(
    ctx: typer.Context, as_json: bool = typer.Option(False, "--json", help="Print JSON only.")
) -> None:
    """Entries and disk use per cache: LLM answers, retrievals, inversions, LoRAs, clips."""
    from agent.caches import cache_stats as stats_of

    settings = _settings(ctx).settings
    stats = stats_of(settings.cache_dir)
    if as_json:
        _print_json({"cache_dir": str(settings.cache_dir), "kinds": [s.model_dump() for s in stats]})
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
    settings = _settings(ctx).settings
    result = prune(
        settings.cache_dir,
        kinds or KINDS,
        older_than_days=older_than,
        max_bytes=None if max_gb is None else int(max_gb * 1e9),
    )
    if as_json:
        _print_json(result.model_dump())
        return
    out.print(
        f"Removed {result.removed} entries ({result.freed_bytes / 1e6:.2f} MB); "
        f"{result.kept} remain ({result.kept_bytes / 1e6:.2f} MB)."
    )


# -- motion priors -----------------------------------------------------------------------------------
@app.command()
def tune(
    ctx: typer.Context,
    prompt: str = typer.Option(..., "--prompt", help="The prompt whose motion the LoRA should carry."),
    video: str = typer.Option(
        None,
        "--video",
        help="Pool id (pool:videoid or videoid) or a video file (default: the best pool match).",
    ),
    steps: int = typer.Option(None, "--steps", min=1, help="Tuning steps (default 150)."),
    model: str = ModelOpt,
    device: str = DeviceOpt,
    detector: str = typer.Option(None, "--detector", help="Keyframe detector: toy or grounding-dino."),
    as_json: bool = typer.Option(False, "--json", help="Print the job and its outcome as JSON."),
) -> None:
    """Distil a video's motion into a temporal LoRA for the model (Search-T2V §4.3); cached by content."""
    from generation.service import GenerationService
    from motion_prior.tuner import MotionTuner

    settings = _settings(ctx, model=model, device=device, tune_steps=steps, detector=detector).settings
    with _step_progress() as progress:
        tuner = MotionTuner(settings, GenerationService(settings, progress=progress), progress=progress)
        job = tuner.plan(prompt, video=video)
        outcome = tuner.run(job)
    if as_json:
        _print_json({"job": job.model_dump(mode="json"), "outcome": outcome.model_dump(mode="json")})
        return
    frames = job.keyframes
    out.print(f"video     {escape(job.video.id)} ({escape(job.video.caption or job.video.path)})")
    out.print(
        f"keyframes {frames.span[0]}-{frames.span[1]} of {frames.video_frames}, crop "
        f"{tuple(round(v, 1) for v in frames.crop)}, {frames.fallback or 'objects: ' + ', '.join(frames.queries)}"
    )
    out.print(f"training  {escape(job.training_prompt)!r}, {job.config.steps} steps, rank {job.config.rank}")
    if outcome.cache_hit:
        out.print(f"[bold green]cache hit[/] {outcome.lora_path}")
    else:
        loss = outcome.loss
        out.print(
            f"[bold green]tuned[/] in {outcome.seconds:.1f}s (loss {loss.get('first', 0):.3f} -> "
            f"{loss.get('last', 0):.3f}); cache miss, saved {outcome.lora_path}"
        )


# -- memory: index / units / search ----------------------------------------------------------------
index_app = typer.Typer(no_args_is_help=True, help="Build and inspect the video pool (Chroma).")
app.add_typer(index_app, name="index")
ChromaUrlOpt = typer.Option(
    None, "--chroma-url", help="Chroma server URL (default: an embedded store in the data directory)."
)
JsonOpt = typer.Option(False, "--json", help="Print JSON only.")


def _memory(ctx: typer.Context, chroma_url: str | None):
    from memory.store import MemoryStore

    settings = _settings(ctx, chroma_url=chroma_url).settings
    return settings, MemoryStore(settings.home, url=settings.chroma_url)


def _models(settings):
    from reelgraph.text.embeddings import get_embedder
    from reelgraph.text.units import get_parser

    return get_embedder(settings.text_model), get_parser(settings.spacy_model)


def _print_ingest(stats, as_json: bool) -> None:
    if as_json:
        _print_json(stats.model_dump())
        return
    from rich.table import Table

    table = Table(title=f"pool {stats.pool!r} from {stats.source}", title_justify="left", show_header=False)
    for name in ("rows", "added", "already_indexed", "duplicates", "invalid_rows", "missing_videos",
                 "corrupt_videos", "total_in_pool"):  # fmt: skip
        table.add_row(name.replace("_", " "), str(getattr(stats, name)))
    table.add_row("captions/s", f"{stats.captions_per_second:.0f}")
    out.print(table)
    if stats.skipped_file:
        out.print("This file was fully ingested before; nothing to add.")
    for problem in stats.problems[:10]:
        err.print(f"[yellow]skipped:[/] {escape(problem)}")


@index_app.command("add")
def index_add(
    ctx: typer.Context,
    csv: Path = typer.Option(..., "--csv", help="WebVid-style CSV (videoid, name, duration, page_dir, ...)."),
    videos: Path = typer.Option(None, "--videos", help="Folder of videos: <id>.mp4 or <page_dir>/<id>.mp4."),
    pool: str = typer.Option("default", "--pool", help="Pool name."),
    batch: int = typer.Option(256, "--batch", min=1, help="Captions per embedding batch."),
    chroma_url: str = ChromaUrlOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Ingest a captioned video pool; resumable, and a rerun adds nothing."""
    from memory.ingest import ingest_csv

    settings, store = _memory(ctx, chroma_url)
    embedder, parser = _models(settings)
    stats = ingest_csv(store, csv, videos, pool=pool, batch=batch, embedder=embedder, parser=parser,
                       progress=not as_json)  # fmt: skip
    _print_ingest(stats, as_json)


@index_app.command("toy")
def index_toy(
    ctx: typer.Context,
    n: int = typer.Option(..., "--n", min=1, help="Toy videos to render and ingest."),
    seed: int = typer.Option(0, "--seed", min=0, help="Render seed."),
    pool: str = typer.Option("toy", "--pool", help="Pool name."),
    batch: int = typer.Option(256, "--batch", min=1, help="Captions per embedding batch."),
    chroma_url: str = ChromaUrlOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Render a toy pool into the data directory and ingest it."""
    from memory.ingest import ingest_toy

    settings, store = _memory(ctx, chroma_url)
    embedder, parser = _models(settings)
    stats = ingest_toy(store, settings.home, n, seed=seed, pool=pool, batch=batch, embedder=embedder,
                       parser=parser, progress=not as_json)  # fmt: skip
    _print_ingest(stats, as_json)


@index_app.command("stats")
def index_stats(ctx: typer.Context, chroma_url: str = ChromaUrlOpt, as_json: bool = JsonOpt) -> None:
    """Records per pool, unit phrases, ingests and disk use."""
    from memory.ingest import store_stats

    _, store = _memory(ctx, chroma_url)
    stats = store_stats(store)
    if as_json:
        _print_json(stats.model_dump())
        return
    out.print(f"{stats.location}: {stats.captions} captions, {stats.phrases} unit phrases")
    for name, count in stats.pools.items():
        out.print(f"  pool {name}: {count}")
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

    _, store = _memory(ctx, chroma_url)
    result = remove_pool(store, pool)
    if as_json:
        _print_json(result.model_dump())
        return
    out.print(f"Removed {result.removed} records of pool {pool!r}; {result.remaining} remain.")


@app.command()
def units(
    ctx: typer.Context, text: str = typer.Argument(..., help="A caption or prompt."), as_json: bool = JsonOpt
) -> None:
    """Atomized semantic units of a text (Search-T2V §4.1): motion, actor, recipient; the core unit."""
    from reelgraph.text.units import get_parser

    settings = _settings(ctx).settings
    parsed = get_parser(settings.spacy_model).parse(text)
    data = {"units": [u.model_dump() for u in parsed.units], "core": parsed.core}
    if as_json:
        _print_json(data)
        return
    from rich.table import Table

    table = Table(title=text, title_justify="left")
    for column in ("", "motion", "actor", "recipient", "motion phrase", "actor phrase", "recipient phrase"):
        table.add_column(column)
    for i, u in enumerate(parsed.units):
        cells = [u.motion, u.actor, u.recipient, u.motion_phrase, u.actor_phrase, u.recipient_phrase]
        table.add_row("core" if i == parsed.core else "", *(escape(c or "-") for c in cells))
    out.print(table)


@app.command()
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

    settings, store = _memory(ctx, chroma_url)
    embedder, parser = _models(settings)
    config = SearchConfig(hits=k, pool=pool, candidates=max(candidates, k))
    result = Retriever(store, embedder, parser, config).retrieve(text)
    if as_json:
        _print_json(result.model_dump())
        return
    from rich.table import Table

    if not result.motion_hits:
        out.print("The pool is empty: add videos with `index add` or `index toy`.")
        return
    table = Table(title=f"motion-prior hits for {text!r}", title_justify="left")
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


# -- doctor / config ------------------------------------------------------------------------------
@app.command()
def doctor(
    ctx: typer.Context, as_json: bool = typer.Option(False, "--json", help="Print the checks as JSON.")
) -> None:
    """Check what is available: device, versions, models, data directory, services."""
    from commands.doctor import run_checks

    checks = run_checks(_settings(ctx).settings)
    if as_json:
        _print_json([check.__dict__ for check in checks])
        return
    from rich.table import Table

    styles = {"ok": "green", "warn": "yellow", "fail": "bold red", "info": "blue"}
    table = Table(show_header=False, box=None)
    for check in checks:
        table.add_row(f"[{styles[check.status]}]{check.status}[/]", check.name, escape(check.detail))
    out.print(table)


@config_app.command("show")
def config_show(ctx: typer.Context, as_json: bool = typer.Option(False, "--json")) -> None:
    """Print every setting, its effective value and where it came from (cli, env, config, default)."""
    loaded = _settings(ctx)
    values = loaded.settings.model_dump(mode="json")
    if as_json:
        _print_json(
            {name: {"value": value, "source": loaded.sources[name]} for name, value in values.items()}
        )
        return
    from rich.table import Table

    table = Table(title=f"config file: {loaded.config_file or '(none)'}", title_justify="left")
    for column in ("setting", "value", "source"):
        table.add_column(column)
    for name, value in values.items():
        table.add_row(name, escape(json.dumps(value)), loaded.sources[name])
    out.print(table)


# -- evaluation ------------------------------------------------------------------------------------
@app.command("eval")
def eval_command(
    ctx: typer.Context,
    prompts: Path = typer.Option(..., "--prompts", help='JSONL: {"prompt": ..., "label": {...}} per line.'),
    out_dir: Path = typer.Option(
        ..., "--out", help="Folder for metrics.json, rows.jsonl, grid.png, samples/."
    ),
    samples: int = typer.Option(1, "--samples", min=1, help="Samples per prompt."),
    seed: int = typer.Option(0, "--seed", min=0, help="Sample k of prompt i uses seed + i*K + k."),
    ablation: Path = typer.Option(None, "--ablation", help="YAML: configs: {name: {setting: value}}."),
    steps: int = StepsOpt,
    guidance: float = GuidanceOpt,
    frames: int = FramesOpt,
    model: str = ModelOpt,
    device: str = DeviceOpt,
) -> None:
    """Generate K samples per labelled prompt and score them with the toy-world probe."""
    from toyworld.evaluation import ablation_table, read_ablation, read_prompts, run_eval

    settings = _settings(
        ctx, num_inference_steps=steps, guidance_scale=guidance, num_frames=frames, model=model, device=device
    ).settings
    rows = read_prompts(prompts)
    configs = read_ablation(ablation) if ablation else None
    with _step_progress() as progress:
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


# -- toy world -------------------------------------------------------------------------------------
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
) -> None:
    """Train the toy text-to-video model (VAE, then UNet) on freshly rendered toy clips."""
    from toyworld.training import train_toy_model

    folder = train_toy_model(out_dir, minutes=minutes, device=device, resume=not fresh, seed=seed)
    out.print(f"Model: {folder}  (loss curve: {folder / 'loss_curve.png'}, card: {folder / 'MODEL_CARD.md'})")


@app.command("probe")
def probe_command(
    video: Path = typer.Argument(..., help="A video file (any size; read back at 32x32)."),
    as_json: bool = typer.Option(False, "--json", help="Print tracks and label as JSON."),
) -> None:
    """Read a toy-world video back into labels: background, objects, motions."""
    from toyworld.probe import probe

    result = probe(video)
    if as_json:
        _print_json(result.to_dict())
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


# -- POS: pool inversions (ONA) and NPNet -------------------------------------------------------------
npnet_app = typer.Typer(no_args_is_help=True, help="The noise prediction network (POS §4.2).")
app.add_typer(npnet_app, name="npnet")


class _CountProgress:
    """A rich progress bar on stderr for ``progress(done, total)`` callbacks."""

    def __init__(self, label: str, enabled: bool = True):
        self.label, self.enabled, self._bar, self._task = label, enabled, None, None

    def __enter__(self):
        return self.update

    def update(self, done: int, total: int) -> None:
        if not self.enabled:
            return
        if self._bar is None:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self._bar = Progress(
                TextColumn(self.label), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(), console=err
            )
            self._bar.start()
            self._task = self._bar.add_task(self.label, total=total)
        self._bar.update(self._task, completed=done, total=total)

    def __exit__(self, *exc) -> None:
        if self._bar is not None:
            self._bar.stop()


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
    """DDIM-invert pool videos for ONA (POS §4.1) into the inversion cache; resumable."""
    from generation.pos_jobs import invert_pool
    from generation.service import GenerationService
    from memory.store import MemoryStore

    settings = _settings(
        ctx, model=model, device=device, num_inference_steps=steps, chroma_url=chroma_url
    ).settings
    service = GenerationService(settings)
    with _CountProgress("inverting", enabled=not as_json) as progress:
        records = MemoryStore(settings.home, url=settings.chroma_url).sorted_records(pool, limit)
        result = invert_pool(settings, service.model, records, batch_size=batch, progress=progress)
    if as_json:
        _print_json(result)
        return
    out.print(
        f"Inverted {result['inverted']}, already cached {result['cached']}, unreadable {result['failed']} "
        f"of {result['videos']} videos ({result['num_steps']} DDIM steps, {result['seconds']} s)."
    )


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
    from generation.service import GenerationService
    from memory.store import MemoryStore

    settings = _settings(
        ctx, model=model, device=device, num_inference_steps=steps, chroma_url=chroma_url
    ).settings
    service = GenerationService(settings)
    budget = max_steps

    with _CountProgress("training NPNet", enabled=not as_json) as progress:
        records = MemoryStore(settings.home, url=settings.chroma_url).sorted_records(pool, limit)
        path, report = train_npnet_on_pool(
            settings,
            service.model,
            records,
            out=out_path,
            minutes=minutes,
            max_steps=max_steps,
            pool=pool,
            progress=(lambda step, loss: progress(step, budget or step + 1)),
        )
    if as_json:
        _print_json(report)
        return
    out.print(
        f"NPNet trained on {report['train_pairs']} pairs for {report['steps']} steps ({report['seconds']} s): "
        f"held-out MSE {report['val_mse']:.4f} (zero {report['val_mse_zero']:.4f}, "
        f"mean inversion {report['val_mse_mean']:.4f}), cosine {report['val_cosine']:.3f}."
    )
    out.print(f"Saved {path}")


if __name__ == "__main__":
    app()
