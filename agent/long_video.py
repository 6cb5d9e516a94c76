"""The agent's side of long videos: plan each scene's clips, and build each clip's call (no torch).

``estimate_costs`` records every scene's clips in its ``extension`` step
(seed, how each clip starts, the frames it keeps); ``sample`` makes the
first clip of a scene and ``extend`` the others, both through
:func:`clip_call`. Scenes after the first continue from the last clip of the
scene before (VidRD's prompt frames across a change of prompt, ART-V's
multi-prompt use) unless the run says otherwise or the scene starts from an
image.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from agent.state import RunState, ScenePlan, SceneRequest
from agent.steps import ExtensionStep
from generation.clip_plan import ClipSlot, ClipStartKind, ClipStartSpec, ExtensionParams, plan_scene_clips
from generation.families import family_named
from generation.images import load_image
from generation.model_info import ModelInfo
from reelgraph.contracts.clips import ClipRequest, ClipResult
from reelgraph.errors import ReelgraphError


def params_from_settings(settings: Any) -> ExtensionParams:
    """The run's extension parameters from its :class:`~reelgraph.settings.Settings`."""
    return ExtensionParams(
        mode=settings.extension_mode,
        pns=settings.extension_pns,
        dsg=settings.extension_dsg,
        prompt_frames=settings.extension_prompt_frames,
        alpha=settings.extension_alpha,
        beta=settings.extension_beta,
        keep=settings.extension_keep,
        continue_scenes=settings.scene_continuation,
        anchor=settings.anchor_first_clip,
        given_noise=settings.extension_given_noise,
    )


def continues_previous(state: RunState, index: int) -> bool:
    """Whether scene ``index`` starts from the last clip of scene ``index - 1``."""
    params = state.request.extension
    return index > 0 and params.reuses_clips and params.continue_scenes and state.scenes[index].image is None


def first_start(state: RunState, index: int) -> ClipStartKind:
    if state.scenes[index].image is not None:
        return "image"
    return "previous_scene" if continues_previous(state, index) else "noise"


def check_scenes(state: RunState) -> None:
    """Refuse, before anything runs, a video longer than the run's limit or an image that cannot be read."""
    for scene in state.scenes:
        if scene.image is not None:
            load_image(scene.image)
    total = sum(scene.num_frames for scene in state.scenes)
    limit = state.request.max_frames
    if limit is not None and total > limit:
        raise ReelgraphError(
            f"{total} frames were asked for; the limit is {limit}.",
            why="each clip costs a full sampling run, so very long videos are refused up front.",
            fix="ask for fewer frames, or raise max_video_frames (config or REELGRAPH_MAX_VIDEO_FRAMES).",
        )


def check_request_length(scenes: list[SceneRequest], clip_frames: int, limit: int | None) -> None:
    """Refuse, before any run folder is made, scenes whose total length is over ``limit``.

    A scene without ``num_frames`` counts as one clip of ``clip_frames`` (the model's), as it will run.
    """
    total = sum(scene.num_frames or clip_frames for scene in scenes)
    if limit is not None and total > limit:
        raise ReelgraphError(
            f"{total} frames were asked for ({len(scenes)} scenes; one without a length is a clip of "
            f"{clip_frames} frames); the limit is {limit}.",
            why="each clip costs a full sampling run, so very long videos are refused up front.",
            fix="ask for fewer or shorter scenes, or raise max_video_frames "
            "(config or REELGRAPH_MAX_VIDEO_FRAMES).",
        )


def temporal_compression(info: ModelInfo) -> int:
    """The model's VAE time compression ``r``: prompt frames are whole latent frames (``r k + 1``)."""
    return family_named(info.family).temporal_compression


def scene_clips(state: RunState, index: int, info: ModelInfo) -> list[ClipSlot]:
    """The clips of scene ``index`` (:func:`~generation.clip_plan.plan_scene_clips`)."""
    scene = state.scenes[index]
    continued = index + 1 < len(state.scenes) and continues_previous(state, index + 1)
    return plan_scene_clips(
        scene.num_frames,
        info.num_frames,
        state.request.extension,
        scene.seed,
        first_start=first_start(state, index),
        continued=continued,
        temporal_compression=temporal_compression(info),
    )


def extension_step(
    state: RunState, index: int, info: ModelInfo, slots: list[ClipSlot], clip_seconds: float
) -> ExtensionStep:
    """The scene's ``extension`` decision: planned with its clips, or skipped (one plain clip)."""
    clips = [slot.model_dump(mode="json") for slot in slots]
    n = info.num_frames
    scene = state.scenes[index]
    if (
        len(slots) == 1
        and slots[0].start == "noise"
        and not slots[0].kept[0]
        and not needs_handoff(state, index, 0, slots)
    ):
        return ExtensionStep(
            status="skipped",
            reason=f"{scene.num_frames} frames fit in one clip of {n}",
            clips=clips,
        )
    params = state.request.extension
    r = temporal_compression(info)
    how = params.describe(n, r)
    starts = {
        "previous_scene": f"continues scene {index}'s last frames",
        "image": "starts from the image",
    }
    lead = starts.get(slots[0].start)
    reason = f"{len(slots)} clip{'s' if len(slots) > 1 else ''} of {n} frames; extension {params.mode}: {how}"
    if lead:
        reason = f"{lead}; {reason}"
    extra_clips = len(slots) - 1
    if params.anchor:
        clip_seconds *= 1.0 + 1.0 / n  # one extra frame through the UNet per step (generation.anchor)
    return ExtensionStep(
        status="planned",
        reason=reason,
        method=params.planned(n, r).strategies,
        mode=params.mode,
        params=params.planned(n, r).model_dump(),
        num_clips=len(slots),
        clips=clips,
        estimated_seconds=round(clip_seconds * extra_clips, 2),
    )


def clips_made(state: RunState, index: int) -> int:
    """How many of scene ``index``'s clips are in ``state.clips`` (0 before its first clip)."""
    before = sum(len(s.extension.clips or [1]) for s in state.scenes[:index])
    return max(0, len(state.clips) - before)


def planned_slots(scene: ScenePlan) -> list[ClipSlot]:
    clips = scene.extension.clips
    if not clips:
        raise ReelgraphError(
            f"Scene {scene.index + 1} has no clip plan.", fix="run the planning nodes (estimate_costs) first."
        )
    return [ClipSlot.model_validate(clip) for clip in clips]


def needs_handoff(state: RunState, index: int, clip: int, slots: list[ClipSlot]) -> bool:
    """Whether clip ``clip`` of scene ``index`` must leave its prompt frames for a later clip."""
    params = state.request.extension
    if not params.reuses_clips:
        return False
    if clip + 1 < len(slots):
        return True
    return index + 1 < len(state.scenes) and continues_previous(state, index + 1)


def _anchor_role(state: RunState, index: int, clip: int) -> str:
    if not state.request.extension.anchor:
        return "none"
    total_clips = sum(len(scene.extension.clips or [1]) for scene in state.scenes)
    if total_clips < 2:
        return "none"
    return "record" if (index == 0 and clip == 0) else "apply"


def clip_paths(state: RunState, index: int, clip: int) -> tuple[Path, Path]:
    folder = state.work_dir / f"scene-{index:02d}"
    return folder / f"clip-{clip:03d}.safetensors", folder / f"clip-{clip:03d}.handoff.safetensors"


def clip_call(
    state: RunState, index: int, clip: int, previous: ClipResult | None
) -> tuple[ClipRequest, Path, dict[str, Any]]:
    """``(request, latents_path, kwargs)`` for ``sample_clip`` of clip ``clip`` of scene ``index``.

    ``kwargs`` is empty for a plain clip (a one-clip video samples exactly as
    it always did), else ``{"extension": ClipStartSpec}``.
    """
    scene = state.scenes[index]
    slots = planned_slots(scene)
    slot = slots[clip]
    request = state.clip_request(scene, num_frames=slot.num_frames, seed=slot.seed)
    latents_path, handoff_path = clip_paths(state, index, clip)
    handoff = needs_handoff(state, index, clip, slots)
    anchor_role = _anchor_role(state, index, clip)
    if slot.start == "noise" and not handoff and anchor_role == "none":
        return request, latents_path, {}
    previous_path = None
    if slot.start in ("previous_clip", "previous_scene"):
        if previous is None or previous.handoff_path is None:
            raise ReelgraphError(
                f"Clip {clip + 1} of scene {index + 1} continues a clip that left no prompt frames.",
                fix="this is a planning bug; re-run the request.",
            )
        previous_path = previous.handoff_path
    spec = ClipStartSpec(
        params=state.request.extension,
        start=slot.start,
        previous_path=previous_path,
        image_path=scene.image if slot.start == "image" else None,
        handoff_path=str(handoff_path) if handoff else None,
        anchor_path=str(state.work_dir / "anchor.safetensors") if anchor_role != "none" else None,
        anchor_role=anchor_role,
    )
    return request, latents_path, {"extension": spec}


def clip_label(state: RunState, index: int, clip: int, num_clips: int) -> str:
    parts = []
    if len(state.scenes) > 1:
        parts.append(f"scene {index + 1}/{len(state.scenes)}")
    if num_clips > 1:
        parts.append(f"clip {clip + 1}/{num_clips}")
    return ", ".join(parts) or "sampling"


def finish_clip(result: ClipResult, slot: ClipSlot) -> ClipResult:
    return result.model_copy(update={"kept": tuple(slot.kept)})


def manifest_section(state: RunState, clip_frames: int, temporal_compression: int = 1) -> dict[str, Any]:
    """The manifest's ``long_video``: parameters, and per clip its scene, seed, start and kept frames."""
    params: ExtensionParams = state.request.extension
    clips = []
    results = iter(state.clips)
    for scene in state.scenes:
        for slot, result in zip(planned_slots(scene), results, strict=False):
            clips.append(
                {
                    "scene": scene.index,
                    "clip": slot.index,
                    "seed": result.seed,
                    "start": result.start,
                    "num_frames": result.num_frames,
                    "kept": list(result.kept) if result.kept is not None else [0, result.num_frames],
                }
            )
    return {
        "method": params.planned(clip_frames, temporal_compression).strategies,
        "params": params.planned(clip_frames, temporal_compression).model_dump(),
        "clip_frames": clip_frames,
        "scenes": [
            {
                "index": scene.index,
                "prompt": scene.prompt,
                "num_frames": scene.num_frames,
                "image": scene.image,
                "start": (scene.extension.clips or [{"start": "noise"}])[0]["start"],
            }
            for scene in state.scenes
        ],
        "clips": clips,
    }


def unused_handoff(previous: ClipResult | None) -> None:
    """Remove a hand-off file once the clip that needed it is made (the work folder stays small)."""
    if previous is not None and previous.handoff_path:
        Path(previous.handoff_path).unlink(missing_ok=True)


__all__ = [
    "check_request_length",
    "check_scenes",
    "clip_call",
    "clip_label",
    "clips_made",
    "extension_step",
    "finish_clip",
    "manifest_section",
    "params_from_settings",
    "planned_slots",
    "scene_clips",
    "unused_handoff",
]
