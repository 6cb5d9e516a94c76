"""A bounded tool-calling loop: the LLM may look things up (agent/tools) before it answers.

Each round the chat model (with the tools bound) either asks for tool calls,
which are run and answered as ``ToolMessage``s, or answers. After
``max_rounds`` rounds of lookups the loop stops asking and returns what was
looked up, so a model that keeps calling tools cannot hold the plan up.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, ToolMessage
from langchain_core.tools import BaseTool
from pydantic import BaseModel, Field


class Lookup(BaseModel):
    """One tool call the LLM made, and what it got back (JSON text)."""

    tool: str
    args: dict
    result: str


class LoopResult(BaseModel):
    lookups: list[Lookup] = Field(default_factory=list)
    answer: str | None = Field(None, description="the final answer's text; None: rounds ran out")


def _text(message: AIMessage) -> str:
    content = message.content
    if isinstance(content, list):
        content = "".join(p.get("text", "") if isinstance(p, dict) else str(p) for p in content)
    return str(content)


def run_tool_loop(
    chat: BaseChatModel, tools: Sequence[BaseTool], messages: list[BaseMessage], max_rounds: int
) -> LoopResult:
    """Let ``chat`` call ``tools`` for at most ``max_rounds`` rounds; an unknown or failing tool is
    answered with its error, so the model can correct itself."""
    by_name = {tool.name: tool for tool in tools}
    bound = chat.bind_tools(list(tools))
    history = list(messages)
    lookups: list[Lookup] = []
    for _ in range(max_rounds):
        reply = bound.invoke(history)
        if not reply.tool_calls:
            return LoopResult(lookups=lookups, answer=_text(reply))
        history.append(reply)
        for call in reply.tool_calls:
            tool = by_name.get(call["name"])
            try:
                if tool is None:
                    raise ValueError(f"no tool named {call['name']!r}; tools: {sorted(by_name)}")
                result = json.dumps(tool.invoke(call["args"]), ensure_ascii=False, default=str)
            except Exception as error:
                result = json.dumps({"error": f"{type(error).__name__}: {error}"[:500]})
            lookups.append(Lookup(tool=call["name"], args=dict(call["args"]), result=result))
            history.append(ToolMessage(content=result, tool_call_id=call["id"], name=call["name"]))
    return LoopResult(lookups=lookups, answer=None)
