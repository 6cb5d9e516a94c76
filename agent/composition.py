"""The composition root: the one place that builds reelgraph's services from the settings.

:func:`build_services` reads the one :class:`~reelgraph.settings.Settings`, hands
each service the section it depends on (``settings.model_section``,
``settings.memory``, ``settings.tuning``, ...) and wires the shared objects
(one :class:`~reelgraph.text.models.TextModels`, one LLM client, one pool) into
whoever needs them. The CLI, the chat, the evaluation harness, the benchmarks
and the tests all call it; nothing else constructs a service.

Building is cheap: every model, store and client opens on first use, so a
``plan`` loads no weights and a plan without a pool creates no store.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from agent.services import Services

if TYPE_CHECKING:
    from generation.service import ProgressHook
    from reelgraph.settings import Settings


def build_services(settings: Settings, progress: ProgressHook | None = None) -> Services:
    """Every service of a run, built from ``settings``.

    Args:
        settings: the run's settings (CLI flag > environment > config file > default).
        progress: ``progress(label, step, steps)`` for sampling and tuning steps.
    """
    from agent.caches import CachedRetriever, CachingGenerator
    from agent.llm.llm_client import client_from_settings
    from agent.llm.tool_advisor import LLMToolAdvisor
    from agent.policies.pos_policy import PosPolicy
    from agent.rewriting.rewriter import make_rewriter
    from agent.tools import build_tools
    from generation.noise_support import NoiseSupportService
    from generation.service import GenerationService
    from motion_prior.service import PoolRetrieval, UnitParsing
    from motion_prior.tuner import MotionTuner
    from reelgraph.text.models import TextModels

    text = TextModels.from_settings(settings.text)
    llm = client_from_settings(settings.llm)
    generation = GenerationService(settings.model_section, progress=progress)
    pool = PoolRetrieval(settings.memory, text)
    retriever = CachedRetriever(
        pool,
        settings.cache_dir,
        {
            "text_model": settings.text_model,
            "spacy_model": settings.spacy_model,
            "text_encoder": settings.text_encoder,
        },
    )
    services = Services(
        generator=CachingGenerator(generation, settings.cache_dir) if settings.clip_cache else generation,
        device=settings.device,
        parser=UnitParsing(text),
        retriever=retriever,
        rewriter=make_rewriter(settings.rewriting, text, llm) if settings.rewrite else None,
        noise=NoiseSupportService(settings.pos, lambda: generation.model_info),
        pos=PosPolicy.from_settings(settings.pos),
        tuner=MotionTuner(settings.tuning, generation, pool, text.parser, progress=progress),
        llm=llm,
        text=text,
        pool=pool,
        generation=generation,
    )
    if llm is not None and settings.llm_tool_proposals:  # the advisor's tools call the services above
        services.advisor = LLMToolAdvisor(llm, tools=build_tools(services))
    return services
