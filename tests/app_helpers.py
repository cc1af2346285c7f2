"""Helpers shared by the browser-app tests (tests/test_app*.py): images, models, clients.

The pipeline behind the test clients uses the analytic oracle HMR model (its joints sit on
the bright blob in each crop, see tests/onnx_builders.py) and :class:`BlobDetector`, a real
if simple OpenCV detector, so persons appear where a test draws them.
"""

from __future__ import annotations

import time
from pathlib import Path

import cv2
import numpy as np
import onnx
from fastapi.testclient import TestClient
from onnx_builders import build_oracle
from test_pipeline import BlobDetector

from instanthmr.pipeline import PosePipeline
from instanthmr.webapp import AppConfig, create_app


class SlowBlobDetector(BlobDetector):
    """BlobDetector that takes ``delay`` seconds per call (a slow model, for backpressure)."""

    def __init__(self, delay: float) -> None:
        super().__init__()
        self.delay = delay

    def detect(self, image_rgb: np.ndarray):
        time.sleep(self.delay)
        return super().detect(image_rgb)


def blob_image(centres: list[tuple[int, int]], size: tuple[int, int] = (320, 240)) -> np.ndarray:
    """RGB image, black with a bright red disc (radius 10) at each centre."""
    img = np.zeros((size[1], size[0], 3), np.uint8)
    for c in centres:
        cv2.circle(img, c, 10, (255, 0, 0), -1)
    return cv2.GaussianBlur(img, (9, 9), 3)


def jpeg(image_rgb: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(image_rgb, cv2.COLOR_RGB2BGR))
    assert ok
    return buf.tobytes()


def save_oracle(folder: Path) -> Path:
    """The analytic oracle HMR model saved as ``folder/oracle.onnx``."""
    path = folder / "oracle.onnx"
    onnx.save(build_oracle(), path)
    return path


def make_client(oracle: Path, detector=None, **config) -> TestClient:
    pipe = PosePipeline(oracle, device="cpu", detector=detector or BlobDetector())
    return TestClient(create_app(pipe, AppConfig(**config)))
