"""The one progress-bar helper of the CLI: rich bars on stderr, started on the first update.

Starting late means an error before the first step prints cleanly. The bars are
fed by ``progress(label, done, total)`` (the generation service's step hook);
jobs that report ``progress(done, total)`` get a labelled view with :meth:`ProgressBars.counter`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from reelgraph.commands.common import err
from reelgraph.terminal_text import escape


class ProgressBars:
    """``bars(label, done, total)`` draws one bar per label; a context manager that stops them."""

    def __init__(self, enabled: bool = True):
        self.enabled = enabled
        self._progress = None
        self._tasks: dict[str, Any] = {}

    def __enter__(self) -> ProgressBars:
        return self

    def __call__(self, label: str, completed: int, total: int) -> None:
        self.update(label, completed, total)

    def update(self, label: str, completed: int, total: int) -> None:
        if not self.enabled:
            return
        if self._progress is None:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self._progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeRemainingColumn(),
                console=err,
                transient=True,
            )
            self._progress.start()
        if label not in self._tasks:
            self._tasks[label] = self._progress.add_task(escape(label), total=total)
        self._progress.update(self._tasks[label], completed=completed, total=total)

    def counter(self, label: str) -> Callable[[int, int], None]:
        """A ``progress(done, total)`` callback drawing the bar ``label``."""
        return lambda done, total: self.update(label, done, total)

    def __exit__(self, *exc) -> None:
        if self._progress is not None:
            self._progress.stop()
