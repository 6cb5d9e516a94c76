"""Rewrite each scene's prompt, guided by references, keeping its meaning (POS §4.3)."""

from __future__ import annotations

from typing import Any

from agent.nodes.reasons import NOT_YET
from agent.services import Services
from agent.state import RunState, skipped


def rewrite(state: RunState, services: Services) -> dict[str, Any]:
    return {"scenes": state.with_all_scenes(rewrite=skipped(NOT_YET["rewrite"]))}
