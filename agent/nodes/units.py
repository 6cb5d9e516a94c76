"""Parse each scene's prompt into atomized motion / actor / recipient units (Search-T2V §4.1)."""

from __future__ import annotations

from typing import Any

from agent.nodes.reasons import NOT_YET
from agent.services import Services
from agent.state import RunState, skipped


def parse_units(state: RunState, services: Services) -> dict[str, Any]:
    return {"scenes": state.with_all_scenes(units=skipped(NOT_YET["units"]))}
