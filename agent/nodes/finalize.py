"""Write the viewing files and the manifest."""

from __future__ import annotations

import shutil
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from agent import long_video
from agent.services import Services
from agent.state import RunState
from reelgraph import __version__
from reelgraph.atomic import write_json
from reelgraph.contracts.clips import OutputFiles
from reelgraph.versions import package_versions


def finalize(state: RunState, services: Services) -> dict[str, Any]:
    """Decode every clip into the viewing files, then write the manifest (last, atomically)."""
    started = time.perf_counter()
    run_dir = Path(state.run_dir)
    caption = " | ".join(scene.prompt for scene in state.scenes)
    paths = [Path(c.latents_path) for c in state.clips]
    if any(c.kept is not None and c.kept != (0, c.num_frames) for c in state.clips):
        files = services.generator.write_outputs(paths, run_dir, caption, kept=[c.kept for c in state.clips])
    else:
        files = services.generator.write_outputs(paths, run_dir, caption)
    outputs = OutputFiles(**files)
    manifest_path = run_dir / "manifest.json"
    # The manifest is this node's last act, so it records the node's time up to here.
    timed = state.model_copy(update={"timings": {**state.timings, "finalize": time.perf_counter() - started}})
    write_json(manifest_path, build_manifest(timed, services, outputs))
    shutil.rmtree(state.work_dir, ignore_errors=True)  # clip latents served their purpose
    return {"outputs": outputs, "manifest_path": str(manifest_path)}


def build_manifest(state: RunState, services: Services, outputs: OutputFiles) -> dict[str, Any]:
    """Everything needed to reproduce the video: seeds, model and its hash, scheduler, plan, versions."""
    info = services.generator.model_info
    return {
        "reelgraph_version": __version__,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "prompt": " | ".join(scene.prompt for scene in state.scenes),
        "rewritten_prompt": [scene.rewrite.text for scene in state.scenes],
        "negative_prompt": state.request.negative_prompt,
        "seeds": {
            "base": state.request.seed,
            "scenes": [scene.seed for scene in state.scenes],
            "clips": [clip.seed for clip in state.clips],
        },
        "model": info.to_dict(),
        "scheduler": services.generator.scheduler_config(),
        "sampling": {
            "num_inference_steps": state.request.num_inference_steps,
            "guidance_scale": state.request.guidance_scale,
            "eta": state.request.eta,
            "num_frames": outputs.num_frames,
            "height": outputs.height,
            "width": outputs.width,
            "fps": outputs.fps,
        },
        "plan": state.plan_view(),
        "long_video": long_video.manifest_section(
            state, info.num_frames, long_video.temporal_compression(info)
        ),
        **({"origin": state.origin} if state.origin else {}),
        "timings": {name: round(seconds, 3) for name, seconds in state.timings.items()},
        "warnings": state.warnings,
        "outputs": {"video": "video.mp4", "gif": "video.gif", "sheet": "sheet.png"},
        "versions": package_versions(),
    }
