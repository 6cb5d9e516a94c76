"""Content hashes: of weights (for manifests and cache keys) and of JSON-able keys.

Hashing a multi-gigabyte checkpoint on every load would be slow, so a file's
digest is memoised by (path, size, mtime) in a small JSON file; a changed
file is hashed again.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from pathlib import Path
from typing import Any

from reelgraph.atomic import write_json

_WEIGHT_SUFFIXES = (".safetensors", ".json", ".bin", ".txt", ".model")
# A model folder's planning hints (rare motions, keyframe detector): what the agent plans with,
# not what the weights sample, so they stay out of the weights hash that keys every cache.
PLANNING_HINTS = "planning.json"


def key_hash(obj: Any, length: int = 16) -> str:
    """Stable short hash of a JSON-serialisable object (sorted keys)."""
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:length]


def file_sha256(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def folder_hash(folder: str | os.PathLike[str], memo: Path | None = None, length: int = 16) -> str:
    """Hash of a model folder: its weight and config files, by relative path and content."""
    folder = Path(folder)
    cache: dict[str, Any] = {}
    if memo is not None and memo.is_file():
        try:
            cache = json.loads(memo.read_text())
        except (OSError, json.JSONDecodeError):
            cache = {}
    digest = hashlib.sha256()
    changed = False
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix in _WEIGHT_SUFFIXES):
        if any(part.startswith(".") for part in path.relative_to(folder).parts):
            continue
        if path.relative_to(folder).as_posix() == PLANNING_HINTS:  # changes the plan, not a sample
            continue
        stat = path.stat()
        key = f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"
        file_digest = cache.get(key)
        if file_digest is None:
            file_digest = file_sha256(path)
            cache[key] = file_digest
            changed = True
        digest.update(f"{path.relative_to(folder).as_posix()}:{file_digest}\n".encode())
    if memo is not None and changed:
        with contextlib.suppress(OSError):  # the memo only saves time; an unwritable home must not stop a run
            write_json(memo, cache)
    return digest.hexdigest()[:length]
