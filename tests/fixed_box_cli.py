"""``python tests/fixed_box_cli.py COMMAND ARGS...``: the real ``instanthmr COMMAND`` in its
own process, with one fixed person box per frame instead of RF-DETR.

For tests that run commands as a user would (tests/test_signals.py signals a running
demo; tests/test_docs_promises.py runs the commands the docs show): a random-init RF-DETR
does not reliably find a person, and the animation exports need a tracked one. Everything
else (the HMR model, the sources, the outputs, the signal handling) is the product's own.
"""

from __future__ import annotations

import sys

import numpy as np
import supervision as sv


class FixedBoxDetector:
    """One person box in the middle of every frame, score 0.9."""

    variant, backend, provider, random_init = "fixed-box", "test", "none", False

    def detect(self, image: np.ndarray) -> sv.Detections:
        h, w = image.shape[:2]
        box = np.array([[0.3 * w, 0.1 * h, 0.6 * w, 0.95 * h]], dtype=np.float32)
        return sv.Detections(xyxy=box, confidence=np.array([0.9], np.float32),
                             class_id=np.array([1]))  # fmt: skip


if __name__ == "__main__":
    import instanthmr.detector

    instanthmr.detector.create_detector = lambda *a, **k: FixedBoxDetector()
    from instanthmr.cli import main

    raise SystemExit(main(sys.argv[1:]))
