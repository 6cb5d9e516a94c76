"""Resumable runs: every node's result is checkpointed in the run folder until the run finishes.

While a run is under way its folder holds ``.resume/``: ``settings.json``
(what the services are rebuilt from) and ``checkpoints.sqlite`` (LangGraph's
SQLite checkpointer, one checkpoint per finished node, written before the
next node starts). Clip latents stay in ``work/`` until ``finalize``.

* A run that ends normally removes ``.resume/``: the folder holds the video
  files and the manifest only.
* Ctrl-C and errors the user can fix (:class:`ReelgraphError`) clean up as
  before (:class:`reelgraph.runs.RunFolder`): nothing of the run is left.
* A crash (the process killed, out of memory, a bug) leaves ``.resume/``
  and ``work/``; ``generate --resume RUN_DIR`` rebuilds the services from
  the saved settings (where requests go and files are written come from the
  current ones: :mod:`agent.resumed_settings`) and continues from the last finished node: finished
  clips are not made again, and the result equals an uninterrupted run's
  (the seeds are in the checkpointed state).
* One process at a time: a run folder another process is writing (running
  or resuming it) is refused with a clear message (:func:`reelgraph.runs.run_lock`).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from agent.checkpoints import open_saver
from agent.graph import RUN_CONFIG, build_graph
from agent.services import Services
from agent.state import RunState
from reelgraph.atomic import write_json
from reelgraph.errors import ReelgraphError
from reelgraph.runs import OUTPUT_NAMES, prepare_run_dir, run_lock

RESUME_DIR = ".resume"
THREAD = {"configurable": {"thread_id": "run"}, **RUN_CONFIG}
ServicesFactory = Callable[[Any], Services]


def resume_dir(run_dir: Path) -> Path:
    return Path(run_dir) / RESUME_DIR


def _remove_run(run_dir: Path, created: bool) -> None:
    if created:
        shutil.rmtree(run_dir, ignore_errors=True)
        return
    for name in OUTPUT_NAMES:
        (run_dir / name).unlink(missing_ok=True)
    shutil.rmtree(run_dir / "work", ignore_errors=True)
    shutil.rmtree(resume_dir(run_dir), ignore_errors=True)


def _drive(services: Services, run_dir: Path, state: RunState | None) -> RunState:
    """Run (``state``) or continue (``None``) the checkpointed graph of ``run_dir`` to its end."""
    with open_saver(resume_dir(run_dir) / "checkpoints.sqlite", RunState) as saver:
        graph = build_graph(services, checkpointer=saver)
        if state is None and not graph.get_state(THREAD).next:
            values = graph.get_state(THREAD).values
            if not values:
                raise ReelgraphError(
                    f"{str(run_dir)!r} has no checkpoint to resume from.",
                    fix="start the run again with generate.",
                )
            result = values
        else:
            result = graph.invoke(state, THREAD, durability="sync")
    return RunState.model_validate(result)


def run_checkpointed(services: Services, state: RunState, settings: Any, overwrite: bool = False) -> RunState:
    """Run a generate request in ``state.run_dir`` with a checkpoint after every node (module doc)."""
    run_dir = Path(state.run_dir)
    created = not run_dir.exists()
    with run_lock(run_dir):
        try:
            prepare_run_dir(run_dir, overwrite=overwrite)
        except ReelgraphError:
            if created:
                shutil.rmtree(run_dir, ignore_errors=True)
            raise
        shutil.rmtree(resume_dir(run_dir), ignore_errors=True)
        try:
            write_json(resume_dir(run_dir) / "settings.json", _settings_snapshot(settings))
            result = _drive(services, run_dir, state)
        except (KeyboardInterrupt, ReelgraphError):
            _remove_run(run_dir, created)
            raise
        except BaseException:
            for name in OUTPUT_NAMES:  # no half-finished results; the checkpoints and clips stay to resume
                (run_dir / name).unlink(missing_ok=True)
            raise
        shutil.rmtree(resume_dir(run_dir), ignore_errors=True)
    return result


def saved_settings(run_dir: Path) -> dict[str, Any]:
    """The settings a resumable run was started with; refuses a folder with nothing to resume."""
    run_dir = Path(run_dir)
    path = resume_dir(run_dir) / "settings.json"
    if not path.is_file():
        if (run_dir / "manifest.json").is_file():
            raise ReelgraphError(
                f"The run in {str(run_dir)!r} has already finished.",
                why="its manifest is written and it left nothing to resume.",
                fix="open its video, or start a new run.",
            )
        raise ReelgraphError(
            f"{str(run_dir)!r} is not a run that can be resumed.",
            why=f"it has no {RESUME_DIR}/settings.json (only a run that was killed or crashed has one).",
            fix="give the folder of an interrupted run.",
        )
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise ReelgraphError(f"{str(path)!r} cannot be read: {error}.", fix="start the run again.") from error


def resume(run_dir: Path, services: Services) -> RunState:
    """Continue a killed or crashed run from its last checkpoint (services built from its settings)."""
    run_dir = Path(run_dir)
    saved_settings(run_dir)
    with run_lock(run_dir):
        try:
            result = _drive(services, run_dir, None)
        except BaseException:
            for name in OUTPUT_NAMES:
                (run_dir / name).unlink(missing_ok=True)
            raise
        shutil.rmtree(resume_dir(run_dir), ignore_errors=True)
    return result


def _settings_snapshot(settings: Any) -> dict[str, Any]:
    # The API key is never written to disk; a resumed run reads it from the environment again.
    return settings.model_dump(mode="json", exclude={"llm_api_key"})
