"""POS's offline jobs: invert a pool into the inversion cache, and train NPNet on the cache.

``index invert`` and ``npnet train`` call these with the pool's records (anything with
``id``, ``video`` and ``caption``), which the caller reads from the memory store in a
stable order (``MemoryStore.sorted_records``: by id), so ``--limit N`` always means the
same N videos and a rerun resumes. This module never opens the store itself.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from reelgraph.errors import ReelgraphError
from reelgraph.settings import Settings


def invert_pool(
    settings: Settings,
    model_setup: Callable[[], Any],
    records: Sequence[Any],
    *,
    batch_size: int = 8,
    progress: Callable[[int, int], None] | None = None,
    runner=None,
) -> dict[str, Any]:
    """Invert the pool's first clips (POS §4.1) into the cache; cached ones are skipped (resume).

    Every ``batch_size`` videos are one work item of ``runner`` (default: in process), run on a
    worker that loads the model once (``model_setup()``; a GPU worker where the cluster has GPUs)
    and saves each inversion into the content-addressed cache itself: one file per key, written
    atomically, so workers never write the same file and a rerun skips what is there.
    ``progress(done, total)`` is called after every batch. Returns counts and timing.
    """
    from reelgraph.work_runner import InProcessRunner

    videos = [(record.id, record.video) for record in records]
    chunks = [videos[i : i + batch_size] for i in range(0, len(videos), batch_size)]
    task = functools.partial(_invert_chunk, str(settings.cache_dir), settings.num_inference_steps)
    engine = runner if runner is not None else InProcessRunner(retries=0)
    counts = {"inverted": 0, "cached": 0, "failed": 0}
    errors: list[str] = []
    done = 0
    started = time.perf_counter()
    for outcome in engine.map(task, chunks, setup=model_setup, gpu=True):
        if outcome.ok:
            for key, value in outcome.value.items():
                counts[key] += value
        else:  # counted, never fatal: a rerun tries these videos again
            counts["failed"] += len(outcome.item)
            errors.append(f"videos {outcome.item[0][0]}..{outcome.item[-1][0]}: {outcome.error}")
        done += len(outcome.item)
        if progress is not None:
            progress(done, len(videos))
    seconds = time.perf_counter() - started
    return {
        **counts,
        "videos": len(videos),
        "num_steps": settings.num_inference_steps,
        "seconds": round(seconds, 1),
        "seconds_per_inversion": round(seconds / counts["inverted"], 3) if counts["inverted"] else None,
        **({"errors": errors} if errors else {}),
    }


def _invert_chunk(cache_dir: str, num_steps: int, model, videos: list[tuple[str, str]]) -> dict[str, int]:
    """One work item: invert and cache ``(video id, path)`` pairs not cached yet, as one batch."""
    from generation.inversion_cache import InversionCache
    from generation.ona import invert_many

    return invert_many(
        model,
        InversionCache(Path(cache_dir)),
        videos,
        num_steps=num_steps,
        num_frames=model.info.num_frames,
        batch_size=max(1, len(videos)),
    )


def inversion_pairs(settings: Settings, model, records: Sequence[Any]):
    """``(captions, ε_inv (N, C, F, h, w))`` for the pool videos whose inversion is cached."""
    import torch

    from generation.inversion_cache import InversionCache
    from generation.ona import inversion_key

    cache = InversionCache(settings.cache_dir)
    captions, tensors = [], []
    for record in records:
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


def prompt_contexts(model, captions: Sequence[str]):
    """``(B, L, D)`` float32 CPU text states, as the model conditions on them (NPNet's context).

    A flow model (Wan) pads its UMT5 states to the folder's ``max_prompt_tokens``
    and zeroes them past each prompt (:meth:`~generation.wan_backend.WanModel.encode_prompt`);
    a UNet model returns CLIP states with their truncation flags.
    """
    from generation.wan_backend import WanModel

    if isinstance(model, WanModel):
        return model.encode_prompt(list(captions), model.info.max_prompt_tokens).float().cpu()
    return model.encode_prompt(list(captions)).embeds.float().cpu()


def train_npnet_on_pool(
    settings: Settings,
    model,
    records: Sequence[Any],
    *,
    out: Path | None = None,
    minutes: float = 5.0,
    max_steps: int | None = None,
    pool: str | None = None,
    seed: int = 0,
    progress: Callable[[int, float], None] | None = None,
) -> tuple[Path, dict[str, Any]]:
    """Train NPNet (POS §4.2) on (caption, cached inversion) pairs and save it; returns (path, report)."""
    import torch

    from generation.noise_support import default_npnet_path
    from generation.npnet import save_npnet, train_npnet

    captions, targets = inversion_pairs(settings, model, records)
    with torch.no_grad():
        contexts = torch.cat(
            [prompt_contexts(model, captions[i : i + 64]) for i in range(0, len(captions), 64)]
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
