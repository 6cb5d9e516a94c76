"""Long videos: frames per second, and peak memory for 2, 4 and 8 clips (it should not grow).

Each clip count runs ``generate`` (the whole graph: VidRD FNR+PNS+DSG
extension, then finalize) in a *fresh* Python process, so each peak is that
run's own. Memory is the process's peak resident set size
(``resource.getrusage(RUSAGE_SELF).ru_maxrss``, which covers torch's CPU
allocator; tracemalloc would see only Python objects), read at three points:

* ``first clip``: after the first clip is sampled (model loaded, one clip done);
* ``all clips``: after the last clip is sampled, before finalize;
* ``finished``: after finalize (decode, MP4, GIF, contact sheet, manifest).

On a GPU the child also reports ``torch.cuda.max_memory_allocated``. Flat
memory means ``all clips`` equals ``first clip`` whatever the number of clips:
each clip's latents go to the work folder and only the small hand-off to the
next clip stays in memory.

    python bench/long_video.py [--model toy] [--steps 25] [--clips 2 4 8]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux reports KiB


def child(args: argparse.Namespace) -> None:
    """One run: generate a video of exactly ``args.clips`` clips and print its measurements as JSON."""
    import tempfile

    import torch

    from agent import runner
    from generation.clip_plan import ExtensionParams
    from generation.model_info import locate_model, read_model_info
    from reelgraph.settings import load_settings

    torch.set_num_threads(args.threads)
    clips = args.clips[0]
    folder, _ = locate_model(args.model)
    clip = read_model_info(folder).num_frames
    new = ExtensionParams().new_frames(clip)
    frames = clip + (clips - 1) * new
    home = Path(tempfile.mkdtemp(prefix="bench-long-"))
    settings = load_settings(
        {
            "model": args.model,
            "device": args.device,
            "num_inference_steps": args.steps,
            "num_frames": frames,
            "seed": 0,
            "motion_tuning": "never",  # measure extension alone
        },
        home=home,
        environ={},
    ).settings
    marks: dict[str, float] = {}
    steps_done = {"n": 0}

    def progress(label: str, completed: int, total: int) -> None:
        if completed == total:
            steps_done["n"] += 1
            if steps_done["n"] == 1:
                marks["first clip"] = _rss_mb()
            if steps_done["n"] == clips:
                marks["all clips"] = _rss_mb()
                marks["sampled_at"] = time.perf_counter()

    started = time.perf_counter()
    state = runner.generate(settings, "a red ball rolls to the right", home / "run", progress=progress)
    wall = time.perf_counter() - started
    marks["finished"] = _rss_mb()
    sampling = sum(clip.seconds for clip in state.clips)  # the service times each clip after the model loads
    result = {
        "clips": len(state.clips),
        "frames": state.outputs.num_frames,
        "sampling_seconds": sampling,
        "clip_seconds": [round(clip.seconds, 3) for clip in state.clips],
        "finalize_seconds": state.timings.get("finalize", 0.0),
        "wall_seconds": wall,
        "rss_mb": {k: v for k, v in marks.items() if k != "sampled_at"},
    }
    if torch.cuda.is_available():
        result["cuda_max_allocated_mb"] = torch.cuda.max_memory_allocated() / 2**20
    print("RESULT " + json.dumps(result))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default="toy")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--steps", type=int, default=25)
    parser.add_argument("--clips", type=int, nargs="+", default=[2, 4, 8])
    parser.add_argument("--threads", type=int, default=1)  # 2 threads on 2 busy cores run ~6x slower
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return

    from bench.common import write_result

    rows = []
    for clips in args.clips:
        command = [
            sys.executable, __file__, "--child", "--clips", str(clips), "--model", args.model,
            "--device", args.device, "--steps", str(args.steps), "--threads", str(args.threads),
        ]  # fmt: skip
        output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
        line = next(line for line in output.splitlines() if line.startswith("RESULT "))
        rows.append(json.loads(line[len("RESULT ") :]))
        print(rows[-1], flush=True)

    table = [
        "| clips | frames | sampling s | frames/s (sampling) | s/clip | peak RSS MB: first clip | all clips | finished |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        rss = r["rss_mb"]
        table.append(
            f"| {r['clips']} | {r['frames']} | {r['sampling_seconds']:.1f} | "
            f"{r['frames'] / r['sampling_seconds']:.2f} | {r['sampling_seconds'] / r['clips']:.2f} | "
            f"{rss['first clip']:.0f} | {rss['all clips']:.0f} | {rss['finished']:.0f} |"
        )
    growth = rows[-1]["rss_mb"]["all clips"] - rows[0]["rss_mb"]["all clips"]
    per_clip = [r["sampling_seconds"] / r["clips"] for r in rows]
    body = f"""
Model `{args.model}`, {args.steps} sampling steps (DDIM or flow: the model's), VidRD FNR+PNS+DSG with the default M = N/2, α = 4,
β = 0.4 (prompt frames not repeated), guidance from the model, {args.device}, one fresh process per row.
Memory is the process's peak resident set (ru_maxrss) at three points (see the script's docstring).

{chr(10).join(table)}

Peak memory after sampling all clips grows by {growth:+.0f} MB from {rows[0]["clips"]} to
{rows[-1]["clips"]} clips; time per clip stays between {min(per_clip):.2f} and {max(per_clip):.2f} s
(linear in the number of clips). The `finished` column adds finalize: the MP4 is streamed clip by clip,
but the GIF and contact sheet are built from all frames held as uint8 (32x32x3 = 3 KB a frame, plus the
GIF's enlarged copy), the one part that grows with the video's length.
"""
    write_result("long_video", "Long videos: speed and peak memory by number of clips", body)


if __name__ == "__main__":
    main()
