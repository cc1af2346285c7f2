"""Upload checks: size limit while reading, decoding by content, private temp files for video.

Nothing here trusts a file name or a declared content type. An image is whatever
``cv2.imdecode`` decodes; a video must start with the signature of a known container (MP4/
MOV, AVI, Matroska/WebM), is written to a fresh private temporary directory under a fixed
name, and is opened there with OpenCV's FFmpeg backend. Text formats FFmpeg would also open
(HLS playlists, concat lists), which can make it read other files, are refused by the
signature check. The directory is removed when the upload is closed.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from .limits import image_dimensions

VIDEO_SIGNATURES: tuple[tuple[int, bytes, str], ...] = (
    (4, b"ftyp", ".mp4"),  # MP4, MOV, M4V (ISO base media)
    (8, b"AVI ", ".avi"),  # RIFF....AVI
    (0, b"\x1a\x45\xdf\xa3", ".mkv"),  # Matroska, WebM
)
"""(offset, magic bytes, suffix) of the video containers accepted for upload."""


class UploadError(ValueError):
    """A bad upload; ``status`` is the HTTP status to answer with (400 or 413)."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def check_declared_length(headers: Any, limit: int) -> None:
    """Refuse at once (413) a body whose ``Content-Length`` is over ``limit`` bytes."""
    declared = headers.get("content-length")
    if declared is None:
        return
    try:
        size = int(declared)
    except ValueError:
        raise UploadError(f"invalid Content-Length header {declared!r}") from None
    if size > limit:
        raise UploadError(_too_big(size, limit), status=413)


def _too_big(size: int | None, limit: int) -> str:
    got = f"{size / 1e6:.1f} MB" if size is not None else "more"
    return (
        f"upload too large: {got} > the limit of {limit / 1e6:.1f} MB "
        "(send a smaller file or restart the server with a larger --max-upload-mb)"
    )


async def read_limited(chunks: AsyncIterator[bytes], limit: int) -> bytes:
    """Read a body chunk by chunk, stopping with 413 as soon as it passes ``limit`` bytes."""
    buf = bytearray()
    async for chunk in chunks:
        buf += chunk
        if len(buf) > limit:
            raise UploadError(_too_big(None, limit), status=413)
    return bytes(buf)


def decode_image(data: bytes, max_pixels: int) -> np.ndarray | None:
    """RGB uint8 (H, W, 3) from encoded image bytes, or None when they are not an image.

    The size is read from the header first (:func:`~instanthmr.webapp.limits.image_dimensions`):
    an image over ``max_pixels`` pixels, or with a damaged header, raises UploadError before
    anything is decoded, and bytes in no image format known there are not decoded at all.
    """
    found = image_dimensions(data) if data else None
    if found is None:
        return None
    kind, size = found
    if size is None or min(size) < 1:
        raise UploadError(f"the {kind} image's header is damaged (no readable width and height)")
    check_pixels(size[0], size[1], max_pixels)
    try:
        bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    except cv2.error:  # OpenCV's own limits and assertions: never its text to the client
        bgr = None
    if bgr is None:
        raise UploadError("the image could not be decoded: the file is damaged or truncated")
    check_pixels(bgr.shape[1], bgr.shape[0], max_pixels)
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def check_pixels(width: int, height: int, max_pixels: int) -> None:
    """Raise UploadError when a ``width`` x ``height`` frame is over ``max_pixels``."""
    if width * height > max_pixels:
        raise UploadError(
            f"image of {width}x{height} pixels is over the limit of {max_pixels} pixels; "
            "scale it down before uploading"
        )


def video_suffix(head: bytes) -> str | None:
    """The container suffix for a file starting with ``head``, or None when unknown."""
    for offset, magic, suffix in VIDEO_SIGNATURES:
        if head[offset : offset + len(magic)] == magic:
            return suffix
    return None


class VideoUpload:
    """An uploaded video in a private temporary directory, read frame by frame with OpenCV.

    Use as a context manager; the directory and the file are removed on exit.
    """

    def __init__(self, data: bytes, max_pixels: int) -> None:
        suffix = video_suffix(data[:16])
        if suffix is None:
            raise UploadError(
                "not a decodable image or video: send a JPEG/PNG/WebP image or an "
                "MP4/MOV, AVI, MKV or WebM video"
            )
        self._dir = tempfile.TemporaryDirectory(prefix="instanthmr-upload-")
        self.path = Path(self._dir.name) / f"upload{suffix}"
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
        except OSError:
            self._dir.cleanup()
            raise
        self.capture = cv2.VideoCapture(str(self.path), cv2.CAP_FFMPEG)
        if not self.capture.isOpened():
            self.close()
            raise UploadError(f"the {suffix[1:].upper()} upload could not be opened as a video")
        width = self.capture.get(cv2.CAP_PROP_FRAME_WIDTH)
        height = self.capture.get(cv2.CAP_PROP_FRAME_HEIGHT)
        if np.isfinite(width) and np.isfinite(height):  # refuse before the first decode
            try:
                check_pixels(int(width), int(height), max_pixels)
            except UploadError:
                self.close()
                raise
        fps = self.capture.get(cv2.CAP_PROP_FPS)
        self.fps = float(fps) if np.isfinite(fps) and fps > 0 else None
        count = self.capture.get(cv2.CAP_PROP_FRAME_COUNT)
        self.frame_count = int(count) if np.isfinite(count) and count > 0 else None
        self.max_pixels = max_pixels

    def read(self) -> tuple[np.ndarray, float | None] | None:
        """The next frame as RGB and its timestamp in seconds, or None at the end."""
        ok, bgr = self.capture.read()
        if not ok or bgr is None:
            return None
        check_pixels(bgr.shape[1], bgr.shape[0], self.max_pixels)
        msec = self.capture.get(cv2.CAP_PROP_POS_MSEC)
        ts = float(msec) / 1000.0 if np.isfinite(msec) and msec >= 0 else None
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), ts

    def frames(self, limit: int) -> Iterator[tuple[np.ndarray, float | None]]:
        """Up to ``limit`` frames."""
        for _ in range(limit):
            item = self.read()
            if item is None:
                return
            yield item

    def close(self) -> None:
        """Release the capture and remove the temporary directory."""
        capture = getattr(self, "capture", None)
        if capture is not None:
            capture.release()
        self._dir.cleanup()

    def __enter__(self) -> VideoUpload:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
