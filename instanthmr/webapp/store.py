"""Results kept on the server, so a download never runs the models again.

An upload's frames (and a live recording's) are kept in memory under a random key, with the
preview file in a private temporary directory. Whoever holds the key (the page that made
the upload) reads the frames, the preview and the exports from them. Limits:

- time: a finished entry is deleted ``ttl_s`` seconds after it was last used;
- size: when all entries together pass ``max_bytes``, the least recently used finished
  ones are deleted; an entry that alone is over the limit fails with a message.

Deleting an entry removes its directory; closing the store deletes everything.
"""

from __future__ import annotations

import re
import secrets
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..results import FrameResult

STATES = ("processing", "recording", "done", "failed", "cancelled")
"""States of an entry; ``cancelled`` ones are deleted at once."""

FRAME_OVERHEAD = 600
"""Bytes counted per frame and per person besides their arrays (Python objects)."""


def frame_nbytes(frame: FrameResult) -> int:
    """Memory one kept frame takes, roughly: its arrays plus a fixed overhead."""
    total = FRAME_OVERHEAD
    for p in frame.persons:
        total += FRAME_OVERHEAD
        for value in vars(p).values():
            if isinstance(value, np.ndarray):
                total += value.nbytes
    return total


def safe_stem(name: str | None, default: str = "upload") -> str:
    """A file-name stem from a user's file name: its last path part, without suffix,
    in letters, digits, ``-`` ``_`` ``.``, at most 80 characters."""
    if not name:
        return default
    base = re.split(r"[\\/]", name)[-1]
    stem = base.rsplit(".", 1)[0] if "." in base.strip(".") else base
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", stem).strip("._")[:80]
    return stem or default


@dataclass
class Entry:
    """One kept result: an upload being processed or done, or a live recording.

    Attributes:
        key: the random key naming it in the URLs.
        kind: ``"image"``, ``"video"`` or ``"recording"``.
        name: file-name stem for downloads (from the upload's name).
        state: one of :data:`STATES`.
        frames: the results, in order.
        meta: for a video, ``fps``, ``frames_in_file``, ``truncated``.
        frames_total: frames expected (for progress), when known.
        preview: the preview file, when made; ``preview_type`` its media type.
        preview_error: why there is no preview.
        error: why processing failed.
        nbytes: memory of the frames (see :func:`frame_nbytes`) plus the preview file.
        limit_bytes: for a recording, its size cap.
        stop_reason: why a recording stopped (``"stopped"``, ``"size cap"``, ``"disconnected"``).
    """

    key: str
    kind: str
    name: str
    directory: Path
    state: str = "processing"
    frames: list[FrameResult] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)
    frames_total: int | None = None
    preview: Path | None = None
    preview_type: str | None = None
    preview_error: str | None = None
    error: str | None = None
    nbytes: int = 0
    limit_bytes: int | None = None
    stop_reason: str = ""
    created: float = field(default_factory=time.monotonic)
    used: float = field(default_factory=time.monotonic)
    finished: float | None = None
    cancel: threading.Event = field(default_factory=threading.Event)

    def status(self) -> dict[str, Any]:
        """What ``GET /api/results/{key}`` answers: state, progress, preview, errors."""
        end = self.finished if self.finished is not None else time.monotonic()
        out: dict[str, Any] = {
            "key": self.key, "kind": self.kind, "name": self.name, "state": self.state,
            "frames_done": len(self.frames), "frames_total": self.frames_total,
            "elapsed_s": round(end - self.created, 3), "bytes": self.nbytes,
            "preview": self.preview_type if self.preview is not None else None,
            "preview_error": self.preview_error, "error": self.error, **self.meta,
        }  # fmt: skip
        if self.kind == "recording":
            out["limit_bytes"] = self.limit_bytes
            out["stop_reason"] = self.stop_reason
        return out


class ResultStore:
    """Kept results under random keys, with a time and a size limit (module docstring).

    Thread-safe: the inference thread appends recorded frames while the server reads.

    Args:
        ttl_s: seconds a finished entry is kept after its last use.
        max_bytes: all entries together; past it the least recently used finished ones go.
    """

    def __init__(self, ttl_s: float, max_bytes: int) -> None:
        if ttl_s <= 0 or max_bytes < 1:
            raise ValueError(f"ttl_s and max_bytes must be > 0, got {ttl_s}, {max_bytes}")
        self.ttl_s = ttl_s
        self.max_bytes = max_bytes
        self._entries: dict[str, Entry] = {}
        self._lock = threading.RLock()

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    @property
    def nbytes(self) -> int:
        """Bytes held by every entry."""
        with self._lock:
            return sum(e.nbytes for e in self._entries.values())

    def create(self, kind: str, name: str | None, state: str = "processing") -> Entry:
        """A new entry with a fresh key and its own private directory."""
        key = secrets.token_urlsafe(18)
        directory = Path(tempfile.mkdtemp(prefix="instanthmr-result-"))  # mode 0700
        entry = Entry(key=key, kind=kind, name=safe_stem(name, kind), directory=directory,
                      state=state)  # fmt: skip
        with self._lock:
            self._entries[key] = entry
        return entry

    def get(self, key: str) -> Entry | None:
        """The entry under ``key`` (marking it used), or None when gone."""
        self.expire()
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:
                entry.used = time.monotonic()
            return entry

    def append(self, entry: Entry, frame: FrameResult) -> bool:
        """Add one frame; False (and nothing added) when it would pass the entry's cap."""
        size = frame_nbytes(frame)
        with self._lock:
            if entry.limit_bytes is not None and entry.nbytes + size > entry.limit_bytes:
                return False
            entry.frames.append(frame)
            entry.nbytes += size
            return True

    def finish(self, entry: Entry, state: str = "done", error: str | None = None) -> None:
        """Mark an entry finished (``done`` or ``failed``) and apply the size limit."""
        with self._lock:
            entry.state = state
            entry.error = error
            entry.finished = entry.used = time.monotonic()
            if entry.preview is not None and entry.preview.is_file():
                entry.nbytes += entry.preview.stat().st_size
            if state == "done" and entry.nbytes > self.max_bytes:
                entry.state, entry.frames = "failed", []
                entry.error = (
                    f"the results take {entry.nbytes / 1e6:.0f} MB, more than the server keeps "
                    f"({self.max_bytes / 1e6:.0f} MB): restart it with a larger "
                    "--max-results-mb, or send a shorter video"
                )
                entry.nbytes = 0
            self._evict(keep=entry.key)

    def delete(self, key: str) -> bool:
        """Cancel (when running) and remove an entry; False when there was none."""
        with self._lock:
            entry = self._entries.pop(key, None)
        if entry is None:
            return False
        entry.cancel.set()
        if entry.state in ("processing", "recording"):
            entry.state = "cancelled"
        shutil.rmtree(entry.directory, ignore_errors=True)
        return True

    def expire(self) -> int:
        """Delete finished entries unused for ``ttl_s``; how many were deleted."""
        now = time.monotonic()
        with self._lock:
            old = [k for k, e in self._entries.items()
                   if e.finished is not None and now - e.used > self.ttl_s]  # fmt: skip
        for key in old:
            self.delete(key)
        return len(old)

    def close(self) -> None:
        """Delete every entry (the server is stopping)."""
        with self._lock:
            keys = list(self._entries)
        for key in keys:
            self.delete(key)

    def _evict(self, keep: str) -> None:
        while self.nbytes > self.max_bytes:
            done = [e for e in self._entries.values() if e.finished is not None and e.key != keep]
            if not done:
                return
            self.delete(min(done, key=lambda e: e.used).key)
