"""What the UI process keeps between requests: settings, services, the chat store, the GPU lock.

Services come from :func:`agent.composition.build_services` (the one composition root) and are
kept per settings, so models and text encoders load once per process and a plan in a warm UI
costs only the graph's planning nodes. Chat turns go through :mod:`agent.chat` on the same
SQLite session store as ``reelgraph chat`` (``<home>/sessions/chat.sqlite``), so a session
started in the terminal continues here and back.

One generation runs at a time per process (:attr:`UiBackend.gpu`; Gradio also queues the
events): two browser tabs never write the same run or share the sampler. Cancel sets a flag
the progress hook reads at the next denoising step; the run then stops like a crash does, so
its folder keeps ``.resume/`` and the finished steps, and :meth:`UiBackend.resume` continues it.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from agent import runner
from agent.chat import ChatSession, ChatState, Reply, build_chat_graph, chat_services
from agent.checkpoints import open_saver
from agent.services import Services
from agent.state import RunState, SceneRequest
from reelgraph.errors import ReelgraphError, validation_problems
from reelgraph.runs import default_run_dir
from reelgraph.settings import LoadedSettings, Settings
from webui.views import PANEL_SETTINGS, RunEntry, list_runs, read_manifest

ProgressTarget = Callable[[str, int, int], None]
# Settings whose change needs no new services: they are read per request (agent.runner.make_request).
PER_REQUEST = frozenset({"seed", "negative_prompt", "num_frames", "budget_seconds"})


class RunCancelled(Exception):
    """The person pressed Cancel. Deliberately not a ReelgraphError: the run folder stays resumable."""


class ProgressRelay:
    """The services' ``progress(label, done, total)`` hook: forwards to the running event's bar and
    stops the run at the next step once Cancel was pressed."""

    def __init__(self):
        self.target: ProgressTarget | None = None
        self.cancel = threading.Event()

    def __call__(self, label: str, done: int, total: int) -> None:
        if self.cancel.is_set():
            raise RunCancelled(label)
        if self.target is not None:
            self.target(label, done, total)


class UiBackend:
    """The UI's state for one process. ``loaded``: the settings as ``reelgraph ui`` loaded them."""

    def __init__(self, loaded: LoadedSettings):
        self.loaded = loaded
        self.settings = loaded.settings
        self.relay = ProgressRelay()
        self.gpu = threading.Lock()
        self._build = threading.Lock()
        self._services: dict[str, Services] = {}
        self._chats: dict[str, Any] = {}
        self._stack = contextlib.ExitStack()
        self._saver = self._stack.enter_context(
            open_saver(Path(self.settings.home) / "sessions" / "chat.sqlite", ChatState)
        )

    def close(self) -> None:
        self._stack.close()

    @property
    def runs_dir(self) -> Path:
        return Path(self.settings.output_dir)

    @property
    def uploads_dir(self) -> Path:
        return Path(self.settings.home) / "uploads"

    # -- settings and services ------------------------------------------------------------------
    def settings_with(self, overrides: dict[str, Any]) -> Settings:
        """The process's settings with the panel's changes (``None``/blank: keep the value)."""
        given = {name: value for name, value in overrides.items() if value is not None and value != ""}
        unknown = set(given) - set(PANEL_SETTINGS)
        if unknown:
            raise ReelgraphError(f"Unknown settings: {', '.join(sorted(unknown))}.")
        try:
            return Settings.model_validate({**self.settings.model_dump(), **given})
        except ValidationError as error:
            problems = "; ".join(validation_problems(error))
            raise ReelgraphError(
                f"Invalid settings: {problems}.", fix="correct the value in the panel."
            ) from error

    def sources(self, overrides: dict[str, Any]) -> dict[str, str]:
        """Where each panel setting's value comes from: ``ui`` for a change made in the panel."""
        sources = dict(self.loaded.sources)
        for name, value in overrides.items():
            if value is not None and value != "" and value != getattr(self.settings, name):
                sources[name] = "ui"
        return sources

    def services(self, settings: Settings) -> Services:
        """The services for ``settings``, built once (models and text encoders load on first use)."""
        key = settings.model_dump_json(exclude=set(PER_REQUEST))
        with self._build:
            if key not in self._services:
                from agent.composition import build_services

                self._services[key] = build_services(settings, self.relay)
            return self._services[key]

    def _chat(self, settings: Settings, session: str) -> ChatSession:
        name = (session or "").strip() or "default"
        key = settings.model_dump_json()
        with self._build:
            graph = self._chats.get(key)
        if graph is None:
            graph = build_chat_graph(chat_services(settings, services=self.services(settings)), self._saver)
            with self._build:
                self._chats[key] = graph
        return ChatSession(graph, name)

    # -- chat ---------------------------------------------------------------------------------
    def chat_state(self, session: str) -> ChatState | None:
        return self._chat(self.settings, session).state()

    def send(self, session: str, message: str, overrides: dict[str, Any]) -> Reply:
        """One chat turn up to its plan; nothing loads a diffusion model."""
        return self._chat(self.settings_with(overrides), session).propose(message)

    def generate_chat(self, session: str, overrides: dict[str, Any], progress: ProgressTarget) -> Reply:
        """Generate the session's waiting plan (the Generate button)."""
        chat = self._chat(self.settings_with(overrides), session)
        return self._exclusive(progress, lambda: chat.answer(True))

    # -- storyboards --------------------------------------------------------------------------
    def split_story(self, text: str) -> list[SceneRequest]:
        """Free text as scenes, by the splitter of ``plan --story`` (the chat's request understander)."""
        from agent.understanding.understander import RequestUnderstander

        if not (text or "").strip():
            raise ReelgraphError("The story is empty.", fix="write the scenes, or fill the table.")
        services = self.services(self.settings)
        request = RequestUnderstander(services.llm).understand(text).request
        info = services.generator.model_info
        return request.scene_requests(info.fps, self.settings.num_frames)

    def plan_scenes(self, scenes: list[SceneRequest], overrides: dict[str, Any]) -> RunState:
        settings = self.settings_with(overrides)
        return runner.plan_scenes(settings, scenes, self.services(settings))

    def generate_scenes(
        self, scenes: list[SceneRequest], overrides: dict[str, Any], progress: ProgressTarget
    ) -> RunState:
        settings = self.settings_with(overrides)
        services = self.services(settings)
        run_dir = default_run_dir(Path(settings.output_dir), scenes[0].prompt)
        return self._exclusive(
            progress, lambda: runner.generate_scenes(settings, scenes, run_dir, services=services)
        )

    def upload(self, name: str | None) -> str | None:
        """The checked upload named ``name`` (see :func:`webui.safety.check_image_upload`); no other path."""
        name = (name or "").strip()
        if not name:
            return None
        path = self.uploads_dir / name
        if Path(name).name != name or not path.is_file():
            raise ReelgraphError(
                f"There is no uploaded image named {name!r}.",
                fix="upload the image first and use the name the page shows.",
            )
        return str(path)

    # -- runs -----------------------------------------------------------------------------------
    def runs(self) -> list[RunEntry]:
        return list_runs(self.runs_dir)

    def run_folder(self, name: str) -> Path:
        """A run folder of the outputs by its name; anything else (a path, ``..``) is refused."""
        folder = self.runs_dir / (name or "")
        if not name or Path(name).name != name or not any(entry.path == folder for entry in self.runs()):
            raise ReelgraphError(f"There is no run named {name!r} in {str(self.runs_dir)!r}.")
        return folder

    def open_run(self, name: str) -> dict[str, Any]:
        return read_manifest(self.run_folder(name))

    def resume(self, name: str, progress: ProgressTarget) -> RunState:
        """Continue an interrupted run from its last finished step, with the services it needs."""
        folder = self.run_folder(name)
        return self._exclusive(
            progress, lambda: runner.resume(self.settings, folder, services_for=self.services)
        )

    def cancel(self) -> bool:
        """Stop the running generation at its next step; False when none runs."""
        if not self.gpu.locked():
            return False
        self.relay.cancel.set()
        return True

    def interrupted_since(self, started: float) -> Path | None:
        """The run folder a cancelled generation left (the newest interrupted one since ``started``)."""
        for entry in self.runs():
            if entry.status == "interrupted" and entry.path.stat().st_mtime >= started - 1:
                return entry.path
        return None

    def _exclusive(self, progress: ProgressTarget, work: Callable[[], Any]) -> Any:
        """Run ``work`` as the process's one generation, its steps reported to ``progress``."""
        with self.gpu:
            self.relay.cancel.clear()
            self.relay.target = progress
            started = time.time()
            try:
                return work()
            except RunCancelled:
                left = self.interrupted_since(started)
                raise ReelgraphError(
                    "Cancelled.",
                    why=f"the run stopped at a denoising step; {str(left)!r} keeps what it finished."
                    if left
                    else "the run stopped before it wrote anything.",
                    fix="resume it from the gallery, or change the request.",
                ) from None
            finally:
                self.relay.target = None
                self.relay.cancel.clear()
