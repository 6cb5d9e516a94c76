"""The tools an LLM planner may call (LangChain tools, in LangGraph's sense of the word).

``build_tools(services)`` makes them from the services the graph already has
(dependency injection: no globals). Each tool takes a pydantic argument schema
and returns JSON-serialisable data; text from the reference pool comes back
as quoted data (JSON string literals), never as bare text an LLM could read
as instructions. A tool whose service is missing is not offered.
"""

from __future__ import annotations

from langchain_core.tools import BaseTool

from agent.services import Services
from agent.tools.cost_tool import cost_tool
from agent.tools.search_tool import search_tool
from agent.tools.units_tool import units_tool


def build_tools(services: Services) -> list[BaseTool]:
    """The tools these services can back: units (needs a parser), pool search (a retriever), cost."""
    tools: list[BaseTool] = []
    if services.parser is not None:
        tools.append(units_tool(services.parser))
    if services.retriever is not None:
        tools.append(search_tool(services.retriever))
    tools.append(cost_tool(services.generator, services.device))
    return tools


__all__ = ["build_tools"]
