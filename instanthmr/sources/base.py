"""The sources' common types: :class:`Frame`, :class:`FrameSource` and their errors."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import cv2
import numpy as np

from ..errors import UserError


class SourceError(UserError, RuntimeError):
    """A source could not be opened or read; the message names it and the fix."""


class CameraNotFoundError(SourceError):
    """No camera answers at the requested index."""


@dataclass
class Frame:
    """One frame from a source.

    Attributes:
        image: RGB ``uint8`` array shaped (H, W, 3).
        index: 0-based position of the frame among the frames this source delivered.
        timestamp: seconds; container time for videos, time since opening for live sources.
        source: name of the source (file path, ``camera:0``, or the URL).
    """

    image: np.ndarray
    index: int
    timestamp: float
    source: str


class FrameSource:
    """Base class: an iterable of :class:`Frame` and a context manager.

    Attributes:
        name: what the frames come from (shown in logs and progress bars).
        is_live: True for cameras and streams (frames may be dropped to stay current).
        total_frames: number of frames when known in advance (for a progress bar), else None.
        fps: nominal frame rate when known, else None.
    """

    name: str = ""
    is_live: bool = False
    total_frames: int | None = None
    fps: float | None = None

    @property
    def dropped(self) -> int:
        """Frames skipped to stay current (always 0 for files)."""
        return 0

    def __iter__(self) -> Iterator[Frame]:
        raise NotImplementedError

    def close(self) -> None:
        """Release the underlying file or device; safe to call more than once."""

    def __enter__(self) -> FrameSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"


def bgr_to_rgb(image: np.ndarray) -> np.ndarray:
    """An OpenCV image (BGR, BGRA or grey) as RGB ``uint8`` (H, W, 3)."""
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
    if image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2RGB)
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
