"""Load a flow-matching family's folder (Wan 2.1 / 2.2) for the generation service."""

from __future__ import annotations

from pathlib import Path

from generation.devices import resolve_device, resolve_dtype
from generation.model_info import ModelInfo
from reelgraph.errors import ReelgraphError


def load_flow_model(settings, info: ModelInfo):
    """A :class:`~generation.wan_backend.WanModel` on the settings' device and dtype."""
    from generation.loaders import _quiet_libraries
    from generation.wan_backend import load_wan_model
    from generation.weight_files import check_model_folder

    if settings.cpu_offload:
        raise ReelgraphError(
            f"CPU offload is not available for {info.family} models yet.",
            why="the flow-matching path keeps every component on one device.",
            fix="run without --cpu-offload (or with a smaller dtype).",
        )
    check_model_folder(Path(info.path))  # safetensors only, headers checked, before diffusers opens a file
    _quiet_libraries()
    device = resolve_device(settings.device)
    model = load_wan_model(Path(info.path), device, resolve_dtype(settings.dtype, device))
    model.info = info  # ONA's inversion cache is keyed by the folder's weights hash and clip size
    return model
