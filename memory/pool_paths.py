"""Where a pool CSV row may point: only inside the ``--videos`` folder.

A row's ``videoid`` and ``page_dir`` are text from a file anyone could have
written; ``../..`` or an absolute path in either must not make the pool store
(or later read and invert) a file outside the folder the user named. The check
is on the path as written (``..`` and absolute parts), not on symlinks: links
the user put inside ``--videos`` are theirs to make.
"""

from __future__ import annotations

import os
from pathlib import Path


def inside_videos(videos: Path, videoid: str, page_dir: str | None) -> bool:
    """Whether ``<videos>/<page_dir>/<videoid>`` (and ``<videos>/<videoid>``) stay inside ``videos``."""
    root = os.path.normpath(os.path.abspath(videos))
    for parts in ((page_dir or "", videoid), (videoid,)):
        joined = os.path.normpath(os.path.join(root, *parts))
        if os.path.commonpath([root, joined]) != root or joined == root:
            return False
    return True
