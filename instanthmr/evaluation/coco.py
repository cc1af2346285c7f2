"""COCO person keypoints: 2D keypoint AP through pycocotools (extra ``eval``).

The model's 70 joints are mapped to COCO's 17 (:data:`~instanthmr.evaluation.joints.COCO17`,
all direct), each person becomes one COCO result (``image_id``, ``category_id`` 1,
``keypoints`` as 17 ``x, y, 1`` triples in pixels, ``score``) and ``COCOeval(..., "keypoints")``
computes AP/AR over OKS thresholds 0.50:0.95 exactly as the COCO benchmark does. Nothing of
COCOeval is re-implemented here.

Boxes: the pipeline's detector (score = detector score), or with ``gt_boxes`` the
annotated, non-crowd person boxes (score 1). Detection precision/recall/F1 against the
annotated boxes (IoU >= 0.5) are reported too.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import DatasetError, MissingDependencyError
from ..sources.files import read_image
from .datafiles import read_json
from .joints import COCO17
from .metrics import DetectionCounts

STAT_NAMES = ("AP", "AP50", "AP75", "APm", "APl", "AR", "AR50", "AR75", "ARm", "ARl")


def _pycocotools() -> tuple[Any, Any]:
    try:
        from pycocotools.coco import COCO
        from pycocotools.cocoeval import COCOeval
    except ImportError:
        raise MissingDependencyError(
            "COCO keypoint AP needs pycocotools: pip install 'instanthmr[eval]'"
        ) from None
    return COCO, COCOeval


def load_annotations(annotations: str | Path | dict) -> Any:
    """A ``pycocotools.coco.COCO`` from a path or an already-parsed dict (quietly)."""
    coco_cls, _ = _pycocotools()
    with contextlib.redirect_stdout(io.StringIO()):
        if isinstance(annotations, dict):
            coco = coco_cls()
            coco.dataset = annotations
            coco.createIndex()
        else:
            path = Path(annotations)
            if not path.is_file():
                raise FileNotFoundError(
                    f"COCO annotation file not found: {path} (person_keypoints_val2017.json "
                    "from annotations_trainval2017.zip)"
                )
            dataset = read_json(path, "COCO annotations")
            missing = [k for k in ("images", "annotations", "categories")
                       if not isinstance(dataset, dict) or k not in dataset]  # fmt: skip
            if missing:
                raise DatasetError(
                    f"COCO annotations file {path} is not a COCO keypoints file (no "
                    f"{', '.join(repr(k) for k in missing)}); pass person_keypoints_val2017.json"
                )
            coco = coco_cls()
            coco.dataset = dataset
            try:
                coco.createIndex()
            except (KeyError, TypeError, AttributeError) as err:
                raise DatasetError(
                    f"COCO annotations file {path} has a malformed record ({type(err).__name__}: "
                    f"{err}); download person_keypoints_val2017.json again"
                ) from None
    return coco


def person_results(image_id: int, joints_2d: np.ndarray, scores: np.ndarray) -> list[dict]:
    """COCO keypoint results for (N, 70, 2) MHR70 joints of one image."""
    kps = COCO17(np.asarray(joints_2d, np.float64).reshape(-1, 70, 2))
    out = []
    for k, s in zip(kps, np.asarray(scores).reshape(-1), strict=True):
        triples = np.concatenate([k, np.ones((17, 1))], axis=1)
        out.append(
            {
                "image_id": int(image_id),
                "category_id": 1,
                "keypoints": [float(v) for v in triples.reshape(-1)],
                "score": float(s),
            }
        )
    return out


def keypoint_ap(coco_gt: Any, results: list[dict], image_ids: list[int]) -> dict[str, float]:
    """COCOeval keypoint statistics (in %) over ``image_ids``; all 0 when nothing was found."""
    _, coco_eval = _pycocotools()
    if not results:
        return dict.fromkeys(STAT_NAMES, 0.0)
    with contextlib.redirect_stdout(io.StringIO()):
        dt = coco_gt.loadRes(results)
        e = coco_eval(coco_gt, dt, "keypoints")
        e.params.imgIds = list(image_ids)
        e.evaluate()
        e.accumulate()
        e.summarize()
    # COCOeval writes -1 where a statistic has no objects (no medium people, say)
    return {n: float(v) * 100 if v >= 0 else float("nan")
            for n, v in zip(STAT_NAMES, e.stats, strict=True)}  # fmt: skip


def gt_person_boxes(coco_gt: Any, image_id: int) -> np.ndarray:
    """(N, 4) xyxy boxes of the image's non-crowd person annotations with keypoints."""
    anns = coco_gt.loadAnns(coco_gt.getAnnIds(imgIds=[image_id], catIds=[1], iscrowd=False))
    boxes = []
    for a in anns:
        x, y, w, h = a["bbox"]
        if w > 1 and h > 1 and a.get("num_keypoints", 1) > 0:
            boxes.append([x, y, x + w, y + h])
    return np.asarray(boxes, np.float64).reshape(-1, 4)


def evaluate(
    pipe: Any,
    annotations: str | Path | dict,
    image_root: str | Path,
    *,
    gt_boxes: bool = False,
    limit: int | None = None,
    iou: float = 0.5,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Run ``pipe`` on the COCO images and score the keypoints with COCOeval.

    Returns the scored entry for the report: ``metrics`` (AP, AP50, ... in %), ``frames``
    (images), ``persons`` (predicted), ``detection`` counts, ``skipped``.
    """
    coco = load_annotations(annotations)
    image_ids = sorted(coco.getImgIds(catIds=[1]))
    if limit is not None:
        image_ids = image_ids[: int(limit)]
    results: list[dict] = []
    counts = DetectionCounts()
    root = Path(image_root)
    for n, image_id in enumerate(image_ids):
        info = coco.loadImgs([image_id])[0]
        image = read_image(root / info["file_name"])
        boxes = gt_person_boxes(coco, image_id)
        if gt_boxes:
            frame = pipe.predict(image, boxes=boxes, smooth=False) if len(boxes) else None
        else:
            frame = pipe.predict(image, smooth=False)
        if frame is not None and len(frame):
            results += person_results(image_id, frame.joints_2d, frame.scores)
            counts.add(frame.boxes, boxes, iou)
        else:
            counts.add(np.zeros((0, 4)), boxes, iou)
        if progress is not None:
            progress(n, len(image_ids))
    skipped = {} if results else {"AP": "no person was predicted on any image"}
    return {"metrics": keypoint_ap(coco, results, image_ids), "frames": len(image_ids),
            "persons": len(results), "detection": counts.as_dict(), "skipped": skipped}  # fmt: skip
