"""Weight files reelgraph will open: safetensors only, each header checked before anything loads it.

A model folder, a LoRA, an NPNet or an inversion-cache entry may come from
anyone (a download, a shared pool, a copied home). Pickle-based formats
(``.bin``, ``.pt``, ``.pth``, ``.ckpt``, ``.pkl``) can run code when loaded, so
a model folder holding any is refused before a loader sees it. A safetensors
file starts with an 8-byte little-endian header length and a JSON header;
:func:`read_header` checks both against the file's real size, so random bytes,
a header length of 2**62 or a truncated file are a :class:`ReelgraphError`
naming the file, never an ``OverflowError`` or ``MemoryError``.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

from reelgraph.errors import ReelgraphError

PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle")
MAX_HEADER_BYTES = 100 * 1024 * 1024  # the safetensors format's own limit
DTYPE_BYTES = {
    "BOOL": 1, "U8": 1, "I8": 1, "F8_E5M2": 1, "F8_E4M3": 1, "I16": 2, "U16": 2, "F16": 2, "BF16": 2,
    "I32": 4, "U32": 4, "F32": 4, "I64": 8, "U64": 8, "F64": 8,
}  # fmt: skip


def _damaged(path: Path, why: str, what: str) -> ReelgraphError:
    return ReelgraphError(
        f"{what} {str(path)!r} is not a readable safetensors file.",
        why=why,
        fix="delete it and make or download it again.",
    )


def read_header(path: str | Path, what: str = "Weights file") -> dict[str, Any]:
    """The JSON header of the safetensors file at ``path``, checked against the file's size."""
    path = Path(path)
    try:
        size = path.stat().st_size
        with open(path, "rb") as handle:
            head = handle.read(8)
            if len(head) < 8:
                raise _damaged(path, f"it is {size} bytes, shorter than a safetensors header.", what)
            (length,) = struct.unpack("<Q", head)
            if length > min(size - 8, MAX_HEADER_BYTES):
                raise _damaged(path, f"its header claims {length} bytes; the file has {size}.", what)
            raw = handle.read(length)
    except OSError as error:
        raise ReelgraphError(
            f"{what} {str(path)!r} cannot be read: {error}.", fix="check the file."
        ) from error
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as error:
        raise _damaged(path, f"its header is not JSON ({type(error).__name__}).", what) from error
    if not isinstance(header, dict):
        raise _damaged(path, "its header is not a JSON object.", what)
    _check_tensors(path, header, size - 8 - length, what)
    return header


def _check_tensors(path: Path, header: dict[str, Any], data_bytes: int, what: str) -> None:
    for name, entry in header.items():
        if name == "__metadata__":
            if entry is not None and not (
                isinstance(entry, dict) and all(isinstance(v, str) for v in entry.values())
            ):
                raise _damaged(path, "its __metadata__ is not a map of strings.", what)
            continue
        try:
            start, end = entry["data_offsets"]
            count = 1
            for dim in entry["shape"]:
                if not isinstance(dim, int) or dim < 0:
                    raise ValueError(dim)
                count *= dim
            ok = isinstance(start, int) and isinstance(end, int) and 0 <= start <= end <= data_bytes
            ok = ok and end - start == count * DTYPE_BYTES[entry["dtype"]]
        except (KeyError, TypeError, ValueError):
            ok = False
        if not ok:
            raise _damaged(
                path, f"tensor {name!r} has a bad dtype, shape or offsets (or the file is truncated).", what
            )


def check_model_folder(folder: str | Path) -> None:
    """Refuse a model folder with pickle weight files; check every safetensors header in it."""
    folder = Path(folder)
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    pickled = [p for p in files if p.suffix.lower() in PICKLE_SUFFIXES]
    if pickled:
        names = ", ".join(str(p.relative_to(folder)) for p in pickled[:5])
        raise ReelgraphError(
            f"Model folder {str(folder)!r} holds non-safetensors weights: {names}.",
            why="reelgraph loads safetensors only: pickle formats (.bin, .pt, .pth, .ckpt) can run code when loaded.",
            fix="use the model's .safetensors files (convert with diffusers/transformers' save_pretrained), "
            "and remove the others.",
        )
    for path in files:
        if path.suffix.lower() == ".safetensors":
            read_header(path, "Model weights")
