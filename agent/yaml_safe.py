"""YAML without aliases: ``*name`` references (and so "billion laughs" expansions) are refused.

A storyboard never needs an alias, and one alias can stand for a tree of any
size: nine levels of nine references make 9**9 nodes out of a few hundred
bytes, which hangs anything that walks or prints the result.
"""

from __future__ import annotations

from typing import Any

import yaml


class AliasError(yaml.YAMLError):
    """The document uses an alias (``*name``)."""

    def __init__(self, event: Any):
        mark = event.start_mark
        super().__init__(f"*{event.anchor} at line {mark.line + 1}, column {mark.column + 1}")


class NoAliasLoader(yaml.SafeLoader):
    """:class:`yaml.SafeLoader` that raises :class:`AliasError` at the first alias, before expanding it."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            raise AliasError(self.peek_event())
        return super().compose_node(parent, index)


def load_without_aliases(text: str) -> Any:
    return yaml.load(text, Loader=NoAliasLoader)
