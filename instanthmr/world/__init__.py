"""People in the world: ground plane from people's feet, world frame, trajectories, contacts.

- :mod:`.depth`: each person's depth from their 2D keypoints and metric body.
- :mod:`.observation`: one frame's tracked persons as arrays, at the corrected depth.
- :mod:`.samples`: ground samples with their noise, and their store.
- :mod:`.plane`: :func:`fit_ground_plane` (RANSAC + least squares) -> :class:`GroundPlane`.
- :mod:`.ground_fit`: the floor from samples with known noise: weighted robust fit,
  covariance, levels.
- :mod:`.frame`: :class:`WorldFrame` (camera -> world, height, pitch, roll, save/load).
- :mod:`.estimator`: :class:`GroundEstimator`, the online estimate with its uncertainty.
- :mod:`.contact`: foot contact with the floor.
- :mod:`.trajectory`: per-track trajectory, heading, speed and foot lock.
- :mod:`.stage`: :class:`WorldTracker`, the pipeline stage that ties them together.

See ``docs/world.md``.
"""

from __future__ import annotations

from .estimator import EstimatorConfig, GroundEstimator
from .frame import HEIGHT_RANGE, PITCH_RANGE, ROLL_RANGE, WorldFrame
from .plane import DegeneratePlaneError, GroundPlane, fit_ground_plane
from .stage import WorldTracker
from .trajectory import TRAJECTORY_PRESETS, MotionConfig

__all__ = [
    "HEIGHT_RANGE",
    "PITCH_RANGE",
    "ROLL_RANGE",
    "TRAJECTORY_PRESETS",
    "DegeneratePlaneError",
    "EstimatorConfig",
    "GroundEstimator",
    "GroundPlane",
    "MotionConfig",
    "WorldFrame",
    "WorldTracker",
    "fit_ground_plane",
]
