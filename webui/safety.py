"""Who may reach the UI, and what an upload may be.

The server binds 127.0.0.1 unless told otherwise; any other address is refused without a
password (``--auth USER:PASSWORD`` or ``--auth FILE`` holding that line), because whoever
reaches the page can spend the GPU and read every run. Uploaded images get the checks the
CLI's ``--image`` gets (Pillow must read them) plus a size limit, before any model sees them.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from reelgraph.atomic import write_bytes
from reelgraph.errors import ReelgraphError

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".webp", ".bmp"})
MAX_UPLOAD_BYTES = 20 * 1024 * 1024  # an image this large is not a first frame; it is a mistake or an attack
MAX_UPLOAD_PIXELS = 4096 * 4096


def read_auth(value: str | None) -> tuple[str, str] | None:
    """``USER:PASSWORD``, or a file whose first line is ``USER:PASSWORD``, as ``(user, password)``."""
    if value is None:
        return None
    text = value
    path = Path(value).expanduser()
    if path.is_file():
        try:
            lines = path.read_text().splitlines()
        except (OSError, UnicodeDecodeError) as error:
            raise ReelgraphError(f"Auth file {str(path)!r} cannot be read: {error}.") from error
        text = lines[0].strip() if lines else ""
    user, colon, password = text.partition(":")
    if not colon or not user or not password:
        raise ReelgraphError(
            "--auth needs a user name and a password.",
            why="it was neither USER:PASSWORD nor a file whose first line is USER:PASSWORD.",
            fix="pass --auth USER:PASSWORD, or --auth FILE with that line in FILE.",
        )
    return user, password


def check_exposure(host: str, auth: tuple[str, str] | None) -> None:
    """Refuse to serve beyond this machine without a password."""
    if host in LOOPBACK_HOSTS or auth is not None:
        return
    raise ReelgraphError(
        f"Refusing to serve the UI on {host!r} without a password.",
        why="anyone who can reach that address could spend this machine's GPU and read every run.",
        fix="add --auth USER:PASSWORD (or --auth FILE holding that line), or keep the default --host 127.0.0.1.",
    )


def check_image_upload(path: str | Path, uploads_dir: Path) -> Path:
    """A checked copy of an uploaded image in ``uploads_dir``, named by its content hash."""
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    name = path.name
    if path.suffix.lower() not in IMAGE_SUFFIXES:
        raise ReelgraphError(
            f"Upload {name!r} is not an image file.",
            fix=f"upload one of: {', '.join(sorted(IMAGE_SUFFIXES))}.",
        )
    size = path.stat().st_size
    if size > MAX_UPLOAD_BYTES:
        raise ReelgraphError(
            f"Upload {name!r} is {size / 2**20:.1f} MB.",
            why=f"images are limited to {MAX_UPLOAD_BYTES // 2**20} MB.",
            fix="upload a smaller image (the model resizes it to its own size anyway).",
        )
    try:
        with Image.open(path) as image:
            width, height = image.size
            if width * height > MAX_UPLOAD_PIXELS:
                raise ReelgraphError(
                    f"Upload {name!r} is {width}x{height} pixels.",
                    why=f"images are limited to {MAX_UPLOAD_PIXELS:,} pixels.",
                    fix="upload a smaller image.",
                )
            image.verify()
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as error:
        raise ReelgraphError(
            f"Upload {name!r} cannot be read as an image.",
            why=f"Pillow said: {error}",
            fix="upload a PNG or JPEG image.",
        ) from error
    data = path.read_bytes()
    kept = uploads_dir / f"{hashlib.sha256(data).hexdigest()[:16]}{path.suffix.lower()}"
    uploads_dir.mkdir(parents=True, exist_ok=True)
    if not kept.exists():  # content-named: the same image uploaded twice is kept once
        write_bytes(kept, data)
    return kept
