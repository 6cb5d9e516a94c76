"""Retrieval latency at pool scale, ingest throughput, disk and memory per record.

Two measurements:

1. Ingest throughput of the real path (`memory.ingest.ingest_csv`: parse units,
   MiniLM embedding, Chroma writes) on a CSV of distinct toy captions, without
   videos (no probing).
2. Query latency of `Retriever.retrieve` (p50/p95 of parse, embed, ANN and
   re-rank) on large pools, three query paths interleaved prompt by prompt so
   that load from other processes hits them alike:

   * ``chroma-records``: the path before the record table (the ANN call reads
     the K candidates' metadata and documents from Chroma), torch MiniLM;
   * ``table``: ids and distances from Chroma, units from the record table
     (``memory/record_table.py``), torch MiniLM;
   * ``table+onnx``: the same with ``text_encoder = onnx``.

   Pools are reused from ``--work`` when they are there (records already
   written are skipped; the record table is rebuilt from Chroma when missing,
   and that time is reported). Embedding a million captions with MiniLM is out of
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
import hashlib
import json
import os
import platform
import resource
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from memory.ingest import ingest_csv
from memory.store import TABLE_FOLDER, MemoryStore, PoolRecord, unit_phrase_set
from motion_prior.search import Retriever, SearchConfig
from reelgraph.text.embeddings import get_embedder
from reelgraph.text.units import ParsedPrompt, get_parser

STAGES = ("parse", "embed", "ann", "rerank", "total")


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


def base_embeddings(work: Path, base: list[str]) -> tuple[np.ndarray, list[ParsedPrompt]]:
    """MiniLM vectors ``(N, 384)`` and units of the base captions, kept in ``work`` for later runs."""
    key = hashlib.sha256("\n".join(base).encode()).hexdigest()[:16]
    vectors_file, parsed_file = work / f"base-{key}.npy", work / f"base-{key}.json"
    if vectors_file.is_file() and parsed_file.is_file():
        parsed = [ParsedPrompt.model_validate(p) for p in json.loads(parsed_file.read_text())]
        return np.load(vectors_file), parsed
    vectors = get_embedder().embed(base)
    parsed = get_parser().parse_many(base)
    np.save(vectors_file, vectors)
    parsed_file.write_text(json.dumps([p.model_dump() for p in parsed]))
    return vectors, parsed


def build_pool(
    store: MemoryStore, size: int, base: list[str], vectors: np.ndarray, parsed, seed: int
) -> float:
    """Write ``size`` synthetic records (see the module docstring); returns seconds."""
    rng = np.random.default_rng(seed)
    written = store.count("synthetic")
    if written >= size:
        return 0.0  # built by an earlier run in the same --work folder
    all_phrases = unit_phrase_set(
        [PoolRecord(id="x", videoid="x", pool="x", caption="", units=p.units) for p in parsed]
    )
    phrase_vectors = dict(zip(all_phrases, get_embedder().embed(all_phrases), strict=True))
    start = time.perf_counter()
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


class ChromaRecords:
    """The query path before the record table: the ANN call returns the K candidates' records."""

    def __init__(self, store: MemoryStore, pool: str | None = None):
        self.store, self.pool = store, pool

    def nearest(self, vector: np.ndarray, k: int):
        return self.store.nearest(vector, k, pool=self.pool)


def bench_queries(store: MemoryStore, prompts: list[str], candidates: int, onnx_cache: Path) -> dict:
    """p50/p95 per stage and path; the paths run interleaved, prompt by prompt."""
    config = SearchConfig(candidates=candidates)
    parser = get_parser()
    paths = {
        "chroma-records": Retriever(store, get_embedder(), parser, config, index=ChromaRecords(store)),
        "table": Retriever(store, get_embedder(), parser, config),
        "table+onnx": Retriever(store, get_embedder(None, "onnx", str(onnx_cache)), parser, config),
    }
    tops: dict[str, list[str]] = {name: [] for name in paths}
    for prompt in prompts[:10]:  # warm caches, lazy imports, the table and the ONNX export
        for retriever in paths.values():
            retriever.retrieve(prompt)
    stages = {name: {stage: [] for stage in STAGES} for name in paths}
    for prompt in prompts:
        for name, retriever in paths.items():
            start = time.perf_counter()
            result = retriever.retrieve(prompt)
            stages[name]["total"].append((time.perf_counter() - start) * 1000)
            for stage, ms in result.timings_ms.items():
                stages[name][stage].append(ms)
            tops[name].append(result.motion_hits[0].id if result.motion_hits else "")
    out = {
        name: {stage: (float(np.percentile(v, 50)), float(np.percentile(v, 95))) for stage, v in per.items()}
        for name, per in stages.items()
    }
    same = {
        name: sum(a == b for a, b in zip(tops[name], tops["chroma-records"], strict=True)) for name in paths
    }
    return {"stages": out, "same_top": same, "n": len(prompts)}


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

    ingest = bench_ingest(work, args.ingest, seed=99) if args.ingest else None
    if ingest:
        print(
            f"ingest: {ingest['n']} captions in {ingest['seconds']:.1f} s = {ingest['rate']:.0f} captions/s",
            flush=True,
        )

    start = time.perf_counter()
    base = toy_captions(args.base, seed=5)
    vectors, parsed = base_embeddings(work, base)
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
        started = time.perf_counter()
        table = store.table  # opened, or rebuilt from Chroma when missing
        table_s = store.table_seconds
        open_s = time.perf_counter() - started
        disk = folder_bytes(home / "chroma")
        table_disk = folder_bytes(home / TABLE_FOLDER)
        latency = bench_queries(store, prompts, args.candidates, work / "text-cache")
        rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        load_now = os.getloadavg()[0]
        rows.append((size, build_s, disk, table_disk, table_s, open_s, latency, rss_mb, load_now))
        print(size, f"build {build_s:.0f} s", f"disk {disk / 1e6:.0f} MB + table {table_disk / 1e6:.0f} MB",
              f"table rebuild {table_s} s, open {open_s:.1f} s ({table.distinct_records} records)",
              latency, flush=True)  # fmt: skip

    lines = [
        "# Retrieval latency, ingest throughput, disk and memory",
        "",
        f"Command: `python -m bench.search_latency --sizes {args.sizes} --base {args.base} --queries {args.queries}"
        f" --candidates {args.candidates} --ingest {args.ingest} --threads {args.threads}`  ",
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores (shared with other "
        f"sessions; load average at start {load[0]:.1f}), torch threads {args.threads}, Python "
        f"{platform.python_version()}, chromadb embedded (PersistentClient), HNSW cosine defaults.",
        "",
        "## Ingest throughput (real path: parse, MiniLM, Chroma, record table)",
        "",
        f"{ingest['n']} distinct toy captions, no videos: **{ingest['rate']:.0f} captions/s** "
        f"({ingest['seconds']:.1f} s; the first batch pays the models' lazy loads)."
        if ingest
        else "Not measured in this run (`--ingest 0`).",
        "",
        "## Pools",
        "",
        f"Synthesised from {len(base)} real embedded toy captions (module docstring; embedding and parsing "
        f"them took {base_s:.0f} s). Build: Chroma writes of this run (0 when the pool was there already).",
        "",
        "| records | build s | Chroma disk MB | record table MB | table rebuild from Chroma s | open s "
        "| process max RSS MB | load average after |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for size, build_s, disk, table_disk, table_s, open_s, _, rss, load_now in rows:
        rebuilt = "-" if table_s is None else f"{table_s:.0f}"
        lines.append(
            f"| {size:,} | {build_s:.0f} | {disk / 1e6:.0f} | {table_disk / 1e6:.0f} | {rebuilt} | {open_s:.1f} "
            f"| {rss:.0f} | {load_now:.1f} |"
        )
    lines += [
        "",
        f"## Query latency (warm; `Retriever.retrieve`, K = {args.candidates}, {len(prompts)} prompts, "
        "paths interleaved)",
        "",
        "Milliseconds p50 / p95. *same top-1*: prompts whose top motion hit equals the chroma-records path's.",
        "",
        "| records | path | parse | embed | ANN | re-rank | total | same top-1 |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for size, *_, latency, _rss, _load in rows:
        for name, stages in latency["stages"].items():
            cells = " | ".join(f"{stages[s][0]:.1f} / {stages[s][1]:.1f}" for s in STAGES)
            lines.append(f"| {size:,} | {name} | {cells} | {latency['same_top'][name]}/{latency['n']} |")
    lines.append("")
    text = "\n".join(lines)
    print(text)
    from reelgraph.atomic import write_text

    write_text(args.out, text)
    if args.work is None:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
