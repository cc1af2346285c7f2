"""Result files: JSONL, NPZ and CSV writers, chosen by suffix, and a reader for all three.

Every format holds one record per person per frame (frame index, timestamp, track id,
box, score, 2D joints, camera-space and body-centred 3D joints, camera translation, MHR
parameters) and one record per frame, so frames with nobody in them survive a round trip
through :func:`read_results`. Units: ``bbox``, ``joints_2d``, ``focal_length``,
``principal_point`` and ``image_size`` in pixels; ``joints_3d_cam``, ``joints_3d_local`` and
``cam_trans`` in metres (camera frame: X right, Y down, Z forward); ``timestamp`` in seconds;
``timings`` in milliseconds. Joints follow the MHR70 order
(:data:`instanthmr.skeleton.JOINT_NAMES`).

The header of every format names the model of the run (``model_kind``: ``instanthmr``,
``random-init`` or ``standin-blazepose``; ``model_file``; ``model_notice``, the warning for a
model that is not InstantHMR), when the writer is told (``open_exporter(path, run=...)``).

- ``.jsonl``: a header line (format, model, joint names, units), then per frame a
  ``"type": "frame"`` line followed by one ``"type": "person"`` line per person. Flushed
  after every frame.
- ``.npz``: frame arrays (``frame_index``, ``timestamp`` with NaN for unknown, ...), person
  arrays (``joints_2d`` (P, 70, 2), ...; ``person_frame`` is the row of each person's frame)
  and ``metadata``, a JSON string. Written when the exporter closes.
- ``.csv``: a ``#`` comment line with the format and units, then one row per person with
  named columns such as ``joints_2d.nose.x``; a frame with nobody in it is one row with
  ``num_persons`` 0 and empty person columns. Read it with ``pandas.read_csv(path, comment="#")``.

Files are written to ``<name>.partial`` and renamed on :meth:`Exporter.close`, so a crash
never replaces a good file with a half-written one; after a crash, the ``.partial`` JSONL or
CSV holds every frame up to the last one and :func:`read_results` reads it.

``.bvh`` and ``.glb`` are animation exports (:mod:`instanthmr.animation`): ``open_exporter``
returns them too (:data:`EXPORT_SUFFIXES`), but they hold a skeleton animation, not results,
so :func:`read_results` refuses them.

This module picks the format by suffix; each format lives in its own module
(:mod:`.formats_jsonl`, :mod:`.formats_npz`, :mod:`.formats_csv`) on top of the shared
record layout in :mod:`.formats_common`. Every public name is importable from here.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..results import FrameResult
from .formats_common import (
    FORMAT,
    UNITS,
    VERSION,
    Exporter,
    TextExporter,
    UnwritablePathError,
    check_errors,
    metadata,
)
from .formats_csv import CSV_COLUMNS, CsvExporter, read_csv
from .formats_jsonl import JsonlExporter, read_jsonl
from .formats_npz import NpzExporter, read_npz

__all__ = [
    "ANIMATION_SUFFIXES",
    "CSV_COLUMNS",
    "EXPORT_SUFFIXES",
    "FORMAT",
    "SUPPORTED_SUFFIXES",
    "UNITS",
    "VERSION",
    "CsvExporter",
    "Exporter",
    "JsonlExporter",
    "NpzExporter",
    "TextExporter",
    "UnwritablePathError",
    "metadata",
    "open_exporter",
    "read_results",
]

_EXPORTERS: dict[str, type[Exporter]] = {
    ".jsonl": JsonlExporter, ".npz": NpzExporter, ".csv": CsvExporter,
}  # fmt: skip

SUPPORTED_SUFFIXES: tuple[str, ...] = tuple(_EXPORTERS)
"""Results file suffixes, in the order error messages list them."""

# Imported on use: the animation writers pull in scipy.spatial and pygltflib.
_ANIMATION_EXPORTERS: dict[str, str] = {".bvh": "BvhExporter", ".glb": "GlbExporter"}
ANIMATION_SUFFIXES: tuple[str, ...] = tuple(_ANIMATION_EXPORTERS)
"""Animation exports: written by :func:`open_exporter`, not readable by :func:`read_results`."""
EXPORT_SUFFIXES: tuple[str, ...] = SUPPORTED_SUFFIXES + ANIMATION_SUFFIXES
"""Every suffix :func:`open_exporter` writes."""


def _format_of(path: Path) -> tuple[str, bool]:
    """(suffix, partial) of a results path; raises ValueError for unknown suffixes."""
    suffix, partial = path.suffix.lower(), False
    if suffix == ".partial":
        suffix, partial = Path(path.stem).suffix.lower(), True
    if suffix in ANIMATION_SUFFIXES:
        raise ValueError(
            f"{path} is an animation export ({suffix}), not a results file: read_results reads "
            f"{', '.join(SUPPORTED_SUFFIXES)}; open {suffix} in Blender or three.js "
            "(docs/animation.md), or export results with --export FILE.jsonl as well"
        )
    if suffix not in SUPPORTED_SUFFIXES:
        raise ValueError(
            f"unsupported results format {suffix or '(no suffix)'!r} for {path}; "
            f"use one of {', '.join(SUPPORTED_SUFFIXES)}"
        )
    return suffix, partial


def open_exporter(
    path: str | Path, run: Mapping[str, Any] | None = None, *, rig: str | None = None
) -> Exporter:
    """The writer for ``path``'s suffix (.jsonl .npz .csv .bvh .glb); ValueError for others.

    ``run`` says which model and detector made the results
    (:meth:`~instanthmr.PosePipeline.describe`): results files carry it in their header, BVH
    and glTF files the model as a comment / asset note.
    ``rig`` names the bones of an animation export (``plain``, ``mixamo``, ``vrm``); giving
    it for a results file is a ValueError (results files hold MHR70 joints, not bones).
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in ANIMATION_SUFFIXES:
        from ..animation import exporter as animation

        kind = getattr(animation, _ANIMATION_EXPORTERS[suffix])
        return kind(path, run=run) if rig is None else kind(path, run=run, rig=rig)
    if rig is not None:
        raise ValueError(
            f"rig={rig!r} applies to {', '.join(ANIMATION_SUFFIXES)} exports, not {path}"
        )
    if suffix not in (*EXPORT_SUFFIXES, ".partial"):
        raise ValueError(
            f"unsupported export format {suffix or '(no suffix)'!r} for {path}; "
            f"use one of {', '.join(EXPORT_SUFFIXES)}"
        )
    suffix, partial = _format_of(path)
    if partial:
        raise ValueError(f"write to the final name, not a .partial file: {path}")
    return _EXPORTERS[suffix](path, run)


def read_results(path: str | Path, errors: str = "strict") -> list[FrameResult]:
    """Load a results file written by :func:`open_exporter` (also its ``.partial``).

    Args:
        path: a ``.jsonl``, ``.npz`` or ``.csv`` file.
        errors: ``"strict"`` (default) raises ValueError at the first damaged record,
            naming the file, the line and what was wrong. ``"skip"`` skips and counts every
            damaged record of a JSONL or CSV file (bytes that are not UTF-8 text, a line
            that does not parse, a missing or garbled key, a value that does not convert, a
            frame missing persons; a frame is one record with its persons), returns every
            intact frame and logs one warning with the count; a damaged header line is
            counted and the records after it are read. An ``.npz`` file is written whole,
            so a damaged archive is refused in both modes.

    Whatever the damage, the result is frames, or one ValueError naming the file and the
    problem (FileNotFoundError for a missing file): never another exception.
    """
    check_errors(errors)
    path = Path(path)
    suffix, partial = _format_of(path)
    if not path.is_file():
        raise FileNotFoundError(f"results file not found: {path}")
    if suffix == ".jsonl":
        return read_jsonl(path, errors)
    if suffix == ".npz":
        return read_npz(path, errors)
    return read_csv(path, partial, errors)
