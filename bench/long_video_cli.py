"""Issue 6's command-line acceptance: a 32-frame ``generate`` and a 2-scene ``storyboard``.

Runs the two commands exactly as a user would (``python cli.py ...`` in a
subprocess), then reads the results back: the video's frame count from the
MP4, the manifest's ``long_video`` section (the extension parameters and the
clips), for the storyboard the probe's reading of the actor before and after
the scene change, and copies the two contact sheets into ``docs/``.

    python bench/long_video_cli.py [--model toy] [--steps 25] [--seed 0]

Writes bench/results/long_video_cli.md, docs/long-video-sheet.png and
docs/storyboard-sheet.png; runs go to --work.
"""

from __future__ import annotations

import argparse
import json
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

ROOT = Path(__file__).resolve().parent.parent
PROMPT = "a red ball rolls to the right"
STORYBOARD = ROOT / "docs" / "examples" / "storyboard.yaml"


def run_cli(arguments: list[str]) -> tuple[str, str, float]:
    """Run ``python cli.py ARGS``; returns (the command as shown, its output, seconds)."""
    command = [sys.executable, "cli.py", *arguments]
    started = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{shlex.join(command)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return "python " + shlex.join(["cli.py", *arguments]), done.stdout.strip(), seconds


def excerpt(manifest: dict) -> str:
    """The manifest's ``long_video`` section (one scene or clip a line) and its sampling settings, as JSON."""

    def one(value) -> str:
        return json.dumps(value, ensure_ascii=False)

    section = manifest["long_video"]
    lines = ['"long_video": {']
    for key, value in section.items():
        if isinstance(value, list):
            items = ",\n".join(f"    {one(item)}" for item in value)
            lines.append(f'  "{key}": [\n{items}\n  ],')
        else:
            lines.append(f'  "{key}": {one(value)},')
    lines[-1] = lines[-1].rstrip(",")
    lines.append("},")
    lines.append(f'"sampling": {one(manifest["sampling"])}')
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default="toy")
    parser.add_argument("--steps", type=int, default=25)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--story-seed", type=int, default=3)
    parser.add_argument("--work", type=Path, default=Path("outputs/long_video_cli"))
    args = parser.parse_args()

    import numpy as np

    from bench.common import write_result
    from reelgraph.media import read_video
    from toyworld.long_metrics import (
        boundary_smoothness,
        scene_boundaries,
        scene_change,
        segments_from_manifest,
    )
    from toyworld.probe import area_resize

    work = args.work.resolve()
    common = ["--model", args.model, "--steps", str(args.steps), "--overwrite"]
    long_dir, story_dir = work / "long32", work / "storyboard"
    long_cmd, long_out, long_s = run_cli(
        ["generate", PROMPT, "--frames", "32", "--seed", str(args.seed), "--out", str(long_dir), *common]
    )
    story_cmd, story_out, story_s = run_cli(
        [
            "storyboard",
            str(STORYBOARD.relative_to(ROOT)),
            "--seed",
            str(args.story_seed),
            "--out",
            str(story_dir),
            *common,
        ]
    )

    def read(run_dir: Path) -> tuple[np.ndarray, dict]:
        frames = np.clip(np.rint(area_resize(read_video(run_dir / "video.mp4"))), 0, 255).astype(np.uint8)
        return frames, json.loads((run_dir / "manifest.json").read_text())

    long_frames, long_manifest = read(long_dir)
    story_frames, story_manifest = read(story_dir)
    clip = int(story_manifest["long_video"]["clip_frames"])
    (boundary,) = scene_boundaries(story_manifest)
    change = scene_change(story_frames, boundary, clip)
    scene_segments = [(0, boundary), (boundary, len(story_frames))]
    n_clips = len(long_manifest["long_video"]["clips"])
    smooth = boundary_smoothness(long_frames, segments_from_manifest(long_manifest))
    docs = ROOT / "docs"
    shutil.copyfile(long_dir / "sheet.png", docs / "long-video-sheet.png")
    shutil.copyfile(story_dir / "sheet.png", docs / "storyboard-sheet.png")
    body = f"""
## 1. `generate --frames 32`

```
{long_cmd}
```

{long_s:.0f} s. Printed:

```
{long_out}
```

The MP4 has **{len(long_frames)} frames** from {n_clips} clips of {clip} frames; boundary smoothness
{smooth:.3f} (1 = seamless). Contact sheet: `docs/long-video-sheet.png`. Manifest excerpt:

```json
{excerpt(long_manifest)}
```

## 2. A 2-scene storyboard

`{STORYBOARD.relative_to(ROOT)}`:

```yaml
{STORYBOARD.read_text().strip()}
```

```
{story_cmd}
```

{story_s:.0f} s. Printed:

```
{story_out}
```

The MP4 has **{len(story_frames)} frames**; the scene change is at frame {boundary}. The probe reads the
actor in the {clip} frames before it as {change["before"]} and in the {clip} frames after it as
{change["after"]}: colour kept {change["color_kept"]}, shape kept {change["shape_kept"]}; change at the
scene boundary / mean change elsewhere {boundary_smoothness(story_frames, scene_segments):.3f}.
Contact sheet: `docs/storyboard-sheet.png`. Manifest excerpt:

```json
{excerpt(story_manifest)}
```
"""
    write_result(
        "long_video_cli", "Long videos from the command line: 32 frames and a 2-scene storyboard", body
    )


if __name__ == "__main__":
    main()
