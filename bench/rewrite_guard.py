"""Choose the semantic guard's similarity threshold from measurements (POS §4.3 rewrites).

Pairs (original, rewrite), each labelled good (meaning kept) or bad (meaning
changed):

* real world: ``bench/data/rewrite_pairs_real.jsonl``, hand-written prompts with
  LLM-style rewrites, good ones (added detail) and bad ones (changed actor,
  motion, direction, recipient, colour, number, negation, drift, injection);
* toy world: for eval labels, a caption against (good) another caption of the
  same label and the offline engine's enrichment with references from a
  caption pool, and (bad) a caption of the label with one thing changed
  (motion, direction, colour, shape or recipient).

For every threshold the script reports how many good rewrites the
similarity check alone accepts and how many bad ones it rejects, and the
same for the full guard (core unit, direction, key words, similarity).
The structural checks (core unit, direction, key words) reject most bad
rewrites whatever their similarity; the similarity is the last check, for
rewrites that keep the core but drift (piled-on content). The rule: the
highest threshold (step 0.05) at which the similarity check still accepts at
least 95 % of the structurally sound good rewrites of both domains.

    python bench/rewrite_guard.py [--toy 150]    # writes bench/results/rewrite_guard.md
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import write_result

THRESHOLDS = [round(0.3 + 0.05 * i, 2) for i in range(14)]  # 0.30 .. 0.95


def toy_pairs(n: int, seed: int = 7) -> list[dict]:
    from toyworld.captions import describe, prompt_set, sample_label
    from toyworld.spec import COLORS, MOTIONS, SHAPES, SPIN_SHAPES, TWO_OBJECT_MOTIONS, Label

    rng = np.random.default_rng(seed)
    flips = {
        "move_left": "move_right",
        "move_right": "move_left",
        "move_up": "move_down",
        "move_down": "move_up",
    }
    pairs = []
    for _ in range(n):
        label = sample_label(rng, "eval")
        original = describe(label, rng).text
        pairs.append(
            {"prompt": original, "rewrite": describe(label, rng).text, "kind": "good", "why": "paraphrase"}
        )
        data = label.to_dict()
        change = rng.choice(["motion", "colour", "shape", "direction", "recipient"])
        if change == "direction" and data["motion"] in flips:
            data["motion"] = flips[data["motion"]]
        elif change == "colour":
            data["actor"]["color"] = str(rng.choice([c for c in COLORS if c != data["actor"]["color"]]))
            if data["recipient"] and data["recipient"]["color"] == data["actor"]["color"]:
                data["recipient"]["color"] = label.actor.color
        elif change == "shape":
            shapes = [s for s in SHAPES if s != data["actor"]["shape"]]
            if data["motion"] == "spin":
                shapes = [s for s in shapes if s in SPIN_SHAPES]
            data["actor"]["shape"] = str(rng.choice(shapes))
        elif change == "recipient" and data["recipient"]:
            data["recipient"]["shape"] = str(
                rng.choice([s for s in SHAPES if s != data["recipient"]["shape"]])
            )
        else:
            change = "motion"
            same_kind = [
                m
                for m in MOTIONS
                if m != data["motion"] and (m in TWO_OBJECT_MOTIONS) == (data["motion"] in TWO_OBJECT_MOTIONS)
            ]
            if data["actor"]["shape"] not in SPIN_SHAPES:
                same_kind = [m for m in same_kind if m != "spin"]
            data["motion"] = str(rng.choice(same_kind))
        changed = Label.from_dict(data)
        pairs.append(
            {"prompt": original, "rewrite": describe(changed, rng).text, "kind": "bad", "why": str(change)}
        )
    # The offline engine's own rewrites, with references from a caption pool (nearest by MiniLM).
    from agent.rewriting.rewriter import OfflineEnricher
    from reelgraph.text.embeddings import get_embedder
    from reelgraph.text.units import get_parser

    pool = [row["prompt"] for row in prompt_set(2000, seed + 1, "pool")]
    embedder = get_embedder()
    pool_vectors = embedder.embed(pool)
    enricher = OfflineEnricher(get_parser())
    originals = [p["prompt"] for p in pairs[::2]]
    for original, vector in zip(originals, embedder.embed(originals), strict=True):
        refs = [pool[i] for i in np.argsort(-(pool_vectors @ vector))[:5]]
        enriched = enricher.enrich(original, refs, 20)
        if enriched != original:
            pairs.append({"prompt": original, "rewrite": enriched, "kind": "good", "why": "offline"})
    return pairs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--toy", type=int, default=150, help="toy labels (each gives a good and a bad pair)")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch

    torch.set_num_threads(1)
    from agent.rewriting.rewriter import SemanticGuard
    from reelgraph.text.embeddings import get_embedder
    from reelgraph.text.units import get_parser

    started = time.perf_counter()
    real = [
        json.loads(line)
        for line in Path("bench/data/rewrite_pairs_real.jsonl").read_text().splitlines()
        if line
    ]
    data = {"real": real, "toy": toy_pairs(args.toy)}
    guard = SemanticGuard(get_parser(), get_embedder(), min_similarity=0.0)
    for pairs in data.values():
        for pair in pairs:
            decision = guard.check(pair["prompt"], pair["rewrite"])
            pair["similarity"] = decision.similarity
            pair["structural_ok"] = decision.accepted  # every check but similarity (threshold 0)

    def structural_ok(pairs):
        return [p for p in pairs if p["structural_ok"]]

    def rates(pairs, t):
        good = [p for p in pairs if p["kind"] == "good"]
        bad = [p for p in pairs if p["kind"] == "bad"]
        return {
            "good_sim": np.mean([p["similarity"] >= t for p in good]) if good else float("nan"),
            "bad_sim": np.mean([p["similarity"] < t for p in bad]) if bad else float("nan"),
            "good_guard": np.mean([p["structural_ok"] and p["similarity"] >= t for p in good]),
            "bad_guard": np.mean([not (p["structural_ok"] and p["similarity"] >= t) for p in bad]),
        }

    chosen = max(
        (
            t
            for t in THRESHOLDS
            if all(rates(structural_ok(pairs), t)["good_sim"] >= 0.95 for pairs in data.values())
        ),
        default=THRESHOLDS[0],
    )
    lines = [
        f"Ran in {time.perf_counter() - started:.0f} s.",
        "",
        "Pairs: "
        + ", ".join(
            f"{name}: {sum(p['kind'] == 'good' for p in pairs)} good / {sum(p['kind'] == 'bad' for p in pairs)} bad"
            for name, pairs in data.items()
        ),
        "",
        "MiniLM similarity of rewrite to original (mean, 5th / 95th percentile):",
        "",
        "| domain | kind | mean | p5 | p95 |",
        "|---|---|---|---|---|",
    ]
    for name, pairs in data.items():
        for kind in ("good", "bad"):
            sims = np.array([p["similarity"] for p in pairs if p["kind"] == kind])
            lines.append(
                f"| {name} | {kind} | {sims.mean():.3f} | {np.percentile(sims, 5):.3f} | {np.percentile(sims, 95):.3f} |"
            )
    lines += [
        "",
        "Rates per threshold t: good accepted / bad rejected, by similarity alone, by similarity among the",
        "structurally sound pairs (core unit, direction and key words kept), and by the full guard:",
        "",
        "| t | real good (sim) | real bad (sim) | toy good (sim) | toy bad (sim) | sound real good / bad (sim) | sound toy good (sim) | real good (guard) | real bad (guard) | toy good (guard) | toy bad (guard) |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for t in THRESHOLDS:
        r, y = rates(data["real"], t), rates(data["toy"], t)
        sr, sy = rates(structural_ok(data["real"]), t), rates(structural_ok(data["toy"]), t)
        mark = " **chosen**" if t == chosen else ""
        lines.append(
            f"| {t:.2f}{mark} | {r['good_sim']:.2f} | {r['bad_sim']:.2f} | {y['good_sim']:.2f} | {y['bad_sim']:.2f} "
            f"| {sr['good_sim']:.2f} / {sr['bad_sim']:.2f} | {sy['good_sim']:.2f} "
            f"| {r['good_guard']:.2f} | {r['bad_guard']:.2f} | {y['good_guard']:.2f} | {y['bad_guard']:.2f} |"
        )
    lines += ["", f"Chosen threshold: **{chosen:.2f}** (rule in the script's docstring).", ""]
    lines += ["Bad rewrites the full guard accepts at the chosen threshold:", ""]
    for name, pairs in data.items():
        missed = [p for p in pairs if p["kind"] == "bad" and p["structural_ok"] and p["similarity"] >= chosen]
        for p in missed:
            lines.append(
                f"- {name} ({p.get('why')}, {p['similarity']:.2f}): {p['prompt']!r} -> {p['rewrite']!r}"
            )
        if not missed:
            lines.append(f"- {name}: none")
    lines += ["", "Good rewrites the full guard rejects at the chosen threshold (first 12):", ""]
    rejected = [
        (name, p)
        for name, pairs in data.items()
        for p in pairs
        if p["kind"] == "good" and not (p["structural_ok"] and p["similarity"] >= chosen)
    ]
    for name, p in rejected[:12]:
        lines.append(
            f"- {name} ({p.get('why', '')}, {p['similarity']:.2f}): {p['prompt']!r} -> {p['rewrite']!r}"
        )
    path = write_result(
        "rewrite_guard", "Semantic guard: choosing the similarity threshold", "\n".join(lines)
    )
    print(path.read_text())


if __name__ == "__main__":
    main()
