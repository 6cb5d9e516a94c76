"""Parse each scene's prompt into atomized motion / actor / recipient units (Search-T2V §4.1)."""

from __future__ import annotations

from typing import Any

from agent.services import Services
from agent.state import RunState
from agent.steps import UnitsStep


def parse_units(state: RunState, services: Services) -> dict[str, Any]:
    """A spaCy dependency parse per scene; the core unit holds the subject or root predicate."""
    if services.parser is None:
        return {
            "scenes": state.with_all_scenes(
                units=UnitsStep.skipped("no unit parser (spaCy) was given to the graph")
            )
        }
    scenes = []
    for scene in state.scenes:
        parsed = services.parser.parse(scene.prompt)
        reason = (
            f"{len(parsed.units)} unit(s) from a spaCy dependency parse (Search-T2V §4.1)"
            if parsed.units
            else "the parse found no motion, actor or recipient (units may be empty for such prompts)"
        )
        units = UnitsStep(
            status="done",
            reason=reason,
            items=[unit.model_dump() for unit in parsed.units],
            core=parsed.core,
        )
        scenes.append(scene.model_copy(update={"units": units}))
    return {"scenes": scenes}
