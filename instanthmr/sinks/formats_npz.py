"""NumPy ``.npz`` results: stacked frame and person arrays plus a JSON ``metadata`` string.

Layout and units: :mod:`instanthmr.sinks.exporters`. Frames are kept in memory and the file
is written when the exporter closes.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ..results import STAGES, FrameResult
from .formats_common import (
    PERSON_ARRAYS,
    PERSON_SCALARS,
    PERSON_WORLD_ARRAYS,
    WORLD_OPTIONAL,
    WORLD_SCALARS,
    Damaged,
    Exporter,
    RawFrame,
    assemble_frames,
    check_errors,
    check_metadata,
    frame_fields,
    metadata,
    person_world_fields,
)

_WORLD_DTYPES: dict[str, Any] = {
    "known": bool, "confidence": np.float32, "source": str, "reason": str, "frozen": bool,
    "inliers": np.int64, "camera_height": np.float64, "pitch_deg": np.float64,
    "roll_deg": np.float64, "height_std": np.float64, "pitch_std_deg": np.float64,
    "roll_std_deg": np.float64, "settled": bool, "reopened": np.int64, "levels": np.int64,
}  # fmt: skip


def _nan_or(value: Any, shape: tuple[int, ...]) -> np.ndarray:
    return np.full(shape, np.nan) if value is None else np.asarray(value, dtype=np.float64)


def _world_arrays(fr: list[dict[str, Any]], pw: list[dict[str, Any]]) -> dict[str, np.ndarray]:
    """Frame ``world_*`` arrays (``world_stage`` False where it did not run) and person ones
    (NaN where unknown; ``world_track`` False where a person has no trajectory record)."""
    worlds = [f["world"] for f in fr]
    out: dict[str, np.ndarray] = {"world_stage": np.array([w is not None for w in worlds], bool)}
    for k, dtype in _WORLD_DTYPES.items():
        empty = "" if dtype is str else (np.nan if dtype is np.float64 else 0)
        vals = [empty if w is None or w[k] is None else w[k] for w in worlds]
        out[f"world_{k}"] = np.array(vals, dtype=dtype if dtype is not str else np.str_)
    out["world_plane"] = np.array([_nan_or(w and w["plane"], (4,)) for w in worlds]).reshape(-1, 4)
    for k, shape in PERSON_WORLD_ARRAYS.items():
        out[k] = np.array([_nan_or(p[k], shape) for p in pw], np.float32).reshape(-1, *shape)
    recs = [p["world"] for p in pw]
    out["world_track"] = np.array([r is not None for r in recs], dtype=bool)
    positions = [_nan_or(r and r["position"], (3,)) for r in recs]
    out["world_position"] = np.array(positions).reshape(-1, 3)
    for k in ("heading", "speed"):
        out[f"world_{k}"] = np.array([np.nan if r is None else r[k] for r in recs], np.float64)
    out["world_contact"] = np.array(
        [(False, False) if r is None else r["contact"] for r in recs], dtype=bool
    ).reshape(-1, 2)
    return out


def _world_frame(d: dict[str, np.ndarray], r: int) -> dict[str, Any] | None:
    if "world_stage" not in d or not d["world_stage"][r]:  # version 1, or no world stage
        return None
    rec: dict[str, Any] = {k: d[f"world_{k}"][r].item() for k in WORLD_SCALARS
                           if f"world_{k}" in d}  # version 2 lacks WORLD_SCALARS_V3
    for k in WORLD_OPTIONAL:
        if k in rec:
            rec[k] = None if np.isnan(rec[k]) else rec[k]
    plane = d["world_plane"][r]
    rec["plane"] = None if np.isnan(plane).any() else plane
    return rec


def _world_person(d: dict[str, np.ndarray], i: int) -> dict[str, Any]:
    if "world_track" not in d:  # version 1
        return {}
    rec: dict[str, Any] = {
        k: None if np.isnan(d[k][i]).any() else d[k][i] for k in PERSON_WORLD_ARRAYS
    }
    rec["world"] = None if not d["world_track"][i] else {
        "position": d["world_position"][i], "heading": float(d["world_heading"][i]),
        "speed": float(d["world_speed"][i]), "contact": d["world_contact"][i].tolist(),
    }  # fmt: skip
    return rec


class NpzExporter(Exporter):
    """One ``.npz`` with stacked arrays; kept in memory and written when closed."""

    suffix = ".npz"

    def __init__(self, path: str | Path, run: Mapping[str, Any] | None = None) -> None:
        super().__init__(path, run)
        self._frames: list[FrameResult] = []

    def _write(self, frame: FrameResult) -> None:
        self._frames.append(frame)

    def _finish(self) -> None:
        fr = [frame_fields(f) for f in self._frames]
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
            "metadata": np.array(json.dumps(metadata(self.run))),
        }
        pw = [person_world_fields(self._frames[r], p) for r, p in persons]
        arrays.update(_world_arrays(fr, pw))
        for k, shape in PERSON_ARRAYS.items():
            arrays[k] = (
                np.stack([getattr(p, k) for p in ps]).astype(np.float32)
                if ps
                else np.zeros((0, *shape), dtype=np.float32)
            )
        with open(self.partial_path, "wb") as fh:
            np.savez_compressed(fh, **arrays)
        self._frames = []


_FIX = "write it again with the exporter (or open the file it was meant to be)"
_NEEDED = (
    "frame_index", "timestamp", "image_size", "detector_ran", "timings", "person_frame",
    "track_id", "score", "focal_length", "person_image_size", *PERSON_ARRAYS,
)  # fmt: skip


class _RefusedError(ValueError):
    """This reader's own verdict on a file (not to be wrapped again)."""


def _bad(path: Path, problem: str) -> ValueError:
    return _RefusedError(
        f"{path} is not a readable InstantHMR .npz results file: {problem}; {_FIX}"
    )


def _load_arrays(path: Path) -> dict[str, np.ndarray]:
    """Every array of the archive, never unpickling anything; ValueError naming the problem.

    numpy's own errors (``BadZipFile``, ``EOFError``, and advice to pass ``allow_pickle``,
    which would run code from the file) are replaced by a message about this file.
    """
    size = path.stat().st_size
    if size == 0:
        raise _bad(path, "it is empty (0 bytes)")
    if not zipfile.is_zipfile(path):
        raise _bad(path, f"it is not a zip archive ({size} bytes; truncated, or another format)")
    try:
        with np.load(path, allow_pickle=False) as data:
            names = list(data.files)
            arrays = {}
            for name in names:
                try:
                    arrays[name] = data[name]
                except ValueError:  # numpy suggests allow_pickle here: never follow that
                    raise _bad(
                        path, f"array {name!r} holds Python objects (pickled data), which "
                        "results files never contain and which are not loaded, for safety"
                    ) from None  # fmt: skip
    except _RefusedError:
        raise
    except Exception as exc:  # a damaged archive makes zipfile, zlib and numpy raise anything
        raise _bad(path, f"the archive is damaged ({type(exc).__name__}: {exc})") from None
    if "metadata" not in arrays:
        raise _RefusedError(f"{path} is not an InstantHMR results file (no metadata)")
    try:
        meta = json.loads(str(arrays["metadata"]))
    except json.JSONDecodeError as exc:
        raise _bad(path, f"its metadata is not valid JSON ({exc})") from None
    if not isinstance(meta, dict):
        raise _bad(path, "its metadata is not a JSON object")
    try:
        check_metadata(meta, path)
    except ValueError as exc:
        raise _RefusedError(str(exc)) from None
    missing = [k for k in _NEEDED if k not in arrays]
    if missing:
        raise _bad(path, f"arrays missing: {', '.join(missing)}")
    return arrays


def read_npz(path: Path, errors: str = "strict") -> list[FrameResult]:
    """Read a ``.npz`` results file (written whole on close, so never torn).

    A damaged archive is refused as a whole, in both modes (its arrays cannot be trusted);
    ``errors="skip"`` only leaves out frames whose values do not convert.

    Raises:
        ValueError: the file is empty, truncated, not a zip archive, damaged, holds pickled
            objects, or lacks InstantHMR metadata or arrays; the message names the file and
            the problem.
    """
    d = _load_arrays(Path(path))
    try:
        counts = np.bincount(d["person_frame"], minlength=len(d["frame_index"]))
        frames: list[RawFrame] = []
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
                        "world": _world_frame(d, r),
                    },
                    [],
                )
            )
        for i, r in enumerate(d["person_frame"].tolist()):
            rec = {k: d[k][i] for k in (*PERSON_ARRAYS, *PERSON_SCALARS)}
            rec["image_size"] = d["person_image_size"][i].tolist()
            rec.update(_world_person(d, i))
            frames[r][1].append(rec)
    except Exception as exc:  # arrays of the wrong shape, type or length: never a crash
        raise _bad(path, f"its arrays do not fit together ({type(exc).__name__}: {exc})") from None
    damaged = Damaged(Path(path), check_errors(errors))
    out = assemble_frames(frames, Path(path), damaged)
    damaged.report()
    return out
