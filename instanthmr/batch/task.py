"""One input, start to finish, inside a worker: read frames, run the pipeline, write files.

Every file is written under ``DIR/.staging/<stem>/``. The worker finishes and closes them
there and returns the input's record; the driver appends the record to the manifest and
only then renames the files into ``DIR`` (:func:`publish`). So a result gets its final name
only when it is complete and recorded: a killed worker, a killed driver (``kill -9``) or a
worker whose driver is gone (it stops at its next message, :class:`DriverGone`) never
leaves a half file, or an unrecorded one, under a final name. Outcomes:

- ``done``: every frame decoded and processed.
- ``partial``: decoding (or processing) stopped in the middle. The frames before the failure
  are kept: the result files hold them, the row's ``frames`` counts them, ``error`` says
  where it stopped. A video whose decoder returns fewer frames than its container declares
  (by more than 1 % or 2 frames) is partial too (OpenCV reports a corrupt frame as the
  end), unless its last frame's timestamp reaches the container's duration: then the file
  is whole and only its frame count is wrong, and it is done
  (:mod:`instanthmr.sources.video_end`).
- ``failed``: nothing usable (unreadable, empty, not a video, no frame decoded); no result
  files are written.

Per video: ``<stem>.npz`` (and ``.jsonl``/``.csv`` when asked for) in the results format of
:mod:`instanthmr.sinks.exporters`, and ``<stem>.summary.jsonl``: a ``"type": "video"`` line
(input, status, frames, persons, track ids, error, options hash) and then per processed
frame a ``"type": "frame"`` line: the frame record of
:func:`~instanthmr.sinks.formats_common.frame_fields` without ``timings`` (so the file is
the same on every run), plus ``track_ids``, ``bbox`` and ``score`` of its persons.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .inputs import InputItem
from .manifest import staging_dir
from .options import BatchOptions

CRASH_ENV = "INSTANTHMR_BATCH_TEST_CRASH"
"""Test hook: a worker whose input's file name contains this variable's value exits at once
with ``os._exit(3)``, as a worker killed by the OS would. Unset in normal use."""

PROGRESS_EVERY_S = 0.5
SUMMARY_SUFFIX = ".summary.jsonl"

Progress = Callable[[int, "int | None"], None]


@dataclass(frozen=True)
class Task:
    """One input to process and where its files go."""

    index: int
    item: InputItem
    folder: str
    options_hash: str


class _UnreadableError(RuntimeError):
    pass


class DriverGone(BaseException):
    """The driver that hands out tasks is gone (its pipe broke): stop this task at once.

    A BaseException, so no ``except Exception`` of a task turns it into a record: there is
    nobody left to record it, and nothing the task wrote may get a final name.
    """


def output_names(stem: str, formats: tuple[str, ...]) -> list[str]:
    """The files a finished input leaves in the output folder (summary last)."""
    return [f"{stem}.{fmt}" for fmt in formats] + [stem + SUMMARY_SUFFIX]


def _check_readable(path: str) -> None:
    try:
        with open(path, "rb") as fh:
            head = fh.read(1)
    except OSError as exc:
        raise _UnreadableError(f"cannot read the file: {exc.strerror or exc}") from None
    if not head:
        raise _UnreadableError("the file is empty (0 bytes)")


def _crash_hook(path: str) -> None:
    marker = os.environ.get(CRASH_ENV)
    if marker and marker in os.path.basename(path):
        os._exit(3)


class _Run:
    """Counters and per-frame summary lines of one input."""

    def __init__(self) -> None:
        self.frames = 0
        self.decoded = 0
        self.persons = 0
        self.track_ids: set[int] = set()
        self.lines: list[str] = []
        self.fps: float | None = None

    def add(self, result: Any) -> None:
        from ..sinks.formats_common import frame_fields

        self.frames += 1
        self.persons += len(result)
        ids = [int(p.track_id) for p in result.persons]
        self.track_ids.update(i for i in ids if i >= 0)
        rec = {"type": "frame", **frame_fields(result)}
        rec.pop("timings")
        rec["track_ids"] = ids
        rec["bbox"] = [[float(v) for v in p.bbox] for p in result.persons]
        rec["score"] = [float(p.score) for p in result.persons]
        self.lines.append(json.dumps(rec))


def _open(item: InputItem) -> Any:
    from ..sources.files import ImageSource, VideoSource

    _check_readable(item.path)
    if item.kind == "image":
        return ImageSource([item.path])
    return VideoSource(item.path)


def _expected(source: Any, options: BatchOptions) -> int | None:
    total = getattr(source, "total_frames", None)
    if not total:
        return options.max_frames
    total = math.ceil(total / (options.frame_skip + 1))
    return min(total, options.max_frames) if options.max_frames else total


def _frames(
    pipeline: Any, source: Any, item: InputItem, options: BatchOptions, exporters: list[Any],
    run: _Run, progress: Progress | None,
) -> str | None:  # fmt: skip
    """Process the source; returns why it stopped early (None when it went to the end)."""
    smooth = options.smooth if options.smooth is not None else item.kind == "video"
    expected = _expected(source, options)
    last = time.perf_counter()
    for frame in source:
        run.decoded += 1
        if (run.decoded - 1) % (options.frame_skip + 1):
            continue
        result = pipeline.predict(
            frame.image, frame_index=frame.index, timestamp=frame.timestamp, smooth=smooth
        )
        for exporter in exporters:
            exporter.write(result)
        run.add(result)
        if progress is not None and time.perf_counter() - last >= PROGRESS_EVERY_S:
            progress(run.frames, expected)
            last = time.perf_counter()
        if options.max_frames and run.frames >= options.max_frames:
            return None
    if item.kind != "video":
        return None
    end = source.decode_end()  # a miscounted container that decoded to its end is done
    return None if end.complete else end.message


def _process(
    pipeline: Any, item: InputItem, stage: Path, options: BatchOptions, run: _Run,
    progress: Progress | None,
) -> str | None:  # fmt: skip
    """Open, process and close one input; returns the error that stopped it, if any."""
    from ..sinks.exporters import open_exporter

    exporters: list[Any] = []
    header = pipeline.describe()  # the model's kind and the detector go into every header
    try:
        with _open(item) as source:
            run.fps = getattr(source, "fps", None)
            exporters = [open_exporter(stage / f"{item.stem}.{f}", header)
                         for f in options.formats]  # fmt: skip
            return _frames(pipeline, source, item, options, exporters, run, progress)
    except _UnreadableError as exc:
        return str(exc)
    except Exception as exc:  # a worker boundary: any error is this row's
        where = f"at frame {run.decoded - 1}: " if run.frames else ""
        return f"{where}{type(exc).__name__}: {exc}"
    finally:
        for exporter in exporters:
            exporter.close()


def run_task(
    pipeline: Any, task: Task, options: BatchOptions, progress: Progress | None = None
) -> dict[str, Any]:
    """Process one input with a built pipeline; returns its manifest record (never raises
    for a bad input: the failure is the record's ``status`` and ``error``)."""
    _crash_hook(task.item.path)
    t0 = time.perf_counter()
    item, folder = task.item, Path(task.folder)
    stage = staging_dir(folder) / item.stem
    shutil.rmtree(stage, ignore_errors=True)
    stage.mkdir(parents=True)
    run, outputs = _Run(), []
    keep = False
    try:
        pipeline.reset()
        error = _process(pipeline, item, stage, options, run, progress)
        status = "failed" if run.frames == 0 else ("partial" if error else "done")
        if status == "failed":
            error = error or "no frame could be decoded (an empty video, or not a video)"
        else:
            outputs = _write_summary(stage, item, task, options, run, status, error)
            keep = True  # the driver renames the files once it has recorded them
    finally:
        if not keep:
            shutil.rmtree(stage, ignore_errors=True)
    return {
        "input": item.path, "kind": item.kind, "size": item.size, "mtime_ns": item.mtime_ns,
        "options_hash": task.options_hash, "status": status, "frames": run.frames,
        "persons": run.persons, "tracks": len(run.track_ids),
        "seconds": round(time.perf_counter() - t0, 3), "error": error, "outputs": outputs,
        "host": socket.gethostname(),
    }  # fmt: skip


def _write_summary(
    stage: Path, item: InputItem, task: Task, options: BatchOptions, run: _Run,
    status: str, error: str | None,
) -> list[str]:  # fmt: skip
    """Write the summary beside the results in the staging folder; the output names."""
    names = output_names(item.stem, options.formats)
    header = {
        "type": "video", "input": item.path, "status": status, "frames": run.frames,
        "persons": run.persons, "track_ids": sorted(run.track_ids), "fps": run.fps,
        "error": error, "options_hash": task.options_hash, "results": names[:-1],
    }  # fmt: skip
    with open(stage / names[-1], "w", encoding="utf-8") as fh:
        fh.write("\n".join([json.dumps(header), *run.lines]) + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    return names


def publish(folder: str | os.PathLike[str], stem: str, names: list[str]) -> None:
    """Rename a recorded input's finished files from its staging folder into ``folder``
    (the driver calls this right after appending the input's record to the manifest)."""
    folder = Path(folder)
    stage = staging_dir(folder) / stem
    for name in names:
        os.replace(stage / name, folder / name)
    shutil.rmtree(stage, ignore_errors=True)
