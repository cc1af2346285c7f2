"""``WS /ws``: binary JPEG/WebP frames in, one JSON message per processed frame out.

Two tasks per connection: the receiver puts every frame into the session's newest-frame
slot (dropping and counting the one it replaces), the processor takes the newest frame,
runs it on the inference thread and sends the answer. So a client that sends faster than
the model runs never builds a backlog: it gets answers for the newest frames and a
``dropped`` count. Messages from the server (all JSON text):

- ``{"type": "hello", ...}`` once, with the ``/health`` fields and ``max_fps``;
- ``{"type": "frame", ...}`` per processed frame (layout: :mod:`.records`, plus ``seq``,
  ``received``, ``dropped`` and ``server`` timings);
- ``{"type": "error", "error": "..."}`` for a bad frame or a full queue (the connection
  stays open; after a full queue, send again after ``retry_after`` seconds);
- ``{"type": "recording", ...}`` after a recording command, and when a recording stops by
  itself (its size cap); frames carry ``recording`` (the same fields) while it runs.

The client may send JSON text commands: ``{"type": "record", "action": "start"}`` and
``{"type": "record", "action": "stop"}``. A recording's frames are kept on the server under
its ``key`` (``GET /api/results/{key}/export/jsonl``...), also after the connection ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Any

from fastapi import WebSocket, WebSocketDisconnect

from .inference_queue import InferenceWorker, QueueFullError
from .info import health_info
from .session import AppConfig, LiveSession
from .store import ResultStore
from .uploads import UploadError

log = logging.getLogger(__name__)


async def _receive(ws: WebSocket, session: LiveSession, config: AppConfig) -> None:
    while True:
        message = await ws.receive()
        if message["type"] == "websocket.disconnect":
            return
        data = message.get("bytes")
        if data is None:
            await _command(ws, session, message.get("text") or "")
        elif len(data) > config.max_frame_bytes:
            await ws.send_json({"type": "error", "error": (
                f"frame of {len(data)} bytes is over the limit of {config.max_frame_bytes}: "
                "send smaller or more compressed frames")})  # fmt: skip
        else:
            session.offer(data)


async def _command(ws: WebSocket, session: LiveSession, text: str) -> None:
    try:
        cmd = json.loads(text)
    except ValueError:
        cmd = None
    action = cmd.get("action") if isinstance(cmd, dict) and cmd.get("type") == "record" else None
    if action == "start":
        status = session.start_recording()
    elif action == "stop":
        status = session.stop_recording() or {"state": "off"}
    else:
        await ws.send_json({"type": "error", "error": (
            "send frames as binary JPEG or WebP, and commands as JSON text: "
            '{"type": "record", "action": "start"} or "stop"')})  # fmt: skip
        return
    await ws.send_json({"type": "recording", **status})


async def _process(
    ws: WebSocket, session: LiveSession, worker: InferenceWorker, config: AppConfig
) -> None:
    while True:
        data, seq, t_arrival = await session.next_frame()
        try:
            fut = worker.submit(lambda d=data, s=seq, t=t_arrival: session.process(d, s, t))
        except QueueFullError as exc:
            session.dropped += 1
            await ws.send_json({"type": "error", "error": str(exc), "busy": True,
                                "retry_after": config.retry_after_s, "seq": seq})  # fmt: skip
            continue
        try:
            text = await asyncio.wrap_future(fut)
        except UploadError as exc:
            await ws.send_json({"type": "error", "error": str(exc), "seq": seq})
            continue
        except Exception as exc:  # the model failed on this frame: say so, keep serving
            log.exception("inference failed on frame %d", seq)
            await ws.send_json({"type": "error", "error": f"inference failed: {exc}", "seq": seq})
            continue
        await ws.send_text(text)
        stopped = session.take_stopped()  # a recording that reached its size cap
        if stopped is not None:
            await ws.send_json({"type": "recording", **stopped})


async def serve_websocket(
    ws: WebSocket, pipeline: Any, worker: InferenceWorker, config: AppConfig,
    store: ResultStore | None = None,
) -> None:
    """Serve one connection until the client goes away (a recording is kept)."""
    await ws.accept()
    session = LiveSession(pipeline, config, store)
    await ws.send_json({"type": "hello", **health_info(pipeline), "max_fps": config.max_fps,
                       "max_recording_bytes": config.max_recording_bytes})
    processor = asyncio.create_task(_process(ws, session, worker, config))
    try:
        await _receive(ws, session, config)
    except WebSocketDisconnect:
        pass
    finally:
        processor.cancel()
        with contextlib.suppress(asyncio.CancelledError, WebSocketDisconnect, RuntimeError):
            await processor
        session.stop_recording("disconnected")
