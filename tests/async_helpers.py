"""Synthetic scenes and small real detectors for the async-detector and detect-on-need tests.

:class:`BlobFinder` is a real (if simple) detector: OpenCV connected components of the
bright red blobs that stand for people; the analytic oracle HMR model (onnx_builders) puts
its keypoints on those blobs. Frames carry their index in pixel (0, 0) of the green
channel, so a detector can tell which frame it was given.
"""

from __future__ import annotations

import time

import cv2
import numpy as np
import supervision as sv
from batch_helpers import red_components

STEADY_SPREAD = 1 / (1.2 * 1.15)  # carried boxes keep their size (see corner_offsets)


def blobs(size: tuple[int, int], centres: list[tuple[float, float]], sigma: float = 6.0,
          background: np.ndarray | None = None, index: int = 0) -> np.ndarray:  # fmt: skip
    """An RGB frame with a Gaussian red blob per centre over ``background`` (or black)."""
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    v = np.zeros((h, w))
    for x0, y0 in centres:
        v = np.maximum(v, 255 * np.exp(-((xx - x0) ** 2 + (yy - y0) ** 2) / (2 * sigma**2)))
    img = np.zeros((h, w, 3), np.uint8) if background is None else background.copy()
    img[..., 0] = np.maximum(img[..., 0], np.round(v).astype(np.uint8))
    img[0, 0, 1] = index % 256
    return img


def textured_background(size: tuple[int, int], seed: int = 0) -> np.ndarray:
    """A static scene: smooth random texture, red kept under the oracle's blob threshold."""
    w, h = size
    rng = np.random.default_rng(seed)
    small = rng.uniform(0, 1, (h // 16 + 1, w // 16 + 1, 3))
    tex = cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC).clip(0, 1)
    img = np.empty((h, w, 3), np.uint8)
    img[..., 0] = (tex[..., 0] * 40).astype(np.uint8)
    img[..., 1:] = (40 + tex[..., 1:] * 180).astype(np.uint8)
    return img


def add_noise(img: np.ndarray, rng: np.random.Generator, sigma: float = 4.0) -> np.ndarray:
    """Sensor noise on a frame (the red channel stays under the blob threshold)."""
    noisy = img.astype(np.float64) + rng.normal(0, sigma, img.shape)
    out = noisy.clip(0, 255).astype(np.uint8)
    out[0, 0, 1] = img[0, 0, 1]
    return out


class BlobFinder:
    """Bright red blobs -> person boxes; records which frames it saw; optional delay."""

    def __init__(self, pad: float = 20.0, delay_s: float = 0.0) -> None:
        self.pad = pad
        self.delay_s = delay_s
        self.seen: list[int] = []

    def detect(self, image_rgb: np.ndarray) -> sv.Detections:
        self.seen.append(int(image_rgb[0, 0, 1]))
        if self.delay_s:
            time.sleep(self.delay_s)
        return red_components(image_rgb, threshold=60, pad=self.pad)
