"""The FastAPI app: the page, ``/health``, ``/api/skeleton``, ``/api/predict`` and ``/ws``.

:func:`create_app` takes a ready :class:`~instanthmr.pipeline.PosePipeline` (any object
with ``predict``, ``fork``, ``hmr`` and ``detector`` will do), so tests and embedders can
inject their own; ``instanthmr serve`` builds one from the demo's pipeline flags. The
pipeline given is only a template: every WebSocket connection and every upload runs on its
own ``pipeline.fork()``, and every model call goes through one :class:`InferenceWorker`.
Protocol and security: ``docs/app.md``.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from fastapi import FastAPI, HTTPException, Request, WebSocket
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool
from starlette.middleware.trustedhost import TrustedHostMiddleware

from .. import __version__
from .inference_queue import InferenceWorker
from .info import health_info, skeleton_info
from .limits import add_disconnect_handler
from .predict import predict_upload
from .results_api import add_result_routes
from .session import AppConfig
from .store import ResultStore
from .stream import serve_websocket

STATIC_DIR = Path(__file__).resolve().parent / "static"
"""The page's files; the only directory the app serves files from."""

SECURITY_HEADERS: dict[str, str] = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; "
        "media-src 'self' blob: mediastream:; connect-src 'self'; object-src 'none'; "
        "base-uri 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


def supplied_token(conn: Request | WebSocket) -> str | None:
    """The token a client sent: ``Authorization: Bearer``, ``X-Token`` or ``?token=``."""
    auth = conn.headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip()
    return conn.headers.get("x-token") or conn.query_params.get("token")


def same_origin(conn: Request | WebSocket) -> bool:
    """False for a browser request sent by a page of another origin.

    Browsers send ``Origin`` on WebSocket handshakes and cross-site POSTs, and the same-
    origin policy does not protect either, so another site open in the user's browser could
    otherwise use the app. Clients that send no ``Origin`` (curl, scripts) pass.
    """
    origin = conn.headers.get("origin")
    if origin is None:
        return True
    return urlsplit(origin).netloc.lower() == conn.headers.get("host", "").lower()


def token_ok(config: AppConfig, conn: Request | WebSocket) -> bool:
    """True when no token is configured or the client sent the right one."""
    if config.token is None:
        return True
    given = supplied_token(conn)
    return given is not None and secrets.compare_digest(given.encode(), config.token.encode())


def create_app(pipeline: Any, config: AppConfig | None = None) -> FastAPI:
    """The browser app around ``pipeline`` (a template: each stream uses a fork of it)."""
    config = config or AppConfig()
    worker = InferenceWorker(config.max_queue)
    store = ResultStore(config.keep_results_s, config.max_results_bytes)

    async def reap() -> None:  # delete expired results even when nobody asks
        while True:
            await asyncio.sleep(min(60.0, config.keep_results_s / 2))
            store.expire()

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        worker.start()
        reaper = asyncio.create_task(reap())
        yield
        reaper.cancel()
        for job in list(app.state.jobs):
            job.cancel()
        store.close()  # also sets every job's cancel flag
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(reaper, *app.state.jobs, return_exceptions=True)
        await run_in_threadpool(worker.stop)

    app = FastAPI(
        title="InstantHMR", version=__version__, lifespan=lifespan,
        docs_url=None, redoc_url=None, openapi_url=None,  # no CDN assets, nothing to list
    )  # fmt: skip
    app.state.pipeline = pipeline
    app.state.worker = worker
    app.state.config = config
    app.state.store = store
    app.state.jobs = set()  # running upload jobs (asyncio tasks)
    info = health_info(pipeline)

    def require_token(request: Request) -> None:
        if not same_origin(request):
            raise HTTPException(403, "cross-origin request refused: use the app's own page")
        if not token_ok(config, request):
            raise HTTPException(401, "missing or wrong token: open the page as /?token=...")

    @app.middleware("http")
    async def security_headers(request: Request, call_next: Any) -> Any:
        response = await call_next(request)
        for k, v in SECURITY_HEADERS.items():
            response.headers.setdefault(k, v)
        return response

    @app.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html", headers={"Cache-Control": "no-cache"})

    @app.get("/health")
    async def health(request: Request) -> dict[str, Any]:
        require_token(request)
        return {**info, "queue": {"waiting": worker.queued, "max": worker.max_queue},
                "uploads_running": len(app.state.jobs), "results_kept": len(store),
                "max_recording_bytes": config.max_recording_bytes,
                "token_required": config.token is not None, "max_fps": config.max_fps}  # fmt: skip

    @app.get("/api/skeleton")
    async def skeleton(request: Request) -> dict[str, Any]:
        require_token(request)
        return skeleton_info()

    @app.post("/api/predict")
    async def predict(request: Request, export: str | None = None) -> Any:
        require_token(request)
        return await predict_upload(request, pipeline, worker, config, export)

    @app.websocket("/ws")
    async def ws(websocket: WebSocket) -> None:
        if not same_origin(websocket):
            await websocket.close(code=1008, reason="cross-origin connection refused")
            return
        if not token_ok(config, websocket):
            await websocket.close(code=1008, reason="missing or wrong token")
            return
        await serve_websocket(websocket, pipeline, worker, config, store)

    add_result_routes(app, pipeline, worker, config, store, require_token)

    add_disconnect_handler(app)  # a client gone mid-upload: one log line, no traceback
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    if config.allowed_hosts is not None:  # DNS rebinding: a foreign name pointing at us
        app.add_middleware(TrustedHostMiddleware, allowed_hosts=list(config.allowed_hosts))
    return app
