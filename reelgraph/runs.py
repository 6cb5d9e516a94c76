"""Run folders: where one request's files go, and the promise never to clobber them.

A run folder holds ``video.mp4``, ``video.gif``, ``sheet.png`` and
``manifest.json``, plus ``work/`` with intermediate results (clip latents)
while the run is under way. A folder that already holds files is refused
unless ``overwrite`` is set.

One process at a time writes a run folder (:func:`run_lock`): two processes
resuming or overwriting the same folder would corrupt its SQLite checkpoints.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

from reelgraph.errors import ReelgraphError

try:
    import fcntl
except ImportError:  # Windows has no advisory locks on folders: runs are not guarded there
    fcntl = None

OUTPUT_NAMES = ("video.mp4", "video.gif", "sheet.png", "manifest.json")


def slugify(text: str, max_length: int = 40) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return slug[:max_length].rstrip("-") or "video"


def default_run_dir(parent: Path, prompt: str, now: datetime | None = None) -> Path:
    stamp = (now or datetime.now()).strftime("%Y%m%d-%H%M%S")
    return parent / f"{stamp}-{slugify(prompt)}"


def _file_in_the_way(path: Path) -> Path | None:
    """``path`` or the first of its parents that exists as something other than a folder."""
    for candidate in (path, *path.parents):
        if candidate.exists() or candidate.is_symlink():
            return None if candidate.is_dir() else candidate
    return None


def _not_writable(path: Path, error: OSError) -> ReelgraphError:
    blocker = _file_in_the_way(Path(path))
    if blocker is not None:
        return ReelgraphError(
            f"Output path {str(path)!r} is not writable: {str(blocker)!r} is a file."
            if blocker != Path(path)
            else f"Output path {str(path)!r} is a file.",
            why="a run's results go into a folder.",
            fix="choose a folder path with --out.",
        )
    return ReelgraphError(
        f"Output folder {str(path)!r} is not writable.",
        why=str(error),
        fix="choose a folder you can write to with --out.",
    )


def prepare_run_dir(path: Path, overwrite: bool = False) -> Path:
    """Create ``path`` for a new run; refuse a non-empty folder unless ``overwrite``."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ReelgraphError(f"Output path {str(path)!r} is a file.", fix="choose a folder path with --out.")
    if path.is_dir() and any(path.iterdir()):
        if not overwrite:
            raise ReelgraphError(
                f"Output folder {str(path)!r} already holds files.",
                why="a run never overwrites an earlier run's results.",
                fix="choose another --out, or pass --overwrite to replace them.",
            )
        for name in OUTPUT_NAMES:
            (path / name).unlink(missing_ok=True)
        shutil.rmtree(path / "work", ignore_errors=True)
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / ".write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as error:
        raise _not_writable(path, error) from error
    return path


@contextlib.contextmanager
def run_lock(path: Path) -> Iterator[Path]:
    """Create ``path`` if needed and hold it for this process until the block ends.

    An advisory lock (``flock``) on the folder itself: no lock file is left in
    the user's folder, and the OS releases the lock when a process dies, so a
    killed run never leaves a stale lock behind. A second process is refused
    with a :class:`ReelgraphError` before it touches anything.
    """
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise _not_writable(path, error) from error
    if fcntl is None:
        yield path
        return
    handle = os.open(path, os.O_RDONLY)
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ReelgraphError(
                f"Another reelgraph process is writing the run folder {str(path)!r}.",
                why="two processes writing one run would corrupt its checkpoints.",
                fix="wait for that run to finish (or stop it), or choose another --out.",
            ) from None
        yield path
    finally:
        os.close(handle)


class RunFolder:
    """A run folder that cleans up after a failed or interrupted run.

    On success it keeps everything. On an exception (``KeyboardInterrupt``
    included) it removes what this run wrote: the whole folder if this run
    created it, else the run's outputs and ``work/``. Nothing half-written is
    left behind, and an earlier run's files are never touched.
    """

    def __init__(self, path: Path, overwrite: bool = False):
        self.path = Path(path)
        self.overwrite = overwrite
        self._created = False

    def __enter__(self) -> Path:
        self._created = not self.path.exists()
        return prepare_run_dir(self.path, overwrite=self.overwrite)

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            return
        if self._created:
            shutil.rmtree(self.path, ignore_errors=True)
            return
        for name in OUTPUT_NAMES:
            (self.path / name).unlink(missing_ok=True)
        shutil.rmtree(self.path / "work", ignore_errors=True)
