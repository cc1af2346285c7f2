"""Downloads made from kept results: the project's exporters, named after the upload.

Every format :func:`instanthmr.sinks.exporters.open_exporter` writes is offered: results
files (``jsonl``, ``npz``, ``csv``) and animations (``bvh``, ``glb``, from
:mod:`instanthmr.animation`). The exporter writes into a private temporary directory named
``<stem>.<format>``; what it leaves there is the download. An animation exporter may write
several files (BVH: one per track): then they come as one ``<stem>.<format>.zip``.
"""

from __future__ import annotations

import io
import tempfile
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..results import FrameResult
from ..sinks.exporters import open_exporter

EXPORT_TYPES: dict[str, str] = {
    "jsonl": "application/x-ndjson", "npz": "application/zip", "csv": "text/csv",
    "bvh": "application/octet-stream", "glb": "model/gltf-binary",
}  # fmt: skip
"""Download formats and their media types."""


class NothingToExportError(ValueError):
    """The exporter wrote no file (an animation needs at least one tracked person)."""


@dataclass(frozen=True)
class Download:
    """A file to send: its bytes, name and media type."""

    data: bytes
    filename: str
    media_type: str

    @property
    def disposition(self) -> str:
        """The ``Content-Disposition`` header value (the name is already ASCII-safe)."""
        return f'attachment; filename="{self.filename}"'


def check_format(fmt: str) -> None:
    """ValueError naming the formats when ``fmt`` is not one of them."""
    if fmt not in EXPORT_TYPES:
        raise ValueError(f"format must be one of {', '.join(EXPORT_TYPES)}, got {fmt!r}")


def export_download(
    frames: Sequence[FrameResult], fmt: str, stem: str, run: dict[str, Any] | None = None
) -> Download:
    """``frames`` as a ``fmt`` file named ``<stem>.<fmt>`` (or a zip of several files).

    ``stem`` must be a safe file-name stem (:func:`.store.safe_stem`). ``run`` names the
    model and the detector in the file (:meth:`~instanthmr.PosePipeline.describe`).
    """
    check_format(fmt)
    with tempfile.TemporaryDirectory(prefix="instanthmr-export-") as tmp:
        with open_exporter(Path(tmp) / f"{stem}.{fmt}", run) as exporter:
            for frame in frames:
                exporter.write(frame)
        files = sorted(p for p in Path(tmp).iterdir() if p.is_file())
        if not files:
            raise NothingToExportError(
                f"no {fmt.upper()} file: an animation needs at least one tracked person, and "
                "none was found in these frames"
            )
        if len(files) == 1:
            return Download(files[0].read_bytes(), files[0].name, EXPORT_TYPES[fmt])
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
            for p in files:
                zf.write(p, p.name)
        return Download(buf.getvalue(), f"{stem}.{fmt}.zip", "application/zip")
