"""Progress bars on the terminal (rich), or nothing when ``progress`` is off."""

from __future__ import annotations

from collections.abc import Iterator


def progress_range(start: int, stop: int, step: int, what: str, enabled: bool) -> Iterator[int]:
    """``range(start, stop, step)`` with a transient bar labelled ``what``."""
    if not enabled:
        yield from range(start, stop, step)
        return
    from rich.progress import Progress

    with Progress(transient=True) as bar:
        task = bar.add_task(what, total=stop - start)
        for i in range(start, stop, step):
            yield i
            bar.update(task, advance=min(step, stop - i))


class PhaseBar:
    """A phase's bar: steps when the phase has a step budget, else seconds of its time budget."""

    def __init__(self, name: str, total: float, completed: float, by_steps: bool):
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        self.by_steps = by_steps
        self.bar = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            TextColumn("step {task.fields[step]}  loss {task.fields[loss]}"),
            TimeElapsedColumn(),
        )
        self.task = self.bar.add_task(name, total=total, completed=completed, step=0, loss="-")
        self.bar.start()

    def update(self, step: int, elapsed: float, loss: float) -> None:
        completed = step if self.by_steps else elapsed
        self.bar.update(self.task, completed=completed, step=step, loss=f"{loss:.4f}", refresh=False)

    def stop(self) -> None:
        self.bar.stop()
