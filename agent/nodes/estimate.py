"""Plan each scene's GPU work and estimate time and memory, before anything loads."""

from __future__ import annotations

from typing import Any

from agent import long_video
from agent.nodes.tune import plan_tuning
from agent.services import Services
from agent.state import Estimates, RunState
from agent.steps import SamplingStep
from generation.clip_plan import artv_refusal
from generation.estimate import device_kind, estimate_clip
from reelgraph.errors import ReelgraphError


def estimate_costs(state: RunState, services: Services) -> dict[str, Any]:
    """Plan the GPU steps of every scene and estimate their time and memory."""
    info = services.generator.model_info
    scenes = []
    total_seconds, peak = 0.0, 0.0
    long_video.check_scenes(state)
    for scene in state.scenes:
        slots = long_video.scene_clips(state, scene.index, info)
        _refuse_what_the_model_cannot_do(state, scene, slots, info)
        request = state.clip_request(scene, num_frames=slots[0].num_frames)
        services.generator.check_clip(request)
        seconds, memory = estimate_clip(
            info, request.num_frames, request.num_inference_steps, request.guidance_scale, services.device
        )
        extension = long_video.extension_step(state, scene.index, info, slots, seconds)
        total_seconds += seconds + (extension.estimated_seconds or 0.0)
        peak = max(peak, memory)
        sampling = SamplingStep(
            status="planned",
            reason=f"{_sampler(info)}, {request.num_inference_steps} steps, guidance {request.guidance_scale:g}"
            + _rounding(scene, info),
            model=info.model_id,
            **({"family": info.family, "flow_shift": info.flow_shift} if info.flow_shift is not None else {}),
            num_frames=request.num_frames,
            num_inference_steps=request.num_inference_steps,
            guidance_scale=request.guidance_scale,
            seed=scene.seed,
            estimated_seconds=round(seconds, 2),
        )
        tuning = plan_tuning(scene, services)
        total_seconds += (tuning.estimated_seconds or 0.0) if tuning.status == "planned" else 0.0
        scenes.append(
            scene.model_copy(update={"sampling": sampling, "extension": extension, "tuning": tuning})
        )
    estimates = Estimates(
        seconds=round(total_seconds, 2),
        peak_memory_gb=round(peak, 3),
        device=device_kind(services.device),
        notes="rough: within a factor of about two",
    )
    return {"scenes": scenes, "estimates": estimates}


def _sampler(info) -> str:
    """How the model samples, as the plan says it: DDIM, or the family's flow matching and shift."""
    if info.flow_shift is None:
        return "DDIM"
    return f"{info.family} flow matching ({info.scheduler_class}, shift {info.flow_shift:g})"


def _refuse_what_the_model_cannot_do(state: RunState, scene, slots, info) -> None:
    """A scene that needs a method the model's family cannot run is refused here, in the plan,
    with the family's reason, never silently run without it."""
    needs = []
    if len(slots) > 1 or long_video.continues_previous(state, scene.index):
        needs.append(("extension", f"{scene.num_frames} frames take {len(slots)} clips of {info.num_frames}"))
    if scene.image is not None:
        needs.append(("image2video", "the scene starts from an image"))
    params = state.request.extension
    continued = scene.index > 0 and params.continue_scenes and scene.image is None
    artv_needed = needs or (
        [("extension", f"scene {scene.index + 1} continues scene {scene.index}")] if continued else []
    )
    artv_why = artv_refusal(
        bool(info.conditioning_frames), info.flow_shift is not None, params.anchor, bool(info.anchor_frame)
    )
    if params.mode == "artv" and artv_needed and artv_why is not None:
        why_needed = artv_needed[0][1]
        raise ReelgraphError(
            f"Scene {scene.index + 1} needs a continuation ({why_needed}); --extension artv cannot run "
            f"on {info.model_id!r}.",
            why=f"artv: {artv_why}.",
            fix="use --extension vidrd (VidRD keeping direction) or --extension independent "
            "(REELGRAPH_EXTENSION_MODE, or extension: in a storyboard).",
        )
    for method, why_needed in needs:
        refusal = info.refusal(method)
        if refusal is not None:
            raise ReelgraphError(
                f"Scene {scene.index + 1} needs {method} ({why_needed}), which {info.model_id!r} "
                f"({info.family}) cannot run.",
                why=f"{method}: {refusal}.",
                fix=f"ask for at most {info.num_frames} frames in one scene, without --image, "
                "or use a model that runs it (README, method support per family).",
            )


def _rounding(scene, info) -> str:
    """Why the scene has more frames than were asked for, when the model's frame rule rounded them."""
    if scene.frames_asked is None:
        return ""
    r = info.temporal_compression
    return (
        f"; {scene.frames_asked} frames asked, rounded up to {scene.num_frames}: the VAE compresses time "
        f"{r}x after the first frame, so clips have {r}k + 1 frames"
    )
