"""The world frame on real footage: camera height and pitch, walking speeds, foot height.

Measured on a run with the world stage on (``world=True``), from what the pipeline reports:

- **camera**: ``WorldInfo.camera_height`` and ``pitch_deg`` on every frame where the world
  frame is known: the first such frame, the final values, and their spread (min, max,
  standard deviation) over the known frames and over the last half of the clip.
- **walking speed** per track: the median of ``PersonWorld.speed`` over the frames it was
  seen on with a known world frame (tracks seen on at least ``min_frames`` such frames),
  and its net speed, the straight-line distance between its first and last ground
  positions over the time between them, both against the *final* ground plane (so a
  plane that moved during the clip does not add speed). People walk at about 0.8-1.8 m/s.
- **foot height**: the lowest of a person's real foot joints (heels, big-toe tips, ankles)
  above the final ground plane, per person-frame. A walker always has a foot on the
  ground, so it should sit near 0.

The signed height of a camera-frame point ``p`` above the plane ``(a, b, c, d)`` (unit up
normal, ``d`` the camera height) is ``a x + b y + c z + d``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from ...results import FrameResult
from ...skeleton import JOINT_INDEX

FOOT_POINTS: tuple[int, ...] = tuple(
    JOINT_INDEX[n] for n in ("left_heel", "right_heel", "left_big_toe_tip",
                             "right_big_toe_tip", "left_ankle", "right_ankle")
)  # fmt: skip
"""The real foot joints of the stand-in (and of InstantHMR) used for the foot height."""
HIPS = (JOINT_INDEX["left_hip"], JOINT_INDEX["right_hip"])
WALKING = (0.8, 1.8)
"""The range of ordinary walking speeds, m/s."""


@dataclass
class Spread:
    """Summary of a series: first, final, min, max, standard deviation."""

    first: float
    final: float
    min: float
    max: float
    std: float

    @classmethod
    def of(cls, values: Sequence[float]) -> Spread:
        """The spread of ``values`` (NaNs when empty)."""
        v = np.asarray(values, float)
        if not len(v):
            nan = float("nan")
            return cls(nan, nan, nan, nan, nan)
        return cls(float(v[0]), float(v[-1]), float(v.min()), float(v.max()), float(v.std()))


@dataclass
class TrackSpeed:
    """One track's walking speed (m/s)."""

    track_id: int
    frames: int
    median: float
    net: float


@dataclass
class WorldStats:
    """The world frame of one run (see the module docstring)."""

    frames: int
    known_frames: int
    first_known: int | None
    frozen_at: int | None
    inliers: int
    height: Spread
    pitch: Spread
    roll: Spread
    height_late: Spread
    pitch_late: Spread
    speeds: list[TrackSpeed] = field(default_factory=list)
    foot_height_median: float = float("nan")
    foot_height_p10: float = float("nan")
    foot_height_p90: float = float("nan")
    foot_within_10cm: float = float("nan")
    reason: str = ""

    @property
    def walking_share(self) -> float:
        """Share of tracks whose median speed lies in :data:`WALKING`."""
        if not self.speeds:
            return float("nan")
        lo, hi = WALKING
        return float(np.mean([lo <= s.median <= hi for s in self.speeds]))

    def as_dict(self) -> dict[str, Any]:
        """The figures as plain types."""
        return {**asdict(self), "walking_share": self.walking_share}


def height_above(plane: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Signed height (m) of camera-frame ``points`` (..., 3) above ``plane`` (a, b, c, d)."""
    p = np.asarray(plane, float)
    return np.asarray(points, float) @ p[:3] + p[3]


def on_ground(plane: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Camera-frame ``points`` (..., 3) dropped onto ``plane`` along its normal."""
    p = np.asarray(plane, float)
    pts = np.asarray(points, float)
    return pts - height_above(p, pts)[..., None] * p[:3]


def camera_series(results: Sequence[FrameResult]) -> dict[str, np.ndarray]:
    """Per frame: ``known`` (bool), ``height``, ``pitch``, ``roll`` (NaN while unknown)."""
    known = np.array([bool(r.world and r.world.known) for r in results])

    def series(name: str) -> np.ndarray:
        return np.array([getattr(r.world, name) if k else np.nan
                         for r, k in zip(results, known, strict=True)], float)  # fmt: skip

    return {"known": known, "height": series("camera_height"), "pitch": series("pitch_deg"),
            "roll": series("roll_deg")}  # fmt: skip


def world_stats(results: Sequence[FrameResult], fps: float, *, min_frames: int = 20) -> WorldStats:
    """The world figures of a run with the world stage on (module docstring).

    Raises:
        ValueError: when the run has no world reports (the stage was off).
    """
    if results and all(r.world is None for r in results):
        raise ValueError("the run has no world reports: run it with world=True")
    cam = camera_series(results)
    known = np.flatnonzero(cam["known"])
    frozen = [i for i in known if results[i].world.frozen]
    late = known[known >= len(results) // 2]
    stats = WorldStats(
        frames=len(results),
        known_frames=len(known),
        first_known=int(known[0]) if len(known) else None,
        frozen_at=int(frozen[0]) if frozen else None,
        inliers=int(results[known[-1]].world.inliers) if len(known) else 0,
        height=Spread.of(cam["height"][known]),
        pitch=Spread.of(cam["pitch"][known]),
        roll=Spread.of(cam["roll"][known]),
        height_late=Spread.of(cam["height"][late]),
        pitch_late=Spread.of(cam["pitch"][late]),
        reason="" if len(known) else (results[-1].world.reason if results else "no frames"),
    )
    if not len(known):
        return stats
    plane = np.asarray(results[known[-1]].world.plane, float)
    speeds: dict[int, list[float]] = defaultdict(list)
    where: dict[int, list[tuple[float, np.ndarray]]] = defaultdict(list)
    feet: list[float] = []
    for i in known:
        r = results[i]
        t = r.timestamp if r.timestamp is not None else r.frame_index / fps
        for p in r.persons:
            cam_joints = p.joints_3d_cam
            feet.append(float(height_above(plane, cam_joints[list(FOOT_POINTS)]).min()))
            if p.track_id < 0:
                continue
            rec = r.world.person(p.track_id)
            if rec is not None:
                speeds[p.track_id].append(rec.speed)
            pelvis = cam_joints[list(HIPS)].mean(axis=0)
            where[p.track_id].append((t, on_ground(plane, pelvis)))
    for tid, values in sorted(speeds.items()):
        if len(values) < min_frames:
            continue
        (t0, a), (t1, b) = where[tid][0], where[tid][-1]
        net = float(np.linalg.norm(b - a) / (t1 - t0)) if t1 > t0 else float("nan")
        stats.speeds.append(TrackSpeed(tid, len(values), float(np.median(values)), net))
    f = np.asarray(feet)
    stats.foot_height_median = float(np.median(f))
    stats.foot_height_p10 = float(np.percentile(f, 10))
    stats.foot_height_p90 = float(np.percentile(f, 90))
    stats.foot_within_10cm = float(np.mean(np.abs(f) <= 0.10))
    return stats
