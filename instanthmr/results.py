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
_WORLD_SHAPES: dict[str, tuple[int, ...]] = {"joints_3d_world": (NUM_JOINTS, 3), "root_world": (3,)}


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
        mhr_params: (204,) MHR model parameters: ``0:3`` root translation (0), ``3:6`` root
            rotation as extrinsic XYZ Euler angles (radians), ``6:136`` joint parameters
            (the last six are size channels), ``136:204`` bone scales.
        shape_params: (45,) MHR identity blend shapes.
        focal_length: focal length of the full-frame virtual pinhole, pixels: the image
            diagonal for the published model; the caller's focal (default 1.05 diagonals)
            for focal-aware model files.
        principal_point: (2,) principal point of that pinhole, pixels.
        image_size: ``(width, height)`` of the frame.
        track_id: stable identity across frames; -1 when not tracked.
        joints_3d_world: (70, 3) joints in the world frame, metres, or None when no world
            frame is known (see ``docs/world.md``).
        root_world: (3,) the pelvis (mid-hip) in the world frame, metres, or None.

    The camera frame is right-handed: X right, Y down, Z forward. The world frame is
    gravity-aligned: X right, Y up, Z back towards the camera, origin on the ground below
    the camera, metres.
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
    joints_3d_world: np.ndarray | None = None
    root_world: np.ndarray | None = None

    def __post_init__(self) -> None:
        for name, shape in _PERSON_SHAPES.items():
            object.__setattr__(self, name, _as_array(name, getattr(self, name), shape))
        for name, shape in _WORLD_SHAPES.items():
            if getattr(self, name) is not None:
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

    def with_world(self, joints_3d_world: np.ndarray, root_world: np.ndarray) -> PersonResult:
        """A copy with the world fields set; only those two are validated (the rest already
        were): the world stage's fast path, once per person and frame."""
        out = object.__new__(PersonResult)
        out.__dict__.update(self.__dict__)  # a shallow copy, without copy.copy's overhead
        for name, value in (("joints_3d_world", joints_3d_world), ("root_world", root_world)):
            object.__setattr__(out, name, _as_array(name, value, _WORLD_SHAPES[name]))
        return out


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


@dataclass(frozen=True)
class PersonWorld:
    """One tracked person's place in the world on one frame (see ``docs/world.md``).

    Attributes:
        track_id: the person's track id.
        position: (3,) the point on the ground below the pelvis, world frame, metres
            (``y`` = 0), smoothed in the world frame.
        heading: the way the person faces, radians about +Y: 0 faces -Z (away from the
            camera), positive turns left (counter-clockwise seen from above).
        speed: ground speed, m/s.
        contact: (2,) bool, ``left, right`` foot on the ground.
    """

    track_id: int
    position: np.ndarray
    heading: float
    speed: float
    contact: tuple[bool, bool]

    def __post_init__(self) -> None:
        object.__setattr__(self, "position", _as_array("position", self.position, (3,)))
        for name in ("heading", "speed"):
            value = float(getattr(self, name))
            if not np.isfinite(value):
                raise ValueError(f"{name} must be finite, got {value}")
            object.__setattr__(self, name, value)
        if len(self.contact) != 2:
            raise ValueError(f"contact must be (left, right), got {self.contact}")
        object.__setattr__(self, "contact", (bool(self.contact[0]), bool(self.contact[1])))
        object.__setattr__(self, "track_id", int(self.track_id))


@dataclass(frozen=True)
class WorldInfo:
    """Whether a frame's world frame is known, how well, and each person's place in it.

    Attributes:
        known: a world frame is known (``joints_3d_world`` is then set for every person).
        confidence: 0..1, from the uncertainty against its limits (0.5 at the limits, 1 for
            a user-given or loaded world frame).
        source: ``"fitted"``, ``"user"``, ``"file"``, or ``""`` while unknown.
        reason: why the world frame is unknown (``""`` when known).
        frozen: the world frame never changes: a user-given or loaded one.
        inliers: ground samples supporting the fitted floor (0 when given).
        plane: (4,) the ground plane in the camera frame, ``a, b, c, d`` with
            ``a x + b y + c z + d = 0``, ``(a, b, c)`` the unit up vector and ``d`` the
            camera height; None while unknown.
        camera_height: metres above the ground, or None.
        pitch_deg: degrees the camera looks below the horizon, or None.
        roll_deg: degrees the camera is turned about its optical axis, or None.
        persons: one :class:`PersonWorld` per tracked person of the frame (in frame
            order) when known, empty otherwise; persons without a track id get none, so
            match them by ``track_id`` (:meth:`person`).
        height_std: standard deviation of ``camera_height``, metres (0 for a given frame;
            None while unknown). ``camera_height +- 2 height_std`` is a 95% interval.
        pitch_std_deg: standard deviation of ``pitch_deg``, degrees (likewise).
        roll_std_deg: standard deviation of ``roll_deg``, degrees (likewise).
        settled: a fitted frame has settled: it no longer changes unless new evidence
            disagrees with it beyond its uncertainty, when it re-opens.
        reopened: how many times a settled fitted frame has re-opened so far.
        levels: ground levels seen (the floor and, for example, a platform); 0 when given.
    """

    known: bool = False
    confidence: float = 0.0
    source: str = ""
    reason: str = ""
    frozen: bool = False
    inliers: int = 0
    plane: np.ndarray | None = None
    camera_height: float | None = None
    pitch_deg: float | None = None
    roll_deg: float | None = None
    persons: tuple[PersonWorld, ...] = ()
    height_std: float | None = None
    pitch_std_deg: float | None = None
    roll_std_deg: float | None = None
    settled: bool = False
    reopened: int = 0
    levels: int = 0

    def __post_init__(self) -> None:
        if self.plane is not None:
            object.__setattr__(self, "plane", _as_array("plane", self.plane, (4,)))
        if self.known and self.plane is None:
            raise ValueError("a known WorldInfo needs its plane")
        for name in ("height_std", "pitch_std_deg", "roll_std_deg"):
            value = getattr(self, name)
            if value is not None:
                if not (np.isfinite(value) and value >= 0):
                    raise ValueError(f"{name} must be a finite number >= 0 or None, got {value}")
                object.__setattr__(self, name, float(value))
        object.__setattr__(self, "reopened", int(self.reopened))
        object.__setattr__(self, "levels", int(self.levels))
        object.__setattr__(self, "persons", tuple(self.persons))

    def person(self, track_id: int) -> PersonWorld | None:
        """The world record of one track on this frame, or None."""
        return next((p for p in self.persons if p.track_id == track_id), None)


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
        world: the world-frame stage's report (:class:`WorldInfo`), or None when the
            pipeline runs without it.
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
    world: WorldInfo | None = None
    detection_frame: int | None = None

    def __post_init__(self) -> None:
        self.persons = list(self.persons)
        if self.world is not None and not isinstance(self.world, WorldInfo):
            raise TypeError(f"world must be a WorldInfo or None, got {type(self.world).__name__}")
        if self.world is not None:
            extra = {w.track_id for w in self.world.persons} - {p.track_id for p in self.persons}
            if extra:
                raise ValueError(f"world.persons has track ids {sorted(extra)} not in persons")
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
