"""LangGraph's SQLite checkpointer, set up for reelgraph's pydantic graph states.

A checkpoint stores every channel of a state after every node. Our states
are pydantic models; LangGraph's msgpack serializer restores them only for
types it was told about, so :func:`state_types` collects every model a
state can hold (walking field annotations) and :func:`open_saver` registers
them. Writes are synchronous (``durability="sync"`` at invoke) so a killed
process loses at most the node that was running.
"""

from __future__ import annotations

import contextlib
import sqlite3
import typing
from collections.abc import Iterator
from pathlib import Path
from types import UnionType

from pydantic import BaseModel


def state_types(*roots: type[BaseModel]) -> set[tuple[str, str]]:
    """``(module, class)`` of every pydantic model reachable from ``roots`` through field annotations."""
    found: set[type[BaseModel]] = set()

    def visit(annotation) -> None:
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            if annotation in found:
                return
            found.add(annotation)
            for field in annotation.model_fields.values():
                visit(field.annotation)
            return
        origin = typing.get_origin(annotation)
        if origin is not None or isinstance(annotation, UnionType):
            for arg in typing.get_args(annotation):
                visit(arg)

    for root in roots:
        visit(root)
    return {(cls.__module__, cls.__name__) for cls in found}


@contextlib.contextmanager
def open_saver(path: str | Path, *roots: type[BaseModel]) -> Iterator:
    """A ``SqliteSaver`` on ``path`` that restores the pydantic models reachable from ``roots``."""
    from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer
    from langgraph.checkpoint.sqlite import SqliteSaver

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    serde = JsonPlusSerializer(allowed_msgpack_modules=sorted(state_types(*roots)))
    # Nodes may run on LangGraph's worker threads; the saver serialises access with its own lock.
    conn = sqlite3.connect(str(path), check_same_thread=False)
    try:
        yield SqliteSaver(conn, serde=serde)
    finally:
        conn.close()
