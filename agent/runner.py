"""Entry points that turn settings and a request into a finished graph run.

The CLI and tests call these; they build the services once and hand them to
:func:`agent.graph.build_graph`.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

from agent import long_video
from agent.graph import run_graph
from agent.resume import resume as resume_run
from agent.resume import run_checkpointed, saved_settings
from agent.services import Services
from agent.state import RunRequest, RunState, SceneRequest
from generation.service import GenerationService, ProgressHook
from reelgraph.settings import Settings


def make_services(settings: Settings, progress: ProgressHook | None = None) -> Services:
    from agent.caches import CachedRetriever, CachingGenerator
    from agent.llm.llm_client import client_from_settings
    from agent.llm.tool_advisor import LLMToolAdvisor
    from agent.policies.pos_policy import PosPolicy
    from agent.rewriting.rewriter import make_rewriter
    from agent.tools import build_tools
    from generation.noise_support import NoiseSupportService
    from motion_prior.service import PoolRetrieval, UnitParsing
    from motion_prior.tuner import MotionTuner

    generator = GenerationService(settings, progress=progress)
    retriever = PoolRetrieval(settings)
    cached_retriever = CachedRetriever(
        retriever,
        settings.cache_dir,
        {"text_model": settings.text_model, "spacy_model": settings.spacy_model},
    )
    llm = client_from_settings(settings) if settings.llm_tool_proposals else None
    services = Services(
        generator=CachingGenerator(generator, settings.cache_dir) if settings.clip_cache else generator,
        device=settings.device,
        parser=UnitParsing(settings.spacy_model),
        retriever=cached_retriever,
        rewriter=make_rewriter(settings) if settings.rewrite else None,
        noise=NoiseSupportService(settings, lambda: generator.model_info),
        pos=PosPolicy.from_settings(settings),
        tuner=MotionTuner(settings, generator, retriever=retriever, progress=progress),
    )
    if llm is not None:  # the advisor's tools are backed by the services above
        services.advisor = LLMToolAdvisor(llm, tools=build_tools(services))
    return services


def make_request(settings: Settings, services: Services, scenes: list[SceneRequest]) -> RunRequest:
    """Fill the request's sampling options from the settings; an unset seed is drawn and recorded."""
    seed = settings.seed if settings.seed is not None else secrets.randbelow(2**31)
    return RunRequest(
        scenes=scenes,
        seed=seed,
        num_inference_steps=settings.num_inference_steps,
        guidance_scale=services.generator.default_guidance(),
        eta=settings.eta,
        negative_prompt=settings.negative_prompt,
        extension=long_video.params_from_settings(settings),
        max_frames=settings.max_video_frames,
        budget_seconds=settings.budget_seconds,
    )


def _single_scene(settings: Settings, prompt: str, image: Path | None) -> list[SceneRequest]:
    return [SceneRequest(prompt=prompt, num_frames=settings.num_frames, image=str(image) if image else None)]


def plan(
    settings: Settings, prompt: str, services: Services | None = None, image: Path | None = None
) -> RunState:
    services = services or make_services(settings)
    request = make_request(settings, services, _single_scene(settings, prompt, image))
    return run_graph(services, RunState(mode="plan", request=request))


def plan_scenes(
    settings: Settings,
    scenes: list[SceneRequest],
    services: Services | None = None,
    origin: dict[str, Any] | None = None,
) -> RunState:
    """The plan of a request of one or more scenes (nothing loads a diffusion model)."""
    services = services or make_services(settings)
    request = make_request(settings, services, scenes)
    return run_graph(services, RunState(mode="plan", request=request, origin=origin or {}))


def plan_story(settings: Settings, text: str, services: Services | None = None) -> RunState:
    """The plan of a free-text story, understood as the chat understands a new request."""
    from agent.llm.llm_client import client_from_settings
    from agent.understanding.understander import RequestUnderstander

    services = services or make_services(settings)
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
    services = services or make_services(settings, progress)
    request = make_request(settings, services, scenes)
    # A plan that fails validation raises before any weights load, and the folder is removed again.
    state = RunState(mode="generate", request=request, run_dir=str(run_dir), origin=origin or {})
    return run_checkpointed(services, state, settings, overwrite=overwrite)


def resume(settings: Settings, run_dir: Path, progress: ProgressHook | None = None) -> RunState:
    """Continue a killed run (``generate --resume``) with the settings it was started with.

    Only the LLM key comes from ``settings`` (the current ones): it is never saved.
    """
    saved = saved_settings(run_dir)
    started_with = Settings.model_validate({**saved, "llm_api_key": settings.llm_api_key})
    return resume_run(Path(run_dir), make_services(started_with, progress))
