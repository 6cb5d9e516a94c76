"""MiniLM through ONNX Runtime vs the fp32 torch path: agreement and speed, side by side.

* agreement: cosine and max |difference| of the two paths' vectors over ``--texts``
  real toy captions and their unit phrases;
* a query's embed call (the prompt and two phrases, as ``Retriever.retrieve`` makes
  it), the two paths interleaved call by call: p50 / p95 ms;
* ingest batches (64 texts a forward pass): texts/s, interleaved.

    python -m bench.text_encoder [--texts 1000] [--queries 300] [--threads 1]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import numpy as np

from bench.common import write_result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--texts", type=int, default=1000)
    ap.add_argument("--queries", type=int, default=300)
    ap.add_argument("--batches", type=int, default=5, help="timed batch rounds per path")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    from bench.search_latency import toy_captions
    from reelgraph.text.embeddings import TextEmbedder
    from reelgraph.text.units import get_parser, unit_phrases

    load = os.getloadavg()
    captions = toy_captions(args.texts, seed=11)
    phrases = unit_phrases(u for p in get_parser().parse_many(captions) for u in p.units)
    texts = captions + phrases
    started = time.perf_counter()
    encoders = {
        "torch": TextEmbedder(encoder="torch"),
        "onnx": TextEmbedder(encoder="onnx", cache=tempfile.mkdtemp(prefix="reelgraph-onnx-")),
    }
    encoders["onnx"].embed(["export"])
    export_s = time.perf_counter() - started

    a, b = encoders["torch"].embed(texts), encoders["onnx"].embed(texts)
    cosine = (a * b).sum(axis=1)
    difference = np.abs(a - b).max()

    query_ms: dict[str, list[float]] = {name: [] for name in encoders}
    for caption in captions[: args.queries]:
        for name, encoder in encoders.items():
            start = time.perf_counter()
            encoder.embed([caption, "roll to the right", "ball"])
            query_ms[name].append((time.perf_counter() - start) * 1000)
    batch = texts[:256]
    rates: dict[str, list[float]] = {name: [] for name in encoders}
    for _ in range(args.batches):
        for name, encoder in encoders.items():
            start = time.perf_counter()
            encoder.embed(batch)
            rates[name].append(len(batch) / (time.perf_counter() - start))

    def pct(values, q):
        return float(np.percentile(values, q))

    lines = [
        f"Load average at start {load[0]:.1f} (2 cores shared with a training run and other sessions); "
        f"torch threads {args.threads}, ONNX Runtime 1 intra-op thread. Export of the graph from the packaged "
        f"weights (first use, then cached): {export_s:.1f} s.",
        "",
        f"**Agreement** over {len(texts)} texts ({len(captions)} toy captions, {len(phrases)} unit phrases): "
        f"cosine min {cosine.min():.7f}, mean {cosine.mean():.7f}; max |difference| {difference:.2e} "
        "(target: cosine >= 0.999).",
        "",
        "| path | query embed p50 ms | p95 ms | min ms | batch of 256 texts/s (median) |",
        "|---|---|---|---|---|",
    ]
    for name in encoders:
        lines.append(
            f"| {name} | {pct(query_ms[name], 50):.2f} | {pct(query_ms[name], 95):.2f} | "
            f"{min(query_ms[name]):.2f} | {np.median(rates[name]):.0f} |"
        )
    ratio = pct(query_ms["torch"], 50) / pct(query_ms["onnx"], 50)
    lines += [
        "",
        f"Query embed: onnx is **{ratio:.2f}x** the torch path's speed by p50 (interleaved call by call, so the "
        f"load hits both alike; absolute figures move with the load, the ratio much less). Load average at "
        f"the end {os.getloadavg()[0]:.1f}.",
    ]
    write_result("text_encoder", "MiniLM: ONNX Runtime vs fp32 torch", "\n".join(lines))


if __name__ == "__main__":
    main()
