"""Still images given by the user (a scene's first frame): read, checked and fitted to the model's size.

Torch-free, so the planner can refuse a bad image before any weights load.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from reelgraph.errors import ReelgraphError


def load_image(path: str | Path, height: int | None = None, width: int | None = None) -> np.ndarray:
    """An image file as ``(H, W, 3)`` uint8; resized to ``height x width`` when given (centre crop to the
    aspect ratio, then area-average resampling)."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    path = Path(path)
    if not path.is_file():
        raise ReelgraphError(f"Image {str(path)!r} does not exist.", fix="check the path.")
    try:
        with Image.open(path) as image:
            rgb = image.convert("RGB")
    except (UnidentifiedImageError, OSError) as error:
        raise ReelgraphError(
            f"Image {str(path)!r} cannot be read.",
            why=f"Pillow said: {error}",
            fix="give a PNG or JPEG image.",
        ) from error
    if height is not None and width is not None and rgb.size != (width, height):
        rgb = ImageOps.fit(rgb, (width, height), method=Image.Resampling.BOX)
    return np.array(rgb, dtype=np.uint8)  # a writable copy (torch.from_numpy warns on read-only arrays)
