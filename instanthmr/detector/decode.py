"""RF-DETR pre- and post-processing in numpy and OpenCV (no torch).

Both mirror what ``rfdetr`` 1.11 does inside ``RFDETR.predict``:

Pre-processing (``detr.py``, ``predict``): the uint8 RGB image is scaled to [0, 1] as float,
resized to R x R **with aspect distortion** (no letterbox) by bilinear interpolation with
half-pixel centres and no antialiasing (``torchvision`` ``resize(antialias=False)``, which is
what ``cv2.INTER_LINEAR`` on a float image computes), then ImageNet-normalised, CHW.
Resizing the float image (not the uint8 one) matters: a uint8 resize rounds to whole grey
levels, about 0.013 off after normalisation; the float path matches to about 1e-4.

Post-processing (``models/postprocess.py``, ``PostProcess``): sigmoid on the class logits,
boxes cxcywh (negative sizes clamped to 0) -> xyxy, scaled by the source (W, H, W, H) and
clamped into the image; ``predict`` keeps ``score > threshold``.

One deliberate difference: rfdetr ranks the top 300 (query, class) pairs over all 91
classes and then we would keep persons; here the queries are ranked by their **person**
score alone (``num_select`` queries, default all 300). The result is a superset of
rfdetr's persons: every person pair in rfdetr's top 300 is here with the same box and
score, and the extra ones all score below rfdetr's 300th pair. At any threshold above
that score (with trained weights: any sensible threshold) the two are identical. The gain:
non-person classes can never crowd persons out, so ``threshold=0`` with ``max_persons=1``
yields exactly one person per frame even with random weights, which the benchmarks rely on.
"""

from __future__ import annotations

import cv2
import numpy as np
import supervision as sv

from ..geometry import IMAGENET_MEAN, IMAGENET_STD
from .base import NUM_SELECT, PERSON_CLASS_ID, person_detections


def preprocess(image_rgb: np.ndarray, resolution: int) -> np.ndarray:
    """An RGB uint8 (H, W, 3) image as the detector's (1, 3, R, R) float32 input.

    The image is expected to be validated already (see
    :func:`instanthmr.geometry.validate_image`).
    """
    scaled = image_rgb.astype(np.float32)
    scaled *= np.float32(1.0 / 255.0)
    if scaled.shape[0] != resolution or scaled.shape[1] != resolution:
        scaled = cv2.resize(scaled, (resolution, resolution), interpolation=cv2.INTER_LINEAR)
    normalised = (scaled - IMAGENET_MEAN) / IMAGENET_STD
    return np.ascontiguousarray(normalised.transpose(2, 0, 1)[None], dtype=np.float32)


def sigmoid(x: np.ndarray) -> np.ndarray:
    """Logistic function in the input's float dtype, without overflow warnings."""
    x = np.asarray(x)
    one = np.asarray(1, dtype=x.dtype)
    return one / (one + np.exp(-np.clip(x, -88, 88)))


def select_topk(scores: np.ndarray, k: int = NUM_SELECT) -> np.ndarray:
    """Flat indices of the ``k`` best entries of ``scores`` (descending, ties by index).

    Same order as ``torch.argsort(descending=True, stable=True)[:k]``; NaN ranks first as
    in torch (and is dropped later by the threshold). Uses a partition, so only the
    candidates at or above the k-th score are sorted.
    """
    flat = np.asarray(scores).reshape(-1)
    k = max(0, min(int(k), flat.size))
    if k == 0:
        return np.empty(0, dtype=np.int64)
    ranked = np.where(np.isnan(flat), np.inf, flat)
    if k < flat.size:
        kth = np.partition(ranked, flat.size - k)[flat.size - k]
        candidates = np.flatnonzero(ranked >= kth)
    else:
        candidates = np.arange(flat.size)
    order = np.lexsort((candidates, -ranked[candidates]))
    return candidates[order[:k]].astype(np.int64)


def cxcywh_to_xyxy(boxes: np.ndarray) -> np.ndarray:
    """(..., 4) centre/size boxes to corner boxes; negative sizes count as 0 (as rfdetr)."""
    cx, cy, w, h = np.moveaxis(np.asarray(boxes), -1, 0)
    half_w = 0.5 * np.maximum(w, 0)
    half_h = 0.5 * np.maximum(h, 0)
    return np.stack([cx - half_w, cy - half_h, cx + half_w, cy + half_h], axis=-1)


def decode(
    boxes_cxcywh: np.ndarray,
    logits: np.ndarray,
    image_size: tuple[int, int],
    threshold: float,
    num_select: int = NUM_SELECT,
) -> sv.Detections:
    """Raw RF-DETR outputs of one image to person detections in source pixels.

    Args:
        boxes_cxcywh: ``dets``, (1, Q, 4) or (Q, 4), normalised cx, cy, w, h.
        logits: ``labels``, (1, Q, C) or (Q, C), class logits (COCO category ids).
        image_size: ``(width, height)`` of the source image.
        threshold: keep ``confidence > threshold``.
        num_select: queries ranked by person score before thresholding (default: all 300).

    Returns:
        ``sv.Detections`` with ``xyxy`` (N, 4) float32, ``confidence`` and ``class_id``
        (person only), sorted by descending confidence; ``sv.Detections.empty()`` when
        no person clears the threshold.
    """
    boxes = np.asarray(boxes_cxcywh)
    logits = np.asarray(logits)
    if boxes.ndim == 3:
        boxes = boxes[0]
    if logits.ndim == 3:
        logits = logits[0]
    if boxes.ndim != 2 or boxes.shape[-1] != 4 or logits.ndim != 2:
        raise ValueError(
            f"expected boxes (Q, 4) and logits (Q, C), got {boxes.shape} and {logits.shape}"
        )
    if boxes.shape[0] != logits.shape[0]:
        raise ValueError(
            f"boxes and logits disagree on the query count: {boxes.shape} vs {logits.shape}"
        )
    scores = sigmoid(logits[:, PERSON_CLASS_ID])
    queries = select_topk(scores, num_select)
    width, height = image_size
    scale = np.array([width, height, width, height], dtype=boxes.dtype)
    xyxy = cxcywh_to_xyxy(boxes[queries]) * scale
    xyxy = np.minimum(np.maximum(xyxy, 0), scale)
    labels = np.full(len(queries), PERSON_CLASS_ID, dtype=np.int64)
    return person_detections(xyxy, scores[queries], labels, threshold)
