"""The local engine: ``--workers N`` processes on this machine, one input at a time each.

Each worker is a ``spawn``-ed process (not ``fork``: onnxruntime's thread pools do not
survive a fork) that builds its pipeline once and then takes tasks over its own pipe. The
driver hands a worker its next task only when the previous one is finished, so when a
worker dies (killed by the OS, a crash in native code) the driver knows exactly which input
it was on: that input is recorded as failed, a fresh worker replaces the dead one, and the
batch goes on. (A ``concurrent.futures.ProcessPoolExecutor`` cannot tell which of its
running tasks killed it: it fails them all with ``BrokenProcessPool``.)

Workers ignore SIGINT, SIGTERM and SIGHUP: on Ctrl-C (or a service manager's SIGTERM to
the whole group) the driver alone stops, kills its workers and deletes their unfinished
files, so a running input is abandoned cleanly. A worker whose driver is gone (``kill -9``)
notices at its next message (a progress update at least every half second, or its
result), stops at once and exits quietly; what it wrote stays in the staging folder, which
the next run empties (:mod:`.task`).
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing as mp
import signal
import threading
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from typing import Any

from .options import BatchConfigError, BatchOptions
from .task import DriverGone, Task
from .worker import BatchWorker, failed_record

log = logging.getLogger(__name__)

Event = tuple[str, Task, Any]
"""``("progress", task, (done, total))`` or ``("result", task, record)``."""


WORKER_IGNORES: tuple[str, ...] = ("SIGINT", "SIGTERM", "SIGHUP")
"""Signals a worker ignores: the driver decides when a worker stops."""


def _ignore_stop_signals() -> None:
    for name in WORKER_IGNORES:
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), signal.SIG_IGN)


def _send(conn: Connection, message: tuple[str, Any, Any]) -> None:
    """Send to the driver; :class:`DriverGone` when it is not there any more."""
    try:
        conn.send(message)
    except (BrokenPipeError, ConnectionResetError, EOFError, OSError) as exc:
        raise DriverGone(str(exc)) from None


def _worker_main(conn: Connection, options: BatchOptions, threads: int) -> None:
    """A worker process: build the pipeline, then answer tasks until told to stop."""
    _ignore_stop_signals()
    try:
        _serve(conn, options, threads)
    except DriverGone:  # kill -9 of the driver: nothing to report to, nothing to publish
        return


def _serve(conn: Connection, options: BatchOptions, threads: int) -> None:
    try:
        worker = BatchWorker(options, threads)
    except Exception as exc:  # reported to the driver, which stops the batch
        _send(conn, ("init_error", None, f"{type(exc).__name__}: {exc}"))
        return
    _send(conn, ("ready", None, worker.info()))
    while True:
        try:
            task = conn.recv()
        except (EOFError, OSError):  # the driver is gone
            return
        if task is None:
            return

        def progress(done: int, total: int | None, task: Task = task) -> None:
            _send(conn, ("progress", task.index, (done, total)))

        _send(conn, ("result", task.index, worker.process(task, progress)))


@dataclass
class _Slot:
    process: Any
    conn: Connection
    task: Task | None = None
    ready: bool = False
    info: dict[str, Any] = field(default_factory=dict)


class LocalEngine:
    """Runs tasks on ``workers`` local processes with ``threads`` CPU threads each."""

    name = "local"

    def __init__(self, options: BatchOptions, workers: int, threads: int) -> None:
        self.options = options
        self.workers = workers
        self.threads = threads
        self.infos: list[dict[str, Any]] = []
        self._ctx = mp.get_context("spawn")

    def _start(self) -> _Slot:
        parent, child = self._ctx.Pipe()
        process = self._ctx.Process(
            target=_worker_main, args=(child, self.options, self.threads),
            name="instanthmr-batch-worker", daemon=True,
        )  # fmt: skip
        main = threading.current_thread() is threading.main_thread()
        names = [n for n in WORKER_IGNORES if hasattr(signal, n)] if main else []
        old = {n: signal.signal(getattr(signal, n), signal.SIG_IGN) for n in names}
        try:  # ignored signals are inherited: a stop signal cannot hit a worker still starting
            process.start()
        finally:
            for n, handler in old.items():
                signal.signal(getattr(signal, n), handler)
        child.close()
        return _Slot(process, parent)

    def run(self, tasks: Sequence[Task]) -> Iterator[Event]:
        """Process every task; yields progress and result events as they happen."""
        pending = deque(tasks)
        slots = [self._start() for _ in range(min(self.workers, len(pending)))]
        try:
            while pending or any(s.task is not None for s in slots):
                for n, slot in enumerate(slots):
                    if slot.task is None and pending:
                        if not slot.process.is_alive():  # died while idle: nothing lost
                            self._close(slot)
                            slot = slots[n] = self._start()
                        slot.task = pending.popleft()
                        slot.conn.send(slot.task)
                busy = [s for s in slots if s.task is not None]
                ready = wait([s.conn for s in busy] + [s.process.sentinel for s in busy], 1.0)
                for slot in busy:
                    if slot.conn in ready or slot.process.sentinel in ready:
                        yield from self._drain(slot)
                    if slot.process.sentinel in ready or not slot.process.is_alive():
                        yield from self._dead(slot, slots, pending)
        finally:
            self._stop(slots)

    def _drain(self, slot: _Slot) -> Iterator[Event]:
        with contextlib.suppress(EOFError, OSError):
            while slot.conn.poll():
                kind, index, payload = slot.conn.recv()
                if kind == "init_error":
                    raise BatchConfigError(f"a worker could not build its pipeline: {payload}")
                if kind == "ready":
                    slot.ready, slot.info = True, payload
                    self.infos.append(payload)
                elif slot.task is not None and slot.task.index == index:
                    if kind == "result":
                        task, slot.task = slot.task, None
                        yield "result", task, payload
                    else:
                        yield "progress", slot.task, payload

    def _dead(self, slot: _Slot, slots: list[_Slot], pending: deque[Task]) -> Iterator[Event]:
        slot.process.join(1.0)
        code = slot.process.exitcode
        if not slot.ready:
            raise BatchConfigError(
                f"a worker process died while loading the models (exit code {code}); "
                "check the model files, and the memory available for --workers processes"
            )
        slots.remove(slot)
        slot.conn.close()
        if slot.task is not None:
            log.warning("worker %s died (exit code %s) on %s", slot.info.get("pid"), code,
                        slot.task.item.path)  # fmt: skip
            yield (
                "result",
                slot.task,
                failed_record(
                    slot.task,
                    f"the worker process died (exit code {code}) while processing this input "
                    "(out of memory, or a crash in a decoder or a model)",
                ),
            )
        if pending:
            slots.append(self._start())

    @staticmethod
    def _close(slot: _Slot) -> None:
        slot.process.join(1.0)
        slot.conn.close()

    def _stop(self, slots: list[_Slot]) -> None:
        """Tell idle workers to exit; kill busy ones (their task is abandoned; workers
        ignore SIGTERM, so the driver alone decides)."""
        for slot in slots:
            with contextlib.suppress(OSError, ValueError):
                if slot.task is None:
                    slot.conn.send(None)
                else:
                    slot.process.kill()
        for slot in slots:
            slot.process.join(5.0)
            if slot.process.is_alive():
                slot.process.kill()
                slot.process.join(1.0)
            slot.conn.close()
