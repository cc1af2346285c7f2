"""Results as JSON for the browser app, in the record layout of the result files.

A frame record holds the keys of :func:`instanthmr.sinks.formats_common.frame_fields` plus
``boxes_from``, ``detect_reason`` and ``persons``; each person record holds
:data:`~instanthmr.sinks.formats_common.PERSON_SCALARS`, ``image_size`` and array fields
named as in :data:`~instanthmr.sinks.formats_common.PERSON_ARRAYS`, so a field means the
same thing in the app, in JSONL/NPZ/CSV exports and in Python. World fields
(``joints_3d_world``, ``root_world``) are added when the pipeline provides them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..results import FrameResult, PersonResult
from ..sinks.formats_common import PERSON_ARRAYS, PERSON_SCALARS, frame_fields

WORLD_FIELDS: tuple[str, ...] = ("joints_3d_world", "root_world")
"""Optional per-person fields in the world frame (gravity-aligned, Y up, metres)."""

LIVE_ARRAYS: tuple[str, ...] = ("bbox", "joints_2d", "joints_3d_cam", "cam_trans",
                                "principal_point")  # fmt: skip
"""The array fields sent per WebSocket frame (the page draws these); uploads get all."""


def _array(value: Any, decimals: int | None) -> list:
    arr = np.asarray(value, dtype=np.float64)
    if decimals is not None:
        arr = np.round(arr, decimals)
    return arr.tolist()


def person_record(
    p: PersonResult, arrays: Sequence[str] = tuple(PERSON_ARRAYS), decimals: int | None = None
) -> dict[str, Any]:
    """One person as a JSON-ready dict: scalars, ``image_size``, ``arrays`` and world fields."""
    rec: dict[str, Any] = {k: getattr(p, k) for k in PERSON_SCALARS}
    rec["image_size"] = list(p.image_size)
    for name in arrays:
        rec[name] = _array(getattr(p, name), decimals)
    for name in WORLD_FIELDS:
        value = getattr(p, name, None)
        if value is not None:
            rec[name] = _array(value, decimals)
    return rec


def camera_pose(p: PersonResult) -> dict[str, list] | None:
    """The camera's pose in the world frame, from one person seen in both frames.

    ``joints_3d_world = R @ joints_3d_cam + t`` for every joint, so the rigid transform is the
    least-squares fit (Kabsch) between the two joint sets. Returns ``{"rotation": 3x3,
    "position": t}`` (camera axes X right, Y down, Z forward expressed in the world), or
    None when the person has no world joints.
    """
    world = getattr(p, "joints_3d_world", None)
    if world is None:
        return None
    cam = np.asarray(p.joints_3d_cam, np.float64)
    world = np.asarray(world, np.float64)
    cc, wc = cam.mean(axis=0), world.mean(axis=0)
    u, _, vt = np.linalg.svd((cam - cc).T @ (world - wc))
    d = np.sign(np.linalg.det(vt.T @ u.T)) or 1.0
    rot = vt.T @ np.diag([1.0, 1.0, d]) @ u.T
    return {"rotation": rot.tolist(), "position": (wc - rot @ cc).tolist()}


def frame_record(
    frame: FrameResult, arrays: Sequence[str] = tuple(PERSON_ARRAYS), decimals: int | None = None
) -> dict[str, Any]:
    """One frame as a JSON-ready dict (see the module docstring for the layout).

    ``camera_world`` (see :func:`camera_pose`) is present when the world frame is known.
    """
    rec: dict[str, Any] = {"type": "frame", **frame_fields(frame)}
    rec["boxes_from"] = frame.boxes_from
    rec["detect_reason"] = frame.detect_reason
    rec["persons"] = [person_record(p, arrays, decimals) for p in frame.persons]
    for p in frame.persons:
        pose = camera_pose(p)
        if pose is not None:
            rec["camera_world"] = pose
            break
    return rec
