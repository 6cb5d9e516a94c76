"""Where ONA's DDIM inversions are kept: one safetensors file per (model, video, steps, frames, size).

An inversion ``ε_inv = INV(E(v*), t, ∅)|_{t=0}^{T-1}`` (POS §4.1) depends on the
model's weights, the pool video, the number of DDIM steps ``T`` and the clip
that was encoded (frames, height, width). The key holds all five, so a
retrained model or a different step count never reads a stale file:

    <cache>/inversions/<model hash>/s<T>-f<F>-<H>x<W>/<video slug>-<id hash>.safetensors

The file holds ``eps_inv`` ``(1, C, F, h, w)`` float32 and, in its header,
the video id, source path and key. This module imports no torch until a
tensor is read or written, so the planner can ask whether an inversion is
cached without loading anything.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reelgraph.cache_kinds import CacheKind, register
from reelgraph.errors import ReelgraphError
from reelgraph.hashing import key_hash

INVERSIONS = register(
    CacheKind("inversions", "files", rank=30, pattern="**/*.safetensors", owner="generation.inversion_cache")
)

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True)
class InversionKey:
    """What an inversion depends on."""

    model_hash: str
    video_id: str
    num_steps: int
    num_frames: int
    height: int
    width: int

    def relative_path(self) -> Path:
        # The slug keeps file names readable; the hash keeps ids that slug alike ("a:b", "a_b") apart.
        slug = _UNSAFE.sub("_", self.video_id)[:60].strip("._") or "video"
        digest = key_hash(self.video_id, length=10)
        return (
            Path(self.model_hash)
            / f"s{self.num_steps}-f{self.num_frames}-{self.height}x{self.width}"
            / f"{slug}-{digest}.safetensors"
        )

    def metadata(self) -> dict[str, str]:
        return {
            "model_hash": self.model_hash,
            "video_id": self.video_id,
            "num_steps": str(self.num_steps),
            "num_frames": str(self.num_frames),
            "height": str(self.height),
            "width": str(self.width),
        }


def read_safetensors_metadata(path: Path) -> dict[str, str]:
    """The ``__metadata__`` of a safetensors file, from its header alone (no torch), checked first."""
    from generation.weight_files import read_header

    return dict(read_header(path).get("__metadata__") or {})


class InversionCache:
    """The inversions under ``<cache_dir>/inversions``."""

    def __init__(self, cache_dir: str | Path):
        self.root = Path(cache_dir) / "inversions"

    def path(self, key: InversionKey) -> Path:
        return self.root / key.relative_path()

    def has(self, key: InversionKey) -> bool:
        return self.path(key).is_file()

    def load(self, key: InversionKey):
        """``ε_inv`` ``(1, C, F, h, w)`` float32, or ``None`` when not cached."""
        from safetensors.torch import load_file

        path = self.path(key)
        if not path.is_file():
            return None
        from generation.weight_files import read_header

        header = read_header(path, "Inversion cache entry")
        if "eps_inv" not in header:
            raise ReelgraphError(
                f"Inversion cache entry {str(path)!r} holds no eps_inv.", fix="delete it; it is made again."
            )
        return load_file(str(path))["eps_inv"]

    def save(self, key: InversionKey, eps_inv, extra: dict[str, Any] | None = None) -> Path:
        """Write ``ε_inv`` atomically (a crash never leaves a half file that later reads as a hit)."""
        from safetensors.torch import save_file

        from reelgraph.atomic import atomic_path

        path = self.path(key)
        metadata = {**key.metadata(), **{k: str(v) for k, v in (extra or {}).items()}}
        with atomic_path(path) as tmp:
            save_file({"eps_inv": eps_inv.detach().float().cpu().contiguous()}, str(tmp), metadata=metadata)
        return path

    def entries(
        self, model_hash: str, num_steps: int, num_frames: int, height: int, width: int
    ) -> list[Path]:
        """Every cached inversion for one model and clip shape, sorted by file name."""
        folder = self.root / model_hash / f"s{num_steps}-f{num_frames}-{height}x{width}"
        return sorted(folder.glob("*.safetensors")) if folder.is_dir() else []
