"""``POST /api/predict``: an image or a short video in, frame records (or an export file) out.

The body is the file itself (any content type) or a ``multipart/form-data`` form with one
file part. Its size is checked against the limit from ``Content-Length`` before anything is
read, and again while it streams in. The content decides what it is: an image decoded by
OpenCV gives one frame record; otherwise a known video container is opened (see
:mod:`.uploads`) and gives ``{"type": "video", "frames": [...]}``. ``?export=jsonl`` or
``?export=npz`` returns the project's results file instead, as a download.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

from fastapi import HTTPException, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.types import Message

from ..results import FrameResult
from ..sinks.exporters import open_exporter
from .inference_queue import InferenceWorker, QueueFullError
from .records import frame_record
from .session import AppConfig
from .uploads import UploadError, VideoUpload, check_declared_length, decode_image, read_limited

T = TypeVar("T")

EXPORT_TYPES: dict[str, str] = {"jsonl": "application/x-ndjson", "npz": "application/zip"}
"""``?export=`` values and their media types."""

QUEUE_WAIT_S = 10.0
"""How long the later frames of a video wait for room in a full queue before giving up."""


def _replay(body: bytes) -> Callable[[], Awaitable[Message]]:
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return receive


async def read_upload(request: Request, limit: int) -> bytes:
    """The uploaded file's bytes: the raw body, or the one file part of a multipart form."""
    check_declared_length(request.headers, limit)
    body = await read_limited(request.stream(), limit)
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        return body
    form = await Request(request.scope, _replay(body)).form(max_files=1, max_fields=8)
    try:
        files = [v for v in form.values() if isinstance(v, UploadFile)]
        if not files:
            raise UploadError("the multipart form has no file part: send the file as 'file'")
        return await files[0].read()
    finally:
        await form.close()


def busy(config: AppConfig, exc: QueueFullError) -> HTTPException:
    """The 503 answer to a full queue."""
    return HTTPException(503, str(exc), headers={"Retry-After": str(config.retry_after_s)})


async def run_job(
    worker: InferenceWorker, fn: Callable[[], T], config: AppConfig, wait_s: float = 0.0
) -> T:
    """Run ``fn`` on the inference thread; 503 when the queue stays full past ``wait_s``."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            fut = worker.submit(fn)
            break
        except QueueFullError as exc:
            if time.monotonic() >= deadline:
                raise busy(config, exc) from None
            await asyncio.sleep(0.05)
    return await asyncio.wrap_future(fut)


def export_bytes(
    frames: list[FrameResult], kind: str, run: dict[str, Any] | None = None
) -> bytes:
    """The frames as a results file of ``kind`` (jsonl or npz), written in a temp directory;
    ``run`` names the model and the detector in the header
    (:meth:`~instanthmr.PosePipeline.describe`)."""
    with tempfile.TemporaryDirectory(prefix="instanthmr-export-") as tmp:
        path = Path(tmp) / f"results.{kind}"
        with open_exporter(path, run) as exporter:
            for frame in frames:
                exporter.write(frame)
        return path.read_bytes()


async def _video_frames(
    data: bytes, stream: Any, worker: InferenceWorker, config: AppConfig
) -> tuple[list[FrameResult], dict[str, Any]]:
    video = await run_in_threadpool(VideoUpload, data, config.max_pixels)
    try:
        frames: list[FrameResult] = []
        step_s = 1.0 / (video.fps or 30.0)

        def step() -> FrameResult | None:
            item = video.read()
            if item is None:
                return None
            image, ts = item
            last = frames[-1].timestamp if frames else None
            if ts is None or (last is not None and ts <= last):  # the smoother needs order
                ts = 0.0 if last is None else last + step_s
            return stream.predict(image, frame_index=len(frames), timestamp=ts, smooth=True)

        while len(frames) < config.max_video_frames:
            result = await run_job(worker, step, config, wait_s=QUEUE_WAIT_S if frames else 0.0)
            if result is None:
                break
            frames.append(result)
        more = len(frames) == config.max_video_frames and (
            await run_in_threadpool(video.read) is not None
        )
        meta = {"fps": video.fps, "frames_in_file": video.frame_count, "truncated": more}
    finally:
        await run_in_threadpool(video.close)
    if not frames:
        raise UploadError("the video has no decodable frames")
    return frames, meta


async def predict_upload(
    request: Request,
    pipeline: Any,
    worker: InferenceWorker,
    config: AppConfig,
    export: str | None,
) -> Any:
    """Handle one ``POST /api/predict`` (see the module docstring)."""
    if export is not None and export not in EXPORT_TYPES:
        raise HTTPException(400, f"export must be one of {', '.join(EXPORT_TYPES)}, got {export!r}")
    try:
        data = await read_upload(request, config.max_upload_bytes)
        stream = pipeline.fork()  # a fresh stream: an upload never sees a live session's tracks

        def image_job() -> FrameResult | None:
            image = decode_image(data, config.max_pixels)
            return None if image is None else stream.predict(image, timestamp=0.0)

        single = await run_job(worker, image_job, config)
        if single is not None:
            frames, meta = [single], None
        else:
            frames, meta = await _video_frames(data, stream, worker, config)
    except UploadError as exc:
        raise HTTPException(exc.status, str(exc)) from None
    if export is not None:
        payload = await run_in_threadpool(export_bytes, frames, export, pipeline.describe())
        disposition = f'attachment; filename="instanthmr-results.{export}"'
        return Response(payload, media_type=EXPORT_TYPES[export],
                        headers={"Content-Disposition": disposition})  # fmt: skip
    if meta is None:
        return frame_record(frames[0])
    return {"type": "video", **meta, "frames": [frame_record(f) for f in frames]}
