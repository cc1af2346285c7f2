"""The world stage of the pipeline: ground plane, world joints, trajectories and contacts.

``persons, info = stage.update(persons, timestamp, measured=raw)`` once per frame, after
tracking and smoothing. ``persons`` are what the frame reports (smoothed or not): their
``joints_3d_world`` are the rigid map of their ``joints_3d_cam``. ``measured`` are the same
persons as the model gave them, before any smoothing: the ground estimate and the foot
contacts read those, so no filter lag or filter mismatch biases the feet (``docs/world.md``).

With a given :class:`~instanthmr.world.frame.WorldFrame` (user-given or loaded) the world is
known from the first frame; otherwise :class:`GroundEstimator` fits it online, and until
its uncertainty is within its limits every person's ``joints_3d_world`` stays None and
:attr:`WorldInfo.reason <instanthmr.results.WorldInfo.reason>` says why.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..results import PersonResult, PersonWorld, WorldInfo
from .contact import ContactTracker
from .estimator import EstimatorConfig, GroundEstimator
from .frame import WorldFrame
from .observation import FootMotion, Observation
from .trajectory import LEFT_HIP, RIGHT_HIP, MotionConfig, MotionTracker


class WorldTracker:
    """Puts tracked people in a gravity-aligned world frame (see ``docs/world.md``).

    Args:
        frame: a known world frame (from :meth:`WorldFrame.from_camera` or
            :meth:`WorldFrame.load`); None estimates it online from people's feet.
        estimator: settings of the online ground estimate.
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
        m = self.motion.config
        self.feet = FootMotion(m.speed_window, m.forget_after)
        self.contacts = ContactTracker(
            m.contact_height, m.contact_speed, level_tol=self.estimator.config.level_tol,
            forget_after=m.forget_after,
        )  # fmt: skip

    @property
    def frame(self) -> WorldFrame | None:
        """The current world frame, or None while unknown."""
        return self.fixed if self.fixed is not None else self.estimator.estimate.frame

    def reset(self) -> None:
        """Forget the online estimate and every track (a given frame is kept)."""
        self.estimator.reset()
        self.motion.reset()
        self.feet.reset()
        self.contacts.reset()

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the current world frame to a calibration JSON (for ``--world-from``)."""
        frame = self.frame
        if frame is None:
            raise RuntimeError(
                f"no world frame to save: {self.estimator.estimate.reason}. Run longer with "
                "people walking in view, or give the camera height and pitch"
            )
        return frame.save(path)

    def _info(self, frame: WorldFrame | None, persons: tuple[PersonWorld, ...] = ()) -> WorldInfo:
        est = self.estimator.estimate
        if frame is None:
            return WorldInfo(known=False, reason=est.reason or "world frame not known yet",
                             inliers=est.inliers, reopened=est.reopened,
                             levels=est.levels)  # fmt: skip
        given = self.fixed is not None
        return WorldInfo(
            known=True,
            confidence=1.0 if given else est.confidence,
            source=frame.source,
            frozen=given,
            inliers=0 if given else est.inliers,
            plane=frame.plane,
            camera_height=frame.camera_height,
            pitch_deg=frame.pitch_deg,
            roll_deg=frame.roll_deg,
            height_std=0.0 if given else est.height_std,
            pitch_std_deg=0.0 if given else est.pitch_std,
            roll_std_deg=0.0 if given else est.roll_std,
            settled=not given and est.settled,
            reopened=0 if given else est.reopened,
            levels=0 if given else est.levels,
            persons=persons,
        )

    def update(
        self,
        persons: list[PersonResult],
        timestamp: float,
        measured: list[PersonResult] | None = None,
    ) -> tuple[list[PersonResult], WorldInfo]:
        """This frame's persons with world fields set (when known), and the frame's report.

        Args:
            persons: the frame's persons, tracked (ids >= 0 get trajectories and contacts).
            timestamp: seconds; must not go backwards within a stream (call :meth:`reset`).
            measured: the same persons (same order and track ids) before smoothing; the
                ground estimate and foot contacts use them. None: ``persons`` are.
        """
        t = float(timestamp)
        if measured is None:
            measured = persons
        elif [p.track_id for p in measured] != [p.track_id for p in persons]:
            raise ValueError(
                "measured must hold the same persons as persons, in the same order (track ids "
                f"{[p.track_id for p in measured]} vs {[p.track_id for p in persons]})"
            )
        cfg = self.estimator.config
        obs = Observation.of(measured, cfg.depth_noise, cfg.size_std)
        speed = self.feet.update(obs, t)
        if self.fixed is None:
            self.estimator.update(obs, t, speed)
        frame = self.frame
        if frame is None:
            return persons, self._info(None)
        est = self.estimator.estimate
        floor_std = 0.0 if self.fixed is not None else est.height_std or 0.0
        contact = self.contacts.update(obs, frame, floor_std, t, speed, self.feet.point_speed)
        touch = {int(i): (bool(c[0]), bool(c[1])) for i, c in zip(obs.index, contact, strict=True)}
        cam = np.array([p.joints_3d_local + p.cam_trans for p in persons], dtype=np.float64)
        world = cam.reshape(-1, 3) @ frame.rotation.T + frame.camera_position
        world = world.reshape(-1, cam.shape[1], 3)
        roots = 0.5 * (world[:, LEFT_HIP] + world[:, RIGHT_HIP])
        out, records = [], []
        for i, p in enumerate(persons):
            joints, root = world[i], roots[i]
            if p.track_id >= 0:
                m = self.motion.update(p.track_id, joints, t, touch[i])
                joints = m.joints
                records.append(PersonWorld(p.track_id, m.position, m.heading, m.speed, m.contact))
            out.append(p.with_world(joints, root))
        return out, self._info(frame, tuple(records))
