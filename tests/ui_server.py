"""Start ``reelgraph ui`` in a subprocess on a free loopback port and wait until it answers.

The app runs as a user starts it (``python cli.py --home H ui ...``), so the tests see the
same process, environment and Gradio cache placement; the fixture stops it by its own pid.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2):
            return True
    except urllib.error.HTTPError:
        return True  # it answered (e.g. 401 behind --auth)
    except (urllib.error.URLError, OSError):
        return False


@contextlib.contextmanager
def ui_server(home: Path, *args: str, timeout: float = 120.0) -> Iterator[str]:
    """``reelgraph --home HOME ui --port P ARGS``; yields its base URL (http://127.0.0.1:P)."""
    port = free_port()
    log = open(home / "ui.log", "w")  # noqa: SIM115 - closed below, after the process
    process = subprocess.Popen(
        [sys.executable, "cli.py", "--home", str(home), "ui", "--port", str(port), *args],
        cwd=ROOT,
        # One torch thread: the tiny model is bound by per-op overhead, and the test's browser needs a core.
        env={**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": "1"},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while not _answers(url + "/"):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"reelgraph ui did not start: {(home / 'ui.log').read_text()[-3000:]}")
            time.sleep(0.5)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
