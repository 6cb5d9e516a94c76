"""The settings a resumed run is rebuilt from: the saved ones, except where the current ones must win.

A run folder is user-writable: ``.resume/settings.json`` may have been
edited by anyone who could write the folder. So the fields that say *where*
reelgraph sends requests or writes (the LLM endpoint that gets the API key,
the Chroma server, the data directory) always come from the settings of the
command that resumes, never from the file; the API key is never saved at all.
Everything else (model, seeds, sampling options) comes from the file, so the
resumed video equals an uninterrupted run's.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from reelgraph.errors import ReelgraphError, validation_problems
from reelgraph.settings import Settings

# Where requests go and where files are written: named by the current command only.
CURRENT_ONLY = ("home", "llm_base_url", "llm_api_key", "chroma_url")


def resumed_settings(current: Settings, saved: Any, source: str) -> Settings:
    """``saved`` (read from ``source``) with :data:`CURRENT_ONLY` taken from ``current``."""
    if not isinstance(saved, dict):
        raise ReelgraphError(
            f"{source!r} does not hold a run's settings.",
            why="it is not a JSON object.",
            fix="start the run again with generate.",
        )
    values = {name: value for name, value in saved.items() if name not in CURRENT_ONLY}
    values.update({name: getattr(current, name) for name in CURRENT_ONLY})
    try:
        return Settings.model_validate(values)
    except ValidationError as error:
        problems = "; ".join(validation_problems(error))
        raise ReelgraphError(
            f"{source!r} holds settings this reelgraph cannot use: {problems}.",
            why="the file was edited, or written by another version.",
            fix="start the run again with generate.",
        ) from error
