"""The LangGraph state machine that plans and runs every request.

    understand_request → parse_units → retrieve → rewrite → choose_noise → estimate_costs → review_tools
        ├─ plan: END
        └─ generate: tune_motion → sample → extend ─┬─ next clip of the scene: extend
                                                    ├─ next scene: tune_motion
                                                    └─ all done: finalize → END

``review_tools`` checks every tool choice against the rules (an LLM may
propose, the rules decide; :mod:`agent.policies.tool_policy`). ``plan`` is this
graph stopping after ``review_tools``; nothing before
that point loads a diffusion model or touches a GPU. Services are bound
when the graph is built (:func:`build_graph`), so the state stays plain data.
"""

from __future__ import annotations

import functools
import itertools
import time
from collections.abc import Callable
from typing import Any, Literal

from langgraph.graph import END, START, StateGraph

from agent import long_video, nodes
from agent.services import Services
from agent.state import RunState

Node = Callable[[RunState, Services], dict[str, Any]]

PLANNING = (
    "understand_request",
    "parse_units",
    "retrieve",
    "rewrite",
    "choose_noise",
    "estimate_costs",
    "review_tools",
)
PER_SCENE = ("tune_motion", "sample", "extend")


def route_after_planning(state: RunState) -> Literal["tune_motion", "__end__"]:
    return "__end__" if state.mode == "plan" else "tune_motion"


def route_next_scene(state: RunState) -> Literal["extend", "tune_motion", "finalize"]:
    """The scene's next clip, the next scene, or the end (``extend`` advances ``scene_index``)."""
    if state.scene_index >= len(state.scenes):
        return "finalize"
    return "extend" if long_video.clips_made(state, state.scene_index) > 0 else "tune_motion"


def _bind(name: str, node: Node, services: Services) -> Callable[[RunState], dict[str, Any]]:
    """Give a node its services and add its wall time to ``state.timings[name]``."""

    @functools.wraps(node)
    def run(state: RunState) -> dict[str, Any]:
        started = time.perf_counter()
        update = node(state, services)
        timings = dict(state.timings)
        timings[name] = timings.get(name, 0.0) + time.perf_counter() - started
        return {**update, "timings": timings}

    return run


def build_graph(services: Services, checkpointer: Any = None):
    """Compile the request graph over ``services``."""
    graph = StateGraph(RunState)
    for name in (*PLANNING, *PER_SCENE, "finalize"):
        graph.add_node(name, _bind(name, getattr(nodes, name), services))
    graph.add_edge(START, PLANNING[0])
    for before, after in itertools.pairwise(PLANNING):
        graph.add_edge(before, after)
    graph.add_conditional_edges(PLANNING[-1], route_after_planning)
    graph.add_edge("tune_motion", "sample")
    graph.add_edge("sample", "extend")
    graph.add_conditional_edges("extend", route_next_scene)
    graph.add_edge("finalize", END)
    return graph.compile(checkpointer=checkpointer)


# One graph step per node call: a long story has many (three per scene, one more per extension clip).
RUN_CONFIG = {"recursion_limit": 100_000}


def run_graph(services: Services, state: RunState) -> RunState:
    """Run a request to its end (a plan or a finished video) and return the final state."""
    result = build_graph(services).invoke(state, RUN_CONFIG)
    return RunState.model_validate(result)
