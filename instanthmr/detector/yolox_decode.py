"""YOLOX pre- and post-processing in numpy and OpenCV (no torch).

Both mirror Megvii's YOLOX reference code (``yolox/data/data_augment.py`` ``preproc`` and
``demo/ONNXRuntime`` ``demo_postprocess``) for a graph exported without
``--decode_in_inference`` (YOLOX's default export):

Pre-processing: the image is scaled by ``r = min(H / h, W / w)`` (bilinear,
``int(w * r) x int(h * r)``), placed at the **top-left** of an ``H x W`` canvas filled with
114, and fed as **BGR** values 0-255, float32, NCHW. ``H x W`` is the graph's own input size.

Post-processing: the output is one row per anchor, over the grids of strides 8, 16 and 32
in that order (row-major, x fastest). Each row is ``cx, cy, w, h, objectness`` and the 80
COCO class scores, the last 81 already passed through a sigmoid inside the graph. Decoded:
``xy = (xy + grid) * stride``, ``wh = exp(wh) * stride``; the person score is
``objectness * class 0``. Boxes are divided by ``r`` (back to source pixels), clamped into
the image and de-duplicated with supervision's NMS.
"""

from __future__ import annotations

from functools import lru_cache

import cv2
import numpy as np
import supervision as sv

from .base import PERSON_CLASS_ID, person_detections
from .decode import cxcywh_to_xyxy, select_topk

STRIDES: tuple[int, ...] = (8, 16, 32)
"""The YOLOX head's strides, in the order of the output rows."""
NUM_CLASSES = 80
"""COCO classes of the YOLOX checkpoints; the person is class 0."""
YOLOX_PERSON = 0
"""Column of the person score among the class scores (YOLOX's own 80-class order)."""
PAD_VALUE = 114
"""Grey level of the letterbox padding (YOLOX's training value)."""
NMS_IOU = 0.45
"""IoU above which the weaker of two person boxes is dropped (YOLOX's demo value)."""
MAX_CANDIDATES = 300
"""At most this many best-scoring anchors go into NMS (as RF-DETR's 300 queries), so a
threshold of 0 stays cheap."""


def row_count(height: int, width: int) -> int:
    """Anchors (output rows) of a ``height x width`` input over :data:`STRIDES`."""
    return sum((height // s) * (width // s) for s in STRIDES)


@lru_cache(maxsize=8)
def anchor_grid(height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """``(cells (A, 2) float32 x, y; strides (A, 1) float32)`` for every output row."""
    cells, strides = [], []
    for s in STRIDES:
        ys, xs = np.meshgrid(np.arange(height // s), np.arange(width // s), indexing="ij")
        cells.append(np.stack([xs, ys], axis=-1).reshape(-1, 2))
        strides.append(np.full((cells[-1].shape[0], 1), s))
    grid = np.concatenate(cells).astype(np.float32)
    stride = np.concatenate(strides).astype(np.float32)
    grid.setflags(write=False)
    stride.setflags(write=False)
    return grid, stride


def letterbox(image_rgb: np.ndarray, size: tuple[int, int]) -> tuple[np.ndarray, float]:
    """An RGB uint8 (h, w, 3) image as YOLOX's (1, 3, H, W) float32 BGR input, and ``r``.

    ``size`` is the graph's ``(H, W)``. The scaled image sits at the top-left; the rest is
    :data:`PAD_VALUE`. Source pixel ``p`` is input pixel ``p * r``.
    """
    height, width = size
    h, w = image_rgb.shape[:2]
    r = min(height / h, width / w)
    new_w, new_h = max(1, int(w * r)), max(1, int(h * r))
    canvas = np.full((height, width, 3), PAD_VALUE, dtype=np.uint8)
    if (new_w, new_h) == (w, h):
        canvas[:h, :w] = image_rgb
    else:
        canvas[:new_h, :new_w] = cv2.resize(
            image_rgb, (new_w, new_h), interpolation=cv2.INTER_LINEAR
        )
    bgr_chw = canvas.transpose(2, 0, 1)[::-1]
    return np.ascontiguousarray(bgr_chw[None], dtype=np.float32), r


def decode_rows(raw: np.ndarray, input_size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Raw output rows (A, 5 + C) to ``(boxes (A, 4) cx, cy, w, h in input pixels,
    person scores (A,))``."""
    grid, stride = anchor_grid(*input_size)
    xy = (raw[:, :2] + grid) * stride
    wh = np.exp(np.minimum(raw[:, 2:4], 30.0)) * stride  # exp(30) px: no overflow warning
    scores = raw[:, 4] * raw[:, 5 + YOLOX_PERSON]
    return np.concatenate([xy, wh], axis=1), scores


def decode(
    output: np.ndarray,
    input_size: tuple[int, int],
    ratio: float,
    image_size: tuple[int, int],
    threshold: float,
    nms_iou: float = NMS_IOU,
) -> sv.Detections:
    """YOLOX's raw output for one image to person detections in source pixels.

    Args:
        output: (1, A, 5 + C) or (A, 5 + C), rows in :func:`anchor_grid` order.
        input_size: the graph's ``(H, W)``.
        ratio: the letterbox scale ``r`` from :func:`letterbox`.
        image_size: ``(width, height)`` of the source image.
        threshold: keep persons with ``score > threshold``.
        nms_iou: NMS IoU threshold.

    Returns:
        ``sv.Detections`` (xyxy float32, confidence, class_id = ``PERSON_CLASS_ID``),
        sorted by descending confidence; ``sv.Detections.empty()`` when nobody is found.
    """
    raw = np.asarray(output, dtype=np.float32)
    if raw.ndim == 3:
        raw = raw[0]
    expected = row_count(*input_size)
    if raw.ndim != 2 or raw.shape[0] != expected or raw.shape[1] < 6:
        raise ValueError(
            f"expected YOLOX output rows ({expected}, 5 + classes) for a {input_size[0]}x"
            f"{input_size[1]} input, got {raw.shape}"
        )
    boxes, scores = decode_rows(raw, input_size)
    candidates = np.flatnonzero(scores > threshold)
    if candidates.size == 0:
        return sv.Detections.empty()
    if candidates.size > MAX_CANDIDATES:
        candidates = candidates[select_topk(scores[candidates], MAX_CANDIDATES)]
    xyxy = cxcywh_to_xyxy(boxes[candidates]) / np.float32(ratio)
    conf = scores[candidates]
    keep = sv.box_non_max_suppression(np.concatenate([xyxy, conf[:, None]], axis=1), nms_iou)
    width, height = image_size
    limit = np.array([width, height, width, height], dtype=np.float32)
    xyxy = np.minimum(np.maximum(xyxy[keep], 0), limit)
    labels = np.full(int(keep.sum()), PERSON_CLASS_ID, dtype=np.int64)
    return person_detections(xyxy, conf[keep], labels, threshold)


def decoded_in_graph(raw: np.ndarray, input_size: tuple[int, int]) -> float | None:
    """Evidence that a graph already decodes its boxes (exported with
    ``--decode_in_inference``): the correlation of the output's ``cx`` and ``cy`` with the
    anchors' pixel positions, the smaller of the two. Raw offsets do not follow the grid
    (measured: -0.19 on a blank frame for YOLOX-nano); decoded centres do (above 0.99).
    None when the output is constant (nothing to judge)."""
    rows = np.asarray(raw, dtype=np.float64).reshape(-1, raw.shape[-1])
    grid, stride = anchor_grid(*input_size)
    centres = (grid + 0.5) * stride
    corr = []
    for axis in (0, 1):
        if rows[:, axis].std() == 0:
            return None
        corr.append(float(np.corrcoef(rows[:, axis], centres[:, axis])[0, 1]))
    return min(corr)
