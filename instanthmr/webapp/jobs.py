"""Processing one upload: reading the body, frames through the inference thread, the preview.

:func:`process_upload` is shared by ``POST /api/predict`` (answers when done) and
``POST /api/uploads`` (a background job the page follows and can cancel, see
:mod:`.results_api`). An image gives one frame; a video is read frame by frame, each frame
a job on the one inference thread (interleaved with live sessions), tracked and smoothed
like a video in the demo, and, when asked, handed to a :class:`~.preview.VideoPreview`.
A cancel flag is checked before every frame, so cancelling stops the work within a frame.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

from fastapi import Request
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.types import Message

from ..results import FrameResult
from .inference_queue import InferenceWorker, QueueFullError
from .preview import VideoPreview, image_preview
from .session import AppConfig
from .uploads import UploadError, VideoUpload, check_declared_length, decode_image, read_limited

T = TypeVar("T")

QUEUE_WAIT_S = 10.0
"""How long a later frame of a video (or a background upload) waits for room in a full
queue before giving up."""


class UploadCancelledError(Exception):
    """The upload was cancelled (``DELETE /api/results/{key}``)."""


class Upload(NamedTuple):
    """An uploaded file: its bytes and the file name the client gave, if any."""

    data: bytes
    filename: str | None


def _replay(body: bytes) -> Callable[[], Awaitable[Message]]:
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return receive


async def read_upload(request: Request, limit: int) -> Upload:
    """The uploaded file: the raw body, or the one file part of a multipart form."""
    check_declared_length(request.headers, limit)
    body = await read_limited(request.stream(), limit)
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        return Upload(body, None)
    form = await Request(request.scope, _replay(body)).form(max_files=1, max_fields=8)
    try:
        files = [v for v in form.values() if isinstance(v, UploadFile)]
        if not files:
            raise UploadError("the multipart form has no file part: send the file as 'file'")
        return Upload(await files[0].read(), files[0].filename)
    finally:
        await form.close()


async def run_job(worker: InferenceWorker, fn: Callable[[], T], wait_s: float = 0.0) -> T:
    """Run ``fn`` on the inference thread; QueueFullError when the queue stays full past
    ``wait_s`` seconds."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            fut = worker.submit(fn)
            break
        except QueueFullError:
            if time.monotonic() >= deadline:
                raise
            await asyncio.sleep(0.05)
    return await asyncio.wrap_future(fut)


@dataclass
class Processed:
    """What :func:`process_upload` made.

    Attributes:
        kind: ``"image"`` or ``"video"``.
        frames: the results (the list given to :func:`process_upload`).
        meta: for a video, ``fps``, ``frames_in_file``, ``truncated`` and ``preview_fps``
            (frame ``i`` of the preview is at ``i / preview_fps`` seconds).
        preview: the preview file (JPEG or video), when one was asked for and made.
        preview_type: its media type.
        preview_error: why there is no preview, when one was asked for.
    """

    kind: str
    frames: list[FrameResult]
    meta: dict[str, Any] = field(default_factory=dict)
    preview: Path | None = None
    preview_type: str | None = None
    preview_error: str | None = None


async def process_upload(
    data: bytes,
    stream: Any,
    worker: InferenceWorker,
    config: AppConfig,
    *,
    frames: list[FrameResult] | None = None,
    cancel: threading.Event | None = None,
    on_total: Callable[[int | None], None] | None = None,
    preview: Path | None = None,
    first_wait_s: float = 0.0,
) -> Processed:
    """Run an uploaded image or video through ``stream`` (a fresh pipeline fork).

    Args:
        data: the file's bytes.
        stream: the pipeline to use (its tracks and filters are this upload's).
        frames: the list results are appended to as they come (progress); a new one if None.
        cancel: when set, the work stops before the next frame (UploadCancelledError).
        on_total: called once with the number of frames that will be processed (a video's
            frame count, capped), or None when unknown.
        preview: write a browser-playable preview here (suffix added), or None for none.
        first_wait_s: how long the first job waits for room in a full queue.

    Raises:
        UploadError: not an image nor a readable video, or no frames.
        QueueFullError: the inference queue stayed full.
        UploadCancelledError: ``cancel`` was set.
    """
    out = [] if frames is None else frames

    def image_job() -> tuple[FrameResult, Any] | None:
        _check(cancel)
        image = decode_image(data, config.max_pixels)
        return None if image is None else (stream.predict(image, timestamp=0.0), image)

    single = await run_job(worker, image_job, first_wait_s)
    if single is None:
        return await _process_video(data, stream, worker, config, out, cancel, on_total, preview)
    if on_total is not None:
        on_total(1)
    result, image = single
    out.append(result)
    done = Processed("image", out)
    if preview is not None:
        jpeg = await run_in_threadpool(image_preview, image, config.preview_max_width)
        done.preview = preview.with_suffix(".jpg")
        done.preview.write_bytes(jpeg)
        done.preview_type = "image/jpeg"
    return done


def _check(cancel: threading.Event | None) -> None:
    if cancel is not None and cancel.is_set():
        raise UploadCancelledError


async def _process_video(
    data: bytes,
    stream: Any,
    worker: InferenceWorker,
    config: AppConfig,
    frames: list[FrameResult],
    cancel: threading.Event | None,
    on_total: Callable[[int | None], None] | None,
    preview_path: Path | None,
) -> Processed:
    video = await run_in_threadpool(VideoUpload, data, config.max_pixels)
    fps = video.fps or 30.0
    total = None if video.frame_count is None else min(video.frame_count, config.max_video_frames)
    if on_total is not None:
        on_total(total)
    preview = None if preview_path is None else VideoPreview(
        preview_path, fps, config.preview_max_width)  # fmt: skip
    try:
        step_s = 1.0 / fps

        def step() -> FrameResult | None:
            _check(cancel)
            item = video.read()
            if item is None:
                return None
            image, ts = item
            last = frames[-1].timestamp if frames else None
            if ts is None or (last is not None and ts <= last):  # the smoother needs order
                ts = 0.0 if last is None else last + step_s
            result = stream.predict(image, frame_index=len(frames), timestamp=ts, smooth=True)
            if preview is not None:
                preview.add(image)
            return result

        while len(frames) < config.max_video_frames:
            result = await run_job(worker, step, QUEUE_WAIT_S)
            if result is None:
                break
            frames.append(result)
            _check(cancel)
        more = len(frames) == config.max_video_frames and (
            await run_in_threadpool(video.read) is not None
        )
    except BaseException:
        if preview is not None:
            await run_in_threadpool(preview.cancel)
        raise
    finally:
        await run_in_threadpool(video.close)
    if not frames:
        if preview is not None:
            await run_in_threadpool(preview.cancel)
        raise UploadError("the video has no decodable frames")
    meta = {"fps": video.fps, "frames_in_file": video.frame_count, "truncated": more,
            "preview_fps": fps}  # fmt: skip
    done = Processed("video", frames, meta)
    if preview is not None:
        done.preview = await run_in_threadpool(preview.finish)
        done.preview_type = preview.media_type if done.preview else None
        done.preview_error = preview.error
    return done
