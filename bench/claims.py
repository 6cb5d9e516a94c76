"""The papers' claims re-measured (issue 23): one row per claim, from paired runs, into docs/claims.md.

Each claim compares two arms that sampled the same prompts with the same seeds (the eval folders
of ``toyworld.evaluation``: ``<folder>/<arm>/rows.jsonl``, one row per sample), scored by the toy
probe, and tests the difference with the exact paired sign test (McNemar's for 0/1 outcomes,
``toyworld.paired``). A claim whose runs are not there yet is listed as not measured, with the
command that measures it. The model of a row is the weights hash its samples' manifests record.

    python bench/claims.py [--long DIR] [--pos DIR] [--out docs/claims.md]

``--long``: the work folder of ``bench/long_video_direction.py`` (claims 6 and 7);
``--pos``: the eval folder of ``bench/pos_ablation.py`` (claims 1-3); ``--retrieval``: the per-prompt
file of ``bench/toy_retrieval.py --rows`` (claim 4).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from reelgraph.atomic import write_text
from toyworld.paired import paired_test


@dataclass(frozen=True)
class Claim:
    number: int
    text: str
    paper: str  # the paper's own figure
    source: str  # "long" or "pos": which run folder holds the arms
    part: str  # subfolder of the source ("part_a", "drift", "")
    baseline: str
    arm: str
    metric: str
    higher_is_better: bool
    command: str


LONG = (
    "python bench/long_video_direction.py --prompts 60 --samples 2 --clips 4 --drift-prompts 40 "
    "--drift-clips 8 --steps 25"
)
POS = "python bench/pos_ablation.py --n-prompts 60 --samples 2"
CLAIMS = (
    Claim(1, "ONA improves quality (η = 0.1)", "POS Fig. 6: η sweep", "pos", "", "baseline", "ona_eta0.1",
          "all_ok", True, POS),
    Claim(1, "ONA improves quality (η = 0.2)", "POS Table 1: FVD 607 -> 567 (η 0.2, MSR-VTT)", "pos", "",
          "baseline", "ona_eta0.2", "all_ok", True, POS),
    Claim(1, "ONA improves quality (η = 0.5, the paper's best in Fig. 6)", "POS Fig. 6: best at η = 0.5", "pos",
          "", "baseline", "ona_eta0.5", "all_ok", True, POS),
    Claim(1, "ONA improves quality (η = 1.0)", "POS Fig. 6: η sweep", "pos", "", "baseline", "ona_eta1.0",
          "all_ok", True, POS),
    Claim(2, "NPNet predicts useful noise", "POS §4.2 (no separate number)", "pos", "", "baseline",
          "npnet_eta0.5", "all_ok", True, POS),
    Claim(2, "NPNet predicts useful noise (against ONA)", "POS §4.2: NPNet stands in for ONA", "pos", "",
          "ona_eta0.5", "npnet_eta0.5", "all_ok", True, POS),
    Claim(3, "Hybrid semantics keep the meaning that rewriting loses (γ = 0.1)",
          "POS Table 4b: CLIP-SIM kept with γ < 1", "pos", "", "rewrite_only", "spr_gamma0.1", "all_ok", True, POS),
    Claim(3, "Hybrid semantics keep the meaning that rewriting loses (γ = 0.5)",
          "POS Table 4b: CLIP-SIM kept with γ < 1", "pos", "", "rewrite_only", "spr_gamma0.5", "all_ok", True, POS),
    Claim(6, "FNR + PNS + DSG is smoother than independent clips", "VidRD Fig. 9 (qualitative)", "long",
          "part_a", "independent", "VidRD keeping direction", "boundary_smoothness", False, LONG),
    Claim(6, "Keeping direction keeps the motion at joins (ours, against eq. 6-8 as printed)",
          "— (our departure from VidRD)", "long", "part_a", "VidRD literal", "VidRD keeping direction",
          "direction_consistency", True, LONG),
    Claim(6, "ART-V continuation keeps the motion at joins", "ART-V §3.1 (drift)", "long", "part_a",
          "independent", "ART-V + anchor", "direction_consistency", True, LONG),
    Claim(7, "The anchor keeps identity to the 8th clip", "ART-V Fig. 8a: FVD better with the anchor", "long",
          "drift", "ART-V", "ART-V + anchor", "identity_kept_at_end", True, LONG),
)  # fmt: skip
RETRIEVAL = (
    "python -m bench.toy_retrieval --pool-size 2000 --prompts 200 --prompt-seed 2024 --ks 200 "
    "--out bench/results/toy_retrieval_claims.md --rows bench/results/toy_retrieval_claims.json"
)
MOTION = "python bench/motion_prior.py --prompts 60 --samples 2 --only zigzag"
# Claim 5's three comparisons: (text, baseline condition, arm condition).
MOTION_ROWS = (
    ("Tuning on a retrieved video beats a random one", "random", "retrieved"),
    ("Tuning on a retrieved video beats no tuning", "base", "retrieved"),
    ("Tuning on a random video beats no tuning", "base", "random"),
)
BEGIN, END = "<!-- claims:begin (bench/claims.py writes this block) -->", "<!-- claims:end -->"


def _rows(folder: Path) -> list[dict]:
    path = folder / "rows.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _model_hash(folder: Path) -> str:
    manifest = next(folder.glob("samples/*/manifest.json"), None)
    if manifest is None:
        return "?"
    return json.loads(manifest.read_text())["model"]["weights_hash"]


def measure(claim: Claim, root: Path) -> dict | None:
    """The claim's paired result from ``root`` (the source's folder), or None when its arms are missing."""
    base, arm = root / claim.part / claim.baseline, root / claim.part / claim.arm
    if not (base / "rows.jsonl").is_file() or not (arm / "rows.jsonl").is_file():
        return None
    a = {(r["index"], r["sample"]): r.get(claim.metric) for r in _rows(base)}
    b = {(r["index"], r["sample"]): r.get(claim.metric) for r in _rows(arm)}
    keys = sorted(set(a) & set(b))
    sign = 1.0 if claim.higher_is_better else -1.0
    flip = [None if a[k] is None else sign * float(a[k]) for k in keys]
    flop = [None if b[k] is None else sign * float(b[k]) for k in keys]
    result = paired_test(flip, flop)
    models = {_model_hash(base), _model_hash(arm)}
    return {
        "n": result.n,
        "baseline": sign * result.mean_a,
        "arm": sign * result.mean_b,
        "better": result.b_better,
        "worse": result.a_better,
        "p": result.p_value,
        "model": ", ".join(sorted(models)),
        "prompts": len({k[0] for k in keys}),
        "samples": len({k[1] for k in keys}),
    }


def retrieval_row(path: Path | None) -> str:
    """Claim 4 from ``bench/toy_retrieval.py --rows``: top-1 motion of the motion prior (exhaustive
    candidates) against the sentence-similarity ranking (POS eq. 3), prompt by prompt."""
    claim = (
        4,
        "Motion-aware search beats sentence similarity",
        "Search-T2V Fig. 5",
        "sentence similarity -> motion prior (top-1 `motion_ok`)",
    )
    if path is None or not path.is_file():
        return unmeasured_row(*claim, RETRIEVAL)
    rows = json.loads(path.read_text())["exhaustive"]
    m = paired_test([r["base_motion_ok"] for r in rows], [r["motion_ok"] for r in rows])
    return measured_row(
        *claim,
        m.mean_a,
        m.mean_b,
        f"{m.n} prompts",
        m.b_better,
        m.a_better,
        m.p_value,
        "text model all-MiniLM-L6-v2 (no video model)",
    )


def verdict(p: float, better: int, worse: int) -> str:
    if p < 0.05:
        return "reproduces" if better > worse else "reversed"
    return "not shown (p >= 0.05)"


def measured_row(
    number: int,
    text: str,
    paper: str,
    arms: str,
    baseline: float,
    arm: float,
    size: str,
    better: int,
    worse: int,
    p: float,
    model: str,
) -> str:
    """One row of the table: the two arms' means, the pairs that differ, the sign test and its verdict."""
    cells = (
        number,
        text,
        paper,
        arms,
        f"{baseline:.3f} -> {arm:.3f}",
        size,
        f"{better} / {worse}",
        f"{p:.2g}",
        verdict(p, better, worse),
        model,
    )
    return "| " + " | ".join(map(str, cells)) + " |"


def unmeasured_row(number: int, text: str, paper: str, arms: str, command: str) -> str:
    return f"| {number} | {text} | {paper} | {arms} | not measured yet: `{command}` | | | | | |"


def motion_rows(paths: list[Path]) -> list[str]:
    """Claim 5 from ``bench/motion_prior.py`` runs (``rows.json`` of one or more ``--work`` folders,
    e.g. two ``--range`` halves): the rare motion's ``motion_ok``, paired by prompt and sample."""
    rows = [r for path in paths for r in json.loads(path.read_text())["rows"] if r["motion"] == "zigzag"]
    if not rows:
        return [
            unmeasured_row(
                5, "Tuning on a retrieved video beats a random one, and both beat none", "", "", MOTION
            )
        ]
    model = json.loads(paths[0].read_text())["meta"].get("weights_hash", "?")
    k = len(rows[0]["samples"]["base"])
    out = []
    for text, base, arm in MOTION_ROWS:
        a = [float(s["motion_ok"]) for r in rows for s in r["samples"][base]]
        b = [float(s["motion_ok"]) for r in rows for s in r["samples"][arm]]
        m = paired_test(a, b)
        out.append(
            measured_row(
                5,
                f"{text} (the rare motion, zigzag)",
                "Search-T2V ablation: retrieval > random > none",
                f"{base} -> {arm} (`motion_ok`)",
                m.mean_a,
                m.mean_b,
                f"{m.n} ({len(rows)} x {k})",
                m.b_better,
                m.a_better,
                m.p_value,
                f"`{model}`",
            )
        )
    return out


def table(
    sources: dict[str, Path | None], retrieval: Path | None = None, motion: list[Path] | None = None
) -> str:
    lines = [
        "| # | claim | paper | baseline -> arm (metric) | ours | n (prompts x seeds) | pairs better / worse | p | verdict | model |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for claim in CLAIMS:
        root = sources.get(claim.source)
        m = None if root is None else measure(claim, root)
        arms = f"{claim.baseline} -> {claim.arm} (`{claim.metric}`)"
        if m is None:
            lines.append(unmeasured_row(claim.number, claim.text, claim.paper, arms, claim.command))
            continue
        size = f"{m['n']} ({m['prompts']} x {m['samples']})"
        lines.append(
            measured_row(
                claim.number,
                claim.text,
                claim.paper,
                arms,
                m["baseline"],
                m["arm"],
                size,
                m["better"],
                m["worse"],
                m["p"],
                f"`{m['model']}`",
            )
        )
    lines.append(retrieval_row(retrieval))
    lines.extend(motion_rows(motion or []))
    head, rows = lines[:2], lines[2:]
    rows.sort(key=lambda line: int(line.split("|")[1]))  # by claim number, stable within a claim
    return "\n".join(head + rows) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--long", type=Path, default=None, help="bench/long_video_direction.py's --work")
    parser.add_argument("--pos", type=Path, default=None, help="bench/pos_ablation.py's eval folder")
    parser.add_argument(
        "--retrieval",
        type=Path,
        default=Path("bench/results/toy_retrieval_claims.json"),
        help="toy_retrieval --rows",
    )
    parser.add_argument(
        "--motion", type=Path, nargs="*", default=[], help="bench/motion_prior.py's rows.json files (claim 5)"
    )
    parser.add_argument("--out", type=Path, default=Path("docs/claims.md"))
    args = parser.parse_args()
    body = table({"long": args.long, "pos": args.pos}, args.retrieval, args.motion)
    given = (("long", args.long), ("pos", args.pos), ("retrieval", args.retrieval))
    shown = " ".join(f"--{k} {v}" for k, v in given if v is not None)
    if args.motion:
        shown += " --motion " + " ".join(map(str, args.motion))
    block = f"""{BEGIN}
Regenerate: `python bench/claims.py {shown}` after the runs each row names. Every row compares two
arms on the same prompts and seeds; `p` is the exact two-sided paired sign test (McNemar's for 0/1
outcomes; `toyworld/paired.py`) over the pairs where the arms differ; `pairs better / worse` counts
them. Lower is better for `boundary_smoothness` (1.0 is seamless); the table shows it as measured.

{body}{END}"""
    write_block(args.out, block)
    print(body)


def write_block(out: Path, block: str) -> None:
    """Write ``block`` (from ``BEGIN`` to ``END``) into ``out``, keeping the hand-written text around an
    earlier block; a new file gets a title and the block."""
    old = out.read_text() if out.is_file() else ""
    if BEGIN in old and END in old:
        text = old[: old.index(BEGIN)] + block + old[old.index(END) + len(END) :]
    else:
        text = f"# The papers' claims, re-measured on the embedded model (issue 23)\n\n{block}\n"
    write_text(out, text)


if __name__ == "__main__":
    main()
