"""The stride's carried boxes against the detector, and a run's joints against a reference run.

:func:`compare_runs` takes a run at some stride (or in live mode), the stride-1 run of the
same clip and the detector's people on every frame (:func:`~.runs.detect_every_frame`):

- **carried IoU**: on frames served from keypoint-carried boxes, each carried box against
  the detector's boxes of that frame, one-to-one (Hungarian on IoU); a carried box with no
  detection left counts IoU 0. Median and 10th percentile over every carried box.
- **joint drift**: each person of the run is paired, on the same frame, with a person of
  the reference run (Hungarian on box IoU, pairs under ``pair_iou`` left unpaired); the
  drift is the 2D distance of each real joint (the model's ``real_joints``) between the
  two, in pixels and in units of the reference person's box height. Median and 90th
  percentile over every joint of every paired person-frame (and over carried frames only).
- **lost**: reference person-frames with no partner in the run; **extra**: the run's
  person-frames with no partner in the reference.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import supervision as sv
from scipy.optimize import linear_sum_assignment

from ...results import FrameResult
from .runs import ClipRun, Detections


@dataclass
class CarryStats:
    """One run against the detector and the stride-1 reference (module docstring)."""

    label: str
    frames: int
    detector_frames: int
    carried_frames: int
    carried_boxes: int
    carried_iou_median: float
    carried_iou_p10: float
    carried_unmatched: int
    drift_px_median: float
    drift_px_p90: float
    drift_carried_px_median: float
    drift_carried_px_p90: float
    drift_rel_median: float
    drift_rel_p90: float
    reference_persons: int
    lost: int
    extra: int

    @property
    def lost_share(self) -> float:
        """Lost person-frames over the reference's person-frames."""
        return self.lost / self.reference_persons if self.reference_persons else float("nan")

    def as_dict(self) -> dict[str, Any]:
        """The figures as plain types, ``lost_share`` included."""
        return {**asdict(self), "lost_share": self.lost_share}


def match_boxes(a: np.ndarray, b: np.ndarray, min_iou: float = 0.0) -> tuple[np.ndarray, ...]:
    """One-to-one pairs between two box sets, maximising the total IoU.

    Returns:
        ``(rows, cols, ious)``: indices into ``a`` and ``b`` and the pairs' IoU; pairs with
        IoU <= 0 or below ``min_iou`` are left out.
    """
    a = np.asarray(a, float).reshape(-1, 4)
    b = np.asarray(b, float).reshape(-1, 4)
    if not len(a) or not len(b):
        empty = np.zeros(0, np.int64)
        return empty, empty, np.zeros(0)
    iou = sv.box_iou_batch(a, b)
    rows, cols = linear_sum_assignment(-iou)
    keep = (iou[rows, cols] > 0) & (iou[rows, cols] >= min_iou)
    return rows[keep], cols[keep], iou[rows, cols][keep]


def _boxes(result: FrameResult) -> np.ndarray:
    return np.array([p.bbox for p in result.persons], float).reshape(-1, 4)


def _pct(values: list[float] | np.ndarray, q: float) -> float:
    v = np.asarray(values, float)
    return float(np.percentile(v, q)) if len(v) else float("nan")


def _cat(parts: list[np.ndarray]) -> np.ndarray:
    return np.concatenate(parts) if parts else np.zeros(0)


def carried_frame(result: FrameResult) -> bool:
    """True when the frame's boxes were carried from keypoints (no detection merged)."""
    return result.boxes_from == "tracks"


def compare_runs(
    run: ClipRun,
    reference: ClipRun,
    detections: Detections,
    *,
    pair_iou: float = 0.3,
) -> CarryStats:
    """Carried IoU, joint drift and lost persons of ``run`` (see the module docstring)."""
    n = min(run.frames, reference.frames, len(detections))
    real = np.asarray(run.real_joints, bool)
    ious: list[float] = []
    unmatched = carried_boxes = carried_frames = detector_frames = 0
    drift: list[np.ndarray] = []
    drift_carried: list[np.ndarray] = []
    drift_rel: list[np.ndarray] = []
    lost = extra = ref_persons = 0
    for t in range(n):
        res, ref = run.results[t], reference.results[t]
        detector_frames += bool(res.detector_ran)
        boxes = _boxes(res)
        if carried_frame(res):
            carried_frames += 1
            carried_boxes += len(boxes)
            rows, _, iou = match_boxes(boxes, detections.boxes[t])
            ious += iou.tolist() + [0.0] * (len(boxes) - len(rows))
            unmatched += len(boxes) - len(rows)
        ref_boxes = _boxes(ref)
        ref_persons += len(ref_boxes)
        rows, cols, _ = match_boxes(boxes, ref_boxes, pair_iou)
        lost += len(ref_boxes) - len(cols)
        extra += len(boxes) - len(rows)
        for i, j in zip(rows, cols, strict=True):
            a = res.persons[i].joints_2d[real]
            b = ref.persons[j].joints_2d[real]
            d = np.linalg.norm(a - b, axis=1)
            drift.append(d)
            height = max(float(ref_boxes[j, 3] - ref_boxes[j, 1]), 1.0)
            drift_rel.append(d / height)
            if carried_frame(res):
                drift_carried.append(d)
    d, dc, dr = _cat(drift), _cat(drift_carried), _cat(drift_rel)
    return CarryStats(
        label=run.label,
        frames=n,
        detector_frames=detector_frames,
        carried_frames=carried_frames,
        carried_boxes=carried_boxes,
        carried_iou_median=_pct(ious, 50),
        carried_iou_p10=_pct(ious, 10),
        carried_unmatched=unmatched,
        drift_px_median=_pct(d, 50),
        drift_px_p90=_pct(d, 90),
        drift_carried_px_median=_pct(dc, 50),
        drift_carried_px_p90=_pct(dc, 90),
        drift_rel_median=_pct(dr, 50),
        drift_rel_p90=_pct(dr, 90),
        reference_persons=ref_persons,
        lost=lost,
        extra=extra,
    )


def carried_ious(run: ClipRun, detections: Detections) -> list[tuple[int, float]]:
    """``(frame, IoU)`` of every carried box with its detection (0 when none), for plots."""
    out = []
    for t, res in enumerate(run.results[: len(detections)]):
        if not carried_frame(res):
            continue
        boxes = _boxes(res)
        rows, _, iou = match_boxes(boxes, detections.boxes[t])
        out += [(t, float(v)) for v in iou] + [(t, 0.0)] * (len(boxes) - len(rows))
    return out


def per_frame_counts(results: Sequence[FrameResult]) -> np.ndarray:
    """(T,) persons per frame."""
    return np.array([len(r.persons) for r in results], dtype=np.int64)
