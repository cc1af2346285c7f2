"""Uploads processed in the background and results kept for downloads (``/api/uploads``,
``/api/results/{key}``).

``POST /api/uploads?name=clip.avi`` takes the file (as ``POST /api/predict`` does), starts
processing it on a fresh pipeline fork and answers at once (202) with a status holding the
``key``. The page then follows ``GET /api/results/{key}`` (state, frames done of total),
fetches the frames and the preview when the state is ``done``, offers downloads made from
the kept frames (the models never run again), and ``DELETE`` cancels the work within a
frame and deletes everything. Live recordings are kept the same way (:mod:`.session`).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect

from .downloads import NothingToExportError, check_format, export_download
from .inference_queue import InferenceWorker, QueueFullError
from .jobs import QUEUE_WAIT_S, UploadCancelledError, process_upload, read_upload
from .records import LIVE_ARRAYS, frame_record
from .session import AppConfig
from .store import Entry, ResultStore, frame_nbytes
from .uploads import UploadError

log = logging.getLogger(__name__)


def gone(config: AppConfig) -> HTTPException:
    """The 404 for a key with nothing under it."""
    return HTTPException(
        404,
        "no results under this key: they were cancelled, deleted, or expired (kept "
        f"{config.keep_results_s / 60:.0f} min after last use); upload the file again",
    )


async def run_upload_job(
    entry: Entry, data: bytes, pipeline: Any, worker: InferenceWorker, config: AppConfig,
    store: ResultStore,
) -> None:
    """Process an upload into ``entry`` (see :func:`.jobs.process_upload`); never raises."""
    def total(n: int | None) -> None:
        entry.frames_total = n

    try:
        done = await process_upload(
            data, pipeline.fork(), worker, config, frames=entry.frames, cancel=entry.cancel,
            on_total=total, preview=(entry.directory / "preview") if config.preview else None,
            first_wait_s=QUEUE_WAIT_S,
        )  # fmt: skip
    except UploadCancelledError:
        log.info("upload %s cancelled after %d frames", entry.name, len(entry.frames))
        return
    except UploadError as exc:
        store.finish(entry, "failed", str(exc))
        return
    except QueueFullError as exc:
        store.finish(entry, "failed", f"the server stayed busy: {exc}")
        return
    except Exception as exc:  # the model failed: say so on the page, keep serving
        log.exception("upload %s failed", entry.name)
        store.finish(entry, "failed", f"inference failed: {exc}")
        return
    if entry.cancel.is_set():
        return
    entry.kind, entry.meta = done.kind, done.meta
    entry.preview, entry.preview_type = done.preview, done.preview_type
    entry.preview_error = done.preview_error if config.preview else (
        "the server was started with --no-preview")  # fmt: skip
    entry.nbytes = sum(frame_nbytes(f) for f in entry.frames)
    store.finish(entry)


def add_result_routes(
    app: FastAPI, pipeline: Any, worker: InferenceWorker, config: AppConfig,
    store: ResultStore, require_token: Any,
) -> None:
    """Add the upload and result routes to ``app`` (``require_token`` checks a request)."""
    jobs: set[asyncio.Task] = app.state.jobs

    def entry_of(key: str) -> Entry:
        entry = store.get(key)
        if entry is None:
            raise gone(config)
        return entry

    def finished(entry: Entry) -> Entry:
        if entry.state != "done":
            why = entry.error or f"the results are not ready yet ({entry.state})"
            raise HTTPException(409, why)
        return entry

    @app.post("/api/uploads", status_code=202)
    async def upload(request: Request, name: str | None = None) -> Any:
        require_token(request)
        try:
            file = await read_upload(request, config.max_upload_bytes)
        except UploadError as exc:
            raise HTTPException(exc.status, str(exc)) from None
        except ClientDisconnect:  # the page cancelled while sending: nothing was kept
            log.info("upload %r cancelled while it was sent", name)
            return Response(status_code=400)
        entry = store.create("upload", name or file.filename)
        job = run_upload_job(entry, file.data, pipeline, worker, config, store)
        task = asyncio.create_task(job)
        jobs.add(task)
        task.add_done_callback(jobs.discard)
        return entry.status()

    @app.get("/api/results/{key}")
    async def status(request: Request, key: str) -> dict[str, Any]:
        require_token(request)
        return entry_of(key).status()

    @app.get("/api/results/{key}/frames")
    async def frames(request: Request, key: str, layout: str = "full") -> JSONResponse:
        require_token(request)
        if layout not in ("full", "live"):
            raise HTTPException(400, f"layout must be full or live, got {layout!r}")
        entry = finished(entry_of(key))
        arrays = LIVE_ARRAYS if layout == "live" else None

        def build() -> dict[str, Any]:
            recs = [frame_record(f, arrays, 4) if arrays else frame_record(f)
                    for f in entry.frames]  # fmt: skip
            return {"type": entry.kind, "name": entry.name, **entry.meta, "frames": recs}

        return JSONResponse(await run_in_threadpool(build))

    @app.get("/api/results/{key}/preview")
    async def preview(request: Request, key: str) -> FileResponse:
        require_token(request)
        entry = finished(entry_of(key))
        if entry.preview is None or not entry.preview.is_file():
            raise HTTPException(404, f"no preview: {entry.preview_error or 'none was made'}")
        return FileResponse(entry.preview, media_type=entry.preview_type,
                            headers={"Cache-Control": "no-store"})  # fmt: skip

    @app.get("/api/results/{key}/export/{fmt}")
    async def export(request: Request, key: str, fmt: str) -> Response:
        require_token(request)
        try:
            check_format(fmt)
        except ValueError as exc:
            raise HTTPException(400, str(exc)) from None
        entry = finished(entry_of(key))
        try:
            file = await run_in_threadpool(export_download, list(entry.frames), fmt,
                                           entry.name, pipeline.describe())
        except NothingToExportError as exc:
            raise HTTPException(422, str(exc)) from None
        return Response(file.data, media_type=file.media_type,
                        headers={"Content-Disposition": file.disposition})  # fmt: skip

    @app.delete("/api/results/{key}", status_code=204)
    async def delete(request: Request, key: str) -> Response:
        require_token(request)
        if not store.delete(key):
            raise gone(config)
        return Response(status_code=204)
