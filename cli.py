"""reelgraph's command line: `python cli.py ...` or the `reelgraph` console script.

This module only composes commands: it parses options into settings, calls
the toolkit, and prints. Every ReelgraphError becomes a message on stderr and
exit code 1 (`--debug` shows the traceback instead); usage errors exit 2.
Heavy imports (torch, diffusers) happen inside commands, so commands that
don't need them start fast.
"""

from __future__ import annotations

import json
from pathlib import Path

import typer
from typer.core import TyperGroup

from reelgraph.commands import batch, caches, memory, npnet, toy, ui
from reelgraph.commands.common import (
    DeviceOpt,
    Globals,
    ModelOpt,
    absolute,
    err,
    out,
    print_json,
    services_for,
    settings_from,
)
from reelgraph.commands.progress import ProgressBars
from reelgraph.commands.sampling import Sampling, sampling_options
from reelgraph.errors import ReelgraphError
from reelgraph.terminal_text import escape


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
app.add_typer(toy.toy_app, name="toy")
app.add_typer(memory.index_app, name="index")
app.add_typer(caches.cache_app, name="cache")
app.add_typer(npnet.npnet_app, name="npnet")
app.command()(memory.units)
app.command()(memory.search)
app.command("probe")(toy.probe_command)
app.command("eval")(toy.eval_command)
app.command("batch")(batch.batch_command)
app.command("ui")(sampling_options()(ui.ui_command))


@app.callback()
def main(
    ctx: typer.Context,
    home: Path = typer.Option(
        None, "--home", help="Data directory (default: $REELGRAPH_HOME or a per-user folder)."
    ),
    config: Path = typer.Option(None, "--config", help="TOML config file (default: <home>/config.toml)."),
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks instead of short error messages."),
    chroma_url: str = typer.Option(
        None,
        "--chroma-url",
        help="Chroma server URL for every command that opens the pool (default: embedded in the data directory).",
    ),
    ray: bool = typer.Option(
        None,
        "--ray/--no-ray",
        help="Run indexing, eval and batch work items on Ray: a local cluster (default: in this process).",
    ),
    ray_address: str = typer.Option(
        None, "--ray-address", help="Join the Ray cluster at ADDR (host:port of `ray start --head`)."
    ),
) -> None:
    ctx.obj = Globals(
        home=home, config=config, debug=debug, chroma_url=chroma_url, ray=ray, ray_address=ray_address
    )


# -- generate / plan ----------------------------------------------------------------------------
PromptArg = typer.Argument(..., help="What the video should show, in plain language.")
ImageOpt = typer.Option(
    None, "--image", help="Start the video from this image: it becomes the first frame, then moves."
)
OverwriteOpt = typer.Option(False, "--overwrite", help="Replace the results in an existing --out folder.")
RunOutOpt = typer.Option(None, "--out", help="Run folder (default: outputs/<timestamp>-<slug>/).")
RunJsonOpt = typer.Option(False, "--json", help="Print only {video, gif, sheet, manifest} as JSON.")


@app.command()
@sampling_options()
def generate(
    ctx: typer.Context,
    prompt: str = typer.Argument(None, help="What the video should show (not with --resume)."),
    out_dir: Path = RunOutOpt,
    sampling: Sampling = None,
    overwrite: bool = OverwriteOpt,
    as_json: bool = RunJsonOpt,
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
        with ProgressBars() as progress:
            state = runner.resume(settings_from(ctx).settings, resume, progress=progress)
        _report_run(state, as_json)
        return
    if prompt is None:
        raise typer.BadParameter("what should the video show?", param_hint="PROMPT")

    settings = settings_from(ctx, **sampling.flags()).settings
    run_dir = out_dir or default_run_dir(settings.output_dir, prompt)
    with ProgressBars() as progress:
        state = runner.generate(
            settings, prompt, run_dir, overwrite=overwrite, progress=progress, image=absolute(image)
        )
    _report_run(state, as_json)


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
        print_json(paths)
        return
    out.print(f"[bold green]Done[/] in {sum(state.timings.values()):.1f}s (seed {state.request.seed}).")
    for name, path in paths.items():
        out.print(f"  {name:9s}{path}")


@app.command()
@sampling_options(exclude=("frames",))  # each scene names its own length
def storyboard(
    ctx: typer.Context,
    file: Path = typer.Argument(
        ..., help="Scenes: YAML or JSON (scenes: [{prompt, frames}]) or text, one per line."
    ),
    out_dir: Path = RunOutOpt,
    sampling: Sampling = None,
    overwrite: bool = OverwriteOpt,
    as_json: bool = RunJsonOpt,
) -> None:
    """Generate one video from a storyboard; each scene continues from the previous scene's last frames."""
    from agent import runner
    from agent.storyboard import read_storyboard
    from reelgraph.runs import default_run_dir

    settings = settings_from(ctx, **sampling.flags()).settings
    scenes, extension = read_storyboard(file, max_frames=settings.max_video_frames)
    if extension is not None and sampling.extension is None:  # --extension > the file's > env > config
        settings = settings_from(ctx, **{**sampling.flags(), "extension_mode": extension}).settings
    run_dir = out_dir or default_run_dir(settings.output_dir, scenes[0].prompt)
    with ProgressBars() as progress:
        state = runner.generate_scenes(settings, scenes, run_dir, overwrite=overwrite, progress=progress)
    _report_run(state, as_json)


@app.command()
@sampling_options()
def plan(
    ctx: typer.Context,
    prompt: str = PromptArg,
    sampling: Sampling = None,
    as_json: bool = typer.Option(
        False, "--json", help="Print the plan as JSON (shape documented in the README)."
    ),
    image: Path = ImageOpt,
    story: bool = typer.Option(
        False, "--story", help="Read PROMPT as a story: sentences, lines and 'then' make scenes."
    ),
) -> None:
    """Show the plan the graph would run: tools, references, costs. Loads no diffusion model."""
    from agent import runner

    settings = settings_from(ctx, **sampling.flags()).settings
    if story:
        state = runner.plan_story(settings, prompt)
    else:
        state = runner.plan(settings, prompt, image=absolute(image))
    view = state.plan_view()
    if as_json:
        print_json(view)
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
@sampling_options()
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
    sampling: Sampling = None,
    out_dir: Path = typer.Option(None, "--out", help="Parent folder of the turns' run folders."),
) -> None:
    """Talk to reelgraph: describe a video, see the plan, generate; follow-ups edit the last request."""
    from agent.chat import chat_services, open_session

    settings = settings_from(ctx, **sampling.flags(), output_dir=out_dir).settings
    with (
        ProgressBars() as progress,
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
    settings = settings_from(ctx, model=model, device=device, tune_steps=steps, detector=detector).settings
    with ProgressBars() as progress:
        tuner = services_for(settings, progress).tuner
        job = tuner.plan(prompt, video=video)
        outcome = tuner.run(job)
    if as_json:
        print_json({"job": job.model_dump(mode="json"), "outcome": outcome.model_dump(mode="json")})
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


# -- doctor / config ------------------------------------------------------------------------------
@app.command()
def doctor(
    ctx: typer.Context, as_json: bool = typer.Option(False, "--json", help="Print the checks as JSON.")
) -> None:
    """Check what is available: device, versions, models, data directory, services."""
    from reelgraph.commands.doctor import run_checks

    checks = run_checks(settings_from(ctx).settings)
    if as_json:
        print_json([check.__dict__ for check in checks])
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
    loaded = settings_from(ctx)
    values = loaded.settings.model_dump(mode="json")
    if as_json:
        print_json({name: {"value": value, "source": loaded.sources[name]} for name, value in values.items()})
        return
    from rich.table import Table

    table = Table(title=f"config file: {loaded.config_file or '(none)'}", title_justify="left")
    for column in ("setting", "value", "source"):
        table.add_column(column)
    for name, value in values.items():
        table.add_row(name, escape(json.dumps(value)), loaded.sources[name])
    out.print(table)


if __name__ == "__main__":
    app()
