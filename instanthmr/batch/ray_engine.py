"""The Ray engine: one Ray actor per worker, on this machine or a cluster.

Each actor holds a :class:`~instanthmr.batch.worker.BatchWorker`, so its onnxruntime
sessions are created once, in the actor's ``__init__``. An actor reserves ``threads`` CPUs
(its intra-op thread count) and ``gpus_per_worker`` GPUs (fractions allowed), so Ray never
places more work on a node than it has cores. The driver (this process) hands each actor
one input at a time, collects the records and writes the manifest; actors read the inputs
and write the outputs themselves, so both must be on a path every node sees (a shared
filesystem mounted at the same place).

An actor that dies takes only its current input with it: that input is recorded as failed
and a new actor takes its place. ``ray`` is imported only when this engine runs (extra
``instanthmr[ray]``).
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
from collections import deque
from collections.abc import Iterator, Sequence
from typing import Any

from .options import BatchConfigError, BatchOptions
from .task import Task
from .worker import BatchWorker, failed_record

log = logging.getLogger(__name__)

Event = tuple[str, Task, Any]
PROGRESS_POLL_S = 1.0


def import_ray() -> Any:
    """``import ray``, or a clear error naming the extra to install."""
    try:
        import ray
    except ImportError as exc:
        raise BatchConfigError("--engine ray needs Ray: `pip install 'instanthmr[ray]'`") from exc
    return ray


class BatchActor:
    """The body of a Ray actor (wrapped with ``ray.remote`` when the engine starts).

    ``max_concurrency=2`` lets :meth:`progress` answer while :meth:`process` runs; the
    driver never sends an actor a second task before the first is finished.
    """

    def __init__(self, options: BatchOptions, threads: int) -> None:
        self.worker = BatchWorker(options, threads)
        self._progress: tuple[int, int, int | None] | None = None

    def info(self) -> dict[str, Any]:
        """Host, pid, threads, model load seconds and resident MiB of this actor."""
        return self.worker.info()

    def process(self, task: Task) -> dict[str, Any]:
        """Run one task and return its manifest record."""

        def progress(done: int, total: int | None) -> None:
            self._progress = (task.index, done, total)

        try:
            return self.worker.process(task, progress)
        finally:
            self._progress = None

    def progress(self) -> tuple[int, int, int | None] | None:
        """(task index, frames done, frames expected) of the running task, or None."""
        return self._progress


CONNECT_TIMEOUT_S = 30.0
"""How long connecting to a Ray cluster (``--address``) may take before the batch gives up."""
START_HINT = (
    "start a cluster with `ray start --head` on the head machine (then --address auto "
    "there, or HOST:6379 from the others), or use --address local to start one for this batch"
)


def _host_port(address: str) -> tuple[str, int] | None:
    """(host, port) of ``HOST:PORT`` or ``ray://HOST:PORT``; None for ``auto``."""
    if address == "auto":
        return None
    rest = address.removeprefix("ray://")
    host, sep, port = rest.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise BatchConfigError(
            f"--address {address}: expected local, auto, HOST:PORT or ray://HOST:PORT"
        )
    return host.strip("[]"), int(port)


def _reachable(address: str, timeout_s: float) -> None:
    """Fail fast (BatchConfigError) when nothing listens at the address's host and port."""
    target = _host_port(address)
    if target is None:
        return
    try:
        socket.create_connection(target, timeout=min(5.0, timeout_s)).close()
    except OSError as exc:
        why = exc.strerror or type(exc).__name__
        raise BatchConfigError(
            f"cannot reach a Ray cluster at {address} ({why}); {START_HINT}"
        ) from None


def _init_within(ray: Any, address: str, timeout_s: float) -> None:
    """``ray.init(address=...)`` in a thread, given up after ``timeout_s``: Ray retries a
    cluster that does not answer for minutes."""
    failure: list[BaseException] = []

    def init() -> None:
        try:
            ray.init(address=address)
        except Exception as exc:  # reported below, in the caller's thread
            failure.append(exc)

    thread = threading.Thread(target=init, name="ray-connect", daemon=True)
    thread.start()
    thread.join(timeout_s)
    if thread.is_alive():
        raise BatchConfigError(
            f"no Ray cluster answered at {address} within {timeout_s:.0f} s (is it a Ray "
            f"head node?); {START_HINT}"
        )
    if failure:
        why = " ".join(str(failure[0]).split())[:300]
        raise BatchConfigError(f"cannot connect to Ray at {address} ({why}); {START_HINT}")


def connect(address: str, timeout_s: float = CONNECT_TIMEOUT_S) -> bool:
    """Connect to Ray (``local`` starts a private instance); True if this call started it.

    When Ray is already initialised in this process (say, by the caller's own
    ``ray.init(num_cpus=2)``), that connection is used as it is. Connecting to a cluster
    (``auto``, ``HOST:PORT``, ``ray://HOST:PORT``) fails within ``timeout_s``
    (:data:`CONNECT_TIMEOUT_S`) with a BatchConfigError naming the address and how to
    start a cluster: at once when nothing listens there.
    """
    ray = import_ray()
    if ray.is_initialized():
        return False
    if address == "local":
        ray.init(include_dashboard=False)
        return True
    _reachable(address, timeout_s)
    _init_within(ray, address, timeout_s)
    return True


def plan(workers: int | None, threads: int | None, gpus: float) -> tuple[int, int]:
    """(actors, threads per actor) that fit the connected cluster's CPUs (and GPUs)."""
    ray = import_ray()
    resources = ray.cluster_resources()
    cpus = int(resources.get("CPU", 1))
    if threads is None:
        threads = 1 if workers is None else max(1, min(8, cpus // workers))
    fits = max(1, cpus // threads)
    if gpus > 0:
        fits = max(1, min(fits, int(resources.get("GPU", 0) / gpus)))
    if workers is None:
        workers = fits
    elif workers > fits:  # the driver waits for every actor: never ask for more than fit
        log.warning("the cluster has room for %d actors of %d CPUs (%s GPUs) now, not %d; "
                    "using %d", fits, threads, gpus, workers, fits)  # fmt: skip
        workers = fits
    return workers, threads


class RayEngine:
    """Runs tasks on ``workers`` Ray actors with ``threads`` CPUs (and ``gpus`` GPUs) each."""

    name = "ray"

    def __init__(
        self, options: BatchOptions, workers: int, threads: int, gpus: float = 0.0,
        progress: bool = True,
    ) -> None:  # fmt: skip
        self.options = options
        self.workers = workers
        self.threads = threads
        self.gpus = gpus
        self.want_progress = progress
        self.infos: list[dict[str, Any]] = []

    def _spawn(self, ray: Any) -> Any:
        cls = ray.remote(BatchActor).options(
            num_cpus=self.threads, num_gpus=self.gpus, max_concurrency=2, max_restarts=0,
            max_task_retries=0,
        )  # fmt: skip
        return cls.remote(self.options, self.threads)

    def _ready(self, ray: Any, actors: list[Any]) -> None:
        try:
            self.infos += ray.get([a.info.remote() for a in actors])
        except ray.exceptions.RayError as exc:
            raise BatchConfigError(f"a Ray worker could not build its pipeline: {exc}") from exc

    def run(self, tasks: Sequence[Task]) -> Iterator[Event]:
        """Process every task; yields progress and result events as they happen."""
        ray = import_ray()
        pending = deque(tasks)
        actors = [self._spawn(ray) for _ in range(min(self.workers, len(pending)))]
        running: dict[Any, tuple[Any, Task]] = {}
        try:
            self._ready(ray, actors)
            idle = list(actors)
            last_poll = time.monotonic()
            while pending or running:
                while idle and pending:
                    actor, task = idle.pop(), pending.popleft()
                    running[actor.process.remote(task)] = (actor, task)
                done, _ = ray.wait(list(running), num_returns=1, timeout=PROGRESS_POLL_S)
                for ref in done:
                    actor, task = running.pop(ref)
                    try:
                        record = ray.get(ref)
                    except ray.exceptions.RayActorError as exc:
                        record = failed_record(task, f"the Ray worker died on this input: {exc}")
                        actor = self._replace(ray, actor, actors)
                    except ray.exceptions.RayTaskError as exc:
                        record = failed_record(task, f"the Ray task raised: {exc}")
                    idle.append(actor)
                    yield "result", task, record
                if self.want_progress and running and time.monotonic() - last_poll > 1.0:
                    yield from self._poll(ray, running)
                    last_poll = time.monotonic()
        finally:
            for actor in actors:
                with contextlib.suppress(Exception):  # already dead, or Ray shutting down
                    ray.kill(actor, no_restart=True)

    def _replace(self, ray: Any, dead: Any, actors: list[Any]) -> Any:
        actors.remove(dead)
        with contextlib.suppress(Exception):  # usually dead already
            ray.kill(dead, no_restart=True)
        fresh = self._spawn(ray)
        actors.append(fresh)
        self._ready(ray, [fresh])
        return fresh

    def _poll(self, ray: Any, running: dict[Any, tuple[Any, Task]]) -> Iterator[Event]:
        tasks = {t.index: t for _, t in running.values()}
        refs = [a.progress.remote() for a, _ in running.values()]
        try:
            answers = ray.get(refs, timeout=5.0)
        except ray.exceptions.RayError:  # a dying actor: its result will say so
            return
        for answer in answers:
            if answer is not None and answer[0] in tasks:
                yield "progress", tasks[answer[0]], answer[1:]
