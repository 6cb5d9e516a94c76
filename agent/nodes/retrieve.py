"""Retrieve reference captions and motion-prior videos for each scene (POS eq. 3, 6; Search-T2V §4.2)."""

from __future__ import annotations

from typing import Any

from agent.nodes.reasons import NOT_YET
from agent.services import Services
from agent.state import RunState, skipped


def retrieve(state: RunState, services: Services) -> dict[str, Any]:
    return {"scenes": state.with_all_scenes(references=skipped(NOT_YET["references"]))}
