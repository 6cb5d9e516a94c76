"""One runner for work items, two engines: in this process (the default) or on a Ray cluster.

Indexing (caption batches to parse and embed, pool videos to invert) and batch generation
(one prompt or storyboard, seed and configuration per item) hand their items to
:meth:`WorkRunner.map`; nothing outside this module knows which engine runs them. Both engines
run an item through the same :class:`_Worker` (``setup()`` once per worker, then
``task(state, item)`` per item), so a Ray run computes exactly what the in-process run computes.

* in process: one worker, items one after another, as every command ran before;
* Ray (``ray = true`` / ``--ray``: start a local cluster, or ``ray_address`` / ``--ray-address``:
  join one): ``ray_workers`` actors (default one per CPU, or one per GPU for GPU work, each with
  ``num_gpus=1``), each loading its model once; items go to whichever actor is free. Each
  actor computes with the driver's torch thread count (or ``work_threads``): CPU float sums
  depend on it, so a different count would change the last bits of a video.

Results come back in the items' order whatever order they finish in, so callers write them
exactly as the in-process run does (the driver is the one writer of the Chroma store). An item
that fails (an exception, or its worker process dying) is retried up to ``work_retries`` times
on a fresh attempt (a new actor when the old one died), then reported in its :class:`Outcome`
with the reason; a :class:`~reelgraph.errors.ReelgraphError` (bad input) is reported at once,
since another try would fail the same way. Nothing is dropped silently.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from reelgraph.errors import ReelgraphError

Task = Callable[[Any, Any], Any]
Setup = Callable[[], Any]


@dataclass(frozen=True)
class Outcome:
    """What became of item ``index``: its ``value``, or ``error`` (the reason) after ``attempts`` tries."""

    index: int
    item: Any
    value: Any = None
    error: str | None = None
    attempts: int = 1
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.error is None


class WorkRunner(Protocol):
    def map(
        self, task: Task, items: Iterable[Any], *, setup: Setup | None = None, gpu: bool = False
    ) -> Iterator[Outcome]:
        """Run ``task(setup(), item)`` for every item; yield an :class:`Outcome` per item, in order.

        ``setup`` (e.g. loading a model) runs once per worker; ``gpu`` asks for one GPU per worker
        where the cluster has GPUs. ``task`` and ``setup`` must be picklable (module-level
        functions or :func:`functools.partial` of them), and so must items and values.
        """
        ...

    def close(self) -> None: ...


class _Worker:
    """Runs items for one worker: ``setup()`` on the first item, then ``task(state, item)``.

    Failures come back as values (``("failed", reason, retry)``), never as exceptions, so both
    engines see the same thing and Ray's exception wrapping never hides the reason.
    """

    def __init__(self, task: Task, setup: Setup | None, threads: int | None = None):
        self.task, self.setup, self.threads = task, setup, threads
        self.state: Any = None
        self.ready = False

    def pid(self) -> int:
        return os.getpid()

    def run(self, item: Any) -> tuple[str, Any, bool, float]:
        started = time.perf_counter()
        if self.threads is not None:
            _set_threads(self.threads)
        try:
            if not self.ready:
                self.state = self.setup() if self.setup is not None else None
                self.ready = True
            value = self.task(self.state, item)
        except ReelgraphError as error:  # bad input: the next try would fail the same way
            return "failed", error.message, False, time.perf_counter() - started
        except Exception as error:
            return "failed", _reason(error), True, time.perf_counter() - started
        return "ok", value, False, time.perf_counter() - started


def _reason(error: Exception) -> str:
    """``Type: message (file:line)``: where the error was raised, for a report without a traceback."""
    import traceback

    frames = traceback.extract_tb(error.__traceback__)
    where = f" ({Path(frames[-1].filename).name}:{frames[-1].lineno})" if frames else ""
    return f"{type(error).__name__}: {error}{where}"


def _torch_threads() -> int:
    import torch

    return torch.get_num_threads()


def _set_threads(threads: int) -> None:
    # CPU float reductions (convolutions, matmuls) group their sums by thread, so the same item
    # gives other last bits with another thread count: every worker uses the same count.
    import torch

    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)


def _outcome(index: int, item: Any, result: tuple[str, Any, bool, float], attempts: int) -> Outcome:
    status, value, _, seconds = result
    if status == "ok":
        return Outcome(index, item, value=value, attempts=attempts, seconds=seconds)
    return Outcome(index, item, error=value, attempts=attempts, seconds=seconds)


class InProcessRunner:
    """Items one after another in this process: the default engine."""

    def __init__(self, retries: int = 2, threads: int | None = None):
        self.retries, self.threads = retries, threads

    def map(
        self, task: Task, items: Iterable[Any], *, setup: Setup | None = None, gpu: bool = False
    ) -> Iterator[Outcome]:
        before = _torch_threads() if self.threads is not None else None
        worker = _Worker(task, setup, self.threads)
        try:
            for index, item in enumerate(items):
                attempts = 0
                while True:
                    attempts += 1
                    result = worker.run(item)
                    retry = result[0] == "failed" and result[2] and attempts <= self.retries
                    if not retry:
                        yield _outcome(index, item, result, attempts)
                        break
        finally:
            if before is not None:
                _set_threads(before)

    def close(self) -> None:
        pass


def project_root() -> Path:
    """The folder that holds the ``reelgraph`` package (and ``agent``, ``generation``, ...)."""
    return Path(__file__).resolve().parent.parent


def local_cluster_options(num_cpus: int | None = None) -> dict[str, Any]:
    """``ray.init`` arguments of a local cluster whose workers import this checkout.

    Workers get the project root first on ``PYTHONPATH``, so they import the same code as the
    driver whether or not the package is installed (a fresh clone, an editable install elsewhere).
    A job that joins a cluster sets the same (on a node without that folder Python skips the entry
    and the installed reelgraph is imported: install the same version on every node).
    """
    path = os.pathsep.join(p for p in (str(project_root()), os.environ.get("PYTHONPATH", "")) if p)
    options: dict[str, Any] = {
        # "local": always a cluster of our own; without an address Ray would join the last
        # cluster `ray start` left on this machine (RAY_ADDRESS, /tmp/ray/ray_current_cluster).
        "address": "local",
        "include_dashboard": False,
        "runtime_env": {"env_vars": {"PYTHONPATH": path}},
        "logging_level": "warning",
    }
    if num_cpus is not None:
        options["num_cpus"] = num_cpus
    return options


def _import_ray():
    try:
        import ray
    except ImportError as error:
        raise ReelgraphError(
            "Ray is not installed, so --ray / ray_address cannot run.",
            fix="pip install 'reelgraph[ray]' (every worker of the cluster needs it too), or drop --ray.",
        ) from error
    return ray


class RayRunner:
    """Items on Ray actors: ``workers`` of them, each with its own ``setup()`` (its model)."""

    def __init__(
        self,
        address: str | None = None,
        workers: int | None = None,
        retries: int = 2,
        threads: int | None = None,
    ):
        ray = _import_ray()
        self.retries, self.workers, self.threads = retries, workers, threads
        self.started_here = False
        if not ray.is_initialized():
            try:
                if address:  # joining: the cluster's resources are its own; only this job's env is ours
                    options = local_cluster_options()
                    ray.init(address=address, runtime_env=options["runtime_env"], logging_level="warning")
                else:
                    ray.init(**local_cluster_options())
            except (ConnectionError, RuntimeError, ValueError) as error:
                raise ReelgraphError(
                    f"Could not {'join the Ray cluster at ' + address if address else 'start a local Ray cluster'}.",
                    why=str(error).splitlines()[0] if str(error) else type(error).__name__,
                    fix="check --ray-address (host:port of `ray start --head`), or run without --ray.",
                ) from error
            self.started_here = True

    def _pool_size(self, ray, gpu: bool) -> tuple[int, dict[str, float]]:
        resources = ray.cluster_resources()
        gpus = int(resources.get("GPU", 0))
        if gpu and gpus > 0:
            return self.workers or gpus, {"num_gpus": 1, "num_cpus": 1}
        return self.workers or max(1, int(resources.get("CPU", 1))), {"num_cpus": 1}

    def map(
        self, task: Task, items: Iterable[Any], *, setup: Setup | None = None, gpu: bool = False
    ) -> Iterator[Outcome]:
        ray = self._ray = _import_ray()
        size, resources = self._pool_size(ray, gpu)
        # Ray's own retries stay off: an actor that died is replaced here, and the item retried
        # within the same bound as an item that raised.
        remote = ray.remote(max_restarts=0, max_task_retries=0)(_Worker).options(**resources)
        task_ref, setup_ref = ray.put(task), ray.put(setup)
        # Every actor computes with the thread count an in-process run has here, so results are equal.
        threads = self.threads or _torch_threads()

        def new_actor():
            return remote.remote(task_ref, setup_ref, threads)

        pending: dict[Any, tuple[int, Any, int, Any]] = {}  # ref -> (index, item, attempt, actor)
        retry: list[tuple[int, Any, int]] = []
        done: dict[int, Outcome] = {}
        source = enumerate(items)
        exhausted, next_out = False, 0
        idle: list[Any] = []  # actors start as items need them: a batch of 3 loads at most 3 models
        live: list[Any] = []
        try:
            while True:
                while (idle or len(live) < size) and (retry or not exhausted):
                    if retry:
                        index, item, attempt = retry.pop(0)
                    else:
                        try:
                            index, item = next(source)
                        except StopIteration:
                            exhausted = True
                            continue
                        attempt = 1
                    if not idle:
                        live.append(new_actor())
                        idle.append(live[-1])
                    actor = idle.pop()
                    pending[actor.run.remote(item)] = (index, item, attempt, actor)
                if not pending:
                    break
                (ref,), _ = ray.wait(list(pending), num_returns=1)
                index, item, attempt, actor = pending.pop(ref)
                try:
                    result = ray.get(ref)
                except ray.exceptions.RayError as error:  # the worker died (killed, out of memory, ...)
                    live.remove(actor)  # a new one starts when an item needs it
                    actor = None
                    reason = f"worker died: {type(error).__name__}: {str(error).splitlines()[0]}"
                    result = ("failed", reason, True, 0.0)
                if actor is not None:
                    idle.append(actor)
                if result[0] == "failed" and result[2] and attempt <= self.retries:
                    retry.append((index, item, attempt + 1))
                else:
                    done[index] = _outcome(index, item, result, attempt)
                while next_out in done:
                    yield done.pop(next_out)
                    next_out += 1
        finally:
            for actor in live:
                with contextlib.suppress(Exception):
                    ray.kill(actor)  # frees the actor's model (and its GPU) now

    def close(self) -> None:
        if self.started_here:
            _import_ray().shutdown()
            self.started_here = False


def describe_engine(settings) -> tuple[str, str]:
    """``(status, detail)`` for ``doctor``: the engine the settings name and whether it can run (no cluster
    is started or joined to find out)."""
    from importlib import metadata

    try:
        version = metadata.version("ray")
    except metadata.PackageNotFoundError:
        version = None
    wanted = settings.ray or settings.ray_address
    where = f"Ray at {settings.ray_address}" if settings.ray_address else "Ray, a local cluster"
    threads = settings.work_threads or "this process's count"
    detail = (
        f"{where if wanted else 'in process'}; {settings.work_retries} retries per item, "
        f"torch threads per item: {threads}; ray {version or 'not installed'}"
    )
    if wanted and version is None:
        return "fail", detail + " (pip install 'reelgraph[ray]')"
    return "ok", detail


def runner_from_settings(settings) -> WorkRunner:
    """The engine the settings name: Ray when ``ray`` or ``ray_address`` is set, else in process."""
    if settings.ray or settings.ray_address:
        return RayRunner(
            settings.ray_address, settings.ray_workers, settings.work_retries, settings.work_threads
        )
    return InProcessRunner(settings.work_retries, settings.work_threads)


@contextlib.contextmanager
def work_runner(settings, runner: WorkRunner | None = None) -> Iterator[WorkRunner]:
    """The given runner, or the settings' one (closed afterwards: a cluster it started shuts down)."""
    if runner is not None:
        yield runner
        return
    made = runner_from_settings(settings)
    try:
        yield made
    finally:
        made.close()
