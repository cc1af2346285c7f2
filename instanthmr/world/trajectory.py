"""Per-track motion in the world frame: ground trajectory, heading, speed, foot lock.

- **Trajectory**: the pelvis (mid-hip) dropped onto the ground, One-Euro smoothed in the
  world frame (X and Z only, so heights are never filtered), its ground speed, and the
  heading (the direction the hips face), smoothed alike.
- **Foot lock** (optional): while a foot is in contact (decided by
  :class:`~.contact.ContactTracker`), its ankle, heel and toe tips are shifted on the ground
  so their mean stays where the contact began: no sliding. On lift-off the foot is released
  (it jumps back by the slide it had accumulated).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from ..skeleton import JOINT_INDEX
from ..tracking.smoothing import OneEuroFilter, OneEuroParams

LEFT_HIP, RIGHT_HIP = JOINT_INDEX["left_hip"], JOINT_INDEX["right_hip"]
FOOT_POINTS: tuple[tuple[int, ...], tuple[int, ...]] = tuple(
    tuple(JOINT_INDEX[f"{side}_{n}"] for n in ("heel", "big_toe_tip", "small_toe_tip"))
    for side in ("left", "right")
)  # type: ignore[assignment]
"""Heel and toe tips of the left and right foot (contact points)."""
FOOT_LOCKED: tuple[tuple[int, ...], tuple[int, ...]] = (
    (JOINT_INDEX["left_ankle"], *FOOT_POINTS[0]),
    (JOINT_INDEX["right_ankle"], *FOOT_POINTS[1]),
)
"""Joints moved by the foot lock: ankle, heel and toe tips of each foot."""

TRAJECTORY_PRESETS: dict[str, OneEuroParams | None] = {
    "off": None,
    "responsive": OneEuroParams(min_cutoff=2.0, beta=8.0, d_cutoff=1.0),
    "default": OneEuroParams(min_cutoff=1.0, beta=5.0, d_cutoff=1.0),
    "smooth": OneEuroParams(min_cutoff=0.3, beta=1.0, d_cutoff=1.0),
}
"""One-Euro presets for the ground trajectory (metres; see ``docs/world.md``)."""


@dataclass
class MotionConfig:
    """Settings of the per-track motion stage and of foot contact (``docs/world.md``).

    Attributes:
        trajectory: a :data:`TRAJECTORY_PRESETS` name or :class:`OneEuroParams` ["default"].
        contact_height: a foot within this height of the person's lower foot may touch the
            floor, m [0.03].
        contact_speed: ... when slower than this in the image, m/s at the foot's depth [0.5].
        speed_window: shortest baseline of the foot's image speed, seconds [0.05]: two
            frames at 30 FPS, one at 20 FPS or less.
        trajectory_window: shortest baseline of the ground speed, seconds [0.25].
        foot_lock: pin feet in contact (changes ``joints_3d_world`` only) [False].
        forget_after: drop a track's state when unseen this long, seconds [2.0].
    """

    trajectory: str | OneEuroParams = "default"
    contact_height: float = 0.03
    contact_speed: float = 0.5
    speed_window: float = 0.05
    trajectory_window: float = 0.25
    foot_lock: bool = False
    forget_after: float = 2.0

    def __post_init__(self) -> None:
        if isinstance(self.trajectory, str) and self.trajectory not in TRAJECTORY_PRESETS:
            raise ValueError(
                f"unknown trajectory preset {self.trajectory!r}; use one of "
                f"{', '.join(TRAJECTORY_PRESETS)} or a OneEuroParams"
            )
        if min(self.contact_height, self.contact_speed, self.speed_window,
               self.trajectory_window) <= 0:  # fmt: skip
            raise ValueError(
                "contact_height, contact_speed, speed_window and trajectory_window must be "
                f"> 0: {self}"
            )

    @property
    def params(self) -> OneEuroParams | None:
        """The trajectory filter's parameters (None: no smoothing)."""
        if isinstance(self.trajectory, OneEuroParams):
            return self.trajectory
        return TRAJECTORY_PRESETS[self.trajectory]


@dataclass
class TrackMotion:
    """What one track's motion gives on one frame."""

    position: np.ndarray
    heading: float
    speed: float
    contact: tuple[bool, bool]
    joints: np.ndarray


@dataclass
class _State:
    ground: OneEuroFilter | None  # the ground position (x, z) and facing (x, z), together
    path: deque[tuple[float, float, float]] = field(default_factory=deque)
    anchors: list[np.ndarray | None] = field(default_factory=lambda: [None, None])
    seen: float = 0.0


def _speed(past: deque[tuple[float, float, float]], t: float, x: float, z: float,
           window: float) -> float:  # fmt: skip
    """Ground speed of ``(x, z)`` against the newest past sample at least ``window`` seconds
    old (else the oldest); records it. Zero when there is no earlier sample."""
    while len(past) > 1 and t - past[1][0] >= window:
        past.popleft()
    speed = 0.0
    if past and t > past[0][0]:
        t0, x0, z0 = past[0]
        speed = math.hypot(x - x0, z - z0) / (t - t0)
    past.append((t, x, z))
    return speed


class MotionTracker:
    """Trajectory, heading, speed and foot lock for every track, in the world frame."""

    def __init__(self, config: MotionConfig | None = None) -> None:
        self.config = config or MotionConfig()
        self._tracks: dict[int, _State] = {}

    def reset(self) -> None:
        """Forget every track."""
        self._tracks.clear()

    def _state(self, track_id: int, t: float) -> _State:
        for tid in [k for k, s in self._tracks.items() if t - s.seen > self.config.forget_after]:
            del self._tracks[tid]
        st = self._tracks.get(track_id)
        if st is None or t < st.seen:
            p = self.config.params
            st = _State(OneEuroFilter(p) if p else None)
            self._tracks[track_id] = st
        st.seen = t
        return st

    def update(
        self, track_id: int, joints_world: np.ndarray, t: float, contact: tuple[bool, bool]
    ) -> TrackMotion:
        """One track's motion on this frame from its (70, 3) world joints at time ``t`` and
        its feet's ``(left, right)`` contact."""
        cfg = self.config
        st = self._state(track_id, t)
        lx, _, lz = joints_world[LEFT_HIP].tolist()
        rx, _, rz = joints_world[RIGHT_HIP].tolist()
        fx, fz = rz - lz, lx - rx  # up x (right - left), as (x, z)
        norm = max(math.hypot(fx, fz), 1e-9)
        state = np.array([0.5 * (lx + rx), 0.5 * (lz + rz), fx / norm, fz / norm])
        if st.ground is not None:
            state = st.ground(state, t)
        ground = state[:2]
        heading = math.atan2(-state[2], -state[3])
        speed = _speed(st.path, t, float(state[0]), float(state[1]), cfg.trajectory_window)
        contact = (bool(contact[0]), bool(contact[1]))
        out = joints_world
        if cfg.foot_lock:
            out = joints_world.copy()
            for side in (0, 1):
                idx = list(FOOT_LOCKED[side])
                centre = out[idx][:, [0, 2]].mean(axis=0)
                if not contact[side]:
                    st.anchors[side] = None
                    continue
                if st.anchors[side] is None:
                    st.anchors[side] = centre
                out[np.ix_(idx, [0, 2])] += st.anchors[side] - centre
        position = np.array([ground[0], 0.0, ground[1]])
        return TrackMotion(position, heading, speed, contact, out)
