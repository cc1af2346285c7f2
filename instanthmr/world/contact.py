"""Foot contact from what depth noise leaves intact: image motion, the body's own shape, levels.

A monocular model's depth error moves the whole body along the viewing ray, so a planted
foot seems to slide and to rise or sink with it; a foot's height over the floor taken from
its 3D position alone is noisy by centimetres, and its 3D speed by tenths of a metre per
second. Contact is decided from three things that error does not touch:

1. **The foot's image motion** (:class:`~.observation.FootMotion`): the speed of the mean of
   its ankle, heel and toe tips in the image over ``speed_window`` seconds, turned into
   metres per second at the foot's depth. A planted foot does not move in the image; a
   swinging one does (its lift is seen from any camera that does not look straight down).
2. **The foot's height over the person's lower foot**, from the body's own metric shape
   (``joints_3d_local``), which the depth error does not change: a walker's lower foot is on
   the ground, the other one is on it too when it is within ``contact_height``.
3. **Which level the person stands on**: their lower foot's height over the floor, at the
   depth fixed by the 2D keypoints (:mod:`.depth`), averaged over ``level_window`` seconds.
   A person whose feet stay further above (or below) the floor than ``level_tol`` plus three
   standard deviations of that height (the floor's, the depth's and the joints') stands on
   another level, such as a platform: none of their feet touches the floor.

Where a person's keypoints do not match their body (they did not fix the depth), there is
no image motion to read, and contact falls back to 3D: a heel or toe tip lower than
``fallback_height`` over the floor and slower than ``contact_speed`` (its 3D speed).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .frame import WorldFrame
from .observation import FOOT_JOINTS, Observation


@dataclass
class _Track:
    offset: float = 0.0
    offset_var: float = 1.0
    seen: float = -math.inf


class ContactTracker:
    """Per-track foot contact with the floor (see the module docstring).

    Args:
        contact_height: a foot within this height of the person's lower foot may touch, m.
        contact_speed: ... when slower than this in the image, m/s at the foot's depth.
        level_tol: a person whose lower foot is further than this (plus three standard
            deviations) from the floor is on another level, m.
        level_window: time constant of the lower foot's averaged height, seconds.
        forget_after: drop a track's state when unseen this long, seconds.
        fallback_height: without usable keypoints, a heel or toe tip lower than this over
            the floor may touch it, m.
    """

    def __init__(
        self,
        contact_height: float = 0.03,
        contact_speed: float = 0.5,
        level_tol: float = 0.12,
        level_window: float = 0.3,
        forget_after: float = 2.0,
        fallback_height: float = 0.06,
    ) -> None:
        self.contact_height = contact_height
        self.contact_speed = contact_speed
        self.level_tol = level_tol
        self.level_window = level_window
        self.forget_after = forget_after
        self.fallback_height = fallback_height
        self._tracks: dict[int, _Track] = {}

    def reset(self) -> None:
        """Forget every track."""
        self._tracks.clear()

    def update(
        self, obs: Observation, frame: WorldFrame, floor_std: float, t: float,
        foot_speed: np.ndarray, point_speed: np.ndarray | None = None,
    ) -> np.ndarray:  # fmt: skip
        """(P, 2) bool: each observed person's (left, right) foot on the floor at time ``t``.

        Args:
            obs: the frame's tracked persons.
            frame: the world frame (its plane is the floor).
            floor_std: standard deviation of the floor's height, metres (0 when given).
            t: seconds.
            foot_speed: (P, 2) each foot's image speed, m/s (:class:`~.observation.FootMotion`).
            point_speed: (P, 2, 3) each heel and toe tip's 3D speed, m/s, for the persons
                whose keypoints did not fix the depth (``FootMotion.point_speed``).
        """
        out = np.zeros((len(obs), 2), dtype=bool)
        for tid in [k for k, s in self._tracks.items() if t - s.seen > self.forget_after]:
            del self._tracks[tid]
        if len(obs) == 0:
            return out
        n, h = frame.normal, frame.camera_height
        feet = obs.local[:, list(FOOT_JOINTS)].reshape(-1, 2, 3, 3).mean(axis=2)  # (P, 2, 3)
        rel = feet @ n  # heights on the body, metres
        lower = rel.min(axis=1)
        above = rel - lower[:, None]  # over the lower foot: depth-free
        ground = lower + obs.trans @ n + h  # the lower foot over the floor
        depth_var = (obs.depth.std * (obs.trans @ n)) ** 2
        lateral = np.where(np.isnan(obs.depth.lateral), 0.02, obs.depth.lateral)
        on_floor = np.zeros(len(obs), dtype=bool)
        for i, tid in enumerate(obs.track.tolist()):
            st = self._tracks.get(tid)
            if st is None or t < st.seen:
                st = self._tracks[tid] = _Track(float(ground[i]), float(depth_var[i]))
            else:
                a = 1.0 - math.exp(-(t - st.seen) / self.level_window)
                st.offset += a * (float(ground[i]) - st.offset)
                st.offset_var = (1 - a) ** 2 * st.offset_var + a * a * float(depth_var[i])
            st.seen = t
            sd = math.sqrt(st.offset_var + floor_std**2 + lateral[i] ** 2 / 3)
            on_floor[i] = abs(st.offset) <= self.level_tol + 3.0 * sd
        out = on_floor[:, None] & (above < self.contact_height) & (foot_speed < self.contact_speed)
        blind = ~obs.depth.used_2d
        if blind.any() and point_speed is not None:
            pts = (obs.local[blind][:, list(FOOT_JOINTS)] + obs.trans[blind][:, None]) @ n + h
            low = pts.reshape(-1, 2, 3) < self.fallback_height
            out[blind] = (low & (point_speed[blind] < self.contact_speed)).any(axis=2)
        return out
