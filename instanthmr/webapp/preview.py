"""Previews of uploads that every browser shows: H.264 MP4 video through PyAV, JPEG images.

Browsers play few formats: Chromium, Firefox and Safari all play H.264 video in an MP4 file,
none plays AVI, and MOV or MPEG-4 Part 2 (what many cameras and OpenCV write) only in some.
So the app re-encodes the frames it processed, exactly those and in that order, into a new
file: frame ``i`` is shown at ``i / fps`` seconds, which is how the page finds the results
for the frame on screen. The encoder is the first of :data:`PREVIEW_CODECS` that the
installed PyAV wheel carries: ``libx264`` (H.264, ``yuv420p``, no B-frames, ``faststart``),
else ``libvpx`` (VP8 in WebM: Chromium and Firefox, Safari from version 15). Images are
shown from a JPEG the server writes, so a TIFF or a 16-bit PNG that OpenCV decodes but a
browser does not is still shown. Previews wider than ``max_width`` are scaled down.

:class:`VideoPreview` encodes on its own thread behind a small queue, so the inference
thread only hands frames over.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import cv2
import numpy as np

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PreviewCodec:
    """An encoder for previews: FFmpeg codec name, file suffix, media type, codec options."""

    codec: str
    suffix: str
    media_type: str
    options: dict[str, str] = field(default_factory=dict)
    bit_rate: int | None = None


PREVIEW_CODECS: tuple[PreviewCodec, ...] = (
    PreviewCodec("libx264", ".mp4", "video/mp4",
                 {"preset": "veryfast", "crf": "26", "bf": "0"}),
    PreviewCodec("libvpx", ".webm", "video/webm",
                 {"deadline": "realtime", "cpu-used": "8"}, bit_rate=2_000_000),
)  # fmt: skip
"""Preview encoders in order of preference; the first one PyAV has is used."""


@cache
def preview_codec() -> PreviewCodec | None:
    """The first of :data:`PREVIEW_CODECS` the installed PyAV can encode, or None."""
    try:
        import av
    except ImportError:
        return None
    for candidate in PREVIEW_CODECS:
        try:
            av.codec.Codec(candidate.codec, "w")
        except (av.error.FFmpegError, ValueError):  # UnknownCodecError is a ValueError
            continue
        return candidate
    return None


def no_preview_reason() -> str:
    """Why :func:`preview_codec` found nothing (for the page)."""
    try:
        import av  # noqa: F401
    except ImportError:
        return "PyAV is not installed on the server (pip install av)"
    names = ", ".join(c.codec for c in PREVIEW_CODECS)
    return f"the server's PyAV has none of the preview encoders ({names})"


def preview_size(width: int, height: int, max_width: int) -> tuple[int, int]:
    """The preview's (width, height): at most ``max_width`` wide, both even (yuv420p)."""
    scale = min(1.0, max_width / width)
    w = max(2, int(width * scale / 2 + 0.5) * 2)
    h = max(2, int(height * scale / 2 + 0.5) * 2)
    return w, h


def image_preview(image_rgb: np.ndarray, max_width: int, quality: int = 90) -> bytes:
    """The image as JPEG bytes, scaled down to ``max_width`` when wider."""
    h, w = image_rgb.shape[:2]
    if w > max_width:
        size = (max_width, max(1, round(h * max_width / w)))
        image_rgb = cv2.resize(image_rgb, size, interpolation=cv2.INTER_AREA)
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(image_rgb, cv2.COLOR_RGB2BGR),
                           [cv2.IMWRITE_JPEG_QUALITY, quality])  # fmt: skip
    if not ok:
        raise RuntimeError("OpenCV could not encode the preview JPEG")
    return buf.tobytes()


class VideoPreview:
    """Encodes RGB frames into a browser-playable video file on a thread of its own.

    Call :meth:`add` for every processed frame (from any thread), then :meth:`finish`,
    which returns the file, or None with :attr:`error` saying why there is none.
    :meth:`cancel` drops everything. All frames must have the size of the first.

    Args:
        path: the file to write, without suffix (the codec's suffix is added).
        fps: frame rate; frame ``i`` is at ``i / fps`` seconds.
        max_width: previews wider than this are scaled down.
        codec: the encoder (default: :func:`preview_codec`).
    """

    QUEUE = 8
    """Frames waiting for the encoder; :meth:`add` blocks while it is full."""

    def __init__(
        self, path: Path, fps: float, max_width: int = 1280, codec: PreviewCodec | None = None
    ) -> None:
        self.codec = codec or preview_codec()
        self.path = Path(path).with_suffix(self.codec.suffix) if self.codec else Path(path)
        self.fps = float(fps)
        self.max_width = max_width
        self.error: str | None = None if self.codec else no_preview_reason()
        self.frames = 0
        self._queue: queue.Queue[np.ndarray | None] = queue.Queue(self.QUEUE)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        if self.codec is not None:
            self._thread = threading.Thread(target=self._run, name="instanthmr-preview",
                                            daemon=True)  # fmt: skip
            self._thread.start()

    @property
    def media_type(self) -> str | None:
        """The file's media type (``video/mp4``...), None without an encoder."""
        return self.codec.media_type if self.codec else None

    def add(self, image_rgb: np.ndarray) -> None:
        """Queue one frame (blocks while the encoder is :data:`QUEUE` frames behind)."""
        self._put(image_rgb, lambda: self.error is not None or self._stop.is_set())

    def finish(self, timeout: float = 120.0) -> Path | None:
        """Flush and close the file; its path, or None (see :attr:`error`)."""
        if self._thread is None:
            return None
        self._put_end()
        self._thread.join(timeout)
        if self._thread.is_alive():
            self._stop.set()
            self.error = f"the preview encoder did not finish within {timeout:.0f} s"
        if self.error is None and self.frames == 0:
            self.error = "no frames to show"
        return None if self.error else self.path

    def cancel(self) -> None:
        """Stop encoding and remove the file."""
        self._stop.set()
        if self._thread is not None:
            self._put_end()
            self._thread.join(30)
        self.path.unlink(missing_ok=True)

    def _put_end(self) -> None:
        self._put(None, lambda: self._thread is None or not self._thread.is_alive())

    def _put(self, item: np.ndarray | None, give_up: Callable[[], bool]) -> None:
        """Queue ``item``, waiting for room, unless ``give_up()`` becomes true first."""
        while not give_up():
            try:
                self._queue.put(item, timeout=0.5)
                return
            except queue.Full:
                continue

    def _run(self) -> None:
        import av

        assert self.codec is not None
        container = stream = None
        try:
            while True:
                image = self._queue.get()
                if image is None or self._stop.is_set():
                    break
                if container is None:
                    h, w = image.shape[:2]
                    container, stream = self._open(av, w, h)
                frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
                frame = frame.reformat(stream.width, stream.height, "yuv420p")
                frame.pts = self.frames
                container.mux(stream.encode(frame))
                self.frames += 1
            if container is not None and not self._stop.is_set():
                container.mux(stream.encode(None))
        except (av.error.FFmpegError, ValueError, OSError) as exc:
            log.warning("preview encoding failed: %s", exc)
            self.error = f"the preview encoder failed: {exc}"
        finally:
            if container is not None:
                try:
                    container.close()
                except (av.error.FFmpegError, OSError) as exc:
                    self.error = self.error or f"the preview file could not be closed: {exc}"
            while True:  # unblock a producer waiting on a full queue
                try:
                    self._queue.get_nowait()
                except queue.Empty:
                    break

    def _open(self, av: object, width: int, height: int) -> tuple[object, object]:
        from fractions import Fraction

        assert self.codec is not None
        options = {"movflags": "+faststart"} if self.codec.suffix == ".mp4" else {}
        container = av.open(str(self.path), "w", options=options)  # type: ignore[attr-defined]
        rate = Fraction(self.fps).limit_denominator(1001)
        stream = container.add_stream(self.codec.codec, rate=rate, options=self.codec.options)
        stream.width, stream.height = preview_size(width, height, self.max_width)
        stream.pix_fmt = "yuv420p"
        stream.time_base = 1 / rate
        if self.codec.bit_rate:
            stream.bit_rate = self.codec.bit_rate
        return container, stream
