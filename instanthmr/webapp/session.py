"""Per-connection state of the live WebSocket stream, and the app's settings.

Each connection gets a :class:`LiveSession`: its own pipeline from ``pipeline.fork()``
(shared models, fresh tracks and filters, so two browser tabs never mix track ids), a slot
holding only the newest frame not yet processed, and counters. A frame that arrives while
an older one still waits replaces it, and the older one is counted in ``dropped``.

A connection can record: between ``start_recording`` and ``stop_recording`` every processed
frame is also kept in the :class:`~.store.ResultStore` under the recording's key (frame
indices from 0, timestamps from the first recorded frame), up to ``max_recording_bytes``;
downloads come from there, also after the connection is gone.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import threading
import time
from dataclasses import dataclass
from typing import Any

from ..results import FrameResult
from .records import LIVE_ARRAYS, frame_record
from .store import Entry, ResultStore
from .uploads import UploadError, decode_image


@dataclass(frozen=True)
class AppConfig:
    """Settings of the browser app (``instanthmr serve --help`` lists the flags).

    Attributes:
        token: when set, required on ``/ws``, ``/health`` and ``/api/*``.
        max_upload_bytes: largest ``POST /api/predict`` body.
        max_video_frames: frames of an uploaded video that are processed (the rest are not).
        max_frame_bytes: largest WebSocket frame.
        max_pixels: largest image or video frame, width x height.
        max_queue: inference jobs that may wait; more get 503 / an error message.
        retry_after_s: the ``Retry-After`` sent with 503.
        live_decimals: decimals of the arrays sent over the WebSocket.
        max_fps: the page's cap on frames sent per second.
        allowed_hosts: ``Host`` header values accepted (None: any). ``instanthmr serve`` sets
            the loopback names when it binds a loopback address, so a web page whose own
            domain name resolves to 127.0.0.1 (DNS rebinding) cannot reach the app.
        keep_results_s: seconds an upload's or a recording's results are kept after their
            last use (downloads come from them), then deleted.
        max_results_bytes: memory all kept results may take together; past it the least
            recently used are deleted.
        max_recording_bytes: size cap of one live recording (it stops there).
        preview: re-encode uploaded videos into a file every browser plays (H.264 MP4, see
            :mod:`.preview`); off, the page plays the original file where it can.
        preview_max_width: previews wider than this are scaled down.
    """

    token: str | None = None
    max_upload_bytes: int = 50_000_000
    max_video_frames: int = 300
    max_frame_bytes: int = 4_000_000
    max_pixels: int = 4096 * 4096
    max_queue: int = 8
    retry_after_s: int = 1
    live_decimals: int = 4
    max_fps: float = 30.0
    allowed_hosts: tuple[str, ...] | None = None
    keep_results_s: float = 1800.0
    max_results_bytes: int = 500_000_000
    max_recording_bytes: int = 100_000_000
    preview: bool = True
    preview_max_width: int = 1280

    def __post_init__(self) -> None:
        for name in ("max_upload_bytes", "max_video_frames", "max_frame_bytes", "max_pixels",
                     "max_queue", "retry_after_s", "max_results_bytes", "max_recording_bytes",
                     "preview_max_width"):  # fmt: skip
            if getattr(self, name) < 1:
                raise ValueError(f"AppConfig.{name} must be >= 1, got {getattr(self, name)}")
        if not self.keep_results_s > 0:
            raise ValueError(f"AppConfig.keep_results_s must be > 0, got {self.keep_results_s}")
        if not self.max_fps > 0:
            raise ValueError(f"AppConfig.max_fps must be > 0, got {self.max_fps}")
        if self.token is not None and not self.token:
            raise ValueError("AppConfig.token must be a non-empty string or None")


class LiveSession:
    """One WebSocket connection: its pipeline fork, the newest pending frame, counters."""

    def __init__(self, pipeline: Any, config: AppConfig, store: ResultStore | None = None) -> None:
        self.pipeline = pipeline.fork()
        self.config = config
        self.store = store
        self.recording: Entry | None = None
        self._record_lock = threading.Lock()
        self._record_t0: float | None = None
        self._stopped: dict[str, Any] | None = None
        self.received = 0
        self.dropped = 0
        self.processed = 0
        self._pending: tuple[bytes, int, float] | None = None
        self._ready = asyncio.Event()
        self._t0 = time.perf_counter()

    def offer(self, data: bytes) -> None:
        """A frame arrived: it replaces (and drops) any frame still waiting."""
        self.received += 1
        if self._pending is not None:
            self.dropped += 1
        self._pending = (data, self.received, time.perf_counter())
        self._ready.set()

    async def next_frame(self) -> tuple[bytes, int, float]:
        """Wait for the newest pending frame: (bytes, its 1-based sequence number, arrival)."""
        while self._pending is None:
            self._ready.clear()
            await self._ready.wait()
        item, self._pending = self._pending, None
        return item

    def process(self, data: bytes, seq: int, t_arrival: float) -> str:
        """Decode, predict and encode one frame (runs on the inference thread); JSON text."""
        t_start = time.perf_counter()
        image = decode_image(data, self.config.max_pixels)
        if image is None:
            raise UploadError("frame is not a decodable image: send JPEG or WebP bytes")
        t_decoded = time.perf_counter()
        result = self.pipeline.predict(image, timestamp=t_arrival - self._t0)
        t_predicted = time.perf_counter()
        self.processed += 1
        rec = frame_record(result, LIVE_ARRAYS, self.config.live_decimals)
        t_encoded = time.perf_counter()
        recording = self._record(result)
        if recording is not None:
            rec["recording"] = recording
        rec["seq"] = seq
        rec["received"] = self.received
        rec["dropped"] = self.dropped
        rec["server"] = {
            "queue_ms": (t_start - t_arrival) * 1e3,  # arrival to the start of this job
            "decode_ms": (t_decoded - t_start) * 1e3,
            "predict_ms": (t_predicted - t_decoded) * 1e3,
            "encode_ms": (t_encoded - t_predicted) * 1e3,  # arrays to JSON-ready lists
        }
        return json.dumps(rec)

    def start_recording(self) -> dict[str, Any]:
        """Start keeping processed frames (a recording already running goes on); its status."""
        if self.store is None:
            raise RuntimeError("this session has no result store to record into")
        with self._record_lock:
            if self.recording is None:
                name = time.strftime("webcam-%Y%m%d-%H%M%S")
                entry = self.store.create("recording", name, state="recording")
                entry.limit_bytes = self.config.max_recording_bytes
                self.recording, self._record_t0 = entry, None
            return recording_status(self.recording)

    def stop_recording(self, reason: str = "stopped") -> dict[str, Any] | None:
        """Stop recording and keep what was recorded; its status, or None when not recording."""
        with self._record_lock:
            entry, self.recording = self.recording, None
        if entry is None:
            return None
        entry.stop_reason = reason
        assert self.store is not None
        self.store.finish(entry)
        return recording_status(entry)

    def _record(self, result: FrameResult) -> dict[str, Any] | None:
        with self._record_lock:
            entry = self.recording
            if entry is None:
                return None
            if entry.cancel.is_set():  # deleted by DELETE /api/results/{key}
                self.recording = None
                self._stopped = recording_status(entry)
                return self._stopped
            ts = result.timestamp or 0.0
            if self._record_t0 is None:
                self._record_t0 = ts
            kept = dataclasses.replace(
                result, frame_index=len(entry.frames), timestamp=ts - self._record_t0
            )
            assert self.store is not None
            if self.store.append(entry, kept):
                return recording_status(entry)
        self._stopped = self.stop_recording("size cap")
        return self._stopped

    def take_stopped(self) -> dict[str, Any] | None:
        """The status of a recording that stopped by itself since the last call, once."""
        stopped, self._stopped = self._stopped, None
        return stopped


def recording_status(entry: Entry) -> dict[str, Any]:
    """A recording's state for the page: key, state, frames, bytes, cap, why it stopped."""
    return {"key": entry.key, "name": entry.name, "state": entry.state,
            "frames": len(entry.frames), "bytes": entry.nbytes,
            "limit_bytes": entry.limit_bytes, "stop_reason": entry.stop_reason}  # fmt: skip
