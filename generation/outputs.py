"""From latents to the files people watch: ``video.mp4``, ``video.gif`` and ``sheet.png``.

Clips are decoded one at a time and streamed into the MP4 writer, so no
video-length tensor is ever held; the GIF and the contact sheet need all
frames, which are kept as native-size uint8 (tiny next to the model).
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from reelgraph.media import Mp4Writer, upscale, write_gif, write_png

SHEET_TILE_PIXELS = 128
SHEET_MAX_TILES = 16
SHEET_COLUMNS = 8


def contact_sheet(frames: np.ndarray, caption: str, max_tiles: int = SHEET_MAX_TILES) -> np.ndarray:
    """Frames ``(F, H, W, 3)`` uint8 laid out in a grid, ``caption`` written under it.

    At most ``max_tiles`` frames, evenly spaced; small frames are enlarged to
    about 128 px so that a 32x32 toy clip is legible.
    """
    from PIL import Image, ImageDraw, ImageFont

    count = len(frames)
    picks = np.unique(np.linspace(0, count - 1, min(count, max_tiles)).round().astype(int))
    scale = max(1, SHEET_TILE_PIXELS // frames.shape[1])
    tiles = upscale(frames[picks], scale)
    th, tw = tiles.shape[1:3]
    cols = min(SHEET_COLUMNS, len(tiles))
    rows = -(-len(tiles) // cols)
    pad = 4
    font = ImageFont.load_default(size=16)
    lines = textwrap.wrap(caption, width=max(20, (cols * (tw + pad)) // 9)) or [""]
    text_h = 22 * len(lines) + 2 * pad
    sheet = Image.new("RGB", (cols * (tw + pad) + pad, rows * (th + pad) + pad + text_h), (255, 255, 255))
    for k, tile in enumerate(tiles):
        r, c = divmod(k, cols)
        sheet.paste(Image.fromarray(tile), (pad + c * (tw + pad), pad + r * (th + pad)))
    draw = ImageDraw.Draw(sheet)
    y = rows * (th + pad) + pad + pad
    for line in lines:
        draw.text((pad, y), line, fill=(0, 0, 0), font=font)
        y += 22
    return np.asarray(sheet)


def write_outputs(
    clips: Iterable[np.ndarray], run_dir: Path, caption: str, fps: int, view_scale: int = 1
) -> dict[str, str | int]:
    """Stream ``(F, H, W, 3)`` uint8 clips into the run folder's three viewing files."""
    run_dir = Path(run_dir)
    kept: list[np.ndarray] = []
    with Mp4Writer(run_dir / "video.mp4", fps=fps, scale=view_scale) as writer:
        for frames in clips:
            writer.write(frames)
            kept.append(frames)
    frames = np.concatenate(kept)
    gif_scale = max(1, min(view_scale, 256 // frames.shape[1]))
    write_gif(upscale(frames, gif_scale), run_dir / "video.gif", fps=fps)
    write_png(contact_sheet(frames, caption), run_dir / "sheet.png")
    return {
        "video": str(run_dir / "video.mp4"),
        "gif": str(run_dir / "video.gif"),
        "sheet": str(run_dir / "sheet.png"),
        "num_frames": len(frames),
        "height": int(frames.shape[1]),
        "width": int(frames.shape[2]),
    }
