"""The world stage of the pipeline: ground plane, world joints, trajectories and contacts.

``persons, info = stage.update(persons, timestamp)`` once per frame, after tracking and
smoothing. With a given :class:`~instanthmr.world.frame.WorldFrame` (user-given or loaded)
the world is known from the first frame; otherwise :class:`GroundEstimator` fits it online
from people's still feet, and until then every person's ``joints_3d_world`` stays None and
:attr:`WorldInfo.reason <instanthmr.results.WorldInfo.reason>` says why.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import numpy as np

from ..results import PersonResult, PersonWorld, WorldInfo
from .estimator import EstimatorConfig, GroundEstimator
from .frame import WorldFrame
from .trajectory import LEFT_HIP, RIGHT_HIP, MotionConfig, MotionTracker


class WorldTracker:
    """Puts tracked people in a gravity-aligned world frame (see ``docs/world.md``).

    Args:
        frame: a known world frame (from :meth:`WorldFrame.from_camera` or
            :meth:`WorldFrame.load`); None estimates it online from people's feet.
        estimator: settings of the online ground-plane estimate.
        motion: settings of trajectories, foot contact and foot lock.
    """

    def __init__(
        self,
        frame: WorldFrame | None = None,
        *,
        estimator: EstimatorConfig | None = None,
        motion: MotionConfig | None = None,
    ) -> None:
        if frame is not None and not isinstance(frame, WorldFrame):
            raise TypeError(f"frame must be a WorldFrame or None, got {type(frame).__name__}")
        self.fixed = frame
        self.estimator = GroundEstimator(estimator or EstimatorConfig())
        self.motion = MotionTracker(motion)

    @property
    def frame(self) -> WorldFrame | None:
        """The current world frame, or None while unknown."""
        return self.fixed if self.fixed is not None else self.estimator.estimate.frame

    def reset(self) -> None:
        """Forget the online estimate and every track (a given frame is kept)."""
        self.estimator.reset()
        self.motion.reset()

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the current world frame to a calibration JSON (for ``--world-from``)."""
        frame = self.frame
        if frame is None:
            raise RuntimeError(
                f"no world frame to save: {self.estimator.estimate.reason}. Run longer with "
                "people walking in view, or give the camera height and pitch"
            )
        return frame.save(path)

    def _info(self, frame: WorldFrame | None) -> WorldInfo:
        est = self.estimator.estimate
        if frame is None:
            return WorldInfo(known=False, reason=est.reason or "world frame not known yet",
                             inliers=est.inliers)  # fmt: skip
        given = self.fixed is not None
        return WorldInfo(
            known=True,
            confidence=1.0 if given else est.confidence,
            source=frame.source,
            frozen=given or est.frozen,
            inliers=0 if given else est.inliers,
            plane=frame.plane,
            camera_height=frame.camera_height,
            pitch_deg=frame.pitch_deg,
            roll_deg=frame.roll_deg,
        )

    def update(
        self, persons: list[PersonResult], timestamp: float
    ) -> tuple[list[PersonResult], WorldInfo]:
        """This frame's persons with world fields set (when known), and the frame's report.

        Args:
            persons: the frame's persons, tracked (ids >= 0 get trajectories and contacts).
            timestamp: seconds; must not go backwards within a stream (call :meth:`reset`).
        """
        t = float(timestamp)
        if self.fixed is None:
            self.estimator.update(persons, t)
        frame = self.frame
        info = self._info(frame)
        if frame is None:
            return persons, info
        out, records = [], []
        for p in persons:
            joints = frame.cam_to_world(p.joints_3d_cam)
            root = 0.5 * (joints[LEFT_HIP] + joints[RIGHT_HIP])
            if p.track_id >= 0:
                m = self.motion.update(p.track_id, joints, t)
                joints = m.joints
                records.append(PersonWorld(p.track_id, m.position, m.heading, m.speed, m.contact))
            out.append(p.replace(joints_3d_world=joints.astype(np.float32),
                                 root_world=root.astype(np.float32)))  # fmt: skip
        return out, dataclasses.replace(info, persons=tuple(records))
