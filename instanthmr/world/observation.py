"""One frame's tracked persons as arrays, each body moved to its corrected depth.

The world stage builds one :class:`Observation` per frame from the persons the model gave
(before any smoothing, so the feet carry no filter lag); the ground estimate and the foot
contacts read it. See :mod:`.depth` for the depth correction.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..results import PersonResult
from .depth import Depth, depth_from_keypoints


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
