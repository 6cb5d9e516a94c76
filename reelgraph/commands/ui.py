"""``reelgraph ui``: the web UI (:mod:`webui`) on this machine's loopback address by default.

Settings load as for every command (the sampling flags set the panel's starting values); the
services, sessions and caches are the CLI's. Another host than loopback needs ``--auth``
(:mod:`webui.safety`); files are served only from the runs folder, the checked uploads and
Gradio's cache, which lives in the data directory (``<home>/cache/webui``).
"""

from __future__ import annotations

import os
from pathlib import Path

import typer

from reelgraph.commands.common import absolute, err, settings_from
from reelgraph.commands.sampling import Sampling

HostOpt = typer.Option("127.0.0.1", "--host", help="Address to bind; other than loopback needs --auth.")
PortOpt = typer.Option(7860, "--port", min=1, max=65535, help="Port to serve on.")
AuthOpt = typer.Option(
    None, "--auth", help="USER:PASSWORD, or a file whose first line is USER:PASSWORD (required off loopback)."
)
ShareDirOpt = typer.Option(
    None, "--share-dir", help="The runs folder the UI writes and serves (default: the output_dir setting)."
)


def ui_command(
    ctx: typer.Context,
    host: str = HostOpt,
    port: int = PortOpt,
    auth: str = AuthOpt,
    share_dir: Path = ShareDirOpt,
    sampling: Sampling = None,
) -> None:
    """Serve the web UI: chat, plan before generate, progress, gallery, storyboards, settings."""
    from webui.safety import check_exposure, read_auth

    credentials = read_auth(auth)
    check_exposure(host, credentials)  # before anything loads: a refused host costs nothing
    loaded = settings_from(ctx, **sampling.flags(), output_dir=absolute(share_dir))
    home = Path(loaded.settings.home)
    # Gradio reads these when it is imported: its file cache goes into the data directory, and it
    # sends nothing to its analytics server.
    os.environ["GRADIO_TEMP_DIR"] = str(home / "cache" / "webui")
    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
    try:
        import gradio  # noqa: F401
    except ImportError:
        from reelgraph.errors import ReelgraphError

        raise ReelgraphError(
            "The web UI needs Gradio, which is not installed.",
            fix="pip install -e '.[ui]' (make install does it).",
        ) from None
    from webui.server import serve

    err.print(
        f"reelgraph ui on http://{host}:{port} (runs in {loaded.settings.output_dir}); Ctrl-C stops it."
    )
    serve(loaded, host=host, port=port, auth=credentials)
