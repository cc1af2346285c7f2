"""Bone naming conventions (``--rig``): the 20-joint rig under names that tools know.

- ``plain``: the rig's own names (``Hips``, ``LeftUpLeg``, ... ; :data:`.rig.JOINT_NAMES`).
- ``mixamo``: Mixamo's ``mixamorig:`` names. The rig's joints are Mixamo's main body joints
  under the same names; the collar bones hang off ``Spine2`` as in Mixamo.
- ``vrm``: the VRM humanoid bone names (``hips``, ``leftUpperLeg``, ``upperChest``, ...); the
  collar bones hang off ``upperChest`` as in VRM and Unity.
- ``unity``: Unity's ``HumanBodyBones`` names (``Hips``, ``LeftUpperLeg``, ``UpperChest``):
  the names the VMC protocol sends (:mod:`instanthmr.sinks.vmc`). Same hierarchy as ``vrm``.

Moving the collar bones from ``Neck`` to the spine is exact: they sit on the neck point with
a zero offset, so under ``Spine2`` their offset is the neck's and their global rotations are
unchanged (:func:`apply_rig` recomputes the local ones). Bones the rig does not have (fingers,
toes bases, eyes, jaw, a fourth spine bone) are absent: see ``docs/animation.md``.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from . import rig
from .kinematics import Motion

RIG_NAMES: tuple[str, ...] = ("plain", "mixamo", "vrm", "unity")
"""Every naming convention; the CLI offers the first three (``unity`` is VMC's)."""
CLI_RIGS: tuple[str, ...] = ("plain", "mixamo", "vrm")
"""The conventions ``--rig`` accepts."""

# Plain joint -> (VRM humanoid name, Unity HumanBodyBones name).
_HUMANOID: dict[str, str] = {
    "Hips": "hips", "Spine": "spine", "Spine1": "chest", "Spine2": "upperChest",
    "Neck": "neck", "Head": "head",
    "LeftUpLeg": "leftUpperLeg", "LeftLeg": "leftLowerLeg", "LeftFoot": "leftFoot",
    "RightUpLeg": "rightUpperLeg", "RightLeg": "rightLowerLeg", "RightFoot": "rightFoot",
    "LeftShoulder": "leftShoulder", "LeftArm": "leftUpperArm",
    "LeftForeArm": "leftLowerArm", "LeftHand": "leftHand",
    "RightShoulder": "rightShoulder", "RightArm": "rightUpperArm",
    "RightForeArm": "rightLowerArm", "RightHand": "rightHand",
}  # fmt: skip
_MIXAMO_ENDS = {
    "LeftToe": "LeftToe_End", "RightToe": "RightToe_End", "HeadEnd": "HeadTop_End",
    "LeftHandEnd": "LeftHand_End", "RightHandEnd": "RightHand_End",
}  # fmt: skip
_SPINE_TOP = "Spine2"
_COLLARS = ("LeftShoulder", "RightShoulder")


def _names(convention: str) -> tuple[dict[str, str], dict[str, str]]:
    joints = {n: n for n in rig.JOINT_NAMES}
    ends = {n: n for n in rig.END_NAMES}
    if convention == "mixamo":
        joints = {n: f"mixamorig:{n}" for n in rig.JOINT_NAMES}
        ends = {n: f"mixamorig:{_MIXAMO_ENDS[n]}" for n in rig.END_NAMES}
    elif convention in ("vrm", "unity"):
        upper = convention == "unity"
        joints = {n: (h[0].upper() + h[1:]) if upper else h for n, h in _HUMANOID.items()}
        parent = dict(zip(rig.END_NAMES, (rig.JOINT_NAMES[p] for p in rig.END_PARENTS),
                          strict=True))  # fmt: skip
        ends = {n: f"{joints[parent[n]]}_end" for n in rig.END_NAMES}
    return joints, ends


def joint_names(convention: str) -> dict[str, str]:
    """Plain joint name -> its name under ``convention`` (the documented mapping)."""
    check_rig(convention)
    return _names(convention)[0]


def end_names(convention: str) -> dict[str, str]:
    """Plain end-site name -> its name under ``convention``."""
    check_rig(convention)
    return _names(convention)[1]


def check_rig(convention: str) -> str:
    """``convention`` if known, else a ValueError naming the choices."""
    if convention not in RIG_NAMES:
        raise ValueError(f"unknown rig {convention!r}; use one of {', '.join(RIG_NAMES)}")
    return convention


def _reparent(motion: Motion, joint: int, new_parent: int) -> Motion:
    """Hang ``joint`` (zero offset from its parent) off its grandparent ``new_parent``."""
    old = motion.parents[joint]
    if motion.parents[old] != new_parent or np.any(motion.offsets[joint] != 0):
        raise ValueError(f"cannot move {motion.names[joint]} to {motion.names[new_parent]}")
    glob = motion.global_rotations()
    parents = list(motion.parents)
    parents[joint] = new_parent
    offsets = motion.offsets.copy()
    offsets[joint] = motion.offsets[old]
    rotations = motion.rotations.copy()
    rotations[:, joint] = np.swapaxes(glob[:, new_parent], -1, -2) @ glob[:, joint]
    return replace(motion, parents=tuple(parents), offsets=offsets, rotations=rotations)


def apply_rig(motion: Motion, convention: str) -> Motion:
    """``motion`` (of the plain 20-joint rig) under ``convention``'s names and hierarchy.

    Positions (forward kinematics) are unchanged; only names, and for ``mixamo``/``vrm``/
    ``unity`` the collar bones' parent (the top spine bone instead of the neck), change.
    """
    check_rig(convention)
    if motion.names != rig.JOINT_NAMES:
        raise ValueError("apply_rig expects a motion of the plain 20-joint rig")
    if convention == "plain":
        return motion
    out = motion
    top = rig.JOINT_NAMES.index(_SPINE_TOP)
    for collar in _COLLARS:
        out = _reparent(out, rig.JOINT_NAMES.index(collar), top)
    joints, ends = _names(convention)
    return replace(
        out,
        names=tuple(joints[n] for n in motion.names),
        end_names=tuple(ends[n] for n in motion.end_names),
    )


def mapping_rows() -> list[tuple[str, ...]]:
    """One row per rig point: plain, mixamo, vrm, unity names (for the docs and tests)."""
    rows = []
    tables = [_names(c) for c in RIG_NAMES]
    for name in rig.JOINT_NAMES:
        rows.append(tuple(t[0][name] for t in tables))
    for name in rig.END_NAMES:
        rows.append(tuple(t[1][name] for t in tables))
    return rows
