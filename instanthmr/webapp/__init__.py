"""The browser app behind ``instanthmr serve`` (extra ``app``: FastAPI, uvicorn, PyAV).

- :mod:`.server`: :func:`create_app` (the routes, static files, token check);
- :mod:`.stream`: the WebSocket stream; :mod:`.session`: per-connection state (and
  recording), :class:`AppConfig`;
- :mod:`.predict`: ``POST /api/predict``; :mod:`.results_api`: ``POST /api/uploads`` and
  ``/api/results/{key}`` (background uploads, kept results, downloads, cancel);
- :mod:`.jobs`: reading and processing one upload; :mod:`.uploads`: upload checks;
- :mod:`.store`: results kept under random keys with time and size limits;
- :mod:`.preview`: previews every browser shows (H.264 MP4 through PyAV, JPEG);
- :mod:`.downloads`: downloads from kept frames through the project's exporters;
- :mod:`.inference_queue`: the one inference thread and its bounded queue;
- :mod:`.records`: results as JSON, in the layout of the result files;
- ``static/``: the page (plain ES modules, three.js vendored in ``static/vendor/three``).

Guide, protocol and security notes: ``docs/app.md``.
"""

from __future__ import annotations

from .inference_queue import InferenceWorker, QueueFullError
from .server import create_app
from .session import AppConfig

__all__ = ["AppConfig", "InferenceWorker", "QueueFullError", "create_app"]
