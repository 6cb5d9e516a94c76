"""The chat: a LangGraph conversation that plans, explains and generates, persisted per session.

    interpret ─┬─ show_plan → END                       ("show me the plan again")
               └─ plan_video → confirm ─┬─ generate_video → END
                                        └─ END            (the person said no)

Each message is one run of this graph on the session's thread. ``interpret``
reads the message against the last request (:mod:`agent.understanding.followups`):
a new description goes through :class:`~agent.understanding.understander.RequestUnderstander`
(the LLM's structured output, or the parser), a follow-up edits the last
request. ``confirm`` asks the person with LangGraph's ``interrupt`` (the CLI
shows the plan and resumes with the answer; the web UI shows it and resumes
when Generate is pressed, :meth:`ChatSession.propose` / :meth:`ChatSession.answer`);
``--yes`` answers for them.

The state (:class:`ChatState`) is saved by LangGraph's SQLite checkpointer in
``<home>/sessions/chat.sqlite``, one thread per session name, so
``chat --session NAME`` continues a conversation after the program exits.
The graph's services (:class:`ChatServices`) plan and generate through the
request graph (:mod:`agent.graph`); tests hand in fakes.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from langgraph.graph import END, START, StateGraph
from langgraph.types import Command, interrupt
from pydantic import BaseModel

from agent.checkpoints import open_saver
from agent.state import RunState, SceneRequest
from agent.understanding.followups import interpret as interpret_message
from agent.understanding.request import StructuredRequest
from agent.understanding.understander import RequestUnderstander
from reelgraph.errors import ReelgraphError


class ChatTurn(BaseModel):
    """One message and what became of it."""

    number: int
    message: str
    kinds: list[str]
    notes: list[str] = []
    seed: int | None = None
    run_dir: str | None = None
    manifest: str | None = None
    generated: bool = False


class ChatState(BaseModel):
    """A conversation: the current request, its seed and plan, and every turn so far."""

    session: str = "default"
    message: str = ""
    auto_yes: bool = False
    request: StructuredRequest | None = None
    understanding: dict[str, Any] | None = None
    seed: int | None = None
    plan: dict[str, Any] | None = None
    turns: list[ChatTurn] = []
    confirmed: bool | None = None
    outputs: dict[str, str] | None = None
    warnings: list[str] = []

    @property
    def turn(self) -> ChatTurn:
        return self.turns[-1]


@dataclass
class ChatServices:
    """What the chat graph calls.

    ``plan(scenes, seed, negative_prompt, origin)`` and ``generate(scenes, seed, negative_prompt,
    run_dir, origin)`` return the request graph's final :class:`RunState`; ``run_dir(turn, prompt)``
    names a turn's output folder; ``new_seed()`` draws a seed; ``default_seconds`` is one scene's
    length when the request gave none; ``fps`` turns seconds into frames; ``base_seed`` (``--seed``)
    seeds a new request unless its message names a seed.
    """

    understander: RequestUnderstander
    plan: Callable[[list[SceneRequest], int, str, dict[str, Any]], RunState]
    generate: Callable[[list[SceneRequest], int, str, Path, dict[str, Any]], RunState]
    run_dir: Callable[[int, str], Path]
    new_seed: Callable[[], int]
    fps: int
    default_frames: int | None
    default_seconds: float
    base_seed: int | None = None  # --seed: a new request's seed unless the message names one


def _scenes(state: ChatState, services: ChatServices) -> list[SceneRequest]:
    return state.request.scene_requests(services.fps, services.default_frames)


def _origin(state: ChatState) -> dict[str, Any]:
    turn = state.turn
    return {
        "chat": {
            "session": state.session,
            "turn": turn.number,
            "message": turn.message,
            "edits": turn.notes,
            "kinds": turn.kinds,
            "earlier_messages": [t.message for t in state.turns[:-1]],
        },
        "understanding": state.understanding,
        "request": state.request.model_dump(mode="json") if state.request else None,
    }


def interpret(state: ChatState, services: ChatServices) -> dict[str, Any]:
    """The message as a new request or an edit of the last one; the seed it runs with."""
    reading = interpret_message(state.message, state.request, services.default_seconds)
    number = len(state.turns) + 1
    if reading.shows_plan_only:
        if state.plan is None:
            raise ReelgraphError("There is no plan yet.", fix="describe a video first.")
        turn = ChatTurn(number=number, message=state.message, kinds=reading.kinds, notes=reading.notes)
        return {"turns": [*state.turns, turn], "confirmed": None, "outputs": None}
    update: dict[str, Any] = {"confirmed": None, "outputs": None, "warnings": []}
    if reading.is_new:
        understood = services.understander.understand(state.message)
        request = understood.request
        update["understanding"] = {
            "engine": understood.engine,
            "reason": understood.reason,
            "fallback": understood.fallback,
            "cached": understood.cached,
        }
        named = [s for s in (request.seed, services.base_seed) if s is not None]
        seed = named[0] if named else services.new_seed()
        notes = [f"a new request: {len(request.scenes)} scene(s)"]
    else:
        request = reading.request
        if reading.seed == "new":
            seed = services.new_seed()
        elif isinstance(reading.seed, int):
            seed = reading.seed
        else:
            seed = state.seed if state.seed is not None else services.new_seed()
        notes = reading.notes
    turn = ChatTurn(number=number, message=state.message, kinds=reading.kinds, notes=notes, seed=seed)
    return {**update, "request": request, "seed": seed, "turns": [*state.turns, turn]}


def route_message(state: ChatState) -> Literal["show_plan", "plan_video"]:
    return "show_plan" if state.turn.kinds == ["show_plan"] else "plan_video"


def show_plan(state: ChatState, services: ChatServices) -> dict[str, Any]:
    """Nothing to compute: the last plan stays in the state for the CLI to show."""
    return {}


def plan_video(state: ChatState, services: ChatServices) -> dict[str, Any]:
    """Plan the request through the request graph (no diffusion model loads)."""
    planned = services.plan(
        _scenes(state, services), state.seed, state.request.negative_prompt(), _origin(state)
    )
    return {"plan": planned.plan_view(), "warnings": planned.warnings}


def confirm(state: ChatState, services: ChatServices) -> dict[str, Any]:
    """Ask before generating (``interrupt``: the CLI shows the plan and resumes with the answer)."""
    if state.auto_yes:
        return {"confirmed": True}
    answer = interrupt({"turn": state.turn.number, "plan": state.plan, "notes": state.turn.notes})
    return {"confirmed": bool(answer)}


def route_confirmation(state: ChatState) -> Literal["generate_video", "__end__"]:
    return "generate_video" if state.confirmed else "__end__"


def generate_video(state: ChatState, services: ChatServices) -> dict[str, Any]:
    """Generate the planned video into this turn's folder; the manifest records the turn and its edits."""
    turn = state.turn
    run_dir = services.run_dir(turn.number, state.request.scenes[0].prompt)
    result = services.generate(
        _scenes(state, services), state.seed, state.request.negative_prompt(), run_dir, _origin(state)
    )
    outputs = {
        "video": result.outputs.video,
        "gif": result.outputs.gif,
        "sheet": result.outputs.sheet,
        "manifest": result.manifest_path,
    }
    done = turn.model_copy(
        update={"run_dir": str(run_dir), "manifest": result.manifest_path, "generated": True}
    )
    return {
        "turns": [*state.turns[:-1], done],
        "plan": result.plan_view(),
        "outputs": outputs,
        "warnings": result.warnings,
    }


def _bind(node, services):
    def run(state: ChatState) -> dict[str, Any]:
        return node(state, services)

    run.__name__ = node.__name__
    return run


def build_chat_graph(services: ChatServices, checkpointer: Any):
    graph = StateGraph(ChatState)
    for node in (interpret, show_plan, plan_video, confirm, generate_video):
        graph.add_node(node.__name__, _bind(node, services))
    graph.add_edge(START, "interpret")
    graph.add_conditional_edges("interpret", route_message)
    graph.add_edge("show_plan", END)
    graph.add_edge("plan_video", "confirm")
    graph.add_conditional_edges("confirm", route_confirmation)
    graph.add_edge("generate_video", END)
    return graph.compile(checkpointer=checkpointer)


class Reply(BaseModel):
    """What one message produced, for the CLI to print."""

    state: ChatState
    asked: bool = False  # the plan waited for a yes/no


Ask = Callable[[ChatState], bool]


class ChatSession:
    """One conversation on a thread of the session store. ``send(message, ask)`` runs one turn."""

    def __init__(self, graph, session: str):
        self.graph = graph
        self.session = session
        self.config = {"configurable": {"thread_id": session}}

    def reset(self) -> None:
        """Forget this session's turns."""
        self.graph.checkpointer.delete_thread(self.session)

    def state(self) -> ChatState | None:
        values = self.graph.get_state(self.config).values
        return ChatState.model_validate(values) if values else None

    def send(self, message: str, ask: Ask, auto_yes: bool = False) -> Reply:
        """Run one turn; ``ask(state)`` answers the confirmation (after the CLI shows the plan)."""
        reply = self.propose(message, auto_yes=auto_yes)
        if not reply.asked:
            return reply
        return self.answer(bool(ask(reply.state))).model_copy(update={"asked": True})

    def propose(self, message: str, auto_yes: bool = False) -> Reply:
        """Run a turn up to its confirmation: ``asked`` when the plan waits for :meth:`answer`.

        The wait is checkpointed in the session store, so the answer may come from another
        process (the web UI's Generate button after the terminal planned, or the other way round).
        """
        result = self.graph.invoke(
            {"session": self.session, "message": message, "auto_yes": auto_yes},
            self.config,
            durability="sync",
        )
        if result.get("__interrupt__"):
            pending = ChatState.model_validate({k: v for k, v in result.items() if k != "__interrupt__"})
            return Reply(state=pending, asked=True)
        return Reply(state=ChatState.model_validate(result))

    def waiting(self) -> bool:
        """Whether the last turn's plan waits for a yes or no."""
        return "confirm" in (self.graph.get_state(self.config).next or ())

    def answer(self, yes: bool) -> Reply:
        """Answer the waiting plan: generate it (``yes``) or leave it."""
        if not self.waiting():
            raise ReelgraphError("No plan waits to be generated.", fix="describe a video first.")
        result = self.graph.invoke(Command(resume=bool(yes)), self.config, durability="sync")
        return Reply(state=ChatState.model_validate(result))


@contextlib.contextmanager
def open_session(home: Path, session: str, services: ChatServices) -> Iterator[ChatSession]:
    """The session ``session`` of the store in ``home/sessions/chat.sqlite``, open for turns."""
    with open_saver(Path(home) / "sessions" / "chat.sqlite", ChatState) as saver:
        yield ChatSession(build_chat_graph(services, saver), session)


def chat_services(settings: Any, progress: Any = None, services: Any = None) -> ChatServices:
    """The chat's services over the real request graph, built once per session from ``settings``
    (or over ``services`` already built from them, as the web UI keeps them for its process)."""
    import secrets
    from datetime import datetime

    from agent import runner
    from agent.composition import build_services
    from reelgraph.runs import slugify

    services = services or build_services(settings, progress)
    info = services.generator.model_info
    frames = settings.num_frames or info.num_frames

    def with_seed(seed: int, negative: str):
        return settings.model_copy(
            update={"seed": seed, "negative_prompt": negative or settings.negative_prompt}
        )

    def plan(scenes, seed, negative, origin):
        return runner.plan_scenes(with_seed(seed, negative), scenes, services, origin=origin)

    def generate(scenes, seed, negative, run_dir, origin):
        return runner.generate_scenes(
            with_seed(seed, negative), scenes, run_dir, services=services, origin=origin
        )

    return ChatServices(
        understander=RequestUnderstander(services.llm),
        plan=plan,
        generate=generate,
        # Stamped when the turn runs: one process (the web UI) serves many sessions and turns.
        run_dir=lambda turn, prompt: (
            Path(settings.output_dir)
            / f"{datetime.now().strftime('%Y%m%d-%H%M%S')}-chat-t{turn}-{slugify(prompt, 30)}"
        ),
        new_seed=lambda: secrets.randbelow(2**31),
        base_seed=settings.seed,
        fps=info.fps,
        default_frames=settings.num_frames,
        default_seconds=frames / info.fps,
    )
