"""One frame at a time: a person's MHR70 joints -> the rig's pose, for live streaming.

:class:`LiveRig` is the streaming counterpart of :class:`~.clips.TrackBuffer` + the
exporters: the same rig rules and rotation solve (:func:`.kinematics.solve_motion` on one
frame), bone lengths as running medians over the last :data:`LENGTH_WINDOW` frames (the
clip's median is not known yet), the live foot lock (:class:`.footlock.FootLocker`) and a
naming convention (:mod:`.rigs`). World joints are used when the frame has them (Y up,
feet on ``y = 0``), else the camera frame turned Y-up; a change between the two (the world
frame becoming known mid-stream) restarts the foot lock.
"""

from __future__ import annotations

from collections import deque

import numpy as np

from ..results import FrameResult, PersonResult
from . import rig
from .footlock import LEGS, FootLocker, apply_leg_targets
from .kinematics import Motion, solve_motion
from .rigs import apply_rig, check_rig

LENGTH_WINDOW = 300
"""Frames of bone lengths kept for the running median (10 s at 30 FPS)."""


def choose_person(
    frame: FrameResult, track_id: int | None, current: int | None
) -> PersonResult | None:
    """The person to stream: track ``track_id`` when given (None while it is absent); else
    the ``current`` track while it is in view, otherwise the largest box in view."""
    persons = list(frame.persons)
    if track_id is not None:
        return next((p for p in persons if p.track_id == track_id), None)
    if current is not None and current >= 0:
        same = next((p for p in persons if p.track_id == current), None)
        if same is not None:
            return same
    if not persons:
        return None

    def area(p: PersonResult) -> float:
        x0, y0, x1, y1 = (float(v) for v in p.bbox)
        return (x1 - x0) * (y1 - y0)

    return max(persons, key=area)


class LiveRig:
    """Poses the 20-joint rig from one person's joints per frame.

    Args:
        convention: bone names and hierarchy (:data:`.rigs.RIG_NAMES`), default ``unity``.
        foot_lock: hold planted feet where the frame's world record flags contact.
        blend_frames: frames over which a released foot eases back.
    """

    def __init__(
        self, convention: str = "unity", foot_lock: bool = True, blend_frames: int = 4
    ) -> None:
        self.convention = check_rig(convention)
        self.foot_lock = bool(foot_lock)
        self.locker = FootLocker(blend_frames)
        self._lengths: deque[np.ndarray] = deque(maxlen=LENGTH_WINDOW)
        self._frame: str | None = None

    def reset(self) -> None:
        """Forget bone lengths and the foot lock (a new person)."""
        self._lengths.clear()
        self.locker.reset()
        self._frame = None

    def pose(self, person: PersonResult, frame: FrameResult) -> Motion:
        """The rig posed as ``person`` on ``frame``: a one-frame :class:`Motion`."""
        world = getattr(person, "joints_3d_world", None)
        kind = "world" if world is not None else "camera"
        joints = (np.asarray(world, dtype=np.float64) if world is not None
                  else rig.camera_to_yup(person.joints_3d_cam))  # fmt: skip
        if kind != self._frame:
            self.locker.reset()
            self._frame = kind
        points = rig.rig_points(joints)[None]
        parents = np.array([max(p, 0) for p in rig.POINT_PARENTS])
        self._lengths.append(np.linalg.norm(points[0] - points[0, parents], axis=-1))
        offsets = rig.REST_DIRS * np.median(np.stack(self._lengths), axis=0)[:, None]
        motion = solve_motion(points, rig.twist_references(joints)[None], 1.0, offsets,
                              track_id=person.track_id, frame=kind)  # fmt: skip
        placed = frame.world.person(person.track_id) if frame.world is not None else None
        if self.foot_lock and placed is not None:
            ankles = [LEGS[0][2], LEGS[1][2]]
            targets, feet, weight = self.locker.step(
                motion.positions()[0, ankles], motion.global_rotations()[0, ankles], placed.contact
            )
            motion = apply_leg_targets(motion, targets[None], feet[None], weight[None] > 0)
        return apply_rig(motion, self.convention)
