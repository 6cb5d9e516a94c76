"""Start the app: one backend per process, Gradio's queue, the served folders, auth."""

from __future__ import annotations

from pathlib import Path

from reelgraph.settings import LoadedSettings
from webui.backend import UiBackend


def served_paths(backend: UiBackend) -> tuple[list[str], list[str]]:
    """What Gradio may serve beyond the files it made itself: the runs and the checked uploads;
    never the rest of the data directory (config file, sessions, Chroma)."""
    home = Path(backend.settings.home)
    allowed = [str(backend.runs_dir.resolve()), str(backend.uploads_dir.resolve())]
    blocked = [str(home / "config.toml"), str(home / "sessions"), str(home / "chroma")]
    return allowed, blocked


def launch(loaded: LoadedSettings, host: str, port: int, auth: tuple[str, str] | None, block: bool = True):
    """Serve the UI; with ``block=False`` return ``(app, backend)`` with the server running."""
    from webui.app import build_app

    backend = UiBackend(loaded)
    backend.runs_dir.mkdir(parents=True, exist_ok=True)
    app = build_app(backend)
    app.queue(default_concurrency_limit=4)  # plans may run side by side; generations share one slot
    allowed, blocked = served_paths(backend)
    app.launch(
        server_name=host,
        server_port=port,
        auth=auth,
        allowed_paths=allowed,
        blocked_paths=blocked,
        prevent_thread_lock=not block,
        show_error=False,
        quiet=True,
        inbrowser=False,
        share=False,
    )
    return app, backend


def serve(loaded: LoadedSettings, host: str, port: int, auth: tuple[str, str] | None) -> None:
    _app, backend = launch(loaded, host, port, auth, block=True)
    backend.close()
