"""CSV results: a ``#`` comment line, a header, then one row per person with named columns.

Layout and units: :mod:`instanthmr.sinks.exporters`. A frame with nobody in it is one row
with ``num_persons`` 0 and empty person columns. Flushed after every frame.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path
from typing import Any

import numpy as np

from ..results import STAGES, FrameResult
from ..skeleton import JOINT_NAMES
from .formats_common import (
    FORMAT,
    PERSON_ARRAYS,
    PERSON_SCALARS,
    UNITS,
    VERSION,
    RawFrame,
    TextExporter,
    assemble_frames,
    check_errors,
    check_metadata,
    frame_fields,
    report_skipped,
)

_XYZ = ("x", "y", "z")
_FRAME_COLUMNS = [
    "frame_index",
    "timestamp",
    "image_width",
    "image_height",
    "detector_ran",
    "num_persons",
] + [f"timings.{s}" for s in STAGES]


def _array_columns(name: str) -> list[str]:
    shape = PERSON_ARRAYS[name]
    if name.startswith("joints_"):
        axes = _XYZ[: shape[1]]
        return [f"{name}.{j}.{a}" for j in JOINT_NAMES for a in axes]
    if name == "bbox":
        return ["bbox.x1", "bbox.y1", "bbox.x2", "bbox.y2"]
    if name in ("cam_trans", "principal_point"):
        return [f"{name}.{a}" for a in _XYZ[: shape[0]]]
    return [f"{name}.{i}" for i in range(shape[0])]


CSV_COLUMNS: tuple[str, ...] = tuple(
    _FRAME_COLUMNS + list(PERSON_SCALARS) + [c for k in PERSON_ARRAYS for c in _array_columns(k)]
)
"""The CSV header, in order."""


def _fmt(values: np.ndarray) -> list[str]:
    return [f"{v:.9g}" for v in values.ravel().tolist()]  # 9 digits round-trip float32


class CsvExporter(TextExporter):
    """CSV, one row per person (one row with empty person columns for an empty frame)."""

    suffix = ".csv"
    newline = ""

    def __init__(self, path: str | Path) -> None:
        super().__init__(path)
        units = "; ".join(f"{k}: {v}" for k, v in UNITS.items())
        self._fh.write(f"# {FORMAT} v{VERSION}; MHR70 joints; units: {units}\n")
        self._csv = csv.writer(self._fh)
        self._csv.writerow(CSV_COLUMNS)

    def _write_frame(self, frame: FrameResult) -> None:
        f = frame_fields(frame)
        ts = "" if f["timestamp"] is None else repr(float(f["timestamp"]))
        w, h = f["image_size"]
        head = [
            str(f["frame_index"]),
            ts,
            str(w),
            str(h),
            str(int(f["detector_ran"])),
            str(f["num_persons"]),
        ] + [f"{f['timings'][s]:.6g}" for s in STAGES]
        if not frame.persons:
            self._csv.writerow(head + [""] * (len(CSV_COLUMNS) - len(head)))
        for p in frame.persons:
            row = head + [str(p.track_id), f"{p.score:.9g}", f"{p.focal_length:.9g}"]
            for k in PERSON_ARRAYS:
                row += _fmt(getattr(p, k))
            self._csv.writerow(row)


def read_csv(path: Path, partial: bool = False, errors: str = "strict") -> list[FrameResult]:
    """Read a ``.csv`` results file; in a ``.partial`` file a short last row is skipped.

    ``errors="skip"`` skips bad rows (wrong column count, a number that does not parse; a
    frame with a bad person row is skipped whole) and logs one warning with their count;
    the default ``"strict"`` raises ValueError naming the file and row.
    """
    skip = check_errors(errors)
    bad: list[str] = []
    with open(path, encoding="utf-8", newline="") as fh:
        first = fh.readline()
        match = re.match(rf"# {re.escape(FORMAT)} v(\d+)", first)
        if match is None:
            raise ValueError(f"{path} is not an InstantHMR results CSV (no '# {FORMAT}' line)")
        check_metadata({"format": FORMAT, "version": int(match.group(1))}, path)
        rows = list(csv.reader(fh))
    if not rows or tuple(rows[0]) != CSV_COLUMNS:
        raise ValueError(f"{path}: unexpected CSV columns (not written by this version?)")
    col = {c: i for i, c in enumerate(CSV_COLUMNS)}
    frames: list[RawFrame] = []
    i = 1
    while i < len(rows):
        row = rows[i]
        if len(row) != len(CSV_COLUMNS):
            if i == len(rows) - 1 and partial:
                break
            problem = f"row {i + 2} has {len(row)} columns, expected {len(CSV_COLUMNS)}"
            if not skip:
                raise ValueError(f"{path}: {problem}")
            bad.append(problem)
            i = _next_frame(rows, i)
            continue
        try:
            n, f, persons = _parse_frame(rows, i, col)
        except ValueError as exc:  # a number that does not parse: name the file and row
            if not skip:
                raise ValueError(f"{path}: {exc}") from exc
            bad.append(str(exc))
            i = _next_frame(rows, i)
            continue
        frames.append((f, persons))
        i += max(n, 1)
    out = assemble_frames(frames, path, bad if skip else None)
    report_skipped(path, bad)
    return out


def _next_frame(rows: list[list[str]], i: int) -> int:
    """The first row after ``rows[i]`` that starts another frame (another frame_index)."""
    j = i + 1
    while j < len(rows) and rows[j][:1] == rows[i][:1]:
        j += 1
    return j


def _parse_frame(
    rows: list[list[str]], i: int, col: dict[str, int]
) -> tuple[int, dict[str, Any], list[dict[str, Any]]]:
    """The frame starting at ``rows[i]``: its person count, frame record and persons."""
    row = rows[i]
    try:
        n = int(row[col["num_persons"]])
        f = {
            "frame_index": int(row[0]),
            "timestamp": float(row[1]) if row[1] else None,
            "image_size": [int(row[2]), int(row[3])],
            "detector_ran": row[4] == "1",
            "num_persons": n,
            "timings": {s: float(row[col[f"timings.{s}"]]) for s in STAGES},
        }
    except ValueError as exc:
        raise ValueError(f"row {i + 2}: {exc}") from exc
    persons = []
    for j, prow in enumerate(rows[i : i + n], start=i):
        if len(prow) != len(CSV_COLUMNS):
            break
        rec: dict[str, Any] = {k: prow[col[k]] for k in PERSON_SCALARS}
        try:
            for k, shape in PERSON_ARRAYS.items():
                vals = np.array([float(prow[col[c]]) for c in _array_columns(k)], np.float32)
                rec[k] = vals.reshape(shape)
        except ValueError as exc:
            raise ValueError(f"row {j + 2}: {exc}") from exc
        persons.append(rec)
    return n, f, persons
