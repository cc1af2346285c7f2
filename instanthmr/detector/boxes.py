"""Boxes a caller or a detector hands to the pipeline: checked before any model runs.

:func:`boxes_and_scores` turns an ``(N, 4)`` xyxy array or a ``supervision.Detections``
into float boxes and finite scores, and decides which rows are people (see its docstring
and ``docs/pipeline.md``, "Boxes and scores you bring"). Box geometry (inverted, outside
the image, absurdly large) is checked later by :func:`instanthmr.geometry.validate_boxes`,
which needs the image size.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np


def boxes_and_scores(boxes: Any) -> tuple[np.ndarray, np.ndarray]:
    """(N, 4) xyxy boxes and (N,) scores from an array or a ``supervision.Detections``.

    Scores are checked here, before any model runs: one finite number per box, else
    ValueError naming the detection. Classes: every box is taken as a person, except
    that a ``Detections`` whose ``data["class_name"]`` names classes keeps only
    ``"person"`` rows (warning once). ``class_id`` alone decides nothing, since detectors
    number classes differently (RF-DETR's COCO person is 1, YOLO's 0); several distinct
    ids without class names give a warning, once, and every box is kept.
    """
    if hasattr(boxes, "xyxy"):  # supervision.Detections (duck-typed: no import needed)
        xyxy = np.asarray(boxes.xyxy, dtype=np.float64).reshape(-1, 4)
        conf = getattr(boxes, "confidence", None)
        scores = np.ones(len(xyxy)) if conf is None else _scores(conf, len(xyxy))
        keep = _person_rows(boxes, len(xyxy))
        return (xyxy, scores) if keep is None else (xyxy[keep], scores[keep])
    arr = np.asarray(boxes, dtype=np.float64)
    if arr.size == 0:
        return np.zeros((0, 4)), np.zeros(0)
    if arr.ndim != 2 or arr.shape[1] != 4:
        raise ValueError(
            f"boxes must be an (N, 4) xyxy array or a supervision.Detections, got shape {arr.shape}"
        )
    return arr, np.ones(len(arr))


def _scores(conf: Any, n: int) -> np.ndarray:
    try:
        scores = np.asarray(conf, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"detection confidences must be numbers: {exc}") from None
    if len(scores) != n:
        raise ValueError(f"got {len(scores)} confidences for {n} boxes; pass one per box")
    bad = np.flatnonzero(~np.isfinite(scores))
    if len(bad):
        i = int(bad[0])
        raise ValueError(
            f"detection {i} has confidence {scores[i]} (NaN or infinite; {len(bad)} such); "
            "confidences must be finite numbers, e.g. in [0, 1]"
        )
    return scores


def _person_rows(det: Any, n: int) -> np.ndarray | None:
    """Row mask of person detections, or None when every row is kept (see boxes_and_scores)."""
    names = (getattr(det, "data", None) or {}).get("class_name")
    if names is not None and len(names) == n:
        keep = np.array([str(c).lower() == "person" for c in names], dtype=bool)
        if not keep.all():
            warnings.warn(
                "detections include classes other than 'person' (by class_name): only the "
                "'person' rows are used",
                UserWarning,
                stacklevel=4,
            )
        return keep
    ids = getattr(det, "class_id", None)
    if ids is not None and len(np.unique(np.asarray(ids))) > 1:
        warnings.warn(
            "detections have several class_id values and no class_name: every box is taken "
            "as a person. Filter them first, e.g. det[det.class_id == PERSON_ID]",
            UserWarning,
            stacklevel=4,
        )
    return None
