"""JSON that every reader accepts: no ``NaN`` / ``Infinity`` (Python's json writes them by default)."""

from __future__ import annotations

import json
import math
from typing import Any


def finite(obj: Any) -> Any:
    """``obj`` with every non-finite float (inf, -inf, nan) replaced by ``None`` (JSON null)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {key: finite(value) for key, value in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite(value) for value in obj]
    return obj


def dumps(obj: Any, **options: Any) -> str:
    """:func:`json.dumps` of :func:`finite` ``obj``, with ``allow_nan=False`` as the guarantee."""
    return json.dumps(finite(obj), allow_nan=False, **options)
