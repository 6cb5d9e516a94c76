"""The kinds of on-disk cache under ``<home>/cache/``: one registry each owning layer adds its kinds to.

A kind names its folder and how its entries lie there, so ``cache stats`` and
``cache prune`` (:mod:`agent.caches`) can count and remove entries without
knowing which layer wrote them. The owner registers the kind beside the code
that writes it (``generation.inversion_cache``, ``motion_prior.tuning``, ...).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from reelgraph.errors import ReelgraphError

Layout = Literal["entry_folders", "files"]
"""``entry_folders``: ``<k>/<key>/entry.json`` plus its files, one folder an entry;
``files``: files matching ``pattern`` that share a stem (``<key>.safetensors`` + ``<key>.json``)."""


@dataclass(frozen=True)
class CacheKind:
    name: str  # the folder under <home>/cache/ and the name `cache prune --kind` takes
    layout: Layout
    rank: int  # where the kind is listed (`cache stats` order)
    pattern: str = "*.json"  # for the ``files`` layout
    owner: str = ""  # the module that writes it


_KINDS: dict[str, CacheKind] = {}


def register(kind: CacheKind) -> CacheKind:
    """Add ``kind`` (idempotent for the same definition; a different one under a taken name is an error)."""
    known = _KINDS.get(kind.name)
    if known is not None and known != kind:
        raise ReelgraphError(
            f"Two cache kinds are named {kind.name!r} ({known.owner} and {kind.owner}).",
            fix="give the new cache kind its own name.",
        )
    _KINDS[kind.name] = kind
    return kind


def registered() -> tuple[CacheKind, ...]:
    """Every registered kind, in listing order."""
    return tuple(sorted(_KINDS.values(), key=lambda kind: (kind.rank, kind.name)))


def lookup(name: str) -> CacheKind | None:
    return _KINDS.get(name)
