"""Video and image files: frames in, files out, and back.

Frames are ``uint8`` arrays of shape ``(F, H, W, 3)``. MP4 is H.264 through
PyAV; GIF and PNG through Pillow. Every write is atomic.

Two MP4 flavours:

* ``lossless=True``: H.264 in RGB at qp 0 (``libx264rgb``), for pool videos
  that programs read back (the toy probe, VAE encoding for ONA). Every pixel
  survives exactly.
* ``lossless=False``: yuv420p at a high quality setting, playable anywhere; for
  videos people watch. ``scale`` enlarges small frames (nearest neighbour) so a
  32x32 toy clip is not a speck on screen.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from fractions import Fraction
from pathlib import Path

import numpy as np

from reelgraph.atomic import atomic_path
from reelgraph.errors import ReelgraphError


def _check_frames(frames: np.ndarray) -> np.ndarray:
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"expected uint8 frames of shape (F, H, W, 3), got {frames.dtype} {frames.shape}")
    return frames


def upscale(frames: np.ndarray, scale: int) -> np.ndarray:
    """Nearest-neighbour enlargement of ``(F, H, W, 3)`` frames by an integer factor."""
    if scale <= 1:
        return frames
    return frames.repeat(scale, axis=-3).repeat(scale, axis=-2)


class Mp4Writer:
    """Streams frames into an H.264 MP4; the file appears only on :meth:`close`.

    Use as a context manager. Frames can be appended clip by clip, so a long
    video never has to sit in memory whole.
    """

    def __init__(self, path: str | os.PathLike[str], fps: int = 8, lossless: bool = False, scale: int = 1):
        self.path = Path(path)
        self.fps = fps
        self.lossless = lossless
        self.scale = scale
        self.frames_written = 0
        self._ctx = atomic_path(self.path)
        self._tmp: Path | None = None
        self._container = None
        self._stream = None

    def __enter__(self) -> Mp4Writer:
        self._tmp = self._ctx.__enter__()
        return self

    def _open(self, height: int, width: int) -> None:
        import av

        self._container = av.open(str(self._tmp), mode="w", format="mp4")
        codec = "libx264rgb" if self.lossless else "libx264"
        stream = self._container.add_stream(codec, rate=Fraction(self.fps))
        stream.width, stream.height = width, height
        if self.lossless:
            stream.pix_fmt = "rgb24"
            stream.options = {"qp": "0", "preset": "veryfast"}
        else:
            stream.pix_fmt = "yuv420p"
            stream.options = {"crf": "12", "preset": "medium"}
        self._stream = stream

    def write(self, frames: np.ndarray) -> None:
        """Append ``(F, H, W, 3)`` uint8 frames."""
        import av

        frames = upscale(_check_frames(frames), self.scale)
        if self._container is None:
            h, w = frames.shape[1:3]
            if h % 2 or w % 2:
                raise ValueError(f"H.264 needs even frame sizes, got {w}x{h}")
            self._open(h, w)
        for frame in frames:
            video_frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
            for packet in self._stream.encode(video_frame):
                self._container.mux(packet)
        self.frames_written += len(frames)

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            if self._container is not None:
                if exc_type is None:
                    for packet in self._stream.encode():
                        self._container.mux(packet)
                self._container.close()
            elif exc_type is None:
                raise ValueError("no frames were written")
        except BaseException as error:
            self._ctx.__exit__(type(error), error, error.__traceback__)
            raise
        self._ctx.__exit__(exc_type, exc, tb)


def write_mp4(
    frames: np.ndarray, path: str | os.PathLike[str], fps: int = 8, lossless: bool = False, scale: int = 1
) -> Path:
    with Mp4Writer(path, fps=fps, lossless=lossless, scale=scale) as writer:
        writer.write(frames)
    return Path(path)


def iter_video_frames(path: str | os.PathLike[str]) -> Iterator[np.ndarray]:
    """Yield ``(H, W, 3)`` uint8 frames of any video file PyAV can read."""
    import av

    path = Path(path)
    if not path.is_file():
        raise ReelgraphError(f"Video {str(path)!r} does not exist.", fix="check the path.")
    try:
        with av.open(str(path)) as container:
            for frame in container.decode(video=0):
                yield frame.to_ndarray(format="rgb24")
    except (av.error.FFmpegError, ValueError, IndexError) as error:
        raise ReelgraphError(
            f"Video {str(path)!r} cannot be read.",
            why=f"the decoder said: {error}",
            fix="check that the file is a complete video (mp4, webm, gif, ...).",
        ) from error


def read_video(path: str | os.PathLike[str], max_frames: int | None = None) -> np.ndarray:
    """Read a whole video as ``(F, H, W, 3)`` uint8; at most ``max_frames`` frames."""
    frames = []
    for frame in iter_video_frames(path):
        frames.append(frame)
        if max_frames is not None and len(frames) >= max_frames:
            break
    if not frames:
        raise ReelgraphError(f"Video {str(path)!r} has no frames.", fix="check the file.")
    return np.stack(frames)


def write_gif(
    frames: Iterable[np.ndarray], path: str | os.PathLike[str], fps: int = 8, scale: int = 1
) -> Path:
    from PIL import Image

    images = [Image.fromarray(frame) for frame in upscale(_check_frames(np.asarray(list(frames))), scale)]
    with atomic_path(path) as tmp:
        images[0].save(
            tmp, format="GIF", save_all=True, append_images=images[1:], duration=round(1000 / fps), loop=0
        )
    return Path(path)


def write_png(image: np.ndarray, path: str | os.PathLike[str]) -> Path:
    from PIL import Image

    with atomic_path(path) as tmp:
        Image.fromarray(np.asarray(image)).save(tmp, format="PNG")
    return Path(path)
