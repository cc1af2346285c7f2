"""``run_batch``: discover inputs, skip the done ones, run the rest on an engine, record all.

Order of events: the options are checked and the output folder is proven writable before
any input is looked at (fail fast); the folder is locked against a second batch; leftovers
of killed runs are removed from ``DIR/.staging``; inputs done by an earlier run with the
same options are skipped; the rest go to the engine, and each finished input's record is
appended to the manifest as soon as it arrives. On Ctrl-C the engine abandons the running
inputs (their files are deleted) and :class:`KeyboardInterrupt` propagates; every record
already written stays, so the next run resumes.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..stops import deferred_stops
from .inputs import discover_inputs
from .manifest import Manifest, check_writable, clean_staging, output_lock
from .options import BatchConfigError, BatchOptions
from .summary import BatchReport
from .task import Task, publish

log = logging.getLogger(__name__)

ENGINES: tuple[str, ...] = ("local", "ray")
LONG_VIDEO_FRAMES = 300
"""A video with more frames than this (or an unknown count) gets its own frame bar."""


def local_plan(workers: int | None, threads: int | None) -> tuple[int, int]:
    """(workers, threads per worker) for the local engine; the default never oversubscribes.

    Default: one worker per 4 cores (at least one), each with the cores divided evenly
    (at most 8 threads, onnxruntime's useful limit here).
    """
    from ..runtime.session import usable_cpus  # onnxruntime only when a batch plans

    cores = usable_cpus()
    workers = workers or max(1, cores // 4)
    threads = threads or max(1, min(8, cores // workers))
    if workers * threads > cores:
        log.warning(
            "%d workers x %d threads is more than the %d cores here: they will compete "
            "(lower --workers or --threads)", workers, threads, cores,
        )  # fmt: skip
    return workers, threads


class _Bars:
    """A bar over inputs, and a frame bar for each long input while it runs.

    The bars appear with the first event from a worker, so a batch that cannot start (a
    worker cannot load its models) prints its one-line error and nothing else.
    """

    def __init__(self, enabled: bool, total: int, done: int) -> None:
        self.enabled = enabled
        self.frames: dict[int, Any] = {}
        self.main: Any = None
        self._counts = (total, done)

    def start(self) -> None:
        """Show the main bar (once)."""
        if self.enabled and self.main is None:
            from tqdm import tqdm

            self._tqdm = tqdm
            total, done = self._counts
            self.main = tqdm(total=total, initial=done, unit="video", desc="batch")

    def progress(self, task: Task, done: int, total: int | None) -> None:
        self.start()
        if not self.enabled or (total is not None and total <= LONG_VIDEO_FRAMES):
            return
        bar = self.frames.get(task.index)
        if bar is None:
            name = os.path.basename(task.item.path)[:30]
            bar = self._tqdm(total=total, unit="frame", desc=name, leave=False,
                             position=len(self.frames) + 1)  # fmt: skip
            self.frames[task.index] = bar
        bar.update(done - bar.n)

    def result(self, task: Task, record: dict[str, Any]) -> None:
        self.start()
        if not self.enabled:
            return
        bar = self.frames.pop(task.index, None)
        if bar is not None:
            bar.close()
        self.main.update(1)
        if record["status"] != "done":
            self.main.write(f"{record['status']}: {task.item.path}: {record['error']}")

    def close(self) -> None:
        for bar in self.frames.values():
            bar.close()
        if self.main is not None:
            self.main.close()


def _engine(
    engine: str, options: BatchOptions, workers: int | None, threads: int | None,
    address: str, gpus: float, progress: bool, stack: contextlib.ExitStack,
) -> Any:  # fmt: skip
    if engine == "local":
        from .local import LocalEngine

        return LocalEngine(options, *local_plan(workers, threads))
    from . import ray_engine

    if ray_engine.connect(address):
        ray = ray_engine.import_ray()
        stack.callback(ray.shutdown)
    n, t = ray_engine.plan(workers, threads, gpus)
    return ray_engine.RayEngine(options, n, t, gpus, progress)


def _validate(
    engine: str, workers: int | None, threads: int | None, gpus: float, address: str
) -> None:
    if engine not in ENGINES:
        raise BatchConfigError(f"engine must be one of {', '.join(ENGINES)}, got {engine!r}")
    for name, value in (("workers", workers), ("threads", threads)):
        if value is not None and value < 1:
            raise BatchConfigError(f"{name} must be >= 1, got {value}")
    if gpus < 0:
        raise BatchConfigError(f"gpus_per_worker must be >= 0, got {gpus}")
    if engine != "ray" and (gpus > 0 or address != "local"):
        raise BatchConfigError("address and gpus_per_worker are Ray options; use --engine ray")


def _check_outputs(items: list[Any], out: Path, options: BatchOptions) -> None:
    """Refuse an input that is one of the batch's own files (a result, a summary, the
    manifest): writing it would destroy the input. Before any work."""
    from ..errors import OptionError
    from ..output_paths import check_output_paths
    from .manifest import LOCK_NAME, MANIFEST_NAME
    from .task import output_names

    own = [("--output", out / MANIFEST_NAME), ("--output", out / LOCK_NAME)]
    own += [("--output", out / n) for i in items for n in output_names(i.stem, options.formats)]
    try:
        check_output_paths([("INPUT", i.path) for i in items], own)
    except OptionError as exc:
        raise BatchConfigError(str(exc)) from None


def _publish(
    manifest: Manifest, out: Path, task: Task, record: dict[str, Any]
) -> dict[str, Any]:
    """Give a recorded input's files their final names; if that fails (a full disk, a
    folder changed under the batch), record the input again as failed, saying why."""
    if not record["outputs"]:
        return record
    try:
        publish(out, task.item.stem, record["outputs"])
    except OSError as exc:
        record = {**record, "status": "failed", "outputs": [],
                  "error": f"its finished files could not be moved into {out}: {exc}"}  # fmt: skip
        manifest.append(record)
    return record


def run_batch(
    inputs: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    output: str | os.PathLike[str],
    options: BatchOptions | None = None,
    *,
    engine: str = "local",
    workers: int | None = None,
    threads: int | None = None,
    address: str = "local",
    gpus_per_worker: float = 0.0,
    progress: bool = True,
    **option_fields: Any,
) -> BatchReport:
    """Process many videos (and images) into ``output``, resumably; see ``docs/batch.md``.

    Args:
        inputs: files, folders (searched recursively) and glob patterns.
        output: the output folder (created); it holds ``manifest.jsonl`` and the results.
        options: what to compute; or give its fields as keyword arguments
            (``model=..., detector_model=..., formats=("npz", "jsonl")``).
        engine: ``local`` (processes on this machine) or ``ray``.
        workers: local processes or Ray actors (defaults: see :func:`local_plan` and
            :func:`~instanthmr.batch.ray_engine.plan`).
        threads: onnxruntime CPU threads per worker.
        address: Ray only: ``local`` (start a private instance), ``auto`` or ``ray://...``;
            an already initialised Ray in this process is used as it is.
        gpus_per_worker: Ray only: GPUs reserved per actor (fractions allowed).
        progress: show tqdm bars.

    Returns:
        A :class:`~instanthmr.batch.summary.BatchReport` (``exit_code`` 0 when all done).

    Raises:
        BatchConfigError: bad options, an unwritable output folder, a worker that cannot
            load the models. InputError: an input that does not exist.
        KeyboardInterrupt: after abandoning the running inputs (finished ones are recorded).
    """
    t0 = time.perf_counter()
    if options is not None and option_fields:
        raise BatchConfigError("pass either options=BatchOptions(...) or its fields, not both")
    options = options or BatchOptions(**option_fields)
    _validate(engine, workers, threads, gpus_per_worker, address)
    options.check()
    out = Path(os.path.abspath(os.path.expanduser(os.fspath(output))))
    check_writable(out)
    items = discover_inputs([inputs] if isinstance(inputs, (str, os.PathLike)) else inputs, out)
    _check_outputs(items, out, options)
    digest = options.options_hash()
    with output_lock(out):
        clean_staging(out)
        manifest = Manifest(out)
        todo = [item for item in items if not manifest.is_done(item, digest)]
        report = BatchReport(out, manifest.path, digest, engine)
        report.skipped = [item.path for item in items if item not in todo]
        tasks = [Task(n, item, str(out), digest) for n, item in enumerate(todo)]
        records: dict[int, dict[str, Any]] = {}
        try:
            with contextlib.ExitStack() as stack:
                stack.callback(clean_staging, out)
                bars = _Bars(progress, len(items), len(report.skipped))
                stack.callback(bars.close)
                if tasks:
                    runner = _engine(engine, options, workers, threads, address,
                                     gpus_per_worker, progress, stack)  # fmt: skip
                    report.workers, report.threads = runner.workers, runner.threads
                    events = stack.enter_context(contextlib.closing(runner.run(tasks)))
                    for kind, task, payload in events:
                        if kind == "progress":
                            bars.progress(task, *payload)
                            continue
                        now = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
                        record = {**payload, "engine": runner.name, "finished": now}
                        with deferred_stops():  # recorded and renamed, or neither
                            manifest.append(record)  # recorded first, then the final names
                            record = _publish(manifest, out, task, record)
                        records[task.index] = record
                        bars.result(task, record)
                    report.worker_info = list(runner.infos)
        finally:
            report.records = [records[n] for n in sorted(records)]
            report.seconds = time.perf_counter() - t0
    return report
