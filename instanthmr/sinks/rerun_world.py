"""What the Rerun sink draws in the world space: ground grid, camera pose, trails, contacts.

Pure functions and a small trail store that build Rerun archetypes from a
:class:`~instanthmr.results.WorldInfo`; :mod:`.rerun_sink` logs them (it stays the only
module that calls ``rr.log``). The world space is gravity-aligned, Y up (``docs/world.md``).
"""

from __future__ import annotations

from collections import deque

import numpy as np
import rerun as rr

from ..results import PersonResult, PersonWorld, WorldInfo
from ..world.trajectory import FOOT_POINTS

WORLD_SPACE = "ground"
"""Root entity of the world space (its own 3D view)."""
GRID_HALF_M = 10.0
GRID_STEP_M = 1.0
TRAIL_POINTS = 900
"""Most points kept per trajectory line strip (30 s at 30 FPS)."""
GRID_COLOR = (110, 110, 110)
CONTACT_COLOR = (255, 60, 60)


def ground_grid(half: float = GRID_HALF_M, step: float = GRID_STEP_M) -> rr.LineStrips3D:
    """A square grid on the ground (y = 0) centred below the camera, ``2 * half`` metres wide."""
    ticks = np.arange(-half, half + 1e-9, step)
    strips = [np.array([[x, 0.0, -half], [x, 0.0, half]]) for x in ticks]
    strips += [np.array([[-half, 0.0, z], [half, 0.0, z]]) for z in ticks]
    return rr.LineStrips3D(strips, colors=GRID_COLOR, radii=0.005)


def ground_box(half: float = GRID_HALF_M) -> rr.Boxes3D:
    """A thin solid box just under the grid, so the floor reads as a surface."""
    return rr.Boxes3D(
        centers=[[0.0, -0.01, 0.0]], half_sizes=[[half, 0.01, half]],
        colors=[(80, 80, 80, 60)], fill_mode="solid",
    )  # fmt: skip


def camera_pose(info: WorldInfo) -> rr.Transform3D:
    """The camera's pose in the world: at its height, turned by its pitch and roll."""
    from ..world.frame import WorldFrame

    frame = WorldFrame(info.plane[:3], float(info.plane[3]), info.source or "fitted")
    return rr.Transform3D(translation=frame.camera_position, mat3x3=frame.rotation)


def camera_label(info: WorldInfo) -> str:
    """A one-line description of the world frame for the viewer: values with their 95%
    intervals (two standard deviations) for a fitted frame, the source, the state."""
    if info.source == "fitted" and info.height_std is not None:
        values = (
            f"camera {info.camera_height:.2f} +- {2 * info.height_std:.2f} m, pitch "
            f"{info.pitch_deg:.1f} +- {2 * (info.pitch_std_deg or 0):.1f} deg, roll "
            f"{info.roll_deg:.1f} +- {2 * (info.roll_std_deg or 0):.1f} deg"
        )
    else:
        values = (
            f"camera {info.camera_height:.2f} m, pitch {info.pitch_deg:.1f} deg, roll "
            f"{info.roll_deg:.1f} deg"
        )
    state = ", frozen" if info.frozen else ", settled" if info.settled else ""
    if info.reopened:
        state += f", re-opened {info.reopened}x"
    return f"{values} ({info.source}, confidence {info.confidence:.2f}{state})"


def status_line(info: WorldInfo, reopened_before: int) -> str:
    """The text-log line for the world frame's state on this frame: that it re-opened (when
    ``info.reopened`` grew past ``reopened_before``), why it is unknown, or that it is known.
    The caller logs it when it changes."""
    if info.reopened > reopened_before:
        why = info.reason or "new evidence disagreed with the settled frame; refitted on it"
        return f"world frame re-opened ({info.reopened}x): {why}"
    if not info.known:
        return f"world frame unknown: {info.reason}"
    return "world frame known" + (" (settled)" if info.settled else "")


def contact_points(person: PersonResult, record: PersonWorld) -> np.ndarray:
    """(K, 3) world heel and toe points of the feet in contact (K = 0, 3 or 6)."""
    joints = person.joints_3d_world
    if joints is None:
        return np.zeros((0, 3))
    idx = [j for side in (0, 1) if record.contact[side] for j in FOOT_POINTS[side]]
    return joints[idx].reshape(-1, 3)


class Trails:
    """Each track's recent ground positions, for its trajectory line strip."""

    def __init__(self, max_points: int = TRAIL_POINTS) -> None:
        self.max_points = int(max_points)
        self._trails: dict[int, deque[np.ndarray]] = {}

    def add(self, record: PersonWorld) -> np.ndarray:
        """Append this frame's ground position; returns the track's (N, 3) strip."""
        trail = self._trails.setdefault(record.track_id, deque(maxlen=self.max_points))
        trail.append(np.asarray(record.position, dtype=np.float32))
        return np.stack(trail)
