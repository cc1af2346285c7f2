"""The world frame: gravity-aligned, Y up, origin on the ground below the camera, metres.

Axes (right-handed, like OpenGL and glTF): **X** is the camera's right direction laid flat on
the ground, **Y** is up (against gravity), **Z** points back towards the camera's side, so
the camera looks along -Z (tilted down by its pitch). The camera sits at
``(0, camera_height, 0)``.

A :class:`WorldFrame` comes from a fitted :class:`~instanthmr.world.plane.GroundPlane`,
from a user-given camera height, pitch and roll, or from a calibration file written by an
earlier run (:meth:`WorldFrame.save` / :meth:`WorldFrame.load`).

Angles: **pitch** is how far the optical axis points below the horizon (positive = looking
down); **roll** is the turn about the optical axis (positive = the image's right edge is
raised, i.e. the horizon in the image falls to the right).
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import OptionError
from ..fileio import atomic_write_text
from .plane import DegeneratePlaneError, GroundPlane

HEIGHT_RANGE = (0.1, 50.0)
"""Accepted camera heights above the ground, metres."""
PITCH_RANGE = (-80.0, 80.0)
"""Accepted camera pitch, degrees (near +-90 the camera looks straight down/up: degenerate)."""
ROLL_RANGE = (-45.0, 45.0)
"""Accepted camera roll, degrees."""
CALIB_FORMAT = "instanthmr-world"
CALIB_VERSION = 1


def check_range(name: str, value: float, bounds: tuple[float, float], unit: str) -> float:
    """``value`` as a float; ValueError naming the accepted range when outside ``bounds``."""
    v = float(value)
    if not (math.isfinite(v) and bounds[0] <= v <= bounds[1]):
        raise OptionError(
            f"{name} {value} {unit} is out of range: it must be within "
            f"{bounds[0]:g}..{bounds[1]:g} {unit}"
        )
    return v


@dataclass(frozen=True)
class WorldFrame:
    """A rigid map from the camera frame to the world frame.

    Attributes:
        normal: (3,) unit up vector in camera coordinates.
        camera_height: camera height above the ground, metres.
        source: ``"fitted"`` (from people's feet), ``"user"`` (height/pitch given) or
            ``"file"`` (loaded from a calibration file).
    """

    normal: np.ndarray
    camera_height: float
    source: str = "fitted"

    def __post_init__(self) -> None:
        n = np.asarray(self.normal, dtype=np.float64).reshape(-1)
        if n.shape != (3,) or not np.all(np.isfinite(n)) or np.linalg.norm(n) < 1e-6:
            raise ValueError(f"normal must be a finite non-zero (3,) vector, got {self.normal}")
        object.__setattr__(self, "normal", n / np.linalg.norm(n))
        check_range("camera height", self.camera_height, HEIGHT_RANGE, "m")
        object.__setattr__(self, "camera_height", float(self.camera_height))
        up = self.normal
        x = np.array([1.0, 0.0, 0.0]) - up[0] * up
        x /= np.linalg.norm(x)
        rotation = np.stack([x, up, np.cross(x, up)])
        rotation.flags.writeable = False
        object.__setattr__(self, "_rotation", rotation)
        for name, value, bounds in (("camera pitch", self.pitch_deg, PITCH_RANGE),
                                    ("camera roll", self.roll_deg, ROLL_RANGE)):  # fmt: skip
            if not bounds[0] <= value <= bounds[1]:
                raise DegeneratePlaneError(
                    f"{name} {value:.1f} deg is outside {bounds[0]:g}..{bounds[1]:g} deg "
                    "(a camera looking straight down or up, or turned on its side, has no "
                    "usable ground heading)"
                )

    @classmethod
    def from_plane(cls, plane: GroundPlane, source: str = "fitted") -> WorldFrame:
        """The world frame of a fitted ground plane (its normal must point up)."""
        return cls(plane.normal, plane.offset, source)

    @classmethod
    def from_camera(
        cls, height: float, pitch_deg: float, roll_deg: float = 0.0, source: str = "user"
    ) -> WorldFrame:
        """A world frame from the camera's height (m), pitch and roll (degrees).

        Raises ValueError naming the accepted range when a value is outside it
        (:data:`HEIGHT_RANGE`, :data:`PITCH_RANGE`, :data:`ROLL_RANGE`).
        """
        h = check_range("camera height", height, HEIGHT_RANGE, "m")
        p = math.radians(check_range("camera pitch", pitch_deg, PITCH_RANGE, "deg"))
        r = math.radians(check_range("camera roll", roll_deg, ROLL_RANGE, "deg"))
        normal = np.array([math.cos(p) * math.sin(r), -math.cos(p) * math.cos(r), -math.sin(p)])
        return cls(normal, h, source)

    @property
    def pitch_deg(self) -> float:
        """Degrees the optical axis points below the horizon (positive = looking down)."""
        return math.degrees(math.asin(min(1.0, max(-1.0, -float(self.normal[2])))))

    @property
    def roll_deg(self) -> float:
        """Degrees the camera is turned about its optical axis (0 = level)."""
        return math.degrees(math.atan2(float(self.normal[0]), -float(self.normal[1])))

    @property
    def rotation(self) -> np.ndarray:
        """(3, 3) rotation world <- camera: rows are the world X, Y, Z axes in camera axes
        (read-only; computed once)."""
        return self._rotation  # type: ignore[attr-defined,no-any-return]

    @property
    def plane(self) -> np.ndarray:
        """(4,) the camera-frame ground plane ``a, b, c, d``: ``a x + b y + c z + d = 0``."""
        return np.append(self.normal, self.camera_height)

    @property
    def camera_position(self) -> np.ndarray:
        """(3,) the camera's centre in the world frame."""
        return np.array([0.0, self.camera_height, 0.0])

    def cam_to_world(self, points: np.ndarray) -> np.ndarray:
        """Camera-frame points (..., 3) -> world-frame points (..., 3), float64."""
        pts = np.asarray(points, dtype=np.float64)
        if pts.shape[-1:] != (3,):
            raise ValueError(f"points must have shape (..., 3), got {pts.shape}")
        return pts @ self.rotation.T + self.camera_position

    def world_to_cam(self, points: np.ndarray) -> np.ndarray:
        """World-frame points (..., 3) -> camera-frame points (..., 3), float64."""
        pts = np.asarray(points, dtype=np.float64)
        if pts.shape[-1:] != (3,):
            raise ValueError(f"points must have shape (..., 3), got {pts.shape}")
        return (pts - self.camera_position) @ self.rotation

    def to_dict(self) -> dict[str, Any]:
        """The calibration record written by :meth:`save`."""
        return {
            "format": CALIB_FORMAT, "version": CALIB_VERSION, "source": self.source,
            "normal_cam": [float(v) for v in self.normal],
            "camera_height_m": self.camera_height, "pitch_deg": self.pitch_deg,
            "roll_deg": self.roll_deg,
            "frames": "camera: X right, Y down, Z forward; world: X right, Y up, Z back, "
            "origin on the ground below the camera; metres",
        }  # fmt: skip

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the calibration as JSON (atomically: a temporary file, then a rename)."""
        return atomic_write_text(path, json.dumps(self.to_dict(), indent=2) + "\n")

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> WorldFrame:
        """Read a calibration written by :meth:`save`; ValueError names what is wrong."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"world calibration file not found: {path}")
        try:
            rec = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as err:
            raise OptionError(f"{path} is not valid JSON ({err})") from None
        if not isinstance(rec, dict) or rec.get("format") != CALIB_FORMAT:
            raise OptionError(
                f"{path} is not an InstantHMR world calibration (no {CALIB_FORMAT!r})"
            )
        if int(rec.get("version", 0)) > CALIB_VERSION:
            raise OptionError(
                f"{path} has calibration version {rec['version']}; this reader knows up to "
                f"{CALIB_VERSION}: upgrade instanthmr"
            )
        try:
            return cls(np.asarray(rec["normal_cam"], float), float(rec["camera_height_m"]), "file")
        except KeyError as err:
            raise OptionError(f"{path} lacks the field {err}") from None
