"""Batch generation: many (prompt or storyboard, seed, settings overrides) requests, one work item each.

``eval`` (and its ablations) and ``batch FILE`` turn their requests into :class:`GenerationJob` s
and hand them to a :class:`~reelgraph.work_runner.WorkRunner`; :func:`generate_job` runs one job
on whichever worker gets it, through the same :func:`agent.runner.generate` /
:func:`~agent.runner.generate_scenes` as ``generate`` and ``storyboard``, into the job's own run
folder. Every job carries its settings with an explicit seed, so where it runs changes nothing.
A job whose folder already holds a finished video is skipped (a rerun resumes a batch).

The batch file is JSONL, one request per line::

    {"prompt": "a red ball rolls to the right", "seed": 3}
    {"storyboard": "story.yaml", "seed": 4, "overrides": {"num_inference_steps": 10}, "name": "story"}
    {"scenes": [{"prompt": "a ball rolls", "frames": 8}, {"prompt": "it bounces", "frames": 8}]}

``seed`` defaults to the base seed (``--seed``, else 0) plus the line's index; ``name`` (the run
folder under ``--out``) defaults to the line's index, ``0000``, ``0001``, ...
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from agent.state import SceneRequest
from reelgraph.errors import ReelgraphError, validation_problems
from reelgraph.settings import Settings

FINISHED_FILES = ("manifest.json", "video.mp4")


@dataclass(frozen=True)
class GenerationJob:
    """One video: its settings (seed included), a prompt or scenes, and its run folder."""

    settings: Settings
    run_dir: Path
    prompt: str | None = None
    scenes: tuple[SceneRequest, ...] | None = None
    name: str = ""


def finished(run_dir: Path) -> bool:
    """A run folder holds a finished video (the manifest is written last, atomically)."""
    return all((Path(run_dir) / name).is_file() for name in FINISHED_FILES)


def generate_job(services_memo: dict[str, Any], job: GenerationJob) -> dict[str, Any]:
    """Generate ``job`` into its run folder unless it is finished there already.

    ``services_memo`` (one per worker) keeps the services of each configuration, so a worker
    loads a model once for all its jobs of that configuration. Returns ``{"status", "seed"}``.
    """
    from agent import runner
    from agent.composition import build_services

    if finished(job.run_dir):
        return {"status": "skipped", "seed": job.settings.seed}
    key = job.settings.model_dump_json(exclude={"seed"})
    if key not in services_memo:
        services_memo[key] = build_services(job.settings)
    services = services_memo[key]
    if job.scenes is not None:
        runner.generate_scenes(job.settings, list(job.scenes), job.run_dir, overwrite=True, services=services)
    else:
        runner.generate(job.settings, job.prompt or "", job.run_dir, overwrite=True, services=services)
    return {"status": "done", "seed": job.settings.seed}


def new_services_memo() -> dict[str, Any]:
    """The per-worker state of :func:`generate_job` (a module-level function, so workers can pickle it)."""
    return {}


def settings_with(base: Settings, overrides: dict[str, Any], where: str) -> Settings:
    """``base`` with settings overrides; unknown names and bad values are refused, naming ``where``."""
    known = set(Settings.model_fields) - {"home"}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise ReelgraphError(
            f"{where} sets unknown settings: {unknown}.", fix=f"known settings: {', '.join(sorted(known))}."
        )
    try:
        return Settings.model_validate({**base.model_dump(), **overrides})
    except ValidationError as error:
        raise ReelgraphError(
            f"{where} has invalid settings {overrides}.",
            why="; ".join(validation_problems(error)),
            fix="correct the values.",
        ) from error


class BatchRequest(BaseModel):
    """One line of a batch file."""

    model_config = ConfigDict(extra="forbid")

    prompt: str | None = None
    storyboard: str | None = None
    scenes: list[Any] | None = None
    seed: int | None = Field(None, ge=0)
    overrides: dict[str, Any] = Field(default_factory=dict)
    name: str | None = None

    @model_validator(mode="after")
    def _one_source(self) -> BatchRequest:
        given = [k for k in ("prompt", "storyboard", "scenes") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(f"give exactly one of prompt, storyboard or scenes (got {given or 'none'})")
        if self.prompt is not None and not self.prompt.strip():
            raise ValueError("the prompt is empty")
        if self.name is not None and (not self.name.strip() or Path(self.name).name != self.name):
            raise ValueError(f"name {self.name!r} must be a plain folder name")
        return self


EXAMPLE = '{"prompt": "a red ball rolls to the right", "seed": 3, "overrides": {"num_inference_steps": 10}}'


def read_batch(path: str | Path, base: Settings, out_dir: Path) -> list[GenerationJob]:
    """The jobs of a batch file (JSONL), each with its settings, seed and run folder under ``out_dir``."""
    from agent.storyboard import parse_storyboard, parse_storyboard_data

    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise ReelgraphError(
            f"Batch file {str(path)!r} cannot be read: {error}.", fix="check the path."
        ) from error
    jobs: list[GenerationJob] = []
    names: set[str] = set()
    base_seed = base.seed if base.seed is not None else 0
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        where = f"Line {number} of {str(path)!r}"
        try:
            request = BatchRequest.model_validate(json.loads(line))
        except (json.JSONDecodeError, ValidationError) as error:
            reason = (
                str(error).splitlines()[0]
                if isinstance(error, json.JSONDecodeError)
                else "; ".join(e["msg"] for e in error.errors())
            )
            raise ReelgraphError(
                f"{where} is not a batch request.", why=reason, fix=f"write lines like {EXAMPLE}."
            ) from error
        index = len(jobs)
        seed = request.seed if request.seed is not None else base_seed + index
        settings = settings_with(base, {**request.overrides, "seed": seed}, where)
        name = request.name or f"{index:04d}"
        if name in names:
            raise ReelgraphError(
                f"{where} repeats the name {name!r}.", fix="give every request its own name."
            )
        names.add(name)
        scenes = None
        if request.storyboard is not None:
            board = Path(request.storyboard)
            board = board if board.is_absolute() else path.parent / board
            scenes = tuple(parse_storyboard(board, max_frames=settings.max_video_frames))
        elif request.scenes is not None:
            scenes = tuple(
                parse_storyboard_data(request.scenes, where, path.parent, settings.max_video_frames)
            )
        jobs.append(
            GenerationJob(
                settings=settings,
                run_dir=out_dir / name,
                prompt=" ".join(request.prompt.split()) if request.prompt else None,
                scenes=scenes,
                name=name,
            )
        )
    if not jobs:
        raise ReelgraphError(f"Batch file {str(path)!r} has no requests.", fix=f"write lines like {EXAMPLE}.")
    return jobs


def run_batch(
    jobs: list[GenerationJob], settings: Settings, out_dir: Path, runner=None, progress=None
) -> dict[str, Any]:
    """Run every job on the work runner; write and return the summary (done, failed with reason, skipped).

    ``progress(done, total)`` after every job. ``out_dir/summary.json`` lists every job, so none
    is lost: a failed one names its reason and how many tries it had.
    """
    from reelgraph.atomic import write_json
    from reelgraph.work_runner import work_runner

    entries = []
    with work_runner(settings, runner) as engine:
        outcomes = engine.map(generate_job, jobs, setup=new_services_memo, gpu=True)
        for done, outcome in enumerate(outcomes, start=1):
            job: GenerationJob = outcome.item
            entries.append(
                {
                    "name": job.name,
                    "status": outcome.value["status"] if outcome.ok else "failed",
                    "reason": outcome.error,
                    "attempts": outcome.attempts,
                    "seed": job.settings.seed,
                    "run_dir": str(job.run_dir),
                    "seconds": round(outcome.seconds, 2),
                }
            )
            if progress is not None:
                progress(done, len(jobs))
    counts = {status: sum(e["status"] == status for e in entries) for status in ("done", "skipped", "failed")}
    summary = {**counts, "items": entries}
    write_json(Path(out_dir) / "summary.json", summary)
    return summary
