"""Result files: JSONL, NPZ and CSV writers, chosen by suffix, and a reader for all three.

Every format holds one record per person per frame (frame index, timestamp, track id,
box, score, 2D joints, camera-space and body-centred 3D joints, camera translation, MHR
parameters) and one record per frame, so frames with nobody in them survive a round trip
through :func:`read_results`. Units: ``bbox``, ``joints_2d``, ``focal_length``,
``principal_point`` and ``image_size`` in pixels; ``joints_3d_cam``, ``joints_3d_local`` and
``cam_trans`` in metres (camera frame: X right, Y down, Z forward); ``timestamp`` in seconds;
``timings`` in milliseconds. Joints follow the MHR70 order
(:data:`instanthmr.skeleton.JOINT_NAMES`).

- ``.jsonl``: a header line (format, joint names, units), then per frame a ``"type": "frame"``
  line followed by one ``"type": "person"`` line per person. Flushed after every frame.
- ``.npz``: frame arrays (``frame_index``, ``timestamp`` with NaN for unknown, ...), person
  arrays (``joints_2d`` (P, 70, 2), ...; ``person_frame`` is the row of each person's frame)
  and ``metadata``, a JSON string. Written when the exporter closes.
- ``.csv``: a ``#`` comment line with the format and units, then one row per person with
  named columns such as ``joints_2d.nose.x``; a frame with nobody in it is one row with
  ``num_persons`` 0 and empty person columns. Read it with ``pandas.read_csv(path, comment="#")``.

Files are written to ``<name>.partial`` and renamed on :meth:`Exporter.close`, so a crash
never replaces a good file with a half-written one; after a crash, the ``.partial`` JSONL or
CSV holds every frame up to the last one and :func:`read_results` reads it.
"""

from __future__ import annotations

import csv
import json
import logging
import os
from pathlib import Path
from typing import IO, Any

import numpy as np

from ..results import (
    NUM_MHR_PARAMS,
    NUM_SHAPE_PARAMS,
    STAGES,
    FrameResult,
    PersonResult,
    StageTimings,
)
from ..skeleton import JOINT_NAMES, NUM_JOINTS

log = logging.getLogger(__name__)

FORMAT = "instanthmr-results"
VERSION = 1
SUPPORTED_SUFFIXES: tuple[str, ...] = (".jsonl", ".npz", ".csv")
UNITS: dict[str, str] = {
    "bbox": "pixels", "joints_2d": "pixels", "focal_length": "pixels",
    "principal_point": "pixels", "image_size": "pixels", "joints_3d_cam": "metres",
    "joints_3d_local": "metres", "cam_trans": "metres", "timestamp": "seconds",
    "timings": "milliseconds",
}  # fmt: skip
_ARRAYS = (
    "bbox",
    "joints_2d",
    "joints_3d_cam",
    "joints_3d_local",
    "cam_trans",
    "mhr_params",
    "shape_params",
    "principal_point",
)


def metadata() -> dict[str, Any]:
    """What every results file states about itself: format, joint names, units, camera."""
    return {
        "format": FORMAT, "version": VERSION, "joint_names": list(JOINT_NAMES), "units": UNITS,
        "camera": "right-handed, X right, Y down, Z forward; pinhole focal_length, principal_point",
        "stages": list(STAGES),
    }  # fmt: skip


def _check_metadata(meta: dict[str, Any], path: Path) -> None:
    if meta.get("format") != FORMAT:
        raise ValueError(f"{path} is not an InstantHMR results file (no {FORMAT!r} header)")
    if int(meta.get("version", 0)) > VERSION:
        raise ValueError(
            f"{path} has format version {meta['version']}; this reader knows "
            f"up to {VERSION}: upgrade instanthmr"
        )
    if list(meta.get("joint_names", JOINT_NAMES)) != list(JOINT_NAMES):
        raise ValueError(f"{path} uses a different joint order than MHR70")


def _format_of(path: Path) -> tuple[str, bool]:
    """(suffix, partial) of a results path; raises ValueError for unknown suffixes."""
    suffix, partial = path.suffix.lower(), False
    if suffix == ".partial":
        suffix, partial = Path(path.stem).suffix.lower(), True
    if suffix not in SUPPORTED_SUFFIXES:
        raise ValueError(
            f"unsupported results format {suffix or '(no suffix)'!r} for {path}; "
            f"use one of {', '.join(SUPPORTED_SUFFIXES)}"
        )
    return suffix, partial


def _person_from(values: dict[str, Any], image_size: tuple[int, int]) -> PersonResult:
    return PersonResult(
        bbox=values["bbox"],
        score=float(values["score"]),
        joints_2d=values["joints_2d"],
        joints_3d_local=values["joints_3d_local"],
        cam_trans=values["cam_trans"],
        mhr_params=values["mhr_params"],
        shape_params=values["shape_params"],
        focal_length=float(values["focal_length"]),
        principal_point=values["principal_point"],
        image_size=image_size,
        track_id=int(values["track_id"]),
    )


class Exporter:
    """Base writer: ``write(frame)`` per frame, ``close()`` at the end (or use ``with``).

    Data goes to ``<path>.partial`` first and is renamed to ``path`` on close, replacing an
    existing file of that name only then.
    """

    suffix = ""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.partial_path = self.path.with_name(self.path.name + ".partial")
        self.frames_written = 0
        self._closed = False

    def write(self, frame: FrameResult) -> None:
        """Append one frame (with all its persons, possibly none)."""
        if self._closed:
            raise RuntimeError(f"exporter for {self.path} is closed")
        if not isinstance(frame, FrameResult):
            raise TypeError(f"write() takes a FrameResult, got {type(frame).__name__}")
        self._write(frame)
        self.frames_written += 1

    def close(self) -> None:
        """Finish the file and move it into place; safe to call more than once."""
        if self._closed:
            return
        self._closed = True
        self._finish()
        os.replace(self.partial_path, self.path)
        log.info("wrote %d frames to %s", self.frames_written, self.path)

    def __enter__(self) -> Exporter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _write(self, frame: FrameResult) -> None:
        raise NotImplementedError

    def _finish(self) -> None:
        raise NotImplementedError


def _frame_fields(frame: FrameResult) -> dict[str, Any]:
    size = frame.image_size
    if min(size) <= 0 and frame.persons:
        size = frame.persons[0].image_size
    return {
        "frame_index": int(frame.frame_index),
        "timestamp": frame.timestamp,
        "image_size": [int(v) for v in size],
        "detector_ran": bool(frame.detector_ran),
        "num_persons": len(frame.persons),
        "timings": frame.timings.as_dict(),
    }


class JsonlExporter(Exporter):
    """JSON lines: header, then a frame line and its person lines; flushed every frame."""

    suffix = ".jsonl"

    def __init__(self, path: str | Path) -> None:
        super().__init__(path)
        self._fh: IO[str] = open(self.partial_path, "w", encoding="utf-8")
        self._fh.write(json.dumps({"type": "header", **metadata()}) + "\n")
        self._fh.flush()

    def _write(self, frame: FrameResult) -> None:
        lines = [json.dumps({"type": "frame", **_frame_fields(frame)})]
        for p in frame.persons:
            rec: dict[str, Any] = {
                "type": "person",
                "frame_index": int(frame.frame_index),
                "timestamp": frame.timestamp,
                "track_id": p.track_id,
                "score": p.score,
                "focal_length": p.focal_length,
                "image_size": list(p.image_size),
            }
            rec.update({k: getattr(p, k).tolist() for k in _ARRAYS})
            lines.append(json.dumps(rec))
        self._fh.write("\n".join(lines) + "\n")
        self._fh.flush()

    def _finish(self) -> None:
        self._fh.close()


class NpzExporter(Exporter):
    """One ``.npz`` with stacked arrays; kept in memory and written when closed."""

    suffix = ".npz"

    def __init__(self, path: str | Path) -> None:
        super().__init__(path)
        self._frames: list[FrameResult] = []

    def _write(self, frame: FrameResult) -> None:
        self._frames.append(frame)

    def _finish(self) -> None:
        fr = [_frame_fields(f) for f in self._frames]
        persons = [(row, p) for row, f in enumerate(self._frames) for p in f.persons]
        ps = [p for _, p in persons]
        arrays: dict[str, np.ndarray] = {
            "frame_index": np.array([f["frame_index"] for f in fr], dtype=np.int64),
            "timestamp": np.array(
                [np.nan if f["timestamp"] is None else f["timestamp"] for f in fr], dtype=np.float64
            ),
            "image_size": np.array([f["image_size"] for f in fr], dtype=np.int64).reshape(-1, 2),
            "detector_ran": np.array([f["detector_ran"] for f in fr], dtype=bool),
            "timings": np.array(
                [[f["timings"][s] for s in STAGES] for f in fr], dtype=np.float32
            ).reshape(-1, len(STAGES)),
            "person_frame": np.array([row for row, _ in persons], dtype=np.int64),
            "frame_index_of_person": np.array(
                [self._frames[r].frame_index for r, _ in persons], dtype=np.int64
            ),
            "track_id": np.array([p.track_id for p in ps], dtype=np.int64),
            "score": np.array([p.score for p in ps], dtype=np.float32),
            "focal_length": np.array([p.focal_length for p in ps], dtype=np.float32),
            "person_image_size": np.array([p.image_size for p in ps], dtype=np.int64).reshape(
                -1, 2
            ),
            "metadata": np.array(json.dumps(metadata())),
        }
        for k in _ARRAYS:
            arrays[k] = (
                np.stack([getattr(p, k) for p in ps]).astype(np.float32)
                if ps
                else np.zeros((0, *_empty_shape(k)), dtype=np.float32)
            )
        with open(self.partial_path, "wb") as fh:
            np.savez_compressed(fh, **arrays)
        self._frames = []


_SHAPES: dict[str, tuple[int, ...]] = {
    "bbox": (4,), "joints_2d": (NUM_JOINTS, 2), "joints_3d_cam": (NUM_JOINTS, 3),
    "joints_3d_local": (NUM_JOINTS, 3), "cam_trans": (3,), "mhr_params": (NUM_MHR_PARAMS,),
    "shape_params": (NUM_SHAPE_PARAMS,), "principal_point": (2,),
}  # fmt: skip


def _empty_shape(name: str) -> tuple[int, ...]:
    return _SHAPES[name]


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
    if name.startswith("joints_"):
        axes = _XYZ[: _empty_shape(name)[1]]
        return [f"{name}.{j}.{a}" for j in JOINT_NAMES for a in axes]
    if name == "bbox":
        return ["bbox.x1", "bbox.y1", "bbox.x2", "bbox.y2"]
    if name in ("cam_trans", "principal_point"):
        return [f"{name}.{a}" for a in _XYZ[: _empty_shape(name)[0]]]
    return [f"{name}.{i}" for i in range(_empty_shape(name)[0])]


CSV_COLUMNS: tuple[str, ...] = tuple(
    _FRAME_COLUMNS
    + ["track_id", "score", "focal_length"]
    + [c for k in _ARRAYS for c in _array_columns(k)]
)
"""The CSV header, in order."""


def _fmt(values: np.ndarray) -> list[str]:
    return [f"{v:.9g}" for v in values.ravel().tolist()]  # 9 digits round-trip float32


class CsvExporter(Exporter):
    """CSV, one row per person (one row with empty person columns for an empty frame)."""

    suffix = ".csv"

    def __init__(self, path: str | Path) -> None:
        super().__init__(path)
        self._fh: IO[str] = open(self.partial_path, "w", encoding="utf-8", newline="")
        units = "; ".join(f"{k}: {v}" for k, v in UNITS.items())
        self._fh.write(f"# {FORMAT} v{VERSION}; MHR70 joints; units: {units}\n")
        self._csv = csv.writer(self._fh)
        self._csv.writerow(CSV_COLUMNS)

    def _write(self, frame: FrameResult) -> None:
        f = _frame_fields(frame)
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
            for k in _ARRAYS:
                row += _fmt(getattr(p, k))
            self._csv.writerow(row)
        self._fh.flush()

    def _finish(self) -> None:
        self._fh.close()


_EXPORTERS: dict[str, type[Exporter]] = {
    ".jsonl": JsonlExporter, ".npz": NpzExporter, ".csv": CsvExporter,
}  # fmt: skip


def open_exporter(path: str | Path) -> Exporter:
    """The writer for ``path``'s suffix (.jsonl, .npz or .csv); ValueError for others."""
    path = Path(path)
    suffix, partial = _format_of(path)
    if partial:
        raise ValueError(f"write to the final name, not a .partial file: {path}")
    return _EXPORTERS[suffix](path)


def _read_jsonl(path: Path, partial: bool) -> list[FrameResult]:
    with open(path, encoding="utf-8") as fh:
        lines = fh.read().splitlines()
    records: list[dict[str, Any]] = []
    for n, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError as err:
            if n == len(lines) - 1:  # torn last line after a crash
                log.warning("%s: ignoring an incomplete last line", path)
                break
            raise ValueError(f"{path}:{n + 1}: not valid JSON ({err})") from None
    if not records or records[0].get("type") != "header":
        raise ValueError(f"{path} is not an InstantHMR results file (no header line)")
    _check_metadata(records[0], path)
    frames: list[tuple[dict[str, Any], list[dict[str, Any]]]] = []
    for rec in records[1:]:
        if rec.get("type") == "frame":
            frames.append((rec, []))
        elif rec.get("type") == "person":
            if not frames:
                raise ValueError(f"{path}: person record before any frame record")
            frames[-1][1].append(rec)
    return _assemble(frames, path, partial)


def _assemble(
    frames: list[tuple[dict[str, Any], list[dict[str, Any]]]], path: Path, partial: bool
) -> list[FrameResult]:
    out = []
    for i, (f, persons) in enumerate(frames):
        if len(persons) != int(f["num_persons"]):
            if i == len(frames) - 1:  # the writer stopped inside this frame
                log.warning("%s: dropping incomplete last frame %s", path, f["frame_index"])
                break
            raise ValueError(
                f"{path}: frame {f['frame_index']} says {f['num_persons']} "
                f"persons but has {len(persons)}"
            )
        size = tuple(int(v) for v in f["image_size"])
        out.append(
            FrameResult(
                persons=[_person_from(p, tuple(p.get("image_size", size))) for p in persons],
                frame_index=int(f["frame_index"]),
                image_size=size,
                timings=StageTimings(**{s: float(f["timings"][s]) for s in STAGES}),
                detector_ran=bool(f["detector_ran"]),
                timestamp=None if f["timestamp"] is None else float(f["timestamp"]),
            )
        )
    return out


def _read_npz(path: Path) -> list[FrameResult]:
    with np.load(path, allow_pickle=False) as data:
        if "metadata" not in data:
            raise ValueError(f"{path} is not an InstantHMR results file (no metadata)")
        _check_metadata(json.loads(str(data["metadata"])), path)
        d = {k: data[k] for k in data.files}
    counts = np.bincount(d["person_frame"], minlength=len(d["frame_index"]))
    frames: list[tuple[dict[str, Any], list[dict[str, Any]]]] = []
    for r in range(len(d["frame_index"])):
        ts = float(d["timestamp"][r])
        frames.append(
            (
                {
                    "frame_index": int(d["frame_index"][r]),
                    "timestamp": None if np.isnan(ts) else ts,
                    "image_size": d["image_size"][r].tolist(),
                    "detector_ran": bool(d["detector_ran"][r]),
                    "timings": dict(zip(STAGES, d["timings"][r].tolist(), strict=True)),
                    "num_persons": int(counts[r]),
                },
                [],
            )
        )
    for i, r in enumerate(d["person_frame"].tolist()):
        rec = {k: d[k][i] for k in (*_ARRAYS, "track_id", "score", "focal_length")}
        rec["image_size"] = d["person_image_size"][i].tolist()
        frames[r][1].append(rec)
    return _assemble(frames, path, partial=False)


def _read_csv(path: Path, partial: bool) -> list[FrameResult]:
    with open(path, encoding="utf-8", newline="") as fh:
        first = fh.readline()
        if not first.startswith(f"# {FORMAT}"):
            raise ValueError(f"{path} is not an InstantHMR results CSV (no '# {FORMAT}' line)")
        rows = list(csv.reader(fh))
    if not rows or tuple(rows[0]) != CSV_COLUMNS:
        raise ValueError(f"{path}: unexpected CSV columns (not written by this version?)")
    col = {c: i for i, c in enumerate(CSV_COLUMNS)}
    frames: list[tuple[dict[str, Any], list[dict[str, Any]]]] = []
    i = 1
    while i < len(rows):
        row = rows[i]
        if len(row) != len(CSV_COLUMNS):
            if i == len(rows) - 1 and partial:
                break
            raise ValueError(
                f"{path}: row {i + 2} has {len(row)} columns, expected {len(CSV_COLUMNS)}"
            )
        n = int(row[col["num_persons"]])
        f = {
            "frame_index": int(row[0]),
            "timestamp": float(row[1]) if row[1] else None,
            "image_size": [int(row[2]), int(row[3])],
            "detector_ran": row[4] == "1",
            "num_persons": n,
            "timings": {s: float(row[col[f"timings.{s}"]]) for s in STAGES},
        }
        persons = []
        for prow in rows[i : i + n]:
            if len(prow) != len(CSV_COLUMNS):
                break
            rec: dict[str, Any] = {k: prow[col[k]] for k in ("track_id", "score", "focal_length")}
            for k in _ARRAYS:
                cols = _array_columns(k)
                vals = np.array([float(prow[col[c]]) for c in cols], dtype=np.float32)
                rec[k] = vals.reshape(_empty_shape(k))
            persons.append(rec)
        frames.append((f, persons))
        i += max(n, 1)
    return _assemble(frames, path, partial)


def read_results(path: str | Path) -> list[FrameResult]:
    """Load a results file written by :func:`open_exporter` (also its ``.partial``)."""
    path = Path(path)
    suffix, partial = _format_of(path)
    if not path.is_file():
        raise FileNotFoundError(f"results file not found: {path}")
    if suffix == ".jsonl":
        return _read_jsonl(path, partial)
    if suffix == ".npz":
        return _read_npz(path)
    return _read_csv(path, partial)
