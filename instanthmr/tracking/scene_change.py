"""A cheap "someone new may be here" check: change outside every tracked person's box.

Between detector runs the pipeline only follows the people it already tracks (their boxes
are carried from their own keypoints), so a person walking into the frame is found only
when the detector runs next. :class:`MotionCheck` decides, for the cost of a downscale and
a subtraction (about 0.3 ms at 640x480), whether that should be now:

1. When the detector runs, the frame is shrunk to a small grey image (``width`` pixels
   wide, 64 by default, area-averaged, which also averages sensor noise away) and kept as
   the *reference*, with the boxes of the people known on that frame.
2. On a frame without detection, the frame is shrunk the same way and compared with the
   reference. Cells whose grey level changed by more than ``threshold`` count, except
   those under a tracked person's box, now or on the reference frame (with a margin):
   those people are followed already, and the places they left show background.
3. The check fires when the largest 8-connected region of changed cells covers at least
   ``min_area`` of the frame (0.3% by default: 9 cells of 64x48, about a quarter of a
   person one third of the image tall).

Everything that changes the scene outside the tracked people fires it: a person entering,
but also a large moving object, a light switched on or a camera that moves. Such frames
deserve a detector run too; the scheduler bounds how often it happens (see
:class:`~instanthmr.tracking.schedule.StrideScheduler`, ``min_motion_gap``).
"""

from __future__ import annotations

import cv2
import numpy as np


class MotionCheck:
    """Change outside the tracked boxes since the last detection, on a small grey frame.

    Args:
        width: width of the downscaled frame in pixels (its height keeps the aspect).
        threshold: grey-level change (0-255) above which a cell counts as changed.
        min_area: smallest changed region, as a fraction of the frame, that fires.
        margin: each box is grown by this fraction of its size (and one cell) before it
            masks the change: limbs and shadows stick out of a box.
    """

    def __init__(
        self,
        width: int = 64,
        threshold: float = 18.0,
        min_area: float = 0.003,
        margin: float = 0.1,
    ) -> None:
        if width < 8:
            raise ValueError(f"width must be >= 8 pixels, got {width}")
        if not 0 < threshold < 255:
            raise ValueError(f"threshold must be a grey level in (0, 255), got {threshold}")
        if not 0 < min_area <= 1:
            raise ValueError(f"min_area must be a fraction of the frame in (0, 1], got {min_area}")
        if margin < 0:
            raise ValueError(f"margin must be >= 0, got {margin}")
        self.width = int(width)
        self.threshold = float(threshold)
        self.min_area = float(min_area)
        self.margin = float(margin)
        self.reset()

    def reset(self) -> None:
        """Forget the reference frame (the next :meth:`change` reports no change)."""
        self._ref: np.ndarray | None = None
        self._ref_mask: np.ndarray | None = None
        self._size: tuple[int, int] | None = None

    @property
    def has_reference(self) -> bool:
        """Whether a reference frame is set."""
        return self._ref is not None

    def _small(self, image: np.ndarray) -> np.ndarray:
        h, w = image.shape[:2]
        sh = max(1, round(h * self.width / w))
        small = cv2.resize(image, (self.width, sh), interpolation=cv2.INTER_AREA)
        if small.ndim == 3:
            small = cv2.cvtColor(small, cv2.COLOR_RGB2GRAY)
        return small.astype(np.int16)

    def _mask(self, boxes: np.ndarray, shape: tuple[int, int], size: tuple[int, int]) -> np.ndarray:
        mask = np.zeros(shape, dtype=bool)
        b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        if not len(b):
            return mask
        sx, sy = shape[1] / size[0], shape[0] / size[1]
        grow = (b[:, 2:] - b[:, :2]) * self.margin / 2
        lo = np.floor((b[:, :2] - grow) * [sx, sy]) - 1
        hi = np.ceil((b[:, 2:] + grow) * [sx, sy]) + 1
        lo = np.clip(lo, 0, [shape[1], shape[0]]).astype(int)
        hi = np.clip(hi, 0, [shape[1], shape[0]]).astype(int)
        for (x0, y0), (x1, y1) in zip(lo, hi, strict=True):
            mask[y0:y1, x0:x1] = True
        return mask

    def set_reference(self, image: np.ndarray, boxes: np.ndarray | None = None) -> None:
        """Keep ``image`` (RGB or grey) as the reference, with the people's ``boxes`` on it."""
        self._ref = self._small(image)
        self._size = (int(image.shape[1]), int(image.shape[0]))
        self._ref_mask = self._mask(np.zeros((0, 4)) if boxes is None else boxes,
                                    self._ref.shape, self._size)  # fmt: skip

    def add_boxes(self, boxes: np.ndarray) -> None:
        """Mask more boxes on the reference frame (the people its detection found)."""
        if self._ref is None or self._ref_mask is None or self._size is None:
            return
        self._ref_mask |= self._mask(boxes, self._ref.shape, self._size)

    def change(self, image: np.ndarray, boxes: np.ndarray | None = None) -> float:
        """Largest changed region outside ``boxes`` (and the reference boxes), as a
        fraction of the frame; 0 without a reference, 1 when the frame size changed."""
        if self._ref is None or self._ref_mask is None:
            return 0.0
        if (int(image.shape[1]), int(image.shape[0])) != self._size:
            return 1.0
        small = self._small(image)
        changed = np.abs(small - self._ref) > self.threshold
        changed &= ~self._ref_mask
        if boxes is not None:
            changed &= ~self._mask(boxes, small.shape, self._size)
        if not changed.any():
            return 0.0
        n, _, stats, _ = cv2.connectedComponentsWithStats(changed.astype(np.uint8), connectivity=8)
        largest = int(stats[1:, cv2.CC_STAT_AREA].max()) if n > 1 else 0
        return largest / changed.size

    def fires(self, image: np.ndarray, boxes: np.ndarray | None = None) -> bool:
        """Whether :meth:`change` reaches ``min_area``."""
        return self.change(image, boxes) >= self.min_area
