"""Feet that stay put: lock a planted foot with two-bone leg IK, and measure foot skate.

The world stage flags each foot's contact with the ground per frame
(:attr:`instanthmr.results.PersonWorld.contact`). While a foot is in contact its ankle is
held at the spot (on the ground plane: x and z) where the contact began; the height is left
as estimated. After lift-off the ankle eases back to the estimate over ``blend_frames``
frames (smoothstep), so nothing jumps. The root never moves: the thigh and shin rotations are
re-solved (analytic two-bone IK, the knee kept in the plane of its estimated bend) and the
foot keeps its estimated global orientation. Where the held spot is out of the leg's reach,
the leg stretches towards it and the ankle stops short.

The same causal rule (:class:`FootLocker`, one frame at a time, no look-ahead) serves the
exported files (:func:`lock_feet`) and the live VMC stream, so both show the same feet.

:func:`foot_skate` is the measure: centimetres of horizontal motion of a foot point per
contact frame (frames in contact whose previous frame was in contact too).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from . import rig
from .kinematics import Motion, rotation_between

LEGS = tuple(
    tuple(rig.JOINT_NAMES.index(f"{side}{part}") for part in ("UpLeg", "Leg", "Foot"))
    for side in ("Left", "Right")
)
"""(hip, knee, ankle) joint indices of the left and right leg."""
TOES = tuple(rig.POINT_NAMES.index(f"{side}Toe") for side in ("Left", "Right"))
"""Rig point index of the left and right toe end sites."""
DEFAULT_BLEND_FRAMES = 4
"""Frames over which a released foot eases back to its estimate."""


@dataclass
class FootLocker:
    """Causal foot lock: per frame, where each ankle should be (see the module docs).

    Args:
        blend_frames: frames over which a released foot eases back (0: at once).
    """

    blend_frames: int = DEFAULT_BLEND_FRAMES
    _anchor: list[np.ndarray | None] = field(default_factory=lambda: [None, None])
    _since: list[int] = field(default_factory=lambda: [0, 0])

    def __post_init__(self) -> None:
        if self.blend_frames < 0:
            raise ValueError(f"blend_frames must be >= 0, got {self.blend_frames}")

    def reset(self) -> None:
        """Forget both anchors."""
        self._anchor = [None, None]
        self._since = [0, 0]

    def _weight(self, side: int) -> float:
        k = self._since[side]  # frames since lift-off (0 while in contact)
        if k == 0:
            return 1.0
        x = min(k / (self.blend_frames + 1), 1.0)
        return 1.0 - x * x * (3 - 2 * x)

    def step(self, ankles: np.ndarray, contact: tuple[bool, bool] | np.ndarray) -> np.ndarray:
        """(2, 3) ankle positions of this frame and (left, right) contact -> (2, 3) targets."""
        out = np.array(ankles, dtype=np.float64, copy=True)
        for side in (0, 1):
            anchor = self._anchor[side]
            held = out[side].copy()
            if anchor is not None:
                w = self._weight(side)
                held[[0, 2]] += w * (anchor - held[[0, 2]])
            if contact[side]:
                if anchor is None or self._since[side]:  # a new contact starts where the foot is
                    self._anchor[side] = held[[0, 2]].copy()
                self._since[side] = 0
                out[side] = held
                continue
            if anchor is not None:
                self._since[side] += 1
                if self._since[side] > self.blend_frames:
                    self._anchor[side], self._since[side] = None, 0
                    continue
                w = self._weight(side)
                out[side, [0, 2]] += w * (anchor - out[side, [0, 2]])
        return out


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


def apply_leg_targets(motion: Motion, targets: np.ndarray, moved: np.ndarray) -> Motion:
    """``motion`` with each leg re-solved where ``moved`` (T, 2) so its ankle meets
    ``targets`` (T, 2, 3); the feet keep their global orientation and the root stays."""
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
        local[rows, ankle] = np.swapaxes(shin, -1, -2) @ glob[rows, ankle]
    return replace(motion, rotations=local)


def lock_feet(motion: Motion, blend_frames: int = DEFAULT_BLEND_FRAMES) -> Motion:
    """``motion`` with its planted feet locked (see the module docs); unchanged when its
    ``contact`` is None or never true. Held (unobserved) frames count as no contact."""
    if motion.contact is None or not motion.contact.any():
        return motion
    contact = motion.contact & motion.observed[:, None]
    pos = motion.positions()
    ankles = pos[:, [LEGS[0][2], LEGS[1][2]]]
    locker = FootLocker(blend_frames)
    targets = np.stack([locker.step(ankles[t], contact[t]) for t in range(motion.num_frames)])
    moved = np.any(np.abs(targets - ankles) > 1e-9, axis=-1)
    return apply_leg_targets(motion, targets, moved)


def foot_skate(positions: np.ndarray, contact: np.ndarray, points: tuple[int, int]) -> float:
    """Centimetres of horizontal (x, z) motion of the foot ``points`` (left, right indices
    into ``positions`` (T, P, 3), metres, Y up) per contact frame: frames whose foot is in
    contact in that frame and the one before. NaN when there is no such frame."""
    steps = np.linalg.norm(np.diff(positions[:, list(points)][..., [0, 2]], axis=0), axis=-1)
    both = np.asarray(contact[1:], dtype=bool) & np.asarray(contact[:-1], dtype=bool)
    return float(steps[both].mean() * 100.0) if both.any() else float("nan")
