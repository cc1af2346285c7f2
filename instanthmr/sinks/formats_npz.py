"""NumPy ``.npz`` results: stacked frame and person arrays plus a JSON ``metadata`` string.

Layout and units: :mod:`instanthmr.sinks.exporters`. Frames are kept in memory and the file
is written when the exporter closes.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..results import STAGES, FrameResult
from .formats_common import (
    PERSON_ARRAYS,
    PERSON_SCALARS,
    Exporter,
    RawFrame,
    assemble_frames,
    check_metadata,
    frame_fields,
    metadata,
)


class NpzExporter(Exporter):
    """One ``.npz`` with stacked arrays; kept in memory and written when closed."""

    suffix = ".npz"

    def __init__(self, path: str | Path) -> None:
        super().__init__(path)
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
            "metadata": np.array(json.dumps(metadata())),
        }
        for k, shape in PERSON_ARRAYS.items():
            arrays[k] = (
                np.stack([getattr(p, k) for p in ps]).astype(np.float32)
                if ps
                else np.zeros((0, *shape), dtype=np.float32)
            )
        with open(self.partial_path, "wb") as fh:
            np.savez_compressed(fh, **arrays)
        self._frames = []


def read_npz(path: Path) -> list[FrameResult]:
    """Read a ``.npz`` results file (written whole on close, so never torn)."""
    with np.load(path, allow_pickle=False) as data:
        if "metadata" not in data:
            raise ValueError(f"{path} is not an InstantHMR results file (no metadata)")
        check_metadata(json.loads(str(data["metadata"])), path)
        d = {k: data[k] for k in data.files}
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
                },
                [],
            )
        )
    for i, r in enumerate(d["person_frame"].tolist()):
        rec = {k: d[k][i] for k in (*PERSON_ARRAYS, *PERSON_SCALARS)}
        rec["image_size"] = d["person_image_size"][i].tolist()
        frames[r][1].append(rec)
    return assemble_frames(frames, path)
