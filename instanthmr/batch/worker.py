"""What one batch worker is, whichever engine runs it: a pipeline built once, then tasks.

A local worker process and a Ray actor both hold one :class:`BatchWorker`. It builds its
:class:`~instanthmr.PosePipeline` (and so its onnxruntime sessions) in ``__init__`` with a
fixed number of CPU threads, and resets the pipeline's per-stream state before each input.
"""

from __future__ import annotations

import os
import socket
import time
from typing import Any

from .options import BatchOptions, build_pipeline
from .task import Progress, Task, run_task


def rss_mb() -> float | None:
    """Resident memory of this process in MiB (Linux), else the peak where known, else None."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    try:
        import resource
        import sys

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak / (1024.0 * 1024.0 if sys.platform == "darwin" else 1024.0)
    except (ImportError, OSError):
        return None


def failed_record(task: Task, error: str) -> dict[str, Any]:
    """The manifest record of a task that produced nothing (its worker died or raised)."""
    item = task.item
    return {
        "input": item.path, "kind": item.kind, "size": item.size, "mtime_ns": item.mtime_ns,
        "options_hash": task.options_hash, "status": "failed", "frames": 0, "persons": 0,
        "tracks": 0, "seconds": None, "error": error, "outputs": [], "host": None, "rss_mb": None,
    }  # fmt: skip


class BatchWorker:
    """One pipeline, loaded once, that processes tasks one after another.

    Args:
        options: what to compute.
        threads: onnxruntime intra-op threads (and OpenCV threads) of this worker.
    """

    def __init__(self, options: BatchOptions, threads: int) -> None:
        import cv2

        t0 = time.perf_counter()
        cv2.setNumThreads(threads)
        self.options = options
        self.threads = threads
        self.pipeline = build_pipeline(options, threads)
        self.load_seconds = time.perf_counter() - t0

    def info(self) -> dict[str, Any]:
        """Where this worker runs and what loading it cost (seconds, resident MiB)."""
        return {
            "host": socket.gethostname(), "pid": os.getpid(), "threads": self.threads,
            "load_seconds": round(self.load_seconds, 3), "rss_mb": rss_mb(),
        }  # fmt: skip

    def process(self, task: Task, progress: Progress | None = None) -> dict[str, Any]:
        """Run one task; an unexpected error (say, a full disk) becomes a failed record."""
        try:  # DriverGone (a BaseException) passes: the worker must stop, not record
            record = run_task(self.pipeline, task, self.options, progress)
        except Exception as exc:  # one bad input must not stop the worker
            record = failed_record(task, f"{type(exc).__name__}: {exc}")
        rss = rss_mb()
        record["rss_mb"] = None if rss is None else round(rss, 1)
        return record
