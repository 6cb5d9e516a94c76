"""The graph's nodes: small verbs over :class:`~agent.state.RunState`.

Each node takes the state and the services, and returns the fields it
changes. Planning nodes (``understand_request`` ... ``estimate_costs``) touch
no GPU and load no diffusion model; GPU nodes (``tune_motion``, ``sample``,
``extend``) run once per scene; ``finalize`` writes the viewing files and the
manifest.

A node whose capability is not available records ``skipped`` with the reason
and changes nothing else.
"""

from __future__ import annotations

import shutil
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from agent.services import Services
from agent.state import RunState, ScenePlan, ToolStep, skipped
from generation.estimate import device_kind, estimate_clip
from generation.requests import ClipRequest, OutputFiles
from reelgraph import __version__
from reelgraph.atomic import write_json
from reelgraph.errors import ReelgraphError
from reelgraph.versions import package_versions

NOT_YET = {
    "units": "atomized units (spaCy) are not available: they arrive with the memory and search issue",
    "references": "the reference pool (Chroma) is not available: it arrives with the memory and search issue",
    "rewrite": "prompt rewriting is not available: it arrives with the POS issue",
    "tuning": "motion-prior tuning is not available: it arrives with the motion-prior issue",
}


def _scene_update(state: RunState, index: int, **fields: ToolStep) -> list[ScenePlan]:
    scenes = [scene.model_copy() for scene in state.scenes]
    scenes[index] = scenes[index].model_copy(update=fields)
    return scenes


def _all_scenes(state: RunState, **fields: ToolStep) -> list[ScenePlan]:
    return [scene.model_copy(update=fields) for scene in state.scenes]


# -- planning --------------------------------------------------------------------------------
def understand_request(state: RunState, services: Services) -> dict[str, Any]:
    """Turn the request into scenes with lengths and seeds (scene k gets seed + k)."""
    info = services.generator.model_info
    scenes = []
    for index, scene in enumerate(state.request.scenes):
        prompt = " ".join(scene.prompt.split())
        if not prompt:
            raise ReelgraphError(
                f"Scene {index + 1} has an empty prompt."
                if len(state.request.scenes) > 1
                else "The prompt is empty.",
                fix="describe the video, e.g. 'a red ball rolls to the right'.",
            )
        scenes.append(
            ScenePlan(
                index=index,
                prompt=prompt,
                num_frames=scene.num_frames or info.num_frames,
                seed=state.request.seed + index,
            )
        )
    return {"scenes": scenes}


def parse_units(state: RunState, services: Services) -> dict[str, Any]:
    return {"scenes": _all_scenes(state, units=skipped(NOT_YET["units"]))}


def retrieve(state: RunState, services: Services) -> dict[str, Any]:
    return {"scenes": _all_scenes(state, references=skipped(NOT_YET["references"]))}


def rewrite(state: RunState, services: Services) -> dict[str, Any]:
    return {"scenes": _all_scenes(state, rewrite=skipped(NOT_YET["rewrite"]))}


def choose_noise(state: RunState, services: Services) -> dict[str, Any]:
    noise = ToolStep(
        status="done",
        reason="Gaussian noise from the scene's seed: no pool inversion (ONA) or noise network (NPNet) is available",
        source="random",
    )
    return {"scenes": _all_scenes(state, noise=noise)}


def _clip_request(state: RunState, scene: ScenePlan) -> ClipRequest:
    return ClipRequest(
        prompt=scene.prompt,
        negative_prompt=state.request.negative_prompt,
        num_frames=scene.num_frames,
        num_inference_steps=state.request.num_inference_steps,
        guidance_scale=state.request.guidance_scale,
        eta=state.request.eta,
        seed=scene.seed,
    )


def estimate_costs(state: RunState, services: Services) -> dict[str, Any]:
    """Plan the GPU steps of every scene and estimate their time and memory."""
    info = services.generator.model_info
    scenes = []
    total_seconds, peak = 0.0, 0.0
    for scene in state.scenes:
        request = _clip_request(state, scene)
        services.generator.check_clip(request)
        seconds, memory = estimate_clip(
            info, scene.num_frames, request.num_inference_steps, request.guidance_scale, services.device
        )
        total_seconds += seconds
        peak = max(peak, memory)
        sampling = ToolStep(
            status="planned",
            reason=f"DDIM, {request.num_inference_steps} steps, guidance {request.guidance_scale:g}",
            model=info.model_id,
            num_frames=scene.num_frames,
            num_inference_steps=request.num_inference_steps,
            guidance_scale=request.guidance_scale,
            seed=scene.seed,
            estimated_seconds=round(seconds, 2),
        )
        extension = skipped(f"{scene.num_frames} frames fit in one clip of {info.num_frames}")
        tuning = skipped(NOT_YET["tuning"])
        scenes.append(
            scene.model_copy(update={"sampling": sampling, "extension": extension, "tuning": tuning})
        )
    from agent.state import Estimates

    estimates = Estimates(
        seconds=round(total_seconds, 2),
        peak_memory_gb=round(peak, 3),
        device=device_kind(services.device),
        notes="rough: within a factor of about two",
    )
    return {"scenes": scenes, "estimates": estimates}


# -- GPU work, one scene at a time ---------------------------------------------------------------
def tune_motion(state: RunState, services: Services) -> dict[str, Any]:
    """Run the scene's planned motion tuning; scenes whose plan skips tuning pass through."""
    scene = state.scenes[state.scene_index]
    if scene.tuning.status != "planned":
        return {}
    raise ReelgraphError(
        f"Scene {scene.index + 1} plans motion tuning, but no tuner service was given to the graph.",
        fix="build the graph with a motion tuner, or plan without tuning.",
    )


def _work_dir(state: RunState) -> Path:
    if state.run_dir is None:
        raise ReelgraphError("A generate run needs an output folder.", fix="pass --out DIR.")
    return Path(state.run_dir) / "work"


def sample(state: RunState, services: Services) -> dict[str, Any]:
    """Denoise the current scene's first clip."""
    scene = state.scenes[state.scene_index]
    label = f"scene {scene.index + 1}/{len(state.scenes)}" if len(state.scenes) > 1 else "sampling"
    path = _work_dir(state) / f"scene-{scene.index:02d}" / "clip-000.safetensors"
    result = services.generator.sample_clip(_clip_request(state, scene), path, label=label)
    sampling = scene.sampling.model_copy(update={"status": "done", "seconds": round(result.seconds, 2)})
    return {
        "clips": [*state.clips, result],
        "scenes": _scene_update(state, scene.index, sampling=sampling),
        "warnings": [*state.warnings, *result.warnings],
    }


def extend(state: RunState, services: Services) -> dict[str, Any]:
    """Move on to the next scene (clip extension arrives with the long-video issue)."""
    return {"scene_index": state.scene_index + 1}


def finalize(state: RunState, services: Services) -> dict[str, Any]:
    """Decode every clip into the viewing files, then write the manifest (last, atomically)."""
    started = time.perf_counter()
    run_dir = Path(state.run_dir)
    caption = " | ".join(scene.prompt for scene in state.scenes)
    files = services.generator.write_outputs([Path(c.latents_path) for c in state.clips], run_dir, caption)
    outputs = OutputFiles(**files)
    manifest_path = run_dir / "manifest.json"
    # The manifest is this node's last act, so it records the node's time up to here.
    timed = state.model_copy(update={"timings": {**state.timings, "finalize": time.perf_counter() - started}})
    write_json(manifest_path, build_manifest(timed, services, outputs))
    shutil.rmtree(_work_dir(state), ignore_errors=True)  # clip latents served their purpose
    return {"outputs": outputs, "manifest_path": str(manifest_path)}


def build_manifest(state: RunState, services: Services, outputs: OutputFiles) -> dict[str, Any]:
    """Everything needed to reproduce the video: seeds, model and its hash, scheduler, plan, versions."""
    info = services.generator.model_info
    return {
        "reelgraph_version": __version__,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "prompt": " | ".join(scene.prompt for scene in state.scenes),
        "rewritten_prompt": [getattr(scene.rewrite, "text", None) for scene in state.scenes],
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
        "timings": {name: round(seconds, 3) for name, seconds in state.timings.items()},
        "warnings": state.warnings,
        "outputs": {"video": "video.mp4", "gif": "video.gif", "sheet": "sheet.png"},
        "versions": package_versions(),
    }
