"""Issue 18's acceptance command, before and after: the probe's per-clip x-centroid trajectory and label.

Runs ``generate "a yellow triangle moves to the left" --frames 40 --seed 11 --steps 20`` with
``--extension vidrd-literal`` (the reading before issue 18, which the literal option reproduces)
and ``--extension vidrd`` (keeping direction, the default now), probes each video and writes
``bench/results/long_video_direction_cli.md``.

    python bench/long_video_direction_cli.py [--work DIR]
"""

from __future__ import annotations

import argparse
import json
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, default=Path("outputs/bench/long_video_direction_cli"))
    args = parser.parse_args()
    sections = []
    for mode, title in (
        ("vidrd-literal", "before (eq. 6-8 as printed)"),
        ("vidrd", "after (keeping direction)"),
    ):
        out = args.work / mode
        command = [
            sys.executable,
            str(ROOT / "cli.py"),
            "--home",
            str(args.work / "home"),
            "generate",
            PROMPT,
        ]
        command += [*ARGS, "--extension", mode, "--out", str(out), "--overwrite", "--json"]
        subprocess.run(command, check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
        shown = f'generate "{PROMPT}" {" ".join(ARGS)} --extension {mode}'
        sections.append(f"## {title}\n\n`{shown}`\n\n```\n{trajectory(out)}\n```\n")
    write_result(
        "long_video_direction_cli",
        "The 40-frame 'moves to the left' video, before and after",
        "\n".join(sections),
    )


if __name__ == "__main__":
    main()
