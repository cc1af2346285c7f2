"""A synthetic world for the world-frame tests: walkers with a known gait seen by a known camera.

Each walker moves in a straight line at a constant speed with a simple gait: each foot is
planted (heel and toe tips on the ground, height 0) for 60% of a 1 s cycle and swings for
40% of it (lifted up to 10 cm, sinusoidal profile), the two feet half a cycle apart. The
body is a stick figure: hips 0.2 m apart at 0.95 m, neck 0.55 m above the pelvis, ankles
8 cm above the heels, toe tips 20 cm ahead of the heel; the other MHR70 joints sit at fixed
offsets from the pelvis. Everything is in the world frame of :mod:`instanthmr.world.frame`
(Y up), mapped into the camera frame by a known :class:`WorldFrame`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from instanthmr.results import PersonResult
from instanthmr.skeleton import JOINT_INDEX, NUM_JOINTS
from instanthmr.world import WorldFrame

CYCLE_S = 1.0
STANCE = 0.6
LIFT_M = 0.10
FPS = 30.0
J = JOINT_INDEX


@dataclass
class Walker:
    """A straight-line walker: start (x, z), heading direction (x, z), speed m/s."""

    track_id: int
    start: tuple[float, float]
    direction: tuple[float, float]
    speed: float = 1.4
    phase: float = 0.0

    def _axes(self) -> tuple[np.ndarray, np.ndarray]:
        d = np.array([self.direction[0], 0.0, self.direction[1]])
        d /= np.linalg.norm(d)
        right = np.cross(d, [0.0, 1.0, 0.0])  # forward x up = the walker's right
        return d, right

    def foot(self, t: float, side: int) -> tuple[np.ndarray, bool]:
        """(3,) heel position on/above the ground and whether that foot is in stance."""
        d, right = self._axes()
        stride = self.speed * CYCLE_S
        u = t / CYCLE_S + self.phase + 0.5 * side
        k, phi = np.floor(u), u - np.floor(u)
        planted = stride * (k + STANCE / 2) - self.speed * CYCLE_S * (self.phase + 0.5 * side)
        lateral = (-0.1 if side == 0 else 0.1) * right
        base = np.array([self.start[0], 0.0, self.start[1]]) + lateral
        if phi < STANCE:
            return base + planted * d, True
        s = (phi - STANCE) / (1 - STANCE)
        along = planted + stride * (1 - np.cos(np.pi * s)) / 2
        return base + along * d + np.array([0.0, LIFT_M * np.sin(np.pi * s), 0.0]), False

    def pelvis(self, t: float) -> np.ndarray:
        """(3,) the true pelvis (mid-hip) in the world frame."""
        d, _ = self._axes()
        return np.array([self.start[0], 0.95, self.start[1]]) + self.speed * t * d

    def joints(self, t: float) -> tuple[np.ndarray, tuple[bool, bool]]:
        """(70, 3) world joints at time t and the true (left, right) contact."""
        d, right = self._axes()
        pelvis = self.pelvis(t)
        rng = np.random.default_rng(self.track_id)
        out = pelvis + rng.uniform([-0.25, 0.0, -0.1], [0.25, 0.7, 0.1], (NUM_JOINTS, 3))
        out[J["left_hip"]], out[J["right_hip"]] = pelvis - 0.1 * right, pelvis + 0.1 * right
        out[J["neck"]] = pelvis + [0.0, 0.55, 0.0]
        contact = []
        for side, name in enumerate(("left", "right")):
            heel, stance = self.foot(t, side)
            inner = right * (0.03 if side == 0 else -0.03)
            out[J[f"{name}_heel"]] = heel
            out[J[f"{name}_big_toe_tip"]] = heel + 0.2 * d + inner
            out[J[f"{name}_small_toe_tip"]] = heel + 0.18 * d - inner
            out[J[f"{name}_ankle"]] = heel + 0.05 * d + [0.0, 0.08, 0.0]
            out[J[f"{name}_knee"]] = 0.5 * (out[J[f"{name}_ankle"]] + out[J[f"{name}_hip"]])
            contact.append(stance)
        return out, (contact[0], contact[1])


FOCAL = 800.0
"""The model's virtual pinhole for 640 x 480 frames: ``sqrt(640^2 + 480^2)`` pixels."""


def person(joints_cam: np.ndarray, track_id: int) -> PersonResult:
    """A PersonResult holding these camera-frame joints; ``joints_2d`` are their projections
    (the keypoints agree with the 3D joints, noise included)."""
    trans = 0.5 * (joints_cam[J["left_hip"]] + joints_cam[J["right_hip"]])
    pp = np.array([320.0, 240.0])
    return PersonResult(
        bbox=np.array([0.0, 0.0, 10.0, 10.0]), score=0.9,
        joints_2d=joints_cam[:, :2] / joints_cam[:, 2:3] * FOCAL + pp,
        joints_3d_local=joints_cam - trans, cam_trans=trans, mhr_params=np.zeros(204),
        shape_params=np.zeros(45), focal_length=FOCAL, principal_point=pp,
        image_size=(640, 480), track_id=track_id,
    )  # fmt: skip


def default_walkers() -> list[Walker]:
    """Three walkers crossing in front of the camera in different directions."""
    return [
        Walker(1, (-2.5, -5.0), (1.0, 0.0)),
        Walker(2, (1.5, -3.5), (-0.3, -1.0), speed=1.2, phase=0.3),
        Walker(3, (2.0, -8.0), (-1.0, 0.4), speed=1.0, phase=0.7),
    ]


def frames(
    camera: WorldFrame,
    walkers: list[Walker],
    n: int,
    noise: float = 0.0,
    seed: int = 0,
) -> list[tuple[float, list[PersonResult], list[tuple[bool, bool]]]]:
    """``n`` frames at 30 FPS: (timestamp, persons, true contacts), joint noise in metres."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        t = i / FPS
        persons, contacts = [], []
        for w in walkers:
            joints, contact = w.joints(t)
            cam = camera.world_to_cam(joints) + rng.normal(0.0, noise, (NUM_JOINTS, 3))
            persons.append(person(cam, w.track_id))
            contacts.append(contact)
        out.append((t, persons, contacts))
    return out
