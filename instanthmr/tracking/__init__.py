"""The tracking stage: ids, the detector schedule and the boxes between detections.

- ``tracker``: :class:`Tracker` (global assignment over IoU and keypoint distance);
- ``target``: :func:`select_target`, the one person to follow;
- ``carry``: :class:`~instanthmr.tracking.carry.BoxPlanner`, where each frame's boxes come
  from (caller, detector or carried tracks) as a :class:`~instanthmr.tracking.carry.FrameBoxes`;
- ``schedule``: :class:`StrideScheduler` (the detector stride and re-detect triggers) and
  the keypoint-carried boxes;
- ``scene_change``: :class:`MotionCheck`, the cheap "someone new may be here" trigger;
- ``smoothing``: :class:`PoseSmoother`, One-Euro filters per track.
"""

from __future__ import annotations

from .. import lazy_exports

_EXPORTS = {
    "Track": "instanthmr.tracking.tracker",
    "Tracker": "instanthmr.tracking.tracker",
    "select_target": "instanthmr.tracking.target",
    "StrideScheduler": "instanthmr.tracking.schedule",
    "boxes_from_keypoints": "instanthmr.tracking.schedule",
    "MotionCheck": "instanthmr.tracking.scene_change",
    "PoseSmoother": "instanthmr.tracking.smoothing",
}

__getattr__ = lazy_exports("instanthmr.tracking", _EXPORTS)
