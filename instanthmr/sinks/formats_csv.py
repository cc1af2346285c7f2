"""CSV results: a ``#`` comment line, a header, then one row per person with named columns.

Layout and units: :mod:`instanthmr.sinks.exporters`. A frame with nobody in it is one row
with ``num_persons`` 0 and empty person columns. Flushed after every frame.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ..results import STAGES, FrameResult
from ..skeleton import JOINT_NAMES
from .formats_common import (
    FORMAT,
    PERSON_ARRAYS,
    PERSON_SCALARS,
    PERSON_WORLD_ARRAYS,
    UNITS,
    VERSION,
    WORLD_OPTIONAL,
    WORLD_SCALARS,
    WORLD_SCALARS_V2,
    WORLD_SCALARS_V3,
    RawFrame,
    TextExporter,
    assemble_frames,
    check_errors,
    check_metadata,
    frame_fields,
    person_world_fields,
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
    shape = PERSON_ARRAYS.get(name) or PERSON_WORLD_ARRAYS[name]
    if name.startswith("joints_"):
        axes = _XYZ[: shape[1]]
        return [f"{name}.{j}.{a}" for j in JOINT_NAMES for a in axes]
    if name == "bbox":
        return ["bbox.x1", "bbox.y1", "bbox.x2", "bbox.y2"]
    if name in ("cam_trans", "principal_point", "root_world"):
        return [f"{name}.{a}" for a in _XYZ[: shape[0]]]
    return [f"{name}.{i}" for i in range(shape[0])]


CSV_COLUMNS_V1: tuple[str, ...] = tuple(
    _FRAME_COLUMNS + list(PERSON_SCALARS) + [c for k in PERSON_ARRAYS for c in _array_columns(k)]
)
"""The header of version 1 files (no world columns); still read."""
_WORLD_FRAME_COLUMNS = [f"world.{k}" for k in WORLD_SCALARS_V2] + [
    f"world.plane.{a}" for a in "abcd"
]
_WORLD_PERSON_COLUMNS = [c for k in PERSON_WORLD_ARRAYS for c in _array_columns(k)] + [
    "world.position.x", "world.position.y", "world.position.z", "world.heading",
    "world.speed", "world.contact.left", "world.contact.right",
]  # fmt: skip
CSV_COLUMNS_V2: tuple[str, ...] = CSV_COLUMNS_V1 + tuple(
    _WORLD_FRAME_COLUMNS + _WORLD_PERSON_COLUMNS
)
"""The header of version 2 files: version 1's columns, then the frame's world report (empty
``world.known`` when the world stage did not run), then each person's world values (empty
when unknown); still read."""
_WORLD_V3_COLUMNS = [f"world.{k}" for k in WORLD_SCALARS_V3]
CSV_COLUMNS: tuple[str, ...] = CSV_COLUMNS_V2 + tuple(_WORLD_V3_COLUMNS)
"""The CSV header, in order: version 2's columns, then the world frame's uncertainty,
``settled``, ``reopened`` and ``levels`` (empty when the world stage did not run)."""
COLUMNS_BY_VERSION = {1: CSV_COLUMNS_V1, 2: CSV_COLUMNS_V2, 3: CSV_COLUMNS}


def _cell(v: Any) -> str:
    return "" if v is None else str(int(v)) if isinstance(v, bool) else str(v)


def _world_frame_cells(world: dict[str, Any] | None) -> tuple[list[str], list[str]]:
    """The frame's world cells: version 2's and those version 3 added."""
    if world is None:
        return [""] * len(_WORLD_FRAME_COLUMNS), [""] * len(_WORLD_V3_COLUMNS)
    cells = [_cell(world[k]) for k in WORLD_SCALARS_V2]
    plane = _fmt(np.asarray(world["plane"])) if world["plane"] else [""] * 4
    return cells + plane, [_cell(world[k]) for k in WORLD_SCALARS_V3]


def _world_person_cells(rec: dict[str, Any]) -> list[str]:
    cells: list[str] = []
    for k, shape in PERSON_WORLD_ARRAYS.items():
        v = rec[k]
        cells += [""] * int(np.prod(shape)) if v is None else _fmt(np.asarray(v))
    w = rec["world"]
    if w is None:
        return cells + [""] * 7
    return (
        cells
        + _fmt(np.asarray([*w["position"], w["heading"], w["speed"]]))
        + [str(int(c)) for c in w["contact"]]
    )


def _fmt(values: np.ndarray) -> list[str]:
    return [f"{v:.9g}" for v in values.ravel().tolist()]  # 9 digits round-trip float32


def _header_value(value: Any) -> str:
    """A run header value on the CSV's comment line: the detector by its name."""
    return str(value["name"] if isinstance(value, dict) else value)


class CsvExporter(TextExporter):
    """CSV, one row per person (one row with empty person columns for an empty frame)."""

    suffix = ".csv"
    newline = ""

    def __init__(self, path: str | Path, run: Mapping[str, Any] | None = None) -> None:
        super().__init__(path, run)
        units = "; ".join(f"{k}: {v}" for k, v in UNITS.items())
        model = "".join(f"; {k}: {_header_value(v)}" for k, v in self.run.items() if v)
        self._fh.write(f"# {FORMAT} v{VERSION}; MHR70 joints{model}; units: {units}\n")
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
        world, world_v3 = _world_frame_cells(f["world"])
        if not frame.persons:
            empty = [""] * (len(CSV_COLUMNS_V1) - len(head))
            self._csv.writerow(head + empty + world + [""] * len(_WORLD_PERSON_COLUMNS) + world_v3)
        for p in frame.persons:
            row = head + [str(p.track_id), f"{p.score:.9g}", f"{p.focal_length:.9g}"]
            for k in PERSON_ARRAYS:
                row += _fmt(getattr(p, k))
            person = _world_person_cells(person_world_fields(frame, p))
            self._csv.writerow(row + world + person + world_v3)


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
        version = int(match.group(1))
        check_metadata({"format": FORMAT, "version": version}, path)
        rows = list(csv.reader(fh))
    columns = COLUMNS_BY_VERSION.get(version, CSV_COLUMNS)
    if not rows or tuple(rows[0]) != columns:
        raise ValueError(f"{path}: unexpected CSV columns for format version {version}")
    col = {c: i for i, c in enumerate(columns)}
    frames: list[RawFrame] = []
    i = 1
    while i < len(rows):
        row = rows[i]
        if len(row) != len(columns):
            if i == len(rows) - 1 and partial:
                break
            problem = f"row {i + 2} has {len(row)} columns, expected {len(columns)}"
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
            "world": _parse_world_frame(row, col),
        }
    except ValueError as exc:
        raise ValueError(f"row {i + 2}: {exc}") from exc
    persons = []
    for j, prow in enumerate(rows[i : i + n], start=i):
        if len(prow) != len(col):
            break
        rec: dict[str, Any] = {k: prow[col[k]] for k in PERSON_SCALARS}
        try:
            for k, shape in PERSON_ARRAYS.items():
                vals = np.array([float(prow[col[c]]) for c in _array_columns(k)], np.float32)
                rec[k] = vals.reshape(shape)
            rec.update(_parse_world_person(prow, col))
        except ValueError as exc:
            raise ValueError(f"row {j + 2}: {exc}") from exc
        persons.append(rec)
    return n, f, persons


def _floats(row: list[str], col: dict[str, int], names: list[str]) -> np.ndarray | None:
    """The named cells as floats, or None when they are empty."""
    cells = [row[col[c]] for c in names]
    return None if all(c == "" for c in cells) else np.array([float(c) for c in cells])


def _parse_world_frame(row: list[str], col: dict[str, int]) -> dict[str, Any] | None:
    if "world.known" not in col or row[col["world.known"]] == "":  # v1, or no world stage
        return None
    names = [k for k in WORLD_SCALARS if f"world.{k}" in col]  # v2 lacks WORLD_SCALARS_V3
    rec: dict[str, Any] = {k: row[col[f"world.{k}"]] for k in names}
    for k in ("known", "frozen", "settled"):
        if k in rec:
            rec[k] = rec[k] == "1"
    for k in ("inliers", "reopened", "levels"):
        if k in rec:
            rec[k] = int(rec[k])
    for k in ("confidence", *WORLD_OPTIONAL):
        if k in rec:
            rec[k] = None if rec[k] == "" else float(rec[k])
    rec["plane"] = _floats(row, col, [f"world.plane.{a}" for a in "abcd"])
    return rec


def _parse_world_person(row: list[str], col: dict[str, int]) -> dict[str, Any]:
    if "world.heading" not in col:  # version 1
        return {}
    rec: dict[str, Any] = {}
    for k, shape in PERSON_WORLD_ARRAYS.items():
        vals = _floats(row, col, _array_columns(k))
        rec[k] = None if vals is None else vals.reshape(shape)
    track = _floats(row, col, ["world.position.x", "world.position.y", "world.position.z",
                               "world.heading", "world.speed"])  # fmt: skip
    rec["world"] = None if track is None else {
        "position": track[:3], "heading": track[3], "speed": track[4],
        "contact": [row[col[f"world.contact.{s}"]] == "1" for s in ("left", "right")],
    }  # fmt: skip
    return rec
