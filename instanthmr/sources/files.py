"""Frame sources: images, folders, video files, cameras and network streams.

Every source is an iterable of :class:`Frame` (RGB ``uint8`` images) and a context manager::

    with open_source(video="clip.mp4") as source:
        for frame in source:
            ...

Files (images, folders, videos) are read in order and never drop a frame. Live sources
(cameras, RTSP/HTTP streams) are read on their own thread by a :class:`LatestFrameReader`
that keeps only the newest frame, so a slow consumer never builds up lag; the frames it
overwrote are counted in :attr:`FrameSource.dropped`. A source is meant to be iterated once.

This module holds the file sources and :func:`open_source`; the base classes are in
:mod:`instanthmr.sources.base` and the live sources in :mod:`instanthmr.sources.live`.
"""

from __future__ import annotations

import glob
import logging
import os
import re
from collections.abc import Iterator, Sequence
from importlib import resources
from pathlib import Path

import cv2
import numpy as np

from .base import CameraNotFoundError, Frame, FrameSource, SourceError, bgr_to_rgb
from .live import open_camera, open_stream
from .video_end import DecodeEnd, decode_end

__all__ = [
    "IMAGE_EXTENSIONS",
    "SAMPLE_VIDEO",
    "CameraNotFoundError",
    "Frame",
    "FrameSource",
    "ImageSource",
    "SourceError",
    "VideoSource",
    "asset_path",
    "bgr_to_rgb",
    "expand_images",
    "folder_images",
    "open_camera",
    "open_source",
    "open_stream",
    "read_image",
    "sample_video_path",
]

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS: tuple[str, ...] = (
    ".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm",
)  # fmt: skip
"""Suffixes (lower case) that :func:`open_source` treats as images in a folder."""

SAMPLE_VIDEO = "sample.mp4"
TIMESTAMP_NUDGE = 0.001
"""Seconds a repeated or backwards video timestamp is moved past the previous one."""


def _natural_key(path: Path) -> list[object]:
    """Sort key that puts frame_2.png before frame_10.png."""
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", str(path))]


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
    return bgr_to_rgb(image)


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
    Timestamps are strictly increasing: a damaged file whose frame repeats or goes back
    in time gets its timestamp nudged to just after the previous one (by
    :data:`TIMESTAMP_NUDGE` s, at most half a frame); :attr:`nudged` counts them, and one
    warning gives the count when the video ends or is closed.
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
        self.decoded = 0
        """Frames decoded so far."""
        self.last_container_time: float | None = None
        """The container timestamp of the last frame decoded (None: the container gave none)."""
        self._fallback_logged = False
        self.nudged = 0
        """Frames whose timestamp was not after the previous one's and was moved forward."""
        self._last_ts: float | None = None
        self._nudge_reported = False

    def _timestamp(self, index: int) -> float:
        msec = float(self._cap.get(cv2.CAP_PROP_POS_MSEC))
        if np.isfinite(msec) and msec >= 0 and (index == 0 or msec > 0):
            self.last_container_time = msec / 1000.0
            return msec / 1000.0
        self.last_container_time = None
        if not self._fallback_logged:
            self._fallback_logged = True
            log.info("%s: container has no timestamps; using index / fps", self.name)
        return index / (self.fps or 30.0)

    def _increasing(self, ts: float) -> float:
        last = self._last_ts
        if last is not None and ts <= last:
            ts = last + min(TIMESTAMP_NUDGE, 0.5 / (self.fps or 30.0))
            self.nudged += 1
        self._last_ts = ts
        return ts

    def _report_nudged(self) -> None:
        if self.nudged and not self._nudge_reported:
            self._nudge_reported = True
            log.warning(
                "%s: %d frames had a timestamp not after the previous frame's (a damaged "
                "file?); each was moved just after it so timestamps keep increasing",
                self.name, self.nudged,
            )  # fmt: skip

    def __iter__(self) -> Iterator[Frame]:
        index = 0
        while self._cap is not None:
            ok, image = self._cap.read()
            if not ok or image is None:
                break
            ts = self._increasing(self._timestamp(index))
            self.decoded = index + 1
            yield Frame(bgr_to_rgb(image), index, ts, self.name)
            index += 1
        self._report_nudged()

    def decode_end(self) -> DecodeEnd:
        """Whether the frames decoded so far reach the end of the file: after the last
        frame, a truncated file versus a container that miscounts its frames
        (:mod:`instanthmr.sources.video_end`)."""
        return decode_end(self.name, self.decoded, self.total_frames, self.fps,
                          self.last_container_time)  # fmt: skip

    def close(self) -> None:
        self._report_nudged()
        if self._cap is not None:
            self._cap.release()
            self._cap = None  # type: ignore[assignment]


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


def asset_path(name: str, what: str, rebuild: str) -> Path:
    """A file shipped in the package's ``assets/`` folder; FileNotFoundError naming ``what``
    it is and the ``rebuild`` command when it is missing."""
    try:
        path = Path(str(resources.files("instanthmr") / "assets" / name))
    except (NotADirectoryError, TypeError, ModuleNotFoundError):
        # a stale editable install can expose the package as a namespace, which
        # importlib.resources on Python < 3.12 cannot walk; the file sits beside this module.
        path = Path(__file__).resolve().parents[1] / "assets" / name
    if not path.is_file():
        raise FileNotFoundError(f"{what} missing at {path}; rebuild it with `{rebuild}`")
    return path


def sample_video_path() -> Path:
    """The sample clip shipped with the package: 10 s of OpenCV's vtest.avi
    (:mod:`instanthmr.sources.sample`, made by ``tools/make_sample.py``)."""
    return asset_path(SAMPLE_VIDEO, "sample clip",
                      "python tools/make_sample.py --source PATH/TO/vtest.avi")  # fmt: skip
