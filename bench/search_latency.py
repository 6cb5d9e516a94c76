"""Retrieval latency at pool scale, ingest throughput, disk and memory per record.

Two measurements:

1. Ingest throughput of the real path (`memory.ingest.ingest_csv`: parse units,
   MiniLM embedding, Chroma writes) on a CSV of distinct toy captions, without
   videos (no probing).
2. Query latency of `Retriever.retrieve` (p50/p95 of parse, embed, ANN and
   re-rank) on large pools. Embedding a million captions with MiniLM is out of
   reach on this CPU, so large pools are synthesised from ``--base`` distinct
   toy captions that *are* embedded and parsed for real: record ``i`` of a pool
   pairs base captions ``a_i`` and ``b_i`` (a deterministic draw), its caption is
   "<a_i>, then <b_i>", its vector the normalised mean of the two real caption
   vectors (close to what MiniLM gives the joined sentence), and its units are
   the two captions' units. Every record is distinct; the vectors lie where real
   caption vectors lie. The pool is written straight to the store in batches.

Usage:
    python -m bench.search_latency --sizes 10000,100000 [--base 20000] [--queries 200] \
        [--out bench/results/search_latency.md]
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from memory.ingest import ingest_csv
from memory.store import MemoryStore, PoolRecord, unit_phrase_set
from motion_prior.search import Retriever, SearchConfig
from reelgraph.text.embeddings import get_embedder
from reelgraph.text.units import get_parser


def toy_captions(n: int, seed: int) -> list[str]:
    """``n`` distinct toy captions (the caption generator's full variety)."""
    from toyworld.captions import describe, sample_label

    rng = np.random.default_rng(seed)
    seen: dict[str, None] = {}
    while len(seen) < n:
        seen.setdefault(describe(sample_label(rng, "pool"), rng).text, None)
    return list(seen)


def folder_bytes(folder: Path) -> int:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())


def bench_ingest(home: Path, n: int, seed: int) -> dict:
    from tests.memory_helpers import write_csv

    captions = toy_captions(n, seed)
    csv = write_csv(home / "ingest.csv", [{"videoid": f"i{i}", "name": c} for i, c in enumerate(captions)])
    shutil.rmtree(home / "ingest-home", ignore_errors=True)  # measure a first ingest, not a skipped rerun
    store = MemoryStore(home / "ingest-home")
    stats = ingest_csv(store, csv, pool="ingest", batch=256, progress=False)
    return {"n": stats.added, "seconds": stats.seconds, "rate": stats.added / stats.seconds}


def build_pool(
    store: MemoryStore, size: int, base: list[str], vectors: np.ndarray, parsed, seed: int
) -> float:
    """Write ``size`` synthetic records (see the module docstring); returns seconds."""
    rng = np.random.default_rng(seed)
    phrase_vectors: dict[str, np.ndarray] = {}
    all_phrases = unit_phrase_set(
        [PoolRecord(id="x", videoid="x", pool="x", caption="", units=p.units) for p in parsed]
    )
    for phrase, vector in zip(all_phrases, get_embedder().embed(all_phrases), strict=True):
        phrase_vectors[phrase] = vector
    start = time.perf_counter()
    written = store.count("synthetic")
    batch = 2000
    first_batch = True
    for offset in range(written, size, batch):
        count = min(batch, size - offset)
        a = rng.integers(0, len(base), count)
        b = (a + 1 + rng.integers(0, len(base) - 1, count)) % len(base)
        mixed = vectors[a] + vectors[b]
        mixed /= np.linalg.norm(mixed, axis=1, keepdims=True)
        records = []
        for j, (i, k) in enumerate(zip(a, b, strict=True)):
            units = parsed[i].units + parsed[k].units
            core = parsed[i].core if parsed[i].core is not None else None
            records.append(
                PoolRecord(
                    id=f"synthetic:{offset + j}",
                    videoid=str(offset + j),
                    pool="synthetic",
                    caption=f"{base[i]}, then {base[k]}",
                    units=units,
                    core=core,
                )
            )
        store.add(records, mixed, phrase_vectors if first_batch else {})
        first_batch = False
    return time.perf_counter() - start


def bench_queries(store: MemoryStore, prompts: list[str], candidates: int) -> dict:
    retriever = Retriever(store, config=SearchConfig(candidates=candidates))
    for prompt in prompts[:10]:  # warm caches and lazy imports
        retriever.retrieve(prompt)
    stages: dict[str, list[float]] = {"parse": [], "embed": [], "ann": [], "rerank": [], "total": []}
    for prompt in prompts:
        start = time.perf_counter()
        result = retriever.retrieve(prompt)
        stages["total"].append((time.perf_counter() - start) * 1000)
        for name, ms in result.timings_ms.items():
            stages[name].append(ms)
    return {name: (float(np.percentile(v, 50)), float(np.percentile(v, 95))) for name, v in stages.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="10000,100000")
    ap.add_argument("--base", type=int, default=20000, help="distinct captions embedded for real")
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--candidates", type=int, default=200, help="K, the ANN candidates re-ranked")
    ap.add_argument("--ingest", type=int, default=3000, help="captions for the ingest-throughput run")
    ap.add_argument("--threads", type=int, default=1, help="torch threads")
    ap.add_argument("--work", type=Path, default=None, help="folder for the pools (default: temporary)")
    ap.add_argument("--out", type=Path, default=Path("bench/results/search_latency.md"))
    args = ap.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    work = args.work or Path(tempfile.mkdtemp(prefix="reelgraph-latency-"))
    work.mkdir(parents=True, exist_ok=True)
    load = os.getloadavg()

    ingest = bench_ingest(work, args.ingest, seed=99)
    print(
        f"ingest: {ingest['n']} captions in {ingest['seconds']:.1f} s = {ingest['rate']:.0f} captions/s",
        flush=True,
    )

    start = time.perf_counter()
    base = toy_captions(args.base, seed=5)
    vectors = get_embedder().embed(base)
    parsed = get_parser().parse_many(base)
    base_s = time.perf_counter() - start
    print(f"base: {len(base)} captions embedded and parsed in {base_s:.0f} s", flush=True)
    prompts = [p for p in toy_captions(args.queries + len(base), seed=77) if p not in set(base)][
        : args.queries
    ]

    rows = []
    for size in [int(s) for s in args.sizes.split(",")]:
        home = work / f"pool-{size}"
        store = MemoryStore(home)
        build_s = build_pool(store, size, base, vectors, parsed, seed=size)
        disk = folder_bytes(home / "chroma")
        latency = bench_queries(store, prompts, args.candidates)
        rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        rows.append((size, build_s, disk, latency, rss_mb))
        print(
            size,
            f"build {build_s:.0f} s ({size / build_s:.0f} records/s)",
            f"disk {disk / 1e6:.0f} MB",
            latency,
            flush=True,
        )

    lines = [
        "# Retrieval latency, ingest throughput, disk and memory",
        "",
        f"Command: `python -m bench.search_latency --sizes {args.sizes} --base {args.base} --queries {args.queries}"
        f" --candidates {args.candidates} --ingest {args.ingest} --threads {args.threads}`  ",
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores (shared with other "
        f"sessions; load average at start {load[0]:.1f}), torch threads {args.threads}, Python "
        f"{platform.python_version()}, chromadb embedded (PersistentClient), HNSW cosine defaults.",
        "",
        "## Ingest throughput (real path: parse, MiniLM, Chroma)",
        "",
        f"{ingest['n']} distinct toy captions, no videos: **{ingest['rate']:.0f} captions/s** "
        f"({ingest['seconds']:.1f} s, models loaded beforehand excluded: no; the first batch pays lazy loads).",
        "",
        f"## Query latency (warm; `Retriever.retrieve`, K = {args.candidates} candidates, {len(prompts)} prompts)",
        "",
        f"Pools are synthesised from {len(base)} real embedded captions (module docstring; embedding and "
        f"parsing them took {base_s:.0f} s).",
        "",
        "| records | build s (records/s) | disk MB | disk per 1M records | parse p50/p95 | embed p50/p95 "
        "| ANN p50/p95 | re-rank p50/p95 | total p50/p95 ms | process max RSS MB |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for size, build_s, disk, lat, rss in rows:
        cells = " | ".join(
            f"{lat[s][0]:.1f} / {lat[s][1]:.1f}" for s in ("parse", "embed", "ann", "rerank", "total")
        )
        lines.append(
            f"| {size:,} | {build_s:.0f} ({size / build_s:.0f}/s) | {disk / 1e6:.0f} | "
            f"{disk / size * 1e6 / 1e9:.1f} GB | {cells} | {rss:.0f} |"
        )
    lines.append("")
    text = "\n".join(lines)
    print(text)
    from reelgraph.atomic import write_text

    write_text(args.out, text)
    if args.work is None:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
