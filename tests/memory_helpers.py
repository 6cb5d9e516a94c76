"""Shared helpers for the memory tests: a real Chroma server, small pools, videos."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

# chromadb 1.x ships its server inside the Rust extension; the `chroma` console
# script is a thin wrapper around this call.
_SERVER_SCRIPT = "import sys, chromadb_rust_bindings; chromadb_rust_bindings.cli(['chroma', *sys.argv[1:]])"


def chroma_server_available() -> str | None:
    """None when a Chroma server can be started here, else the reason why not."""
    try:
        import chromadb_rust_bindings
    except ImportError as error:
        return f"chromadb_rust_bindings is not importable: {error}"
    if not hasattr(chromadb_rust_bindings, "cli"):
        return "this chromadb build has no server entry point (chromadb_rust_bindings.cli)"
    return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def chroma_server(data: Path, timeout: float = 30.0) -> Iterator[str]:
    """Run ``chroma run`` on 127.0.0.1 at a free port; yields its URL."""
    import httpx

    port = _free_port()
    log = open(data.parent / f"chroma-server-{port}.log", "wb")  # noqa: SIM115 - closed below
    process = subprocess.Popen(
        [
            sys.executable,
            "-c",
            _SERVER_SCRIPT,
            "run",
            "--path",
            str(data),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "ANONYMIZED_TELEMETRY": "False"},
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"chroma server exited with {process.returncode}; see {log.name}")
            try:
                if httpx.get(f"{url}/api/v2/heartbeat", timeout=0.5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"chroma server did not answer within {timeout} s; see {log.name}")
            time.sleep(0.05)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def write_videos(folder: Path, ids: list[str], frames: int = 8, seed: int = 0) -> None:
    from reelgraph.media import write_mp4

    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for videoid in ids:
        write_mp4(rng.integers(0, 255, (frames, 16, 16, 3), dtype=np.uint8), folder / f"{videoid}.mp4", fps=8)


def write_csv(path: Path, rows: list[dict[str, str]], columns: tuple[str, ...] | None = None) -> Path:
    import csv

    columns = columns or ("videoid", "contentUrl", "duration", "page_dir", "name")
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow(row)
    return path


CAPTIONS = [
    "a red ball rolls to the right",
    "a dog runs across the field",
    "a man is riding a horse on the beach",
    "a blue box is pushed by a red ball",
    "a woman slicing tomatoes in the kitchen",
    "a cat jumps over a fence",
    "two kids are playing with a ball in the backyard",
    "a car is driving down a wet road at night",
    "the balloon floats up into the sky",
    "a surfer rides a big wave",
    "aerial view of the city at night",
    "a squirrel eating a nut on a tree branch",
]
