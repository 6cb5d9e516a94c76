"""Checkpoint storage: safetensors for tensors, JSON for the rest (no pickle).

The layout of ``out_dir/.checkpoint/`` is fixed (runs written by older versions must resume):
``vae.safetensors``, ``unet.safetensors``, ``unet_ema.safetensors``, ``vae_optimizer.safetensors``,
``unet_optimizer.safetensors``, ``latent_pool.safetensors`` (once the denoiser phase started),
``generators.safetensors``, ``caption_bank.{safetensors,json}`` and ``state.json``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from reelgraph.atomic import atomic_path


def save_tensors(path: Path, tensors: dict[str, torch.Tensor]) -> None:
    from safetensors.torch import save_file

    with atomic_path(path) as tmp:
        save_file({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, str(tmp))


def load_tensors(path: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(path))


def optimizer_tensors(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict]:
    """AdamW state as flat safetensors entries plus JSON-able hyper-parameters."""
    state = optimizer.state_dict()
    tensors = {}
    for index, slots in state["state"].items():
        for name, value in slots.items():
            tensors[f"{index}.{name}"] = value if torch.is_tensor(value) else torch.tensor(value)
    return tensors, {"param_groups": state["param_groups"]}


def load_optimizer(optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], meta: dict) -> None:
    state: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in tensors.items():
        index, name = key.split(".", 1)
        state.setdefault(int(index), {})[name] = value
    optimizer.load_state_dict({"state": state, "param_groups": meta["param_groups"]})


def numpy_state(rng: np.random.Generator) -> dict:
    return rng.bit_generator.state


def numpy_from_state(state: dict) -> np.random.Generator:
    rng = np.random.default_rng()
    rng.bit_generator.state = state
    return rng
