"""Fault injection for the scale-out tests: a task wrapper whose worker kills itself once.

Ray workers import this module (the test cluster puts the project root on their ``PYTHONPATH``),
so the wrapper pickles by reference. The worker kills only its own process, by the pid it reads
from ``os.getpid()``, and leaves that pid in the marker file for the test to check.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any


class KillOnce:
    """``task`` for every item, except that the first try of the item named ``victim`` kills its worker."""

    def __init__(self, task, victim: str, marker: Path):
        self.task, self.victim, self.marker = task, victim, Path(marker)

    def __call__(self, state: Any, item: Any) -> Any:
        if getattr(item, "name", None) == self.victim and not self.marker.exists():
            self.marker.write_text(str(os.getpid()))
            os.kill(os.getpid(), signal.SIGKILL)
        return self.task(state, item)


class FaultyRunner:
    """A work runner that wraps every task with :class:`KillOnce` before handing it to ``inner``."""

    def __init__(self, inner, victim: str, marker: Path):
        self.inner, self.victim, self.marker = inner, victim, marker

    def map(self, task, items, **options):
        return self.inner.map(KillOnce(task, self.victim, self.marker), items, **options)

    def close(self) -> None:
        self.inner.close()
