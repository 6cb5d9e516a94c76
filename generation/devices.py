"""Device and dtype choice: the only place that decides where tensors live.

``auto`` picks CUDA with bf16 (fp16 where bf16 is unsupported) when a GPU is
present, Apple's MPS with fp16, else the CPU in fp32.
"""

from __future__ import annotations

import torch

from reelgraph.errors import ReelgraphError

_DTYPES = {
    "fp32": torch.float32,
    "float32": torch.float32,
    "fp16": torch.float16,
    "float16": torch.float16,
    "bf16": torch.bfloat16,
    "bfloat16": torch.bfloat16,
}


def resolve_device(name: str = "auto") -> torch.device:
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError as error:
        raise ReelgraphError(
            f"Unknown device {name!r}.", fix="use auto, cpu, cuda, cuda:N or mps."
        ) from error
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ReelgraphError(
            "CUDA was asked for, but no CUDA GPU is available.",
            why="torch.cuda.is_available() is False (no GPU, or a CPU build of torch).",
            fix="use --device cpu, or install a CUDA build of torch on a GPU machine.",
        )
    return device


def resolve_dtype(name: str, device: torch.device) -> torch.dtype:
    if name == "auto":
        if device.type == "cuda":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        if device.type == "mps":
            return torch.float16
        return torch.float32
    if name not in _DTYPES:
        raise ReelgraphError(f"Unknown dtype {name!r}.", fix=f"use auto or one of {sorted(set(_DTYPES))}.")
    dtype = _DTYPES[name]
    if device.type == "cpu" and dtype == torch.float16:
        raise ReelgraphError("fp16 on the CPU is not supported.", fix="use fp32 (or bf16) on the CPU.")
    return dtype
