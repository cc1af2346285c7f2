"""``POST /api/predict``: an image or a short video in, frame records (or an export file) out.

The body is the file itself (any content type) or a ``multipart/form-data`` form with one
file part. Its size is checked against the limit from ``Content-Length`` before anything is
read, and again while it streams in. The content decides what it is: an image decoded by
OpenCV gives one frame record; otherwise a known video container is opened (see
:mod:`.uploads`) and gives ``{"type": "video", "frames": [...]}``. ``?export=FORMAT``
(``jsonl``, ``npz``, ``csv``, ``bvh``, ``glb``) returns that file instead, as a download.
This route answers when the work is done; the page uses ``POST /api/uploads`` instead
(:mod:`.results_api`), which keeps the results for downloads and can be cancelled.
"""

from __future__ import annotations

from typing import Any

from fastapi import HTTPException, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from .downloads import EXPORT_TYPES, NothingToExportError, export_download
from .inference_queue import InferenceWorker, QueueFullError
from .jobs import process_upload, read_upload
from .records import frame_record
from .session import AppConfig
from .store import safe_stem
from .uploads import UploadError


def busy(config: AppConfig, exc: QueueFullError) -> HTTPException:
    """The 503 answer to a full queue."""
    return HTTPException(503, str(exc), headers={"Retry-After": str(config.retry_after_s)})


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
        upload = await read_upload(request, config.max_upload_bytes)
        # a fresh stream: an upload never sees a live session's tracks
        done = await process_upload(upload.data, pipeline.fork(), worker, config)
    except UploadError as exc:
        raise HTTPException(exc.status, str(exc)) from None
    except QueueFullError as exc:
        raise busy(config, exc) from None
    if export is not None:
        stem = safe_stem(upload.filename, "results")
        try:
            file = await run_in_threadpool(export_download, done.frames, export, stem,
                                           pipeline.describe())
        except NothingToExportError as exc:
            raise HTTPException(422, str(exc)) from None
        return Response(file.data, media_type=file.media_type,
                        headers={"Content-Disposition": file.disposition})  # fmt: skip
    if done.kind == "image":
        return frame_record(done.frames[0])
    meta = {k: done.meta[k] for k in ("fps", "frames_in_file", "truncated")}
    return {"type": "video", **meta, "frames": [frame_record(f) for f in done.frames]}
