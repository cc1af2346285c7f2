"""Feet that stay put: lock planted feet with two-bone leg IK, and measure foot skate.

The world stage flags each foot's contact with the ground per frame
(:attr:`instanthmr.results.PersonWorld.contact`). A planted foot is held still: its ankle on
the ground plane (x and z; the height is left as estimated) and its global orientation. The
root never moves: the thigh and shin rotations are re-solved (analytic two-bone IK, the
knee kept in the plane of its estimated bend). Where the held spot is out of the leg's
reach, the leg stretches towards it and the ankle stops short.

- **Files** (:func:`lock_feet`, the whole clip known): each contact run holds the foot at
  the median of its estimated ankle positions over the run and at the mean of its
  orientations; the hold eases in over ``blend_frames`` frames before the run and out over
  as many after it (smoothstep), so nothing jumps.
- **Live** (:class:`FootLocker`, one frame at a time, no look-ahead): a contact holds the
  foot where and as it was on the contact's first frame; after lift-off it eases back to
  the estimate over ``blend_frames`` frames.

:func:`foot_skate` is the measure: centimetres of horizontal motion of a foot point per
contact frame (frames in contact whose previous frame was in contact too).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
from scipy.spatial.transform import Rotation

from . import rig
from .clips import observed_runs
from .kinematics import Motion, rotation_between

LEGS = tuple(
    tuple(rig.JOINT_NAMES.index(f"{side}{part}") for part in ("UpLeg", "Leg", "Foot"))
    for side in ("Left", "Right")
)
"""(hip, knee, ankle) joint indices of the left and right leg."""
TOES = tuple(rig.POINT_NAMES.index(f"{side}Toe") for side in ("Left", "Right"))
"""Rig point index of the left and right toe end sites."""
DEFAULT_BLEND_FRAMES = 4
"""Frames over which a hold eases in (files only) and out."""


def _ease(x: np.ndarray | float) -> np.ndarray:
    """Smoothstep weight of the hold: 1 at ``x = 0`` (held), 0 at ``x >= 1`` (released)."""
    x = np.clip(x, 0.0, 1.0)
    return 1.0 - x * x * (3 - 2 * x)


def _toward(est: np.ndarray, held: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Rotations (..., 3, 3) ``w`` of the way from ``est`` to ``held`` (slerp)."""
    shape = est.shape
    e = Rotation.from_matrix(est.reshape(-1, 3, 3))
    step = (e.inv() * Rotation.from_matrix(held.reshape(-1, 3, 3))).as_rotvec()
    moved = e * Rotation.from_rotvec(step * np.reshape(w, (-1, 1)))
    return moved.as_matrix().reshape(shape)


@dataclass
class FootLocker:
    """Live foot lock: per frame, where and how each foot should be (see the module docs).

    Args:
        blend_frames: frames over which a released foot eases back (0: at once).
    """

    blend_frames: int = DEFAULT_BLEND_FRAMES
    _held: list[tuple[np.ndarray, np.ndarray] | None] = field(default_factory=lambda: [None] * 2)
    _since: list[int] = field(default_factory=lambda: [0, 0])

    def __post_init__(self) -> None:
        if self.blend_frames < 0:
            raise ValueError(f"blend_frames must be >= 0, got {self.blend_frames}")

    def reset(self) -> None:
        """Forget both feet."""
        self._held = [None, None]
        self._since = [0, 0]

    def step(
        self, ankles: np.ndarray, feet: np.ndarray, contact: tuple[bool, bool] | np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """This frame's (2, 3) ankle positions, (2, 3, 3) foot global rotations and (left,
        right) contact -> (ankle targets, foot rotations, hold weights (2,))."""
        pos = np.array(ankles, dtype=np.float64, copy=True)
        rot = np.array(feet, dtype=np.float64, copy=True)
        weight = np.zeros(2)
        for side in (0, 1):
            held = self._held[side]
            w = float(_ease(self._since[side] / (self.blend_frames + 1)))
            if held is not None:  # where the hold puts the foot now
                pos[side, [0, 2]] += w * (held[0] - pos[side, [0, 2]])
                rot[side] = _toward(rot[side], held[1], np.array([w]))
            if contact[side]:
                if held is None or self._since[side]:  # a new contact holds the foot as it is
                    self._held[side] = (pos[side, [0, 2]].copy(), rot[side].copy())
                self._since[side], weight[side] = 0, 1.0
                continue
            if held is None:
                continue
            self._since[side] += 1
            w_next = float(_ease(self._since[side] / (self.blend_frames + 1)))
            pos[side, [0, 2]] = ankles[side][[0, 2]] + w_next * (held[0] - ankles[side][[0, 2]])
            rot[side] = _toward(feet[side], held[1], np.array([w_next]))
            weight[side] = w_next
            if w_next <= 0.0:
                self._held[side], self._since[side] = None, 0
        return pos, rot, weight


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-12)


def leg_ik(
    glob: np.ndarray, pos: np.ndarray, side: int, target: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """New global rotations of one leg's thigh and shin that put its ankle on ``target``.

    Args:
        glob: (T, J, 3, 3) global joint rotations; pos: (T, P, 3) point positions.
        side: 0 left, 1 right; target: (T, 3) ankle targets.

    Returns (thigh, shin) global rotations, each (T, 3, 3). The knee stays in the plane of
    its current bend (the hips' forward direction when the leg is straight).
    """
    hip, knee, ankle = LEGS[side]
    h, k, a = pos[:, hip], pos[:, knee], pos[:, ankle]
    l1 = np.linalg.norm(k - h, axis=-1)
    l2 = np.linalg.norm(a - k, axis=-1)
    to = target - h
    d = np.clip(np.linalg.norm(to, axis=-1), np.abs(l1 - l2) + 1e-9, (l1 + l2) * (1 - 1e-9))
    u = _unit(to)
    bend = (k - h) - np.sum((k - h) * u, axis=-1, keepdims=True) * u
    fwd = glob[:, 0] @ np.array([0.0, 0.0, 1.0])
    fwd = fwd - np.sum(fwd * u, axis=-1, keepdims=True) * u
    straight = np.linalg.norm(bend, axis=-1) < 1e-6
    pole = _unit(np.where(straight[:, None], fwd, bend))
    along = (l1**2 - l2**2 + d**2) / (2 * d)
    across = np.sqrt(np.maximum(l1**2 - along**2, 0.0))
    new_k = h + along[:, None] * u + across[:, None] * pole
    new_a = h + d[:, None] * u
    r1 = rotation_between(k - h, new_k - h)
    r2 = rotation_between(np.einsum("tab,tb->ta", r1, a - k), new_a - new_k)
    thigh = r1 @ glob[:, hip]
    return thigh, r2 @ r1 @ glob[:, knee]


def apply_leg_targets(
    motion: Motion, targets: np.ndarray, feet: np.ndarray, moved: np.ndarray
) -> Motion:
    """``motion`` with each leg re-solved where ``moved`` (T, 2): its ankle on ``targets``
    (T, 2, 3) and its foot turned to the global rotations ``feet`` (T, 2, 3, 3). The root
    and every other joint stay as they were."""
    if not moved.any():
        return motion
    glob = motion.global_rotations()
    pos = motion.positions()
    local = motion.rotations.copy()
    for side in (0, 1):
        rows = np.flatnonzero(moved[:, side])
        if not len(rows):
            continue
        hip, knee, ankle = LEGS[side]
        thigh, shin = leg_ik(glob[rows], pos[rows], side, targets[rows, side])
        parent = glob[rows, motion.parents[hip]]
        local[rows, hip] = np.swapaxes(parent, -1, -2) @ thigh
        local[rows, knee] = np.swapaxes(thigh, -1, -2) @ shin
        local[rows, ankle] = np.swapaxes(shin, -1, -2) @ feet[rows, side]
    return replace(motion, rotations=local)


def _hold_weights(contact: np.ndarray, blend: int) -> tuple[np.ndarray, np.ndarray]:
    """Per frame, the hold weight and the contact run (index into the runs, -1: none)."""
    runs = observed_runs(contact)
    weight, run = np.zeros(len(contact)), np.full(len(contact), -1)
    frames = np.arange(len(contact))
    for r, (a, b) in enumerate(runs):
        dist = np.maximum(a - frames, frames - (b - 1)).clip(min=0)  # frames outside the run
        w = _ease(dist / (blend + 1))
        better = w > weight
        weight[better], run[better] = w[better], r
    return weight, run


def lock_feet(motion: Motion, blend_frames: int = DEFAULT_BLEND_FRAMES) -> Motion:
    """``motion`` with its planted feet held (see the module docs: the whole-clip rule);
    unchanged when its ``contact`` is None or never true. Held (unobserved) frames count
    as no contact."""
    if motion.contact is None or not motion.contact.any():
        return motion
    if blend_frames < 0:
        raise ValueError(f"blend_frames must be >= 0, got {blend_frames}")
    contact = motion.contact & motion.observed[:, None]
    pos, glob = motion.positions(), motion.global_rotations()
    targets = pos[:, [LEGS[0][2], LEGS[1][2]]].copy()
    feet = glob[:, [LEGS[0][2], LEGS[1][2]]].copy()
    moved = np.zeros((motion.num_frames, 2), dtype=bool)
    for side in (0, 1):
        weight, run = _hold_weights(contact[:, side], blend_frames)
        for r, (a, b) in enumerate(observed_runs(contact[:, side])):
            rows = np.flatnonzero(run == r)
            spot = np.median(targets[a:b, side][:, [0, 2]], axis=0)
            held = Rotation.from_matrix(feet[a:b, side]).mean().as_matrix()
            w = weight[rows]
            flat = targets[rows, side][:, [0, 2]]
            targets[rows[:, None], side, [0, 2]] += w[:, None] * (spot - flat)
            feet[rows, side] = _toward(feet[rows, side], np.broadcast_to(held, (len(rows), 3, 3)),
                                       w)  # fmt: skip
        moved[:, side] = weight > 0
    return apply_leg_targets(motion, targets, feet, moved)


def foot_skate(positions: np.ndarray, contact: np.ndarray, points: tuple[int, int]) -> float:
    """Centimetres of horizontal (x, z) motion of the foot ``points`` (left, right indices
    into ``positions`` (T, P, 3), metres, Y up) per contact frame: frames whose foot is in
    contact in that frame and the one before. NaN when there is no such frame."""
    steps = np.linalg.norm(np.diff(positions[:, list(points)][..., [0, 2]], axis=0), axis=-1)
    both = np.asarray(contact[1:], dtype=bool) & np.asarray(contact[:-1], dtype=bool)
    return float(steps[both].mean() * 100.0) if both.any() else float("nan")
