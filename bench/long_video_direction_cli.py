"""Issue 18's acceptance command, before and after: the probe's per-clip x-centroid trajectory and label.

Runs ``generate "a yellow triangle moves to the left" --frames 40 --seed 11 --steps 20`` with
``--extension vidrd-literal`` (the reading before issue 18, which the literal option reproduces)
and ``--extension vidrd`` (keeping direction, the default now), and on a model with a continuation
network ``--extension artv`` without and with the anchor, probes each video and writes
``bench/results/long_video_direction_cli.md``.

``--variants`` adds three 16-frame runs of the same prompt and seed with ``extension_alpha`` /
``extension_beta`` changed (``α = 0, β = 0.4``; ``α = 4, β = 1``; ``α = 0, β = 1``), to see what
moves the new frames. ``--reuse`` reads runs already in ``--work`` instead of making them again.

    python bench/long_video_direction_cli.py [--work DIR] [--variants] [--reuse]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import write_result
from toyworld.long_metrics import actor_centroids, direction_consistency, segments_from_manifest

ROOT = Path(__file__).resolve().parent.parent
PROMPT = "a yellow triangle moves to the left"
ARGS = ["--frames", "40", "--seed", "11", "--steps", "20"]


def trajectory(run_dir: Path) -> str:
    """The probe's label and the actor's x-centroid per kept segment, one line per clip."""
    from reelgraph.media import read_video
    from toyworld.probe import probe

    manifest = json.loads((run_dir / "manifest.json").read_text())
    result = probe(read_video(run_dir / "video.mp4"))
    segments = segments_from_manifest(manifest)
    centroids = actor_centroids(result)
    track = result.tracks[result.actor if result.actor is not None else 0] if result.tracks else None
    label = f"{track.color} {track.shape}, {result.motion}" if track else f"nothing seen, {result.motion}"
    kept = direction_consistency(centroids, segments)
    lines = [
        f"probe label: {label}; direction kept at {kept if kept is None else round(kept, 2)} of the joins"
    ]
    for i, (a, b) in enumerate(segments):
        xs = " ".join("-" if c is None else f"{c[0]:.1f}" for c in centroids[a:b])
        lines.append(f"clip {i}: frames [{a},{b}) x = {xs}")
    return "\n".join(lines)


# (folder, --extension, title, flags, settings)
RUNS = [
    ("vidrd-literal", "vidrd-literal", "before (eq. 6-8 as printed)", ARGS, {}),
    ("vidrd", "vidrd", "after (keeping direction)", ARGS, {}),
]
# On a model with a continuation network (reelgraph.json "conditioning_frames" / "anchor_frame").
ARTV_RUNS = [
    ("artv", "artv", "ART-V masked continuation, no anchor", ARGS, {}),
    ("artv-anchor", "artv", "ART-V with anchor and noise augmentation", ARGS, {"anchor_first_clip": "true"}),
]
VARIANTS = [
    (
        f"vidrd-a{a:g}-b{b:g}",
        "vidrd",
        f"keeping direction, α = {a:g}, β = {b:g}, 16 frames",
        ["--frames", "16", *ARGS[2:]],
        {"extension_alpha": a, "extension_beta": b},
    )
    for a, b in ((0.0, 0.4), (4.0, 1.0), (0.0, 1.0))
]


def continuation_runs() -> list:
    """ART-V's runs where the embedded model has a continuation network (with an anchor), else none."""
    from generation.model_info import locate_model, read_model_info

    info = read_model_info(*locate_model("toy"))
    if not info.conditioning_frames:
        return []
    return ARTV_RUNS if info.anchor_frame else ARTV_RUNS[:1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, default=Path("outputs/bench/long_video_direction_cli"))
    parser.add_argument("--variants", action="store_true")
    parser.add_argument("--reuse", action="store_true", help="read runs already in --work")
    args = parser.parse_args()
    sections = []
    for name, mode, title, flags, settings in (
        RUNS + continuation_runs() + (VARIANTS if args.variants else [])
    ):
        out = args.work / name
        env = {**os.environ, **{f"REELGRAPH_{k.upper()}": str(v) for k, v in settings.items()}}
        command = [
            sys.executable,
            str(ROOT / "cli.py"),
            "--home",
            str(args.work / "home"),
            "generate",
            PROMPT,
        ]
        command += [*flags, "--extension", mode, "--out", str(out), "--overwrite", "--json"]
        if not (args.reuse and (out / "manifest.json").is_file()):
            subprocess.run(command, check=True, cwd=ROOT, stdout=subprocess.DEVNULL, env=env)
        shown = " ".join(f"REELGRAPH_{k.upper()}={v}" for k, v in settings.items())
        shown += f' generate "{PROMPT}" {" ".join(flags)} --extension {mode}'
        sections.append(f"## {title}\n\n`{shown.strip()}`\n\n```\n{trajectory(out)}\n```\n")
    write_result(
        "long_video_direction_cli", "The 'moves to the left' video, before and after", "\n".join(sections)
    )


if __name__ == "__main__":
    main()
