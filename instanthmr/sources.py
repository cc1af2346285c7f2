"""Frame sources: images, folders, video files, cameras and network streams.

Every source is an iterable of :class:`Frame` (RGB ``uint8`` images) and a context manager::

    with open_source(video="clip.mp4") as source:
        for frame in source:
            ...

Files (images, folders, videos) are read in order and never drop a frame. Live sources
(cameras, RTSP/HTTP streams) are read on their own thread by a :class:`LatestFrameReader`
that keeps only the newest frame, so a slow consumer never builds up lag; the frames it
overwrote are counted in :attr:`FrameSource.dropped`. A source is meant to be iterated once.
"""

from __future__ import annotations

import contextlib
import glob
import logging
import os
import re
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS: tuple[str, ...] = (
    ".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm",
)  # fmt: skip
"""Suffixes (lower case) that :func:`open_source` treats as images in a folder."""

SAMPLE_VIDEO = "sample.mp4"


class SourceError(RuntimeError):
    """A source could not be opened or read; the message names it and the fix."""


class CameraNotFoundError(SourceError):
    """No camera answers at the requested index."""


@dataclass
class Frame:
    """One frame from a source.

    Attributes:
        image: RGB ``uint8`` array shaped (H, W, 3).
        index: 0-based position of the frame among the frames this source delivered.
        timestamp: seconds; container time for videos, time since opening for live sources.
        source: name of the source (file path, ``camera:0``, or the URL).
    """

    image: np.ndarray
    index: int
    timestamp: float
    source: str


class FrameSource:
    """Base class: an iterable of :class:`Frame` and a context manager.

    Attributes:
        name: what the frames come from (shown in logs and progress bars).
        is_live: True for cameras and streams (frames may be dropped to stay current).
        total_frames: number of frames when known in advance (for a progress bar), else None.
        fps: nominal frame rate when known, else None.
    """

    name: str = ""
    is_live: bool = False
    total_frames: int | None = None
    fps: float | None = None

    @property
    def dropped(self) -> int:
        """Frames skipped to stay current (always 0 for files)."""
        return 0

    def __iter__(self) -> Iterator[Frame]:
        raise NotImplementedError

    def close(self) -> None:
        """Release the underlying file or device; safe to call more than once."""

    def __enter__(self) -> FrameSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"


def _natural_key(path: Path) -> list[object]:
    """Sort key that puts frame_2.png before frame_10.png."""
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", str(path))]


def _bgr_to_rgb(image: np.ndarray) -> np.ndarray:
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
    if image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2RGB)
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def read_image(path: str | Path) -> np.ndarray:
    """Read one image file as RGB ``uint8`` (H, W, 3); raises :class:`SourceError` naming it."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"image not found: {path}")
    # imdecode from bytes handles non-ASCII paths on every platform.
    data = np.fromfile(str(path), dtype=np.uint8)
    image = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if image is None:
        raise SourceError(
            f"cannot read image {path}: not a supported image or the file is corrupt "
            f"(supported: {', '.join(IMAGE_EXTENSIONS)})"
        )
    return _bgr_to_rgb(image)


class ImageSource(FrameSource):
    """A fixed list of image files, read in the given order.

    Images have no clock: the timestamp is ``index / fps`` when ``fps`` is given, otherwise
    the index itself (one image per second).
    """

    def __init__(
        self, paths: Sequence[str | Path], *, fps: float | None = None, name: str | None = None
    ) -> None:
        self.paths = [Path(p) for p in paths]
        if not self.paths:
            raise SourceError("no images given")
        if fps is not None and not fps > 0:
            raise ValueError(f"fps must be positive, got {fps}")
        self.fps = fps
        self.total_frames = len(self.paths)
        self.name = name or (
            str(self.paths[0])
            if len(self.paths) == 1
            else f"{len(self.paths)} images from {self.paths[0].parent}"
        )
        self._closed = False

    def __iter__(self) -> Iterator[Frame]:
        for i, path in enumerate(self.paths):
            if self._closed:
                return
            ts = i / self.fps if self.fps else float(i)
            yield Frame(read_image(path), i, ts, str(path))

    def close(self) -> None:
        self._closed = True


def expand_images(images: str | Path | Sequence[str | Path]) -> list[Path]:
    """Paths and glob patterns -> files. Each pattern's matches are sorted naturally;
    the order of the arguments is kept. A missing file or a pattern with no match raises."""
    items = [images] if isinstance(images, (str, Path)) else list(images)
    out: list[Path] = []
    for item in items:
        text = os.path.expanduser(str(item))
        if glob.has_magic(text):
            matches = sorted(
                (Path(m) for m in glob.glob(text) if Path(m).is_file()), key=_natural_key
            )
            if not matches:
                raise FileNotFoundError(f"no image files match the pattern {text!r}")
            out += matches
        else:
            path = Path(text)
            if path.is_dir():
                raise SourceError(f"{path} is a folder; pass it as folder=... (--folder)")
            if not path.is_file():
                raise FileNotFoundError(f"image not found: {path}")
            out.append(path)
    if not out:
        raise SourceError("no images given")
    return out


def folder_images(folder: str | Path) -> list[Path]:
    """The image files directly inside ``folder``, sorted naturally by name."""
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise FileNotFoundError(f"folder not found: {folder}")
    files = sorted(
        (p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS),
        key=_natural_key,
    )
    if not files:
        raise SourceError(f"no image files in {folder} (looked for {', '.join(IMAGE_EXTENSIONS)})")
    return files


class VideoSource(FrameSource):
    """A video file, decoded in order without dropping frames.

    Timestamps come from the container (``CAP_PROP_POS_MSEC`` after each read). When the
    container gives none (a negative or non-finite value, or 0 after the first frame), the
    timestamp falls back to ``index / fps`` (30 fps when the file declares no rate either).
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path).expanduser()
        if not self.path.is_file():
            raise FileNotFoundError(f"video not found: {self.path}")
        self._cap = cv2.VideoCapture(str(self.path))
        if not self._cap.isOpened():
            self._cap.release()
            raise SourceError(
                f"cannot open video {self.path}: unsupported container or codec. "
                "Check that it plays elsewhere, or convert it with "
                "`ffmpeg -i IN -c:v libx264 OUT.mp4`"
            )
        fps = float(self._cap.get(cv2.CAP_PROP_FPS) or 0.0)
        self.fps = fps if np.isfinite(fps) and fps > 0 else None
        count = int(self._cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        self.total_frames = count if count > 0 else None  # an estimate for some containers
        self.name = str(self.path)
        self._fallback_logged = False

    def _timestamp(self, index: int) -> float:
        msec = float(self._cap.get(cv2.CAP_PROP_POS_MSEC))
        if np.isfinite(msec) and msec >= 0 and (index == 0 or msec > 0):
            return msec / 1000.0
        if not self._fallback_logged:
            self._fallback_logged = True
            log.info("%s: container has no timestamps; using index / fps", self.name)
        return index / (self.fps or 30.0)

    def __iter__(self) -> Iterator[Frame]:
        index = 0
        while self._cap is not None:
            ok, image = self._cap.read()
            if not ok or image is None:
                return
            yield Frame(_bgr_to_rgb(image), index, self._timestamp(index), self.name)
            index += 1

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None  # type: ignore[assignment]


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
            yield Frame(_bgr_to_rgb(image), index, stamp, self.name)
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
        raise ValueError(f"camera must be a non-negative integer index, got {index!r}")
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
        raise ValueError(f"url must look like rtsp://host/path or http://host/path, got {url!r}")
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


def open_source(
    *,
    images: str | Path | Sequence[str | Path] | None = None,
    folder: str | Path | None = None,
    video: str | Path | None = None,
    camera: int | None = None,
    url: str | None = None,
    image_fps: float | None = None,
) -> FrameSource:
    """Open exactly one input and return its :class:`FrameSource`.

    Args:
        images: an image path or glob pattern, or a list of them (each glob is sorted).
        folder: a folder of images, read in natural name order.
        video: a video file, read in order without dropping frames.
        camera: a camera index (0 is the default webcam); frames are read live.
        url: an RTSP/HTTP stream URL; frames are read live.
        image_fps: for images and folders, the rate used to make timestamps.
    """
    given = {
        k: v
        for k, v in dict(images=images, folder=folder, video=video, camera=camera, url=url).items()
        if v is not None
    }
    if len(given) != 1:
        names = ", ".join(given) if given else "none"
        raise ValueError(
            f"open_source needs exactly one of images, folder, video, camera, url (got {names})"
        )
    if images is not None:
        return ImageSource(expand_images(images), fps=image_fps)
    if folder is not None:
        return ImageSource(folder_images(folder), fps=image_fps, name=str(folder))
    if video is not None:
        return VideoSource(video)
    if camera is not None:
        return open_camera(camera)
    assert url is not None
    return open_stream(url)


def sample_video_path() -> Path:
    """The short synthetic clip shipped with the package (made by ``tools/make_sample.py``)."""
    try:
        path = Path(str(resources.files("instanthmr") / "assets" / SAMPLE_VIDEO))
    except (NotADirectoryError, TypeError, ModuleNotFoundError):
        # a stale editable install can expose the package as a namespace, which
        # importlib.resources on Python < 3.12 cannot walk; the file sits beside this module.
        path = Path(__file__).resolve().parent / "assets" / SAMPLE_VIDEO
    if not path.is_file():
        raise FileNotFoundError(
            f"sample clip missing at {path}; regenerate it with `python tools/make_sample.py`"
        )
    return path
