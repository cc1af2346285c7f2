"""One frame's tracked persons as arrays, each body moved to its corrected depth.

The world stage builds one :class:`Observation` per frame from the persons the model gave
(before any smoothing, so the feet carry no filter lag); the ground estimate and the foot
contacts read it. See :mod:`.depth` for the depth correction.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

from ..results import PersonResult
from ..skeleton import JOINT_INDEX
from .depth import Depth, depth_from_keypoints

FOOT_JOINTS: tuple[int, ...] = tuple(
    JOINT_INDEX[n]
    for n in ("left_big_toe_tip", "left_small_toe_tip", "left_heel",
              "right_big_toe_tip", "right_small_toe_tip", "right_heel")
)  # fmt: skip
"""MHR70 indices of the toe tips and heels, left then right (15-20)."""
MOVING = [JOINT_INDEX[f"{side}_{n}"] for side in ("left", "right")
          for n in ("ankle", "heel", "big_toe_tip", "small_toe_tip")]  # fmt: skip
"""Per foot, the keypoints whose mean image motion is the foot's: ankle, heel, toe tips."""


@dataclass(frozen=True)
class Observation:
    """The tracked persons of one frame (P of them).

    Attributes:
        index: (P,) each person's position in the frame's person list.
        track: (P,) track ids.
        local: (P, 70, 3) ``joints_3d_local``, metres.
        trans: (P, 3) ``cam_trans`` moved to the corrected depth, metres.
        keypoints: (P, 70, 2) ``joints_2d``, pixels.
        focal: (P,) focal lengths, pixels.
        depth: the depth corrections (:class:`~.depth.Depth`).
    """

    index: np.ndarray
    track: np.ndarray
    local: np.ndarray
    trans: np.ndarray
    keypoints: np.ndarray
    focal: np.ndarray
    depth: Depth

    def __len__(self) -> int:
        return len(self.track)

    @property
    def joints(self) -> np.ndarray:
        """(P, 70, 3) camera-frame joints at the corrected depth."""
        return self.local + self.trans[:, None, :]

    @classmethod
    def of(cls, persons: list[PersonResult], depth_noise: float, size_std: float) -> Observation:
        """The tracked persons (``track_id >= 0``) of a frame; the others are left out."""
        index = np.array([i for i, p in enumerate(persons) if p.track_id >= 0], dtype=np.int64)
        if len(index) == 0:
            empty = np.zeros(0)
            return cls(index, index.copy(), np.zeros((0, 70, 3)), np.zeros((0, 3)),
                       np.zeros((0, 70, 2)), empty,
                       Depth(empty, empty, np.zeros(0, bool), empty))  # fmt: skip
        chosen = [persons[i] for i in index]
        local = np.array([p.joints_3d_local for p in chosen], dtype=np.float64)
        trans = np.array([p.cam_trans for p in chosen], dtype=np.float64)
        keypoints = np.array([p.joints_2d for p in chosen], dtype=np.float64)
        focal = np.array([p.focal_length for p in chosen])
        principal = np.array([p.principal_point for p in chosen], dtype=np.float64)
        depth = depth_from_keypoints(local, trans, keypoints, focal, principal, depth_noise,
                                     size_std)  # fmt: skip
        track = np.array([p.track_id for p in chosen], dtype=np.int64)
        return cls(index, track, local, trans * depth.scale[:, None], keypoints, focal, depth)


class FootMotion:
    """Each foot's speed in the image, in metres per second at the foot's depth.

    The speed of the mean of a foot's ankle, heel and toe-tip keypoints over ``window``
    seconds (the newest earlier frame at least that old; a frame ago at 1 / ``window`` FPS
    or less): the motion a depth error does not fake. A planted foot does not move in the
    image; a swinging one does, its lift seen from any camera that does not look straight
    down. Where a person's keypoints did not fix their depth (:attr:`Depth.used_2d` False:
    keypoints that do not match the body), the same joints' 3D speed is used instead. A
    track's first frame reads 0.
    """

    def __init__(self, window: float = 0.05, forget_after: float = 2.0) -> None:
        self.window = window
        self.forget_after = forget_after
        self._past: dict[int, deque[tuple[float, np.ndarray]]] = {}
        self._points: dict[int, deque[tuple[float, np.ndarray]]] = {}
        self.point_speed = np.zeros((0, 2, 3))
        """(P, 2, 3) the last frame's 3D speed of each heel and toe tip, m/s."""

    def reset(self) -> None:
        """Forget every track."""
        self._past.clear()
        self._points.clear()

    def update(self, obs: Observation, t: float) -> np.ndarray:
        """(P, 2): each observed person's (left, right) foot speed at time ``t``, m/s."""
        for tid in [k for k, v in self._past.items() if t - v[-1][0] > self.forget_after]:
            del self._past[tid]
            self._points.pop(tid, None)
        speed = np.zeros((len(obs), 2))
        self.point_speed = np.zeros((len(obs), 2, 3))
        if len(obs) == 0:
            return speed
        points = (obs.local[:, FOOT_JOINTS] + obs.trans[:, None]).reshape(-1, 2, 3, 3)
        pix = obs.keypoints[:, MOVING].reshape(-1, 2, 4, 2).mean(axis=2)  # (P, 2, 2)
        feet = obs.local[:, MOVING].reshape(-1, 2, 4, 3).mean(axis=2) + obs.trans[:, None]
        metres_per_px = feet[..., 2] / obs.focal[:, None]
        for i, tid in enumerate(obs.track.tolist()):
            past = self._past.get(tid)
            if past is None or t <= past[-1][0]:
                past = self._past[tid] = deque()
            while len(past) > 1 and t - past[1][0] >= self.window:
                past.popleft()
            now = pix[i] if obs.depth.used_2d[i] else feet[i]
            if past and past[0][1].shape == now.shape:
                t0, old = past[0]
                d = now - old
                speed[i] = np.sqrt((d * d).sum(axis=1)) / (t - t0)
                if obs.depth.used_2d[i]:
                    speed[i] *= metres_per_px[i]
            past.append((t, now))
            if not obs.depth.used_2d[i]:  # the 3D rule of ContactTracker needs each point
                hist = self._points.get(tid)
                if hist is None or t <= hist[-1][0]:
                    hist = self._points[tid] = deque()
                while len(hist) > 1 and t - hist[1][0] >= self.window:
                    hist.popleft()
                if hist:
                    d = points[i] - hist[0][1]
                    self.point_speed[i] = np.sqrt((d * d).sum(axis=-1)) / (t - hist[0][0])
                hist.append((t, points[i]))
        return speed
