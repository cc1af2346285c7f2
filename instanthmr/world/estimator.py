"""Online ground-plane estimate from people's still feet.

Each frame, every tracked person's heels and toe tips (MHR70 joints 15-20, in
``joints_3d_cam``) are compared with the same track's position ``speed_window`` (0.1 s)
earlier, the closest earlier frame at least that old (a frame ago at 10 FPS or less). A point
moving slower than ``still_speed`` (m/s; 0.3 m/s is 1 cm per frame at 30 FPS) is a
still-foot sample: a foot planted on the floor. The longer baseline keeps centimetre jitter
from reading as motion. Every ``refit_every`` frames with new samples,
:func:`~instanthmr.world.plane.fit_ground_plane` runs on all samples so far. The estimate
becomes **known** once a fit has ``min_inliers`` inliers, and **frozen** (never refitted)
once it is confident: ``confidence`` reaches 1 and two fits in a row agree within
``freeze_height`` metres and ``freeze_angle`` degrees.

``confidence = min(1, inliers / confident_inliers) * min(1, minor_extent / confident_extent)``:
it grows with the number of supporting foot points and with how far apart they lie across
their main direction (feet along one line leave the tilt about that line unknown).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from ..results import PersonResult
from ..skeleton import JOINT_INDEX
from .frame import WorldFrame
from .plane import fit_ground_plane

FOOT_JOINTS: tuple[int, ...] = tuple(
    JOINT_INDEX[n]
    for n in ("left_big_toe_tip", "left_small_toe_tip", "left_heel",
              "right_big_toe_tip", "right_small_toe_tip", "right_heel")
)  # fmt: skip
"""MHR70 indices of the heels and toe tips (15-20)."""
NECK = JOINT_INDEX["neck"]
ANKLES = (JOINT_INDEX["left_ankle"], JOINT_INDEX["right_ankle"])


@dataclass
class EstimatorConfig:
    """Settings of :class:`GroundEstimator` (defaults in brackets are the documented ones).

    Attributes:
        still_speed: a foot point slower than this (m/s) is a still-foot sample [0.3].
        speed_window: shortest baseline the speed is measured over, seconds [0.1].
        min_inliers: inliers needed before the world frame is called known [30].
        confident_inliers: inliers for full confidence [300].
        confident_extent: in-plane spread across the main direction for full confidence,
            metres [1.0].
        min_extent: below this spread the points are called collinear, metres [0.15].
        threshold: RANSAC inlier distance, metres [0.03].
        refit_every: frames between fits while not frozen [10].
        freeze_height: fits agreeing within this height (m) may freeze [0.01].
        freeze_angle: ... and within this angle (degrees) [0.5].
        max_samples: samples kept (the oldest are dropped first) [6000].
    """

    still_speed: float = 0.3
    speed_window: float = 0.1
    min_inliers: int = 30
    confident_inliers: int = 300
    confident_extent: float = 1.0
    min_extent: float = 0.15
    threshold: float = 0.03
    refit_every: int = 10
    freeze_height: float = 0.01
    freeze_angle: float = 0.5
    max_samples: int = 6000

    def __post_init__(self) -> None:
        if min(self.still_speed, self.speed_window, self.threshold, self.min_extent) <= 0:
            raise ValueError(
                f"still_speed, speed_window, threshold and min_extent must be > 0: {self}"
            )
        if not 3 <= self.min_inliers <= self.confident_inliers <= self.max_samples:
            raise ValueError(f"need 3 <= min_inliers <= confident_inliers <= max_samples: {self}")
        if self.refit_every < 1:
            raise ValueError(f"refit_every must be >= 1, got {self.refit_every}")


@dataclass
class Estimate:
    """The estimator's state after a frame.

    Attributes:
        frame: the world frame, or None while unknown.
        confidence: 0..1 (see the module docstring).
        inliers: foot points supporting the plane.
        samples: still-foot samples collected.
        frozen: the estimate no longer changes.
        reason: why the world frame is unknown ("" when known).
    """

    frame: WorldFrame | None = None
    confidence: float = 0.0
    inliers: int = 0
    samples: int = 0
    frozen: bool = False
    reason: str = "no still-foot samples yet"


@dataclass
class GroundEstimator:
    """Collects still-foot points per track and fits the ground plane online."""

    config: EstimatorConfig = field(default_factory=EstimatorConfig)

    def __post_init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """Forget every sample and the estimate."""
        self._last: dict[int, deque[tuple[float, np.ndarray]]] = {}
        self._points: list[np.ndarray] = []
        self._count = 0
        self._down = np.zeros(3)
        self._frames_since_fit = 0
        self._new = False
        self.estimate = Estimate()

    def add(self, persons: list[PersonResult], timestamp: float) -> None:
        """Take the still feet of this frame's tracked persons."""
        if self.estimate.frozen:
            return
        for p in persons:
            if p.track_id < 0:
                continue
            joints = p.joints_3d_cam.astype(np.float64)
            feet = joints[list(FOOT_JOINTS)]
            past = self._last.setdefault(p.track_id, deque())
            if past and timestamp <= past[-1][0]:
                past.clear()  # time went back or repeated: start this track again
            while len(past) > 1 and timestamp - past[1][0] >= self.config.speed_window:
                past.popleft()  # keep the oldest sample at least speed_window old
            past.append((timestamp, feet))
            t0, old = past[0]
            if t0 >= timestamp or timestamp - t0 > 4 * self.config.speed_window:
                continue
            speed = np.linalg.norm(feet - old, axis=1) / (timestamp - t0)
            still = feet[speed < self.config.still_speed]
            if len(still):
                self._points.append(still)
                self._count += len(still)
                self._new = True
                down = joints[list(ANKLES)].mean(axis=0) - joints[NECK]
                self._down += down / max(np.linalg.norm(down), 1e-9)
        for tid in [k for k, v in self._last.items() if timestamp - v[-1][0] > 2.0]:
            del self._last[tid]  # a track unseen for 2 s has ended
        while self._count > self.config.max_samples and len(self._points) > 1:
            self._count -= len(self._points.pop(0))

    def update(self, persons: list[PersonResult], timestamp: float) -> Estimate:
        """Add this frame's samples and refit when due; returns the current estimate."""
        self.add(persons, timestamp)
        est = self.estimate
        if est.frozen:
            return est
        est.samples = self._count
        self._frames_since_fit += 1
        due = self._frames_since_fit >= self.config.refit_every or est.frame is None
        if not (self._new and due):
            return est
        self._frames_since_fit, self._new = 0, False
        if self._count < self.config.min_inliers:
            est.reason = (
                f"{self._count} still-foot samples, need {self.config.min_inliers}: "
                "the world frame stays unknown until people stand or walk in view"
            )
            return est
        self._fit(est)
        return est

    def _fit(self, est: Estimate) -> None:
        cfg = self.config
        pts = np.concatenate(self._points)
        try:
            plane = fit_ground_plane(
                pts, down=self._down, threshold=cfg.threshold, min_extent=cfg.min_extent
            )
            frame = WorldFrame.from_plane(plane)
        except ValueError as err:  # DegeneratePlaneError, or a height outside HEIGHT_RANGE
            est.reason = f"no ground plane yet: {err}"
            return
        if plane.num_inliers < cfg.min_inliers:
            est.reason = (
                f"only {plane.num_inliers} foot points agree on a plane, need {cfg.min_inliers}"
            )
            return
        confidence = min(1.0, plane.num_inliers / cfg.confident_inliers) * min(
            1.0, plane.extent[1] / cfg.confident_extent
        )
        prev = est.frame
        if prev is not None and confidence >= 1.0:
            angle = math.degrees(math.acos(float(np.clip(prev.normal @ frame.normal, -1, 1))))
            dh = abs(prev.camera_height - frame.camera_height)
            est.frozen = dh <= cfg.freeze_height and angle <= cfg.freeze_angle
        est.frame, est.confidence, est.inliers = frame, confidence, plane.num_inliers
        est.reason = ""
        if est.frozen:
            self._points, self._last = [], {}
