"""POS's offline jobs: invert a pool into the inversion cache, and train NPNet on the cache.

``index invert`` and ``npnet train`` call these. Both read the pool from the
memory store (``memory.store.MemoryStore``) in a stable order (record id), so
``--limit N`` always means the same N videos and a rerun resumes.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from reelgraph.errors import ReelgraphError
from reelgraph.settings import Settings


def pool_records(settings: Settings, pool: str | None = None, limit: int | None = None) -> list:
    """The pool's records sorted by id (the first ``limit``)."""
    from memory.store import MemoryStore

    store = MemoryStore(settings.home, url=settings.chroma_url)
    records = [record for page, _ in store.iter_all(pool) for record in page]
    if not records:
        where = f"pool {pool!r}" if pool else "the memory store"
        raise ReelgraphError(
            f"There are no videos in {where}.",
            fix="ingest a pool first: `index toy --n N` or `index add --csv FILE --videos DIR`.",
        )
    records.sort(key=lambda record: record.id)
    return records[:limit] if limit else records


def invert_pool(
    settings: Settings,
    model,
    *,
    pool: str | None = None,
    limit: int | None = None,
    batch_size: int = 8,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Invert the pool's first clips (POS §4.1) into the cache; cached ones are skipped (resume).

    ``progress(done, total)`` is called after every video. Returns counts and timing.
    """
    from generation.inversion_cache import InversionCache
    from generation.ona import invert_many

    records = pool_records(settings, pool, limit)
    videos = [(record.id, record.video) for record in records]
    done = 0

    def step(count: int) -> None:
        nonlocal done
        done += count
        if progress is not None:
            progress(done, len(videos))

    started = time.perf_counter()
    counts = invert_many(
        model,
        InversionCache(settings.cache_dir),
        videos,
        num_steps=settings.num_inference_steps,
        num_frames=model.info.num_frames,
        batch_size=batch_size,
        progress=step,
    )
    seconds = time.perf_counter() - started
    return {
        **counts,
        "videos": len(videos),
        "num_steps": settings.num_inference_steps,
        "seconds": round(seconds, 1),
        "seconds_per_inversion": round(seconds / counts["inverted"], 3) if counts["inverted"] else None,
    }


def inversion_pairs(settings: Settings, model, pool: str | None = None, limit: int | None = None):
    """``(captions, ε_inv (N, C, F, h, w))`` for the pool videos whose inversion is cached."""
    import torch

    from generation.inversion_cache import InversionCache
    from generation.ona import inversion_key

    cache = InversionCache(settings.cache_dir)
    captions, tensors = [], []
    for record in pool_records(settings, pool, limit):
        eps = cache.load(inversion_key(model, record.id, settings.num_inference_steps, model.info.num_frames))
        if eps is not None:
            captions.append(record.caption)
            tensors.append(eps[0])
    if not tensors:
        raise ReelgraphError(
            "No cached inversions were found for this model and step count.",
            fix="run `index invert` first (with the same --model and --steps).",
        )
    return captions, torch.stack(tensors)


def train_npnet_on_pool(
    settings: Settings,
    model,
    *,
    out: Path | None = None,
    minutes: float = 5.0,
    max_steps: int | None = None,
    pool: str | None = None,
    limit: int | None = None,
    seed: int = 0,
    progress: Callable[[int, float], None] | None = None,
) -> tuple[Path, dict[str, Any]]:
    """Train NPNet (POS §4.2) on (caption, cached inversion) pairs and save it; returns (path, report)."""
    import torch

    from generation.noise_support import default_npnet_path
    from generation.npnet import save_npnet, train_npnet

    captions, targets = inversion_pairs(settings, model, pool, limit)
    with torch.no_grad():
        contexts = torch.cat(
            [
                model.encode_prompt(captions[i : i + 64]).embeds.float().cpu()
                for i in range(0, len(captions), 64)
            ]
        )
    net, report = train_npnet(
        contexts, targets, minutes=minutes, max_steps=max_steps, seed=seed, progress=progress
    )
    info = model.info
    path = out or default_npnet_path(settings.home, info.weights_hash)
    metadata = {
        "model_hash": info.weights_hash,
        "model_id": info.model_id,
        "num_steps": settings.num_inference_steps,
        "pool": pool,
        "report": report.model_dump(),
    }
    save_npnet(net, path, metadata)
    return Path(path), {**report.model_dump(), "path": str(path)}
