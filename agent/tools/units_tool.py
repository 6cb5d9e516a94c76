"""The units tool: a prompt's motion / actor / recipient units (Search-T2V §4.1)."""

from __future__ import annotations

from langchain_core.tools import BaseTool, StructuredTool
from pydantic import BaseModel, Field

from agent.services import UnitParser


class UnitsArgs(BaseModel):
    text: str = Field(min_length=1, max_length=2000, description="the prompt or scene text to parse")


class UnitView(BaseModel):
    motion: str | None
    actor: str | None
    recipient: str | None
    motion_phrase: str | None = None


class UnitsAnswer(BaseModel):
    units: list[UnitView]
    core: int | None = Field(description="index of the core unit (the root verb's), None when none")


def units_tool(parser: UnitParser) -> BaseTool:
    def parse_units(text: str) -> dict:
        parsed = parser.parse(text).model_dump()
        units = [UnitView.model_validate(unit, from_attributes=False) for unit in parsed["units"]]
        return UnitsAnswer(units=units, core=parsed.get("core")).model_dump()

    return StructuredTool.from_function(
        func=parse_units,
        name="parse_units",
        description=(
            "Split a prompt into atomized units (Search-T2V §4.1): who moves (actor), how "
            "(motion) and at whom (recipient), and which unit is the core one."
        ),
        args_schema=UnitsArgs,
    )
