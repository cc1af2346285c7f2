"""The fixed 20-joint animation skeleton and how each of its points comes from MHR70 joints.

Every rig point is a fixed weighted mean of named MHR70 joints (:data:`POINT_RULES`), so
``points = POINT_WEIGHTS @ joints70``. The derived points:

- ``Hips`` (the root) and ``Spine``: the pelvis, the midpoint of ``left_hip`` and ``right_hip``.
  ``Spine`` sits on the pelvis with a zero offset so that the hips' rotation is fixed by the
  hip line alone and the spine's by the pelvis→neck line alone.
- ``Spine1``, ``Spine2``: 1/3 and 2/3 of the way from the pelvis to ``neck``. MHR70 has no
  spine points, so the spine is the straight pelvis→neck line cut in three equal bones.
- ``Neck``: MHR70 ``neck``. ``Head``: the midpoint of the ears; its end site is the nose.
- ``LeftShoulder``/``RightShoulder`` (the collar bones) start on ``neck`` (zero offset) and
  end at the shoulder joints.
- Foot end sites: the midpoint of the big and small toe tips. Hand end sites: the mean of the
  16 index, middle, ring and pinky keypoints of that hand.

Each joint "aims" at one point (its child joint or end site): its global rotation turns the
rest direction of that bone onto the observed one, exactly. The twist about the bone comes
from a reference vector (:data:`TWIST_RULES`: hip line, shoulder line, ear line, index minus
pinky, toe line, torso up) where one is defined, else the joint takes the smallest rotation
from its parent's frame (no twist). Every joint has at most one non-zero child offset that is
not on its aim line, which is what makes forward kinematics reproduce the points exactly.

Rest pose (all local rotations zero): a T-pose in a Y-up, right-handed frame, facing +Z
(the character's left is +X). Each joint's Euler order puts the bone's own axis in the
middle, which keeps the middle angle below ~70° for bends up to 150° (no gimbal lock at
knees and elbows); the root uses ``YXZ`` (heading first).
"""

from __future__ import annotations

import numpy as np

from ..skeleton import JOINT_INDEX, NUM_JOINTS

_PELVIS = {"left_hip": 0.5, "right_hip": 0.5}


def _lerp(a: dict[str, float], b: dict[str, float], t: float) -> dict[str, float]:
    out = {k: (1 - t) * v for k, v in a.items()}
    for k, v in b.items():
        out[k] = out.get(k, 0.0) + t * v
    return out


def _mean(*names: str) -> dict[str, float]:
    return {n: 1.0 / len(names) for n in names}


def _hand(side: str) -> dict[str, float]:
    parts = ("tip", "first_joint", "second_joint", "third_joint")
    return _mean(*(f"{side}_{f}_{p}" for f in ("index", "middle", "ring", "pinky") for p in parts))


def _finger(side: str, finger: str) -> dict[str, float]:
    parts = ("tip", "first_joint", "second_joint", "third_joint")
    return _mean(*(f"{side}_{finger}_{p}" for p in parts))


def _minus(a: dict[str, float], b: dict[str, float]) -> dict[str, float]:
    out = dict(a)
    for k, v in b.items():
        out[k] = out.get(k, 0.0) - v
    return out


_NECK = {"neck": 1.0}
# name, parent, rest direction of the offset from the parent, MHR70 rule, Euler order.
_JOINTS: tuple[tuple[str, str | None, tuple[float, float, float], dict[str, float], str], ...] = (
    ("Hips", None, (0, 0, 0), _PELVIS, "YXZ"),
    ("LeftUpLeg", "Hips", (1, 0, 0), {"left_hip": 1.0}, "XYZ"),
    ("LeftLeg", "LeftUpLeg", (0, -1, 0), {"left_knee": 1.0}, "XYZ"),
    ("LeftFoot", "LeftLeg", (0, -1, 0), {"left_ankle": 1.0}, "XZY"),
    ("RightUpLeg", "Hips", (-1, 0, 0), {"right_hip": 1.0}, "XYZ"),
    ("RightLeg", "RightUpLeg", (0, -1, 0), {"right_knee": 1.0}, "XYZ"),
    ("RightFoot", "RightLeg", (0, -1, 0), {"right_ankle": 1.0}, "XZY"),
    ("Spine", "Hips", (0, 0, 0), _PELVIS, "XYZ"),
    ("Spine1", "Spine", (0, 1, 0), _lerp(_PELVIS, _NECK, 1 / 3), "XYZ"),
    ("Spine2", "Spine1", (0, 1, 0), _lerp(_PELVIS, _NECK, 2 / 3), "XYZ"),
    ("Neck", "Spine2", (0, 1, 0), _NECK, "XYZ"),
    ("Head", "Neck", (0, 1, 0), _mean("left_ear", "right_ear"), "YZX"),
    ("LeftShoulder", "Neck", (0, 0, 0), _NECK, "ZXY"),
    ("LeftArm", "LeftShoulder", (1, 0, 0), {"left_shoulder": 1.0}, "ZXY"),
    ("LeftForeArm", "LeftArm", (1, 0, 0), {"left_elbow": 1.0}, "ZXY"),
    ("LeftHand", "LeftForeArm", (1, 0, 0), {"left_wrist": 1.0}, "ZXY"),
    ("RightShoulder", "Neck", (0, 0, 0), _NECK, "ZXY"),
    ("RightArm", "RightShoulder", (-1, 0, 0), {"right_shoulder": 1.0}, "ZXY"),
    ("RightForeArm", "RightArm", (-1, 0, 0), {"right_elbow": 1.0}, "ZXY"),
    ("RightHand", "RightForeArm", (-1, 0, 0), {"right_wrist": 1.0}, "ZXY"),
)  # fmt: skip

# End sites: name, joint, rest direction, MHR70 rule.
_ENDS: tuple[tuple[str, str, tuple[float, float, float], dict[str, float]], ...] = (
    ("LeftToe", "LeftFoot", (0, 0, 1), _mean("left_big_toe_tip", "left_small_toe_tip")),
    ("RightToe", "RightFoot", (0, 0, 1), _mean("right_big_toe_tip", "right_small_toe_tip")),
    ("HeadEnd", "Head", (0, 0, 1), {"nose": 1.0}),
    ("LeftHandEnd", "LeftHand", (1, 0, 0), _hand("left")),
    ("RightHandEnd", "RightHand", (-1, 0, 0), _hand("right")),
)  # fmt: skip

_HIP_LINE = {"left_hip": 1.0, "right_hip": -1.0}
_SHOULDER_LINE = {"left_shoulder": 1.0, "right_shoulder": -1.0}
# Twist references: joint -> (MHR70 vector rule, its direction in the rest pose).
TWIST_RULES: dict[str, tuple[dict[str, float], tuple[float, float, float]]] = {
    "Hips": (_minus(_NECK, _PELVIS), (0, 1, 0)),  # torso up
    "Spine": (_HIP_LINE, (1, 0, 0)),
    "Spine1": ({**_HIP_LINE, **_SHOULDER_LINE}, (1, 0, 0)),  # hip line + shoulder line
    "Spine2": (_SHOULDER_LINE, (1, 0, 0)),
    "Neck": (_SHOULDER_LINE, (1, 0, 0)),
    "Head": ({"left_ear": 1.0, "right_ear": -1.0}, (1, 0, 0)),
    "LeftHand": (_minus(_finger("left", "index"), _finger("left", "pinky")), (0, 0, 1)),
    "RightHand": (_minus(_finger("right", "index"), _finger("right", "pinky")), (0, 0, 1)),
    "LeftFoot": ({"left_small_toe_tip": 1.0, "left_big_toe_tip": -1.0}, (1, 0, 0)),
    "RightFoot": ({"right_big_toe_tip": 1.0, "right_small_toe_tip": -1.0}, (1, 0, 0)),
}
"""Joints whose twist comes from a reference vector; the others take no twist."""

JOINT_NAMES: tuple[str, ...] = tuple(j[0] for j in _JOINTS)
"""The 20 rig joints, parents before children (BVH order)."""
END_NAMES: tuple[str, ...] = tuple(e[0] for e in _ENDS)
"""The end sites (toes, nose, hands): leaves with no rotation of their own."""
POINT_NAMES: tuple[str, ...] = JOINT_NAMES + END_NAMES
"""Rig points: joints, then end sites."""
PARENTS: tuple[int, ...] = tuple(-1 if p is None else JOINT_NAMES.index(p) for _, p, *_ in _JOINTS)
END_PARENTS: tuple[int, ...] = tuple(JOINT_NAMES.index(e[1]) for e in _ENDS)
EULER_ORDERS: tuple[str, ...] = tuple(j[4] for j in _JOINTS)
"""Per-joint rotation channel order (intrinsic: ``"ZXY"`` is R = Rz·Rx·Ry)."""
REST_DIRS: np.ndarray = np.array([j[2] for j in _JOINTS] + [e[2] for e in _ENDS], dtype=float)
"""(P, 3) unit direction of each point's offset from its parent in the rest pose (0 = none)."""
POINT_RULES: dict[str, dict[str, float]] = {
    **{j[0]: j[3] for j in _JOINTS},
    **{e[0]: e[3] for e in _ENDS},
}
"""How each rig point is made: MHR70 joint name -> weight (weights sum to 1)."""
POINT_PARENTS: tuple[int, ...] = PARENTS + END_PARENTS
"""Parent joint of every rig point (-1 for the root)."""


def _weights(rules: list[dict[str, float]]) -> np.ndarray:
    w = np.zeros((len(rules), NUM_JOINTS))
    for row, rule in enumerate(rules):
        for name, value in rule.items():
            w[row, JOINT_INDEX[name]] += value
    return w


POINT_WEIGHTS: np.ndarray = _weights([POINT_RULES[n] for n in POINT_NAMES])
"""(P, 70): ``points = POINT_WEIGHTS @ joints70``."""
TWIST_WEIGHTS: np.ndarray = _weights([TWIST_RULES.get(n, ({},))[0] for n in JOINT_NAMES])
"""(J, 70): twist reference vectors ``TWIST_WEIGHTS @ joints70`` (zero rows: no reference)."""
TWIST_REST: np.ndarray = np.array(
    [TWIST_RULES[n][1] if n in TWIST_RULES else (0, 0, 0) for n in JOINT_NAMES], dtype=float
)
"""(J, 3) rest direction of each twist reference (zero: the joint takes no twist)."""


def _aims() -> tuple[int, ...]:
    aims = []
    for j in range(len(JOINT_NAMES)):
        kids = [p for p, par in enumerate(POINT_PARENTS) if par == j and REST_DIRS[p].any()]
        aims.append(kids[0])  # the first child with a non-zero offset
    return tuple(aims)


AIMS: tuple[int, ...] = _aims()
"""Index (into :data:`POINT_NAMES`) of the point each joint aims at."""


def camera_to_yup(points: np.ndarray) -> np.ndarray:
    """Camera frame (X right, Y down, Z forward) -> Y-up frame (X right, Y up, Z to camera).

    A 180° turn about X: ``(x, y, z) -> (x, -y, -z)``. Right-handed in and out; a person
    facing the camera faces +Z afterwards.
    """
    out = np.array(points, dtype=np.float64, copy=True)
    out[..., 1:] *= -1.0
    return out


def rig_points(joints70: np.ndarray) -> np.ndarray:
    """(..., 70, 3) MHR70 joints -> (..., P, 3) rig points (:data:`POINT_NAMES` order)."""
    return np.einsum("pk,...kc->...pc", POINT_WEIGHTS, np.asarray(joints70, dtype=np.float64))


def twist_references(joints70: np.ndarray) -> np.ndarray:
    """(..., 70, 3) MHR70 joints -> (..., J, 3) twist reference vectors (zero: none)."""
    return np.einsum("jk,...kc->...jc", TWIST_WEIGHTS, np.asarray(joints70, dtype=np.float64))
