"""Typed results: one :class:`PersonResult` per person, one :class:`FrameResult` per frame.

Every array is validated at construction and the error names the expected shape. A frame
with nobody in it is an empty :class:`FrameResult` (never ``None``), and the stacked
accessors such as :attr:`FrameResult.joints_2d` always return arrays, shaped ``(0, 70, 2)``
when the frame is empty.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from .skeleton import NUM_JOINTS

NUM_MHR_PARAMS = 204
NUM_SHAPE_PARAMS = 45

_PERSON_SHAPES: dict[str, tuple[int, ...]] = {
    "bbox": (4,),
    "joints_2d": (NUM_JOINTS, 2),
    "joints_3d_local": (NUM_JOINTS, 3),
    "cam_trans": (3,),
    "mhr_params": (NUM_MHR_PARAMS,),
    "shape_params": (NUM_SHAPE_PARAMS,),
    "principal_point": (2,),
}


def _as_array(name: str, value: object, shape: tuple[int, ...]) -> np.ndarray:
    arr = np.asarray(value, dtype=np.float32)
    if arr.shape != shape:
        raise ValueError(f"{name} must have shape {shape}, got {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or infinite values")
    return arr


@dataclass(frozen=True)
class PersonResult:
    """One person in one frame.

    Attributes:
        bbox: (4,) detector box ``x1, y1, x2, y2`` in full-frame pixels.
        score: detector confidence (1.0 for boxes the caller brought).
        joints_2d: (70, 2) MHR70 keypoints in full-frame pixels.
        joints_3d_local: (70, 3) body-centred 3D keypoints in metres (camera axes).
        cam_trans: (3,) body translation in the camera frame, metres.
        mhr_params: (204,) MHR pose and scale parameters (opaque, passed through).
        shape_params: (45,) MHR identity blend shapes.
        focal_length: focal length of the full-frame virtual pinhole, pixels.
        principal_point: (2,) principal point of that pinhole, pixels.
        image_size: ``(width, height)`` of the frame.
        track_id: stable identity across frames; -1 when not tracked.

    The camera frame is right-handed: X right, Y down, Z forward.
    """

    bbox: np.ndarray
    score: float
    joints_2d: np.ndarray
    joints_3d_local: np.ndarray
    cam_trans: np.ndarray
    mhr_params: np.ndarray
    shape_params: np.ndarray
    focal_length: float
    principal_point: np.ndarray
    image_size: tuple[int, int]
    track_id: int = -1

    def __post_init__(self) -> None:
        for name, shape in _PERSON_SHAPES.items():
            object.__setattr__(self, name, _as_array(name, getattr(self, name), shape))
        if not np.isfinite(self.score):
            raise ValueError(f"score must be finite, got {self.score}")
        object.__setattr__(self, "score", float(self.score))
        if not (np.isfinite(self.focal_length) and self.focal_length > 0):
            raise ValueError(f"focal_length must be a positive number, got {self.focal_length}")
        object.__setattr__(self, "focal_length", float(self.focal_length))
        size = tuple(int(v) for v in self.image_size)
        if len(size) != 2 or min(size) <= 0:
            raise ValueError(f"image_size must be (width, height) > 0, got {self.image_size}")
        object.__setattr__(self, "image_size", size)
        object.__setattr__(self, "track_id", int(self.track_id))

    @property
    def joints_3d_cam(self) -> np.ndarray:
        """(70, 3) camera-space joints in metres: ``joints_3d_local + cam_trans``."""
        return self.joints_3d_local + self.cam_trans

    @property
    def intrinsics(self) -> np.ndarray:
        """(3, 3) matrix of the full-frame virtual pinhole."""
        f = self.focal_length
        cx, cy = self.principal_point
        return np.array([[f, 0, cx], [0, f, cy], [0, 0, 1]], dtype=np.float32)

    def replace(self, **changes: object) -> PersonResult:
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)


STAGES: tuple[str, ...] = ("detect", "crop", "hmr", "track", "total")


@dataclass
class StageTimings:
    """Wall-clock milliseconds spent in each stage of one frame."""

    detect: float = 0.0
    crop: float = 0.0
    hmr: float = 0.0
    track: float = 0.0
    total: float = 0.0

    def as_dict(self) -> dict[str, float]:
        """The timings keyed by stage name."""
        return dataclasses.asdict(self)


@dataclass
class FrameResult:
    """Everyone found in one frame, with per-stage timings.

    Attributes:
        persons: the people in the frame, possibly empty.
        frame_index: 0-based index of the frame in its source.
        image_size: ``(width, height)`` of the frame.
        timings: milliseconds per stage.
        detector_ran: whether the person detector ran on this frame (False when boxes
            came from tracking or from the caller).
        timestamp: seconds since the start of the source, when known.
        boxes_from: where this frame's boxes came from: ``"detector"``, ``"tracks"``
            (carried from last frame's keypoints), ``"caller"`` or ``""`` (no boxes).
        detect_reason: why the detector ran (``"stride"``, ``"no-tracks"``,
            ``"box-left-frame"``, ...), or ``""`` when it did not.
        detection_frame: the frame the detector saw for the boxes used here: this frame
            (synchronous detector) or an earlier one (``async_detector``: boxes merged
            when they arrive); None when no detection was used on this frame.
    """

    persons: list[PersonResult] = field(default_factory=list)
    frame_index: int = 0
    image_size: tuple[int, int] = (0, 0)
    timings: StageTimings = field(default_factory=StageTimings)
    detector_ran: bool = False
    timestamp: float | None = None
    boxes_from: str = ""
    detect_reason: str = ""
    detection_frame: int | None = None

    def __post_init__(self) -> None:
        self.persons = list(self.persons)
        for i, p in enumerate(self.persons):
            if not isinstance(p, PersonResult):
                raise TypeError(f"persons[{i}] must be a PersonResult, got {type(p).__name__}")
        self.image_size = tuple(int(v) for v in self.image_size)  # type: ignore[assignment]
        if len(self.image_size) != 2:
            raise ValueError(f"image_size must be (width, height), got {self.image_size}")

    def __len__(self) -> int:
        return len(self.persons)

    def __iter__(self) -> Iterator[PersonResult]:
        return iter(self.persons)

    def __getitem__(self, i: int) -> PersonResult:
        return self.persons[i]

    def _stack(self, attr: str, shape: tuple[int, ...]) -> np.ndarray:
        if not self.persons:
            return np.zeros((0, *shape), dtype=np.float32)
        return np.stack([getattr(p, attr) for p in self.persons]).astype(np.float32)

    @property
    def boxes(self) -> np.ndarray:
        """(N, 4) boxes, xyxy pixels."""
        return self._stack("bbox", (4,))

    @property
    def scores(self) -> np.ndarray:
        """(N,) detector scores."""
        return np.array([p.score for p in self.persons], dtype=np.float32)

    @property
    def track_ids(self) -> np.ndarray:
        """(N,) track ids (int64; -1 for untracked persons)."""
        return np.array([p.track_id for p in self.persons], dtype=np.int64)

    @property
    def joints_2d(self) -> np.ndarray:
        """(N, 70, 2) keypoints in full-frame pixels."""
        return self._stack("joints_2d", (NUM_JOINTS, 2))

    @property
    def joints_3d_cam(self) -> np.ndarray:
        """(N, 70, 3) camera-space joints in metres."""
        return self._stack("joints_3d_cam", (NUM_JOINTS, 3))

    @property
    def cam_trans(self) -> np.ndarray:
        """(N, 3) camera translations in metres."""
        return self._stack("cam_trans", (3,))
