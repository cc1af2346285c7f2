"""``DIR/manifest.jsonl``: one JSON record per processed input; the last record per input wins.

Only the driver writes it (never a worker), one record per finished input, each appended
with a single ``write`` on a file opened with ``O_APPEND`` and then ``fsync``-ed. A run
killed mid-write leaves at most a torn last line, which the reader skips. Fields:

``input`` (absolute path), ``kind`` (video/image), ``size`` (bytes), ``mtime_ns``,
``options_hash``, ``status`` (``done``, ``failed``, ``partial``), ``frames`` (processed),
``persons`` (person detections, summed over frames), ``tracks`` (distinct track ids),
``seconds`` (wall time of the task in its worker), ``error`` (None when done),
``outputs`` (file names in DIR), ``rss_mb`` (the worker's resident memory after the task,
MiB), ``engine``, ``host``, ``finished`` (UTC, ISO 8601).

An input counts as done for a later run only if its last record is ``done`` with the same
options hash, size and mtime, and its output files still exist.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .inputs import InputItem
from .options import BatchConfigError

log = logging.getLogger(__name__)

MANIFEST_NAME = "manifest.jsonl"
STAGING_NAME = ".staging"
LOCK_NAME = ".batch.lock"
STATUSES: tuple[str, ...] = ("done", "failed", "partial")


class Manifest:
    """The manifest of an output folder: read once, then appended record by record."""

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        self.folder = Path(folder)
        self.path = self.folder / MANIFEST_NAME
        self.latest: dict[str, dict[str, Any]] = {}
        if self.path.exists():
            for record in read_manifest(self.path):
                self.latest[record["input"]] = record

    def is_done(self, item: InputItem, options_hash: str) -> bool:
        """True when ``item`` was done with these options and is unchanged since."""
        rec = self.latest.get(item.path)
        return (
            rec is not None
            and rec.get("status") == "done"
            and rec.get("options_hash") == options_hash
            and rec.get("size") == item.size
            and rec.get("mtime_ns") == item.mtime_ns
            and all((self.folder / name).is_file() for name in rec.get("outputs", []))
        )

    def append(self, record: dict[str, Any]) -> None:
        """Add one record durably (one write, then fsync); it supersedes earlier ones."""
        data = (json.dumps(record, sort_keys=False) + "\n").encode("utf-8")
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        self.latest[record["input"]] = record


def read_manifest(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Every record of a manifest, in file order (a torn or invalid line is skipped)."""
    records = []
    with open(path, encoding="utf-8") as fh:
        for n, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                log.warning("%s:%d: skipping a line that is not valid JSON (torn write?)", path, n)
                continue
            if isinstance(rec, dict) and isinstance(rec.get("input"), str):
                records.append(rec)
            else:
                log.warning("%s:%d: skipping a line that is not a manifest record", path, n)
    return records


def check_writable(folder: Path) -> None:
    """Create ``folder`` if needed and prove a file can be written in it; else raise."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".write-test-"):
            pass
        manifest = folder / MANIFEST_NAME
        if manifest.exists():
            with open(manifest, "ab"):
                pass
    except OSError as exc:
        raise BatchConfigError(
            f"the output folder {folder} is not writable ({exc.strerror or exc}); "
            "pick another --output or fix its permissions"
        ) from exc


@contextlib.contextmanager
def output_lock(folder: Path) -> Iterator[None]:
    """Hold an exclusive lock on the output folder (one batch per folder at a time)."""
    try:
        import fcntl
    except ImportError:  # Windows: no advisory locks; one batch per folder is on the user
        yield
        return
    fh = open(folder / LOCK_NAME, "w")  # held for the whole batch
    try:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            raise BatchConfigError(
                f"another batch is writing to {folder}; wait for it or use another --output"
            ) from exc
        yield
    finally:
        fh.close()


def staging_dir(folder: Path) -> Path:
    """Where tasks write before renaming into ``folder``; emptied at the start of a batch."""
    return folder / STAGING_NAME


def clean_staging(folder: Path) -> None:
    """Remove unfinished files (of killed runs, abandoned inputs); under :func:`output_lock`."""
    shutil.rmtree(staging_dir(folder), ignore_errors=True)
