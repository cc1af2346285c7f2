"""A simple skinned body for the glTF export: one box per bone, rigidly bound to it.

In the rest pose (a T-pose: every rotation identity) every bone of the rig lies along a
coordinate axis, so each joint's box is the axis-aligned box around the joint and the child
points it reaches (its bone; for the hips the hip line), padded by a per-joint half
thickness across the bone and a little along it. Each box's 24 vertices (4 per face, so
faces are flat-shaded) are bound to that joint alone, with weight 1: viewers show a blocky
body that follows the skeleton exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import rig
from .kinematics import Motion

# Half thickness (metres) across each joint's bone, in rig.JOINT_NAMES order.
_HALF = {
    "Hips": 0.08, "Spine": 0.11, "Spine1": 0.12, "Spine2": 0.12, "Neck": 0.045, "Head": 0.085,
    "UpLeg": 0.07, "Leg": 0.055, "Foot": 0.045, "Shoulder": 0.05, "Arm": 0.045,
    "ForeArm": 0.04, "Hand": 0.035,
}  # fmt: skip
ALONG = 0.25
"""Padding along the bone, as a fraction of the half thickness."""


def half_thickness() -> np.ndarray:
    """(J,) half thickness of each joint's box, metres (:data:`rig.JOINT_NAMES` order)."""
    out = []
    for name in rig.JOINT_NAMES:
        key = name.removeprefix("Left").removeprefix("Right")
        out.append(_HALF[key])
    return np.array(out)


def rest_positions(motion: Motion) -> np.ndarray:
    """(J + E, 3) joint then end-site positions in the rest pose, root at the origin."""
    nj = len(motion.names)
    pos = np.zeros((nj + len(motion.end_names), 3))
    for j, p in enumerate(motion.parents):
        if p >= 0:
            pos[j] = pos[p] + motion.offsets[j]
    for e, p in enumerate(motion.end_parents):
        pos[nj + e] = pos[p] + motion.end_offsets[e]
    return pos


@dataclass(frozen=True)
class BodyMesh:
    """Vertex arrays of the skinned body (glTF attribute layout)."""

    positions: np.ndarray  # (V, 3) float32, bind (rest) pose
    normals: np.ndarray  # (V, 3) float32
    joints: np.ndarray  # (V, 4) uint8: skin joint index of each vertex (first column)
    weights: np.ndarray  # (V, 4) float32: (1, 0, 0, 0)
    indices: np.ndarray  # (I,) uint16, triangles, counter-clockwise seen from outside


# Each face: the fixed axis, its side, and the two in-face axes ordered so that
# (u x v) points out of the box.
_FACES = ((0, 1, 1, 2), (0, -1, 2, 1), (1, 1, 2, 0), (1, -1, 0, 2), (2, 1, 0, 1), (2, -1, 1, 0))


def _box(lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    centre, half = (lo + hi) / 2, (hi - lo) / 2
    verts, norms = [], []
    for axis, side, u, v in _FACES:
        n = np.zeros(3)
        n[axis] = side
        for su, sv in ((-1, -1), (1, -1), (1, 1), (-1, 1)):  # counter-clockwise in (u, v)
            p = n.copy()
            p[u], p[v] = su, sv
            verts.append(centre + p * half)
            norms.append(n)
    return np.array(verts), np.array(norms)


def body_mesh(motion: Motion, rest: np.ndarray | None = None) -> BodyMesh:
    """One box per joint of ``motion`` (the 20-joint rig, any naming), bound to that joint.

    ``rest`` is (J + E, 3) rest positions (default :func:`rest_positions`). Skin joint
    indices are the motion's joint indices (end sites carry no vertices).
    """
    if len(motion.names) != len(rig.JOINT_NAMES):
        raise ValueError(f"body_mesh needs the {len(rig.JOINT_NAMES)}-joint rig")
    rest = rest_positions(motion) if rest is None else rest
    nj = len(motion.names)
    children: list[list[int]] = [[] for _ in range(nj)]
    for j, p in enumerate(motion.parents):
        if p >= 0 and np.any(motion.offsets[j]):
            children[p].append(j)
    for e, p in enumerate(motion.end_parents):
        if np.any(motion.end_offsets[e]):
            children[p].append(nj + e)
    half = half_thickness()
    pos, nrm, jnt, idx = [], [], [], []
    for j in range(nj):
        pts = rest[[j, *children[j]]]
        if motion.parents[j] < 0 and children[j]:  # the hips: the hip line only
            pts = rest[children[j]]
        lo, hi = pts.min(axis=0), pts.max(axis=0)
        axis = int(np.argmax(hi - lo))
        pad = np.full(3, half[j])
        pad[axis] *= ALONG
        verts, norms = _box(lo - pad, hi + pad)
        base = len(pos) * 24
        idx.extend(base + f * 4 + k for f in range(6) for k in (0, 1, 2, 0, 2, 3))
        pos.append(verts)
        nrm.append(norms)
        jnt.append(np.full(24, j))
    joints = np.zeros((nj * 24, 4), dtype=np.uint8)
    joints[:, 0] = np.concatenate(jnt)
    weights = np.zeros((nj * 24, 4), dtype=np.float32)
    weights[:, 0] = 1.0
    return BodyMesh(
        np.concatenate(pos).astype(np.float32), np.concatenate(nrm).astype(np.float32),
        joints, weights, np.asarray(idx, dtype=np.uint16),
    )  # fmt: skip
