"""The MHR70 keypoint layout: joint names, skeleton edges, flip pairs and limb colours.

The order is the one in the model contract (``docs/architecture.md``). The finger
chains in :data:`FULL_EDGES` follow the contract's naming, tip -> first -> second -> third
joint -> wrist. That direction has not been checked against real model output (the real
weights are not reachable from the build machines); :data:`BODY_EDGES` holds only the
pairs the contract states explicitly.
"""

from __future__ import annotations

import itertools

import numpy as np

NUM_JOINTS = 70

_FINGERS = ("thumb", "index", "middle", "ring", "pinky")
_PHALANGES = ("tip", "first_joint", "second_joint", "third_joint")


def _hand(side: str) -> list[str]:
    return [f"{side}_{finger}_{part}" for finger in _FINGERS for part in _PHALANGES]


JOINT_NAMES: tuple[str, ...] = tuple(
    [
        "nose", "left_eye", "right_eye", "left_ear", "right_ear",
        "left_shoulder", "right_shoulder", "left_elbow", "right_elbow",
        "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle",
        "left_big_toe_tip", "left_small_toe_tip", "left_heel",
        "right_big_toe_tip", "right_small_toe_tip", "right_heel",
    ]
    + _hand("right")
    + ["right_wrist"]
    + _hand("left")
    + [
        "left_wrist",
        "left_olecranon", "right_olecranon",
        "left_cubital_fossa", "right_cubital_fossa",
        "left_acromion", "right_acromion",
        "neck",
    ]
)  # fmt: skip

JOINT_INDEX: dict[str, int] = {name: i for i, name in enumerate(JOINT_NAMES)}


def joint_index(name: str) -> int:
    """Index of an MHR70 joint by name; raises KeyError listing a few valid names."""
    try:
        return JOINT_INDEX[name]
    except KeyError:
        raise KeyError(
            f"unknown MHR70 joint {name!r}; valid names include {', '.join(JOINT_NAMES[:6])}, "
            "... (see instanthmr.skeleton.JOINT_NAMES)"
        ) from None


def _flip_name(name: str) -> str:
    if name.startswith("left_"):
        return "right_" + name[len("left_") :]
    if name.startswith("right_"):
        return "left_" + name[len("right_") :]
    return name


FLIP_PAIRS: tuple[tuple[int, int], ...] = tuple(
    (i, JOINT_INDEX[_flip_name(n)]) for i, n in enumerate(JOINT_NAMES) if n.startswith("left_")
)
"""(left, right) index pairs: swap them when mirroring an image horizontally."""

FLIP_PERMUTATION: np.ndarray = np.array(
    [JOINT_INDEX[_flip_name(n)] for n in JOINT_NAMES], dtype=np.int64
)
"""``joints[FLIP_PERMUTATION]`` relabels joints after a horizontal mirror."""

# Limb groups: each edge belongs to one group, each group has one colour (RGB, 0-255).
LIMB_GROUPS: tuple[str, ...] = (
    "head", "torso", "left_arm", "right_arm", "left_leg", "right_leg", "left_hand", "right_hand",
)  # fmt: skip
GROUP_COLORS: dict[str, tuple[int, int, int]] = {
    "head": (255, 215, 0),
    "torso": (230, 230, 230),
    "left_arm": (0, 200, 255),
    "right_arm": (255, 90, 60),
    "left_leg": (40, 120, 255),
    "right_leg": (255, 40, 160),
    "left_hand": (0, 255, 170),
    "right_hand": (255, 160, 0),
}


def _j(*names: str) -> tuple[int, ...]:
    return tuple(JOINT_INDEX[n] for n in names)


_BODY: list[tuple[str, tuple[int, int]]] = [
    ("head", _j("nose", "neck")),
    ("torso", _j("neck", "left_shoulder")),
    ("torso", _j("neck", "right_shoulder")),
    ("torso", _j("left_shoulder", "left_hip")),
    ("torso", _j("right_shoulder", "right_hip")),
    ("torso", _j("left_hip", "right_hip")),
    ("left_arm", _j("left_shoulder", "left_elbow")),
    ("left_arm", _j("left_elbow", "left_wrist")),
    ("right_arm", _j("right_shoulder", "right_elbow")),
    ("right_arm", _j("right_elbow", "right_wrist")),
    ("left_leg", _j("left_hip", "left_knee")),
    ("left_leg", _j("left_knee", "left_ankle")),
    ("left_leg", _j("left_ankle", "left_heel")),
    ("right_leg", _j("right_hip", "right_knee")),
    ("right_leg", _j("right_knee", "right_ankle")),
    ("right_leg", _j("right_ankle", "right_heel")),
] + [
    (f"{side}_hand", _j(f"{side}_wrist", f"{side}_{finger}_tip"))
    for side in ("left", "right")
    for finger in _FINGERS
]


def _finger_chains() -> list[tuple[str, tuple[int, int]]]:
    edges = []
    for side in ("left", "right"):
        for finger in _FINGERS:
            chain = [f"{side}_{finger}_{p}" for p in _PHALANGES] + [f"{side}_wrist"]
            edges += [(f"{side}_hand", _j(a, b)) for a, b in itertools.pairwise(chain)]
    return edges


def _face_and_feet() -> list[tuple[str, tuple[int, int]]]:
    return [
        ("head", _j("nose", "left_eye")),
        ("head", _j("nose", "right_eye")),
        ("head", _j("left_eye", "left_ear")),
        ("head", _j("right_eye", "right_ear")),
        ("left_leg", _j("left_ankle", "left_big_toe_tip")),
        ("left_leg", _j("left_ankle", "left_small_toe_tip")),
        ("right_leg", _j("right_ankle", "right_big_toe_tip")),
        ("right_leg", _j("right_ankle", "right_small_toe_tip")),
    ]


BODY_EDGES: tuple[tuple[int, int], ...] = tuple(e for _, e in _BODY)
"""The minimal skeleton stated in the contract (body plus wrist-to-fingertip lines)."""
BODY_EDGE_GROUPS: tuple[str, ...] = tuple(g for g, _ in _BODY)

_FULL = [x for x in _BODY if not x[0].endswith("_hand")] + _face_and_feet() + _finger_chains()
FULL_EDGES: tuple[tuple[int, int], ...] = tuple(e for _, e in _FULL)
"""A fuller drawing: face, toes and finger chains (tip -> ... -> third joint -> wrist)."""
FULL_EDGE_GROUPS: tuple[str, ...] = tuple(g for g, _ in _FULL)


def joint_groups() -> tuple[str, ...]:
    """The limb group of each of the 70 joints (for colouring keypoints)."""
    groups = ["torso"] * NUM_JOINTS
    for i, name in enumerate(JOINT_NAMES):
        if name in ("nose", "left_eye", "right_eye", "left_ear", "right_ear", "neck"):
            groups[i] = "head"
        elif any(f in name for f in _FINGERS) or name.endswith("_wrist"):
            groups[i] = "left_hand" if name.startswith("left") else "right_hand"
        elif any(k in name for k in ("elbow", "olecranon", "cubital")):
            groups[i] = "left_arm" if name.startswith("left") else "right_arm"
        elif any(k in name for k in ("knee", "ankle", "toe", "heel")):
            groups[i] = "left_leg" if name.startswith("left") else "right_leg"
    return tuple(groups)


def joint_colors() -> np.ndarray:
    """(70, 3) uint8 RGB colour per joint, from its limb group."""
    return np.array([GROUP_COLORS[g] for g in joint_groups()], dtype=np.uint8)


def edge_colors(full: bool = False) -> np.ndarray:
    """(E, 3) uint8 RGB colour per edge of :data:`BODY_EDGES` (or :data:`FULL_EDGES`)."""
    groups = FULL_EDGE_GROUPS if full else BODY_EDGE_GROUPS
    return np.array([GROUP_COLORS[g] for g in groups], dtype=np.uint8)


JointSelection = str | np.ndarray | list[int]
"""``"body"``, ``"all"`` or explicit joint indices (see :func:`select_joints`)."""

_FINGER_WORDS = ("thumb", "index", "middle", "ring", "pinky")

BODY_JOINTS: np.ndarray = np.array(
    [i for i, name in enumerate(JOINT_NAMES) if not any(w in name for w in _FINGER_WORDS)],
    dtype=np.int64,
)
"""The 30 MHR70 joints that are not finger joints: face, neck, torso, arms up to the
wrists, legs and feet. Boxes and tracking distances use these by default: the 40 finger
joints are tiny in the 224-pixel crop (the least reliable output of the 2D head), one
stray fingertip would stretch a box, and in a mean over all 70 joints the hands would
outweigh the body 4 to 3. The wrists are kept; the box expansion covers the hands."""

def select_joints(joints: JointSelection = "body") -> np.ndarray:
    """Indices of the joints that count for boxes and distances.

    Args:
        joints: ``"body"`` (:data:`BODY_JOINTS`, the default), ``"all"`` (all 70) or an
            explicit sequence of joint indices.

    Returns:
        (K,) int64 indices into the 70 MHR70 joints.
    """
    if isinstance(joints, str):
        if joints == "body":
            return BODY_JOINTS.copy()
        if joints == "all":
            return np.arange(NUM_JOINTS, dtype=np.int64)
        raise ValueError(f"joints must be 'body', 'all' or a list of indices, got {joints!r}")
    idx = np.asarray(joints, dtype=np.int64).reshape(-1)
    if idx.size == 0 or idx.min() < 0 or idx.max() >= NUM_JOINTS:
        raise ValueError(f"joint indices must be a non-empty subset of 0..{NUM_JOINTS - 1}")
    return idx
