"""The browser app behind ``instanthmr serve`` (extra ``app``: FastAPI, uvicorn).

- :mod:`.server`: :func:`create_app` (the routes, static files, token check);
- :mod:`.live`: the WebSocket stream; :mod:`.session`: per-connection state, :class:`AppConfig`;
- :mod:`.predict`: ``POST /api/predict``; :mod:`.uploads`: upload checks;
- :mod:`.worker`: the one inference thread and its bounded queue;
- :mod:`.records`: results as JSON, in the layout of the result files;
- ``static/``: the page (plain ES modules, three.js vendored in ``static/vendor/three``).

Guide, protocol and security notes: ``docs/app.md``.
"""

from __future__ import annotations

from .inference_queue import InferenceWorker, QueueFullError
from .server import create_app
from .session import AppConfig

__all__ = ["AppConfig", "InferenceWorker", "QueueFullError", "create_app"]
