"""What the planner may know about POS noise before anything loads: cached inversions and NPNet weights.

No torch here: an inversion is "cached" when its file exists (the key holds
the model hash, video id, steps, frames and size), and an NPNet is usable
when its safetensors header names this model's weights hash.

NPNet weights are looked up in this order: the ``npnet`` setting; the
default output of ``npnet train`` (``<home>/npnet/<model hash>.safetensors``);
the NPNets shipped with the repository (``toyworld/npnet/*.safetensors``).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from pathlib import Path

from generation.inversion_cache import InversionCache, InversionKey, read_safetensors_metadata
from generation.model_info import ModelInfo
from reelgraph.errors import ReelgraphError
from reelgraph.settings import Settings

SHIPPED_NPNETS = Path(__file__).resolve().parent.parent / "toyworld" / "npnet"


def default_npnet_path(home: Path, model_hash: str) -> Path:
    """Where ``npnet train`` writes an NPNet for the model with ``model_hash``."""
    return home / "npnet" / f"{model_hash}.safetensors"


def npnet_model_hash(path: Path) -> str | None:
    import json

    try:
        return json.loads(read_safetensors_metadata(path).get("model_hash", "null"))
    except (OSError, ValueError, ReelgraphError):  # a missing or damaged file names no model
        return None


class NoiseSupportService:
    """Implements :class:`agent.policies.pos_policy.NoiseSupport` for a run's settings and model."""

    def __init__(self, settings: Settings, model_info: Callable[[], ModelInfo]):
        self.settings = settings
        self._model_info = model_info
        self.cache = InversionCache(settings.cache_dir)

    @property
    def model_info(self) -> ModelInfo:
        return self._model_info()

    def inversion_key(self, video_id: str, num_steps: int, num_frames: int) -> InversionKey:
        info = self.model_info
        return InversionKey(info.weights_hash, video_id, num_steps, num_frames, info.height, info.width)

    def inversion_cached(self, video_id: str, num_steps: int, num_frames: int) -> bool:
        return self.cache.has(self.inversion_key(video_id, num_steps, num_frames))

    @functools.cache  # noqa: B019 - the answer is fixed for a service's lifetime
    def npnet(self) -> tuple[str | None, str]:
        """``(path, reason)``: the NPNet for this model, or ``None`` and why there is none."""
        model_hash = self.model_info.weights_hash
        if self.settings.npnet:
            path = Path(self.settings.npnet).expanduser()
            if not path.is_file():
                return None, f"the NPNet file {str(path)!r} does not exist"
            trained_for = npnet_model_hash(path)
            if trained_for != model_hash:
                return None, f"{path.name} was trained for model {trained_for}, not this model ({model_hash})"
            return str(path), "from settings"
        candidates = [default_npnet_path(self.settings.home, model_hash)]
        if SHIPPED_NPNETS.is_dir():
            candidates += sorted(SHIPPED_NPNETS.glob("*.safetensors"))
        for path in candidates:
            if path.is_file() and npnet_model_hash(path) == model_hash:
                return str(path), "found"
        return None, "no NPNet was trained for this model (run `npnet train`)"

    def npnet_skill(self, path: str) -> float | None:
        """The share of held-out inversion variance the NPNet explains, ``1 − val MSE / zero MSE``,
        from its header (``None`` when the file has no training report)."""
        try:
            report = json.loads(read_safetensors_metadata(Path(path)).get("report", "null")) or {}
            return 1.0 - report["val_mse"] / report["val_mse_zero"]
        except (OSError, ValueError, KeyError, TypeError, ZeroDivisionError, ReelgraphError):
            return None
