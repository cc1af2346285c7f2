"""Helpers the batch tests share with their worker processes (importable by name).

Workers are separate processes (``spawn``) or Ray actors, so the detector they build must
be importable by module name: the tests pass ``detector_factory="batch_helpers:
BrightBlockDetector"`` and put this folder on the workers' path.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import supervision as sv

W, H = 160, 120


class BrightBlockDetector:
    """A real, simple detector: the bright regions of the frame, as person boxes.

    Thresholds the red channel and returns the bounding box of each connected component
    (padded by ``pad`` pixels), score 0.9. Deterministic, picklable, no model file.
    """

    def __init__(self, pad: float = 12.0) -> None:
        self.pad = pad

    def detect(self, image_rgb: np.ndarray) -> sv.Detections:
        return red_components(image_rgb, threshold=120, pad=self.pad)


def red_components(image_rgb: np.ndarray, threshold: int, pad: float) -> sv.Detections:
    """Boxes of the connected regions whose red channel exceeds ``threshold``, grown by
    ``pad`` pixels, score 0.9, class 0; empty Detections when there are none."""
    mask = (image_rgb[..., 0] > threshold).astype(np.uint8)
    n, _, st, _ = cv2.connectedComponentsWithStats(mask)
    if n <= 1:
        return sv.Detections.empty()
    x, y, w, h = (st[1:, i].astype(np.float64) for i in range(4))
    xyxy = np.stack([x - pad, y - pad, x + w + pad, y + h + pad], axis=1)
    return sv.Detections(
        xyxy=xyxy, confidence=np.full(len(xyxy), 0.9), class_id=np.zeros(len(xyxy), int)
    )


def block_centre(i: int, seed: int) -> tuple[float, float]:
    """Centre (x, y) in pixels of the bright block in frame ``i`` of clip ``seed``; it moves
    right and jumps back every 14 frames, so it never leaves the frame."""
    return 40.0 + (6 * i + 3 * seed) % 84, 50.0 + 2 * seed


def write_clip(path: Path, frames: int, seed: int = 0) -> Path:
    """An MJPG AVI of a 24x40 bright block moving on a dark background."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (W, H))
    assert writer.isOpened(), path
    for i in range(frames):
        img = np.full((H, W, 3), 30, np.uint8)
        cx, cy = block_centre(i, seed)
        cv2.rectangle(img, (int(cx) - 12, int(cy) - 20), (int(cx) + 11, int(cy) + 19),
                      (230, 230, 230), -1)  # fmt: skip
        writer.write(img)
    writer.release()
    return path
