"""CSV results: a ``#`` comment line, a header, then one row per person with named columns.

Layout and units: :mod:`instanthmr.sinks.exporters`. A frame with nobody in it is one row
with ``num_persons`` 0 and empty person columns. Flushed after every frame.
"""

from __future__ import annotations

import csv
import logging
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ..results import STAGES, FrameResult
from ..skeleton import JOINT_NAMES
from .formats_common import (
    CONVERSION_ERRORS,
    FORMAT,
    LINE_KEY,
    PERSON_ARRAYS,
    PERSON_SCALARS,
    PERSON_WORLD_ARRAYS,
    UNITS,
    VERSION,
    WORLD_OPTIONAL,
    WORLD_SCALARS,
    WORLD_SCALARS_V2,
    WORLD_SCALARS_V3,
    Damaged,
    RawFrame,
    TextExporter,
    assemble_frames,
    check_errors,
    check_metadata,
    frame_fields,
    person_world_fields,
    problem_text,
)

log = logging.getLogger(__name__)

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


def _columns_of(path: Path, lines: list[str], damaged: Damaged) -> tuple[int, tuple[str, ...]]:
    """(format version, columns) from the ``#`` line and the header row (lines 1 and 2).

    In skip mode a damaged ``#`` line or header row is counted, and the columns are those
    of the version whose column count the header row has."""
    first = lines[0] if lines else ""
    match = re.match(rf"# {re.escape(FORMAT)} v(\d+)", first)
    version = None
    if match is not None:
        version = int(match.group(1))
        check_metadata({"format": FORMAT, "version": version}, f"{path}:1")
    header = _cells(lines[1]) if len(lines) > 1 else None
    by_count = {len(cols): v for v, cols in COLUMNS_BY_VERSION.items()}
    if version is None:
        count = len(header) if header is not None else -1
        if not damaged.skip or count not in by_count:
            raise ValueError(f"{path}:1: not an InstantHMR results CSV (no '# {FORMAT}' line)")
        damaged.add(1, f"damaged '# {FORMAT} vN' line")
        version = by_count[count]
    columns = COLUMNS_BY_VERSION.get(version, CSV_COLUMNS)
    if header is None or tuple(header) != columns:
        if not damaged.skip or header is None or len(header) != len(columns):
            raise ValueError(f"{path}:2: unexpected CSV columns for format version {version}")
        damaged.add(2, "damaged header row")
    return version, columns


def _cells(line: str) -> list[str] | None:
    """One CSV line's cells (our writer never puts a line break inside a cell), or None."""
    try:
        return next(csv.reader([line]), [])
    except csv.Error:
        return None


def read_csv(path: Path, partial: bool = False, errors: str = "strict") -> list[FrameResult]:
    """Read a ``.csv`` results file; in a ``.partial`` file a short last row is skipped.

    A frame is one record: its rows (one per person). With ``errors="skip"`` every damaged
    row (bytes that are not UTF-8, the wrong number of cells, a number that does not parse)
    is skipped and counted, the frame it belongs to is left out, every intact frame is
    returned and one warning gives the count; a damaged ``#`` line or header row is counted
    and the rows are read with the columns of the version the header's length says. The
    default ``"strict"`` raises ValueError naming the file, the line and the problem.
    """
    damaged = Damaged(path, check_errors(errors))
    text = path.read_bytes().decode("utf-8", errors="replace")
    lines = text.splitlines()
    _, columns = _columns_of(path, lines, damaged)
    col = {c: i for i, c in enumerate(columns)}
    torn_possible = partial or not text.endswith(("\n", "\r"))
    frames: list[RawFrame] = []
    bad_frame: object = _NONE  # the frame_index whose frame is being left out
    for n, line in enumerate(lines[2:], start=3):
        if not line.strip():
            continue
        row = _cells(line)
        problem = _row_problem(line, row, len(columns))
        if problem is None:
            try:
                f, person = _parse_row(row, col)
            except CONVERSION_ERRORS as exc:
                problem = problem_text(exc)
        if problem is not None:
            if n == len(lines) and torn_possible and row is not None and len(row) < len(col):
                log.warning("%s: ignoring an incomplete last row", path)
                break  # the writer stopped inside this row
            damaged.add(n, problem)
            bad_frame = row[0] if row else _NONE
            continue
        f[LINE_KEY] = n
        index = f["frame_index"]
        if frames and frames[-1][0]["frame_index"] == index and len(frames[-1][1]) < f[
                "num_persons"]:  # fmt: skip
            frames[-1][1].append(person)
        elif str(index) == bad_frame:
            damaged.add(n, f"a row of frame {index}, which has a damaged row")
        else:
            bad_frame = _NONE
            frames.append((f, [] if person is None else [person]))
    out = assemble_frames(frames, path, damaged)
    damaged.report()
    return out


_NONE = object()


def _row_problem(line: str, row: list[str] | None, expected: int) -> str | None:
    if "\ufffd" in line:
        return "not UTF-8 text (binary bytes)"
    if row is None:
        return "not a CSV row"
    if len(row) != expected:
        return f"{len(row)} cells, expected {expected}"
    return None


def _parse_row(
    row: list[str], col: dict[str, int]
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """One row: its frame record and its person (None for the row of an empty frame)."""
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
    if n < 0:
        raise ValueError(f"num_persons is {n}")
    if n == 0:
        return f, None
    rec: dict[str, Any] = {k: row[col[k]] for k in PERSON_SCALARS}
    for k, shape in PERSON_ARRAYS.items():
        vals = np.array([float(row[col[c]]) for c in _array_columns(k)], np.float32)
        rec[k] = vals.reshape(shape)
    rec.update(_parse_world_person(row, col))
    return f, rec


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
