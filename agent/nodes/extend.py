"""Extend the current scene beyond one clip, then move to the next scene."""

from __future__ import annotations

from typing import Any

from agent.services import Services
from agent.state import RunState


def extend(state: RunState, services: Services) -> dict[str, Any]:
    """Move on to the next scene (clip extension arrives with the long-video issue)."""
    return {"scene_index": state.scene_index + 1}
