"""Text+image-to-video on the embedded model: does ``generate --image`` keep the given first frame?

For ``--prompts`` single-object prompts (``toyworld.captions.prompt_set``), the toy world renders the
prompt's scene and its first frame becomes the image. Two arms, the same prompts and seeds:

* ``text`` : ``generate PROMPT`` (text-to-video, the reference for motion accuracy);
* ``image``: ``generate PROMPT --image first.png`` (on a model with a continuation network the
  image goes through the conditioning channels as given frame 0, ART-V's masked diffusion).

Columns, from the probe (``toyworld.probe``) on each video and on the rendered clip:

* ``first frame PSNR``: the video's first frame against the image (both at 32 x 32, dB);
* ``object kept``: the probe's actor in frame 0 has the image's colour and shape, and its centroid
  lies within 2 px of the image's;
* ``object kept at the last frame``: the same colour and shape at the last frame;
* ``motion acc``: the probe's motion equals the prompt's.

    python bench/image_to_video.py [--prompts 60] [--steps 20] [--model toy] [--work DIR]
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import write_result
from toyworld.spec import SINGLE_MOTIONS

# Motions the probe can tell from a first frame on (``stay`` has no motion to keep).
SINGLE = tuple(m for m in SINGLE_MOTIONS if m != "stay")


def first_frames(rows: list[dict], work: Path, seed: int) -> list[tuple[Path, Any]]:
    """The rendered clip of each prompt's label and its first frame saved as PNG."""
    import numpy as np
    from PIL import Image

    from toyworld.render import render_video

    rng = np.random.default_rng(seed)
    out = []
    for index, row in enumerate(rows):
        clip = render_video(row["label"], 8, rng)
        path = work / "images" / f"{index:04d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(clip[0]).save(path)
        out.append((path, clip))
    return out


def downscaled(frame, size: int = 32):
    """An upscaled video frame ``(H, W, 3)`` back to ``size`` x ``size`` by area averaging."""
    import numpy as np

    h, w, _ = frame.shape
    return frame.reshape(size, h // size, size, w // size, 3).astype(np.float64).mean(axis=(1, 3))


def psnr(a, b) -> float:
    import numpy as np

    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return 99.0 if mse == 0 else 10 * math.log10(255.0**2 / mse)


def actor_at(result, frame: int):
    """(colour, shape, centroid) of the probe's actor at ``frame``, or None."""
    if not result.tracks:
        return None
    track = result.tracks[result.actor if result.actor is not None else 0]
    if not track.present[frame]:
        return None
    return track.color, track.shape, track.centroid[frame]


def score(run_dir: Path, image: Path, row: dict) -> dict[str, float]:
    import numpy as np
    from PIL import Image

    from reelgraph.media import read_video
    from toyworld.probe import probe

    video = read_video(run_dir / "video.mp4")
    given = np.asarray(Image.open(image).convert("RGB"))
    seen, reference = probe(video), probe(given[None].repeat(2, axis=0))
    first, last, want = actor_at(seen, 0), actor_at(seen, len(video) - 1), actor_at(reference, 0)
    kept = (
        first is not None
        and want is not None
        and first[:2] == want[:2]
        and math.dist(first[2], want[2]) * 32 / video.shape[2] <= 2.0
    )
    label = row["label"]["actor"]
    return {
        "first_frame_psnr": psnr(downscaled(video[0]), given),
        "object_kept": float(kept),
        "object_kept_at_end": float(last is not None and want is not None and last[:2] == want[:2]),
        "motion_acc": float(seen.motion == row["label"]["motion"]),
        "color_acc": float(first is not None and first[0] == label["color"]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="toy")
    parser.add_argument("--prompts", type=int, default=60)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--seed", type=int, default=31)
    parser.add_argument("--work", type=Path, default=Path("outputs/bench/image_to_video"))
    args = parser.parse_args()

    import torch

    from agent.batch import GenerationJob
    from agent.state import SceneRequest
    from generation.model_info import locate_model, read_model_info
    from reelgraph.settings import load_settings
    from toyworld.captions import prompt_set
    from toyworld.evaluation import generate_samples

    torch.set_num_threads(2)
    settings = load_settings(
        {"model": args.model, "device": "cpu", "num_inference_steps": args.steps}, home=args.work / "home"
    ).settings
    info = read_model_info(*locate_model(args.model))
    rows = prompt_set(args.prompts, seed=args.seed, motions=SINGLE)
    images = first_frames(rows, args.work, args.seed)
    jobs = []
    for index, (row, (image, _)) in enumerate(zip(rows, images, strict=True)):
        config = settings.model_copy(update={"seed": args.seed + index})
        for arm, scene in (
            ("text", SceneRequest(prompt=row["prompt"], num_frames=info.num_frames)),
            ("image", SceneRequest(prompt=row["prompt"], num_frames=info.num_frames, image=str(image))),
        ):
            run_dir = args.work / arm / f"{index:04d}"
            jobs.append((arm, GenerationJob(settings=config, run_dir=run_dir, scenes=(scene,))))
    started = time.perf_counter()
    generate_samples(jobs, settings)
    seconds = time.perf_counter() - started
    results: dict[str, dict[str, float]] = {}
    for arm in ("text", "image"):
        scores = [score(args.work / arm / f"{i:04d}", images[i][0], row) for i, row in enumerate(rows)]
        results[arm] = {k: sum(s[k] for s in scores) / len(scores) for k in scores[0]}
    columns = ("first_frame_psnr", "object_kept", "object_kept_at_end", "motion_acc", "color_acc")
    head = "| arm | " + " | ".join(columns) + " |\n|---|" + "---|" * len(columns) + "\n"
    body = head + "".join(
        f"| {arm} | " + " | ".join(f"{r[c]:.2f}" for c in columns) + " |\n" for arm, r in results.items()
    )
    text = f"""Model `{args.model}` (weights `{info.weights_hash}`), {args.prompts} single-object prompts
(`prompt_set({args.prompts}, seed={args.seed})`), {args.steps} steps, seeds {args.seed} + prompt index, the
same for both arms; the image is the first frame of the toy world's render of the prompt.
{len(jobs)} videos in {seconds / 60:.1f} min.

{body}
`object kept`: the probe's actor in the first frame has the image's colour and shape and lies
within 2 px of the image's object. `text` has no image, so its first-frame columns measure how
far a free first frame is from the rendered one (the floor the image arm must beat).
"""
    write_result("image_to_video", "Text+image-to-video: the given first frame kept", text)
    print(json.dumps(results))


if __name__ == "__main__":
    main()
