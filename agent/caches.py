"""Content-addressed caches: LLM answers, retrievals, inversions, LoRAs and clips; stats and pruning.

Every cache lives under ``<home>/cache/<kind>/`` and is keyed by a hash of
everything its value depends on, so a changed model, seed or setting never
reads a stale entry:

* ``llm/<key>.json``: model, prompt-template hash, messages (:mod:`agent.llm.llm_client`);
* ``retrievals/<k>/<key>/``: the prompt, search config, text model and the pool's
  state (location, record count, last write of the embedded store) (:class:`CachedRetriever`);
* ``inversions/<model hash>/...``: POS inversions (:mod:`generation.inversion_cache`);
* ``lora/<key>.safetensors``: motion LoRAs (``motion_prior.tuning.LoraCache``);
* ``clips/<k>/<key>/``: a clip's latents and hand-off, keyed by the model's weights
  hash, the whole clip request (prompt, seed, steps, guidance, noise, rewrite, LoRA)
  and how it starts, with every input file by content hash (:class:`CachingGenerator`).

A hit refreshes the entry's time, so ``cache prune`` removes the least
recently used first. ``cache stats`` counts entries and bytes per kind.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import time
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

import generation.inversion_cache  # noqa: F401  (registers the inversions cache kind)
import motion_prior.tuning  # noqa: F401  (registers the lora cache kind)
from reelgraph.atomic import atomic_path, write_json
from reelgraph.cache_kinds import CacheKind, lookup, register, registered
from reelgraph.hashing import file_sha256, key_hash

if TYPE_CHECKING:
    from generation.model_info import ModelInfo
    from reelgraph.contracts.clips import ClipRequest

# The agent's own kinds; generation and motion_prior register theirs where they write them.
register(CacheKind("llm", "files", rank=10, owner="agent.llm.llm_client"))
register(CacheKind("retrievals", "entry_folders", rank=20, owner="agent.caches"))
register(CacheKind("clips", "entry_folders", rank=50, owner="agent.caches"))
KINDS = tuple(kind.name for kind in registered())
CACHE_FORMAT = 1
# What an extension spec's mode means: 2 since issue 18 ("vidrd" keeps direction; the old reversed
# reading is "vidrd-literal"), so a clip cached under the old meaning of "vidrd" is never reused.
EXTENSION_FORMAT = 2


class EntryStore:
    """``<root>/<key[:2]>/<key>/``: ``entry.json`` (the record) and the entry's files."""

    def __init__(self, root: Path):
        self.root = Path(root)

    def folder(self, key: str) -> Path:
        return self.root / key[:2] / key

    def get(self, key: str) -> dict[str, Any] | None:
        folder = self.folder(key)
        try:
            record = json.loads((folder / "entry.json").read_text())
        except (OSError, ValueError):
            return None
        if any(not (folder / name).is_file() for name in record.get("files", [])):
            return None
        with contextlib.suppress(OSError):
            os.utime(folder / "entry.json")  # recently used: pruned last
        return record

    def put(self, key: str, record: dict[str, Any], files: dict[str, Path] | None = None) -> None:
        folder = self.folder(key)
        with contextlib.suppress(OSError):  # a cache only saves time: a full disk must not stop a run
            for name, source in (files or {}).items():
                with atomic_path(folder / name) as tmp:
                    shutil.copyfile(source, tmp)
            write_json(folder / "entry.json", {**record, "files": sorted(files or {})})


class CachedRetriever:
    """A :class:`~agent.services.Retriever` whose answers are cached by prompt, config and pool state."""

    def __init__(
        self,
        inner,
        cache_dir: Path,
        config: dict[str, Any] | None = None,
        result_type: type[BaseModel] | None = None,
    ):
        """``result_type``: what ``inner.retrieve`` returns, to read a hit back as (default
        :class:`motion_prior.search.RetrievalResult`)."""
        self.inner = inner
        self.store = EntryStore(Path(cache_dir) / "retrievals")
        self.config = config or {}
        self.result_type = result_type
        self.hits = 0
        self.unavailable: str | None = None  # why the pool could not be reached (a downed server)

    @property
    def location(self) -> str:
        return self.inner.location

    def pool_size(self) -> int:
        """The pool's size; 0 with :attr:`unavailable` saying why when its server is down."""
        from memory.store import StoreUnreachable

        try:
            return self.inner.pool_size()
        except StoreUnreachable as error:
            self.unavailable = f"{error.what} ({error.why})" if error.why else error.what
            return 0

    def _pool_state(self) -> dict[str, Any]:
        sqlite = Path(self.inner.location) / "chroma.sqlite3"
        written = sqlite.stat().st_mtime_ns if sqlite.is_file() else None
        return {"location": self.inner.location, "count": self.inner.pool_size(), "written": written}

    def _result_type(self) -> type[BaseModel]:
        if self.result_type is None:
            from motion_prior.search import RetrievalResult

            self.result_type = RetrievalResult
        return self.result_type

    def retrieve(self, prompt: str):
        key = key_hash({"v": CACHE_FORMAT, "prompt": prompt, "config": self.config, **self._pool_state()}, 32)
        cached = self.store.get(key)
        if cached is not None:
            self.hits += 1
            return self._result_type().model_validate(cached["result"])
        result = self.inner.retrieve(prompt)
        self.store.put(key, {"prompt": prompt, "result": result.model_dump(mode="json")})
        return result


def _file_digest(path: str | None) -> str | None:
    if not path:
        return None
    try:
        return file_sha256(Path(path))[:32]
    except OSError:
        return f"missing:{path}"


class CachingGenerator:
    """A :class:`~agent.services.VideoGenerator` that reuses clips made before (module doc).

    Clips that write or read the video's anchor file (``anchor_first_clip``)
    are not cached: their result depends on a file made earlier in the run.
    """

    def __init__(self, inner, cache_dir: Path):
        self.inner = inner
        self.store = EntryStore(Path(cache_dir) / "clips")
        self.hits = 0

    # The VideoGenerator protocol, delegated method by method: what is not here is not
    # offered, so a generator missing from the protocol fails loudly instead of leaking through.
    @property
    def model_info(self) -> ModelInfo:
        return self.inner.model_info

    def default_guidance(self) -> float:
        return self.inner.default_guidance()

    def check_clip(self, request: ClipRequest) -> None:
        self.inner.check_clip(request)

    def write_outputs(
        self,
        latents_paths: list[Path],
        run_dir: Path,
        caption: str,
        kept: list[tuple[int, int] | None] | None = None,
    ) -> dict:
        if kept is None:  # as the caller called it: generators may take the three-argument form
            return self.inner.write_outputs(latents_paths, run_dir, caption)
        return self.inner.write_outputs(latents_paths, run_dir, caption, kept=kept)

    def scheduler_config(self) -> dict:
        return self.inner.scheduler_config()

    def clip_key(self, request, extension=None) -> str | None:
        data = request.model_dump(mode="json")
        noise = data.get("noise") or {}
        for field in ("video", "npnet"):
            if noise.get(field):
                noise[field] = _file_digest(noise[field])
        if data.get("lora_path"):
            data["lora_path"] = _file_digest(data["lora_path"])
        start = None
        if extension is not None:
            if extension.anchor_role != "none":
                return None
            start = extension.model_dump(mode="json")
            start["previous_path"] = _file_digest(start.get("previous_path"))
            start["image_path"] = _file_digest(start.get("image_path"))
            start["handoff_path"] = bool(start.get("handoff_path"))
            start["format"] = EXTENSION_FORMAT
        from reelgraph import __version__

        return key_hash(
            {
                "v": CACHE_FORMAT,
                "reelgraph": __version__,
                "model": self.inner.model_info.weights_hash,
                "request": data,
                "start": start,
            },
            32,
        )

    def sample_clip(self, request, latents_path: Path, label: str = "sampling", **extra):
        extension = extra.get("extension")
        key = self.clip_key(request, extension)
        cached = self.store.get(key) if key else None
        if cached is not None:
            self.hits += 1
            return self._restore(key, cached, latents_path, extension)
        result = self.inner.sample_clip(request, latents_path, label=label, **extra)
        if key:
            files = {"latents.safetensors": Path(result.latents_path)}
            if result.handoff_path:
                files["handoff.safetensors"] = Path(result.handoff_path)
            self.store.put(key, {"result": result.model_dump(mode="json")}, files)
        return result

    def _restore(self, key: str, cached: dict[str, Any], latents_path: Path, extension):
        from reelgraph.contracts.clips import ClipResult

        folder = self.store.folder(key)
        result = ClipResult.model_validate(cached["result"])
        with atomic_path(latents_path) as tmp:
            shutil.copyfile(folder / "latents.safetensors", tmp)
        handoff = None
        if extension is not None and extension.handoff_path and "handoff.safetensors" in cached["files"]:
            with atomic_path(extension.handoff_path) as tmp:
                shutil.copyfile(folder / "handoff.safetensors", tmp)
            handoff = extension.handoff_path
        details = {**result.details, "clip_cache": "hit", "made_in_seconds": result.seconds}
        return result.model_copy(
            update={
                "latents_path": str(latents_path),
                "handoff_path": handoff,
                "seconds": 0.0,
                "details": details,
            }
        )


# -- stats and pruning -----------------------------------------------------------------------------------


class Entry(BaseModel):
    kind: str
    paths: list[Path]
    bytes: int
    last_used: float


class KindStats(BaseModel):
    kind: str
    entries: int
    bytes: int
    oldest: float | None
    newest: float | None


def _size(path: Path) -> int:
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return path.stat().st_size


def _grouped_files(root: Path, pattern: str, kind: str) -> Iterable[Entry]:
    """Entries of a flat cache: files sharing a stem (``<key>.safetensors`` + ``<key>.json``)."""
    groups: dict[Path, list[Path]] = {}
    for path in root.glob(pattern):
        if path.is_file() and not path.name.startswith("."):
            groups.setdefault(path.with_suffix(""), []).append(path)
    for paths in groups.values():
        yield Entry(
            kind=kind,
            paths=sorted(paths),
            bytes=sum(p.stat().st_size for p in paths),
            last_used=max(p.stat().st_mtime for p in paths),
        )


def entries(cache_dir: Path, kind: str) -> list[Entry]:
    """Every entry of one kind of cache under ``cache_dir``."""
    root = Path(cache_dir) / kind
    if not root.is_dir():
        return []
    spec = lookup(kind) or CacheKind(kind, "files", rank=0)
    if spec.layout == "entry_folders":
        found = []
        for record in root.glob("*/*/entry.json"):
            folder = record.parent
            found.append(
                Entry(kind=kind, paths=[folder], bytes=_size(folder), last_used=record.stat().st_mtime)
            )
        return found
    return list(_grouped_files(root, spec.pattern, kind))


def cache_stats(cache_dir: Path) -> list[KindStats]:
    stats = []
    for kind in KINDS:
        found = entries(cache_dir, kind)
        times = [e.last_used for e in found]
        stats.append(
            KindStats(
                kind=kind,
                entries=len(found),
                bytes=sum(e.bytes for e in found),
                oldest=min(times) if times else None,
                newest=max(times) if times else None,
            )
        )
    return stats


class PruneResult(BaseModel):
    removed: int
    freed_bytes: int
    kept: int
    kept_bytes: int


def prune(
    cache_dir: Path,
    kinds: Iterable[str] = KINDS,
    older_than_days: float | None = None,
    max_bytes: int | None = None,
    now: float | None = None,
) -> PruneResult:
    """Remove entries unused for ``older_than_days``, then the least recently used until ``max_bytes``."""
    now = time.time() if now is None else now
    found = sorted((e for kind in kinds for e in entries(cache_dir, kind)), key=lambda e: e.last_used)
    doomed: list[Entry] = []
    if older_than_days is not None:
        cutoff = now - older_than_days * 86400
        doomed = [e for e in found if e.last_used < cutoff]
    kept = [e for e in found if e not in doomed]
    if max_bytes is not None:
        total = sum(e.bytes for e in kept)
        while kept and total > max_bytes:
            oldest = kept.pop(0)
            doomed.append(oldest)
            total -= oldest.bytes
    for entry in doomed:
        for path in entry.paths:
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
    return PruneResult(
        removed=len(doomed),
        freed_bytes=sum(e.bytes for e in doomed),
        kept=len(kept),
        kept_bytes=sum(e.bytes for e in kept),
    )
