"""One inference thread with a bounded queue in front of it.

Every model call of the app (WebSocket frames, uploads) is a job on this one thread, so any
number of clients cannot oversubscribe the CPU or the GPU: onnxruntime already spreads one
call over the cores. A full queue refuses new jobs at once with :class:`QueueFullError`
(the server answers 503 with ``Retry-After``), never by blocking the caller.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

T = TypeVar("T")


class QueueFullError(RuntimeError):
    """The inference queue is full: try again in a moment."""


class InferenceWorker:
    """Runs submitted callables one at a time on a single daemon thread.

    Args:
        max_queue: jobs that may wait behind the running one; more are refused.
    """

    def __init__(self, max_queue: int = 8) -> None:
        if max_queue < 1:
            raise ValueError(f"max_queue must be >= 1, got {max_queue}")
        self.max_queue = max_queue
        self._queue: queue.Queue[tuple[Callable[[], Any], Future] | None] = queue.Queue(max_queue)
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._stopped = False
        self.completed = 0
        self.rejected = 0

    @property
    def queued(self) -> int:
        """Jobs waiting (not counting the one running)."""
        return self._queue.qsize()

    def start(self) -> None:
        """Start the thread (done by the first :meth:`submit` too)."""
        with self._lock:
            if self._stopped:
                raise RuntimeError("this InferenceWorker was stopped; make a new one")
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._loop, name="instanthmr-inference", daemon=True
                )
                self._thread.start()

    def submit(self, fn: Callable[[], T]) -> Future[T]:
        """Queue ``fn`` and return its future; QueueFullError when the queue is full."""
        self.start()
        fut: Future[T] = Future()
        try:
            self._queue.put_nowait((fn, fut))
        except queue.Full:
            self.rejected += 1
            raise QueueFullError(
                f"the inference queue is full ({self.max_queue} jobs waiting): try again "
                "shortly, or start the server with a larger --max-queue"
            ) from None
        return fut

    def stop(self, timeout: float = 10.0) -> None:
        """Finish the queued jobs, then end the thread."""
        with self._lock:
            self._stopped = True
            thread = self._thread
        if thread is None:
            return
        self._queue.put(None, timeout=timeout)  # after every job already queued
        thread.join(timeout)

    def _loop(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            fn, fut = item
            if not fut.set_running_or_notify_cancel():
                continue
            try:
                fut.set_result(fn())
            except Exception as exc:  # handed to whoever waits on the future
                fut.set_exception(exc)
            self.completed += 1
