"""Live frame sources: cameras and network streams read on a background thread.

A :class:`LatestFrameReader` reads the capture on its own thread and keeps only the newest
frame, so a slow consumer never builds up lag; :class:`LiveSource` wraps it as a
:class:`~instanthmr.sources.files.FrameSource` and counts the frames it overwrote in
:attr:`~instanthmr.sources.files.FrameSource.dropped`. Open these through
:func:`instanthmr.sources.files.open_source` (``camera=`` or ``url=``), which re-exports every
public name of this module.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np

from .base import CameraNotFoundError, Frame, FrameSource, SourceError, bgr_to_rgb

log = logging.getLogger(__name__)


class Capture(Protocol):
    """What :class:`LatestFrameReader` needs from a capture (``cv2.VideoCapture`` fits)."""

    def read(self) -> tuple[bool, np.ndarray | None]: ...

    def release(self) -> None: ...


class LatestFrameReader:
    """Reads a capture on a background thread and keeps only the newest frame.

    Each call to :meth:`get` returns the newest frame not yet taken, so a slow consumer
    skips frames instead of falling behind; :attr:`dropped` counts frames overwritten
    before anyone took them. When reads fail for ``disconnect_after`` seconds in a row the
    source is considered disconnected: :meth:`get` returns None once the last frame is
    taken. Timestamps are seconds since the reader started (monotonic clock), taken when
    each frame arrived.
    """

    def __init__(
        self,
        capture: Capture,
        *,
        name: str = "stream",
        disconnect_after: float = 2.0,
        retry_interval: float = 0.01,
    ) -> None:
        self.name = name
        self._cap = capture
        self._disconnect_after = disconnect_after
        self._retry = retry_interval
        self._cond = threading.Condition()
        self._frame: np.ndarray | None = None
        self._stamp = 0.0
        self._ended = False
        self._stop = threading.Event()
        self.dropped = 0
        self.frames_read = 0
        self._t0 = time.monotonic()
        self._thread = threading.Thread(target=self._run, name=f"reader-{name}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        failing_since: float | None = None
        try:
            while not self._stop.is_set():
                ok, frame = self._cap.read()
                now = time.monotonic()
                if ok and frame is not None:
                    failing_since = None
                    with self._cond:
                        if self._frame is not None:
                            self.dropped += 1
                        self._frame, self._stamp = frame, now - self._t0
                        self.frames_read += 1
                        self._cond.notify_all()
                    continue
                failing_since = failing_since if failing_since is not None else now
                if now - failing_since >= self._disconnect_after:
                    if not self._stop.is_set():
                        log.warning(
                            "%s: no frames for %.1f s; treating the source as disconnected",
                            self.name,
                            now - failing_since,
                        )
                    break
                self._stop.wait(self._retry)
        except Exception:  # a broken backend must end the stream, not hang the consumer
            log.exception("%s: reading failed", self.name)
        finally:
            with self._cond:
                self._ended = True
                self._cond.notify_all()
            with contextlib.suppress(Exception):
                self._cap.release()

    @property
    def ended(self) -> bool:
        """True once the reader thread has stopped (disconnect, error or close)."""
        return self._ended

    def get(self, timeout: float | None = None) -> tuple[np.ndarray, float] | None:
        """Wait for a frame newer than the last one taken: ``(frame, timestamp)``.

        Returns None when the source has ended and no untaken frame is left, or when no
        frame arrives within ``timeout`` seconds (None waits as long as the reader runs).
        """
        with self._cond:
            ready = self._cond.wait_for(lambda: self._frame is not None or self._ended, timeout)
            if not ready or self._frame is None:
                return None
            frame, stamp, self._frame = self._frame, self._stamp, None
            return frame, stamp

    def close(self, timeout: float = 2.0) -> None:
        """Stop the thread (it releases the capture); waits at most ``timeout`` seconds."""
        self._stop.set()
        self._thread.join(timeout)
        if self._thread.is_alive():
            log.warning(
                "%s: reader thread is still blocked in read(); leaving it behind", self.name
            )


class LiveSource(FrameSource):
    """A camera or stream read through a :class:`LatestFrameReader`.

    Iteration ends cleanly (with a logged message) when the source disconnects, or when no
    frame arrives for ``stall_timeout`` seconds. Frame indices count delivered frames.
    """

    is_live = True

    def __init__(
        self,
        capture: Capture,
        name: str,
        *,
        fps: float | None = None,
        disconnect_after: float = 2.0,
        stall_timeout: float = 10.0,
    ) -> None:
        self.name = name
        self.fps = fps
        self.total_frames = None
        self._stall = stall_timeout
        self._reader = LatestFrameReader(capture, name=name, disconnect_after=disconnect_after)

    @property
    def dropped(self) -> int:
        return self._reader.dropped

    def __iter__(self) -> Iterator[Frame]:
        index = 0
        while True:
            item = self._reader.get(timeout=self._stall)
            if item is None:
                if not self._reader.ended:
                    log.warning("%s: no frame for %.0f s; stopping", self.name, self._stall)
                else:
                    log.info(
                        "%s: source ended after %d frames (%d dropped)",
                        self.name,
                        index,
                        self.dropped,
                    )
                return
            image, stamp = item
            yield Frame(bgr_to_rgb(image), index, stamp, self.name)
            index += 1

    def close(self) -> None:
        self._reader.close()


@contextlib.contextmanager
def _quiet_opencv() -> Iterator[None]:
    """Silence OpenCV's own warnings while probing a device (restored afterwards)."""
    logging_mod = getattr(getattr(cv2, "utils", None), "logging", None)
    if logging_mod is None:
        yield
        return
    level = logging_mod.getLogLevel()
    logging_mod.setLogLevel(logging_mod.LOG_LEVEL_SILENT)
    try:
        yield
    finally:
        logging_mod.setLogLevel(level)


def _camera_hint(index: int) -> str:
    return (
        f"no camera at index {index}. Check that it is plugged in and listed by "
        "`ls /dev/video*` (Linux), that your user may use it (e.g. member of the 'video' "
        "group, or camera permission for the terminal on macOS), and try another index "
        "with --camera N"
    )


def open_camera(index: int, **kwargs: float) -> LiveSource:
    """Open camera ``index``; raises :class:`CameraNotFoundError` at once when it is missing.

    On Linux the device node ``/dev/video<index>`` is checked before OpenCV is asked, so a
    missing camera fails immediately and without OpenCV's warnings.
    """
    if isinstance(index, bool) or not isinstance(index, (int, np.integer)) or index < 0:
        raise SourceError(f"camera must be a non-negative integer index, got {index!r}")
    index = int(index)
    if sys.platform.startswith("linux"):
        if not Path(f"/dev/video{index}").exists():
            raise CameraNotFoundError(_camera_hint(index) + f" (/dev/video{index} does not exist)")
        if not os.access(f"/dev/video{index}", os.R_OK | os.W_OK):
            raise CameraNotFoundError(
                f"/dev/video{index} exists but this user cannot open it: "
                "add yourself to the 'video' group (sudo usermod -aG video $USER) and log in again"
            )
        api = cv2.CAP_V4L2  # V4L2 takes no open-timeout parameter (it would fail the open)
    else:
        api = cv2.CAP_ANY
    with _quiet_opencv():
        cap = cv2.VideoCapture(index, api)
    if not cap.isOpened():
        cap.release()
        raise CameraNotFoundError(_camera_hint(index))
    fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
    return LiveSource(cap, f"camera:{index}", fps=fps if fps > 0 else None, **kwargs)


def open_stream(url: str, *, open_timeout: float = 10.0, **kwargs: float) -> LiveSource:
    """Open a network stream (RTSP, HTTP, ...) with FFmpeg and open/read timeouts."""
    if "://" not in url:
        raise SourceError(f"url must look like rtsp://host/path or http://host/path, got {url!r}")
    ms = int(open_timeout * 1000)
    params = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, ms, cv2.CAP_PROP_READ_TIMEOUT_MSEC, ms]
    with _quiet_opencv():
        cap = cv2.VideoCapture(url, cv2.CAP_FFMPEG, params)
    if not cap.isOpened():
        cap.release()
        raise SourceError(
            f"cannot open stream {url}: check the address, credentials and that the "
            "server is reachable (try it in ffplay or VLC)"
        )
    fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
    return LiveSource(cap, url, fps=fps if 0 < fps < 1000 else None, **kwargs)
