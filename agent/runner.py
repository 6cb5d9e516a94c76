"""Entry points that turn settings and a request into a finished graph run.

The CLI and tests call these; they build the services once and hand them to
:func:`agent.graph.build_graph`.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any

from agent import long_video
from agent.composition import build_services
from agent.graph import run_graph
from agent.resume import resume as resume_run
from agent.resume import resume_dir, run_checkpointed, saved_settings
from agent.resumed_settings import resumed_settings
from agent.services import Services
from agent.state import RunRequest, RunState, SceneRequest
from generation.service import ProgressHook
from reelgraph.errors import ReelgraphError
from reelgraph.settings import INT_MAX, Settings


def make_request(settings: Settings, services: Services, scenes: list[SceneRequest]) -> RunRequest:
    """Fill the request's sampling options from the settings; an unset seed is drawn and recorded."""
    long_video.check_request_length(
        scenes, services.generator.model_info.num_frames, settings.max_video_frames
    )
    seed = settings.seed if settings.seed is not None else secrets.randbelow(2**31)
    if not 0 <= seed <= INT_MAX:  # a seed named in a chat message or by the LLM skips settings validation
        raise ReelgraphError(f"Seed {seed} is out of range.", fix=f"give a seed between 0 and {INT_MAX}.")
    return RunRequest(
        scenes=scenes,
        seed=seed,
        num_inference_steps=settings.num_inference_steps,
        guidance_scale=services.generator.default_guidance(),
        eta=settings.eta,
        negative_prompt=settings.negative_prompt,
        extension=long_video.params_from_settings(settings.long_video),
        max_frames=settings.max_video_frames,
        budget_seconds=settings.budget_seconds,
    )


def _single_scene(settings: Settings, prompt: str, image: Path | None) -> list[SceneRequest]:
    return [SceneRequest(prompt=prompt, num_frames=settings.num_frames, image=str(image) if image else None)]


def plan(
    settings: Settings, prompt: str, services: Services | None = None, image: Path | None = None
) -> RunState:
    services = services or build_services(settings)
    request = make_request(settings, services, _single_scene(settings, prompt, image))
    return run_graph(services, RunState(mode="plan", request=request))


def plan_scenes(
    settings: Settings,
    scenes: list[SceneRequest],
    services: Services | None = None,
    origin: dict[str, Any] | None = None,
) -> RunState:
    """The plan of a request of one or more scenes (nothing loads a diffusion model)."""
    services = services or build_services(settings)
    request = make_request(settings, services, scenes)
    return run_graph(services, RunState(mode="plan", request=request, origin=origin or {}))


def plan_story(settings: Settings, text: str, services: Services | None = None) -> RunState:
    """The plan of a free-text story, understood as the chat understands a new request."""
    from agent.llm.llm_client import client_from_settings
    from agent.understanding.understander import RequestUnderstander

    services = services or build_services(settings)
    understood = RequestUnderstander(client_from_settings(settings)).understand(text)
    request = understood.request
    info = services.generator.model_info
    scenes = request.scene_requests(info.fps, settings.num_frames)
    update = {"negative_prompt": request.negative_prompt() or settings.negative_prompt}
    if request.seed is not None and settings.seed is None:
        update["seed"] = request.seed
    origin = {
        "understanding": {
            "engine": understood.engine,
            "reason": understood.reason,
            "fallback": understood.fallback,
        }
    }
    return plan_scenes(settings.model_copy(update=update), scenes, services, origin=origin)


def generate(
    settings: Settings,
    prompt: str,
    run_dir: Path,
    overwrite: bool = False,
    services: Services | None = None,
    progress: ProgressHook | None = None,
    image: Path | None = None,
) -> RunState:
    return generate_scenes(
        settings, _single_scene(settings, prompt, image), run_dir, overwrite, services, progress
    )


def generate_scenes(
    settings: Settings,
    scenes: list[SceneRequest],
    run_dir: Path,
    overwrite: bool = False,
    services: Services | None = None,
    progress: ProgressHook | None = None,
    origin: dict[str, Any] | None = None,
) -> RunState:
    """Generate a video of one or more scenes (a storyboard, each scene continuing the one before),
    checkpointed after every node (:mod:`agent.resume`).

    ``origin`` (e.g. the chat turn that asked for it) is recorded in the manifest.
    """
    services = services or build_services(settings, progress)
    request = make_request(settings, services, scenes)
    # A plan that fails validation raises before any weights load, and the folder is removed again.
    state = RunState(mode="generate", request=request, run_dir=str(run_dir), origin=origin or {})
    return run_checkpointed(services, state, settings, overwrite=overwrite)


def resume(
    settings: Settings,
    run_dir: Path,
    progress: ProgressHook | None = None,
    services_for: Callable[[Settings], Services] | None = None,
) -> RunState:
    """Continue a killed run (``generate --resume``) with the settings it was started with.

    Where requests go and files are written (LLM endpoint and key, Chroma, home) come from
    ``settings`` (the current ones), never from the run folder (:mod:`agent.resumed_settings`).
    ``services_for(settings)`` hands out services a long-lived process (the web UI) already
    built from those settings; by default they are built here.
    """
    saved = saved_settings(run_dir)
    started_with = resumed_settings(settings, saved, str(resume_dir(run_dir) / "settings.json"))
    services = services_for(started_with) if services_for else build_services(started_with, progress)
    return resume_run(Path(run_dir), services)
