"""Joint positions -> local joint rotations, and back (forward kinematics).

A :class:`Motion` is a skeleton (names, parents, rest offsets, end sites) with one local
rotation per joint per frame and the root's position per frame: exactly what a BVH file or
a glTF node animation holds. :func:`solve_motion` builds one from rig points
(:mod:`.rig`): bone lengths are medians over the observed frames, each joint's global
rotation turns its rest bone direction onto the observed one (twist from a reference vector
where the rig has one, else the smallest rotation from the parent's frame), and
``local = parent⁻¹ · global``. Euler angles come straight from the rotation matrices through
:mod:`scipy.spatial.transform` in each joint's channel order, then are unwrapped over time.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field, replace

import numpy as np
from scipy.spatial.transform import Rotation

from . import rig

_EPS = 1e-9


@dataclass(frozen=True)
class Motion:
    """A skeleton animation: rest skeleton plus per-frame local rotations and root position.

    Attributes:
        names: joint names, parents before children.
        parents: parent index of each joint (-1 for the root, which must be joint 0).
        offsets: (J, 3) rest offset of each joint from its parent, metres (root: zeros).
        rotations: (T, J, 3, 3) local rotation matrices (``local = parent⁻¹ · global``).
        root_positions: (T, 3) root position per frame, metres.
        frame_time: seconds per frame.
        euler_orders: per-joint intrinsic Euler order of the rotation channels (``"ZXY"``).
        end_names, end_parents, end_offsets: end sites (leaves): name, joint, (E, 3) offset.
        start_time: seconds from the start of the export to frame 0.
        track_id: the track this motion follows (-1 when none).
        frame: the coordinate frame of the root positions (``"world"``, ``"camera"``, ...).
        observed: (T,) True where the frame was observed, False where a pose is held.
        contact: (T, 2) left, right foot on the ground (the world stage's contact flags),
            or None when unknown.
    """

    names: tuple[str, ...]
    parents: tuple[int, ...]
    offsets: np.ndarray
    rotations: np.ndarray
    root_positions: np.ndarray
    frame_time: float
    euler_orders: tuple[str, ...]
    end_names: tuple[str, ...] = ()
    end_parents: tuple[int, ...] = ()
    end_offsets: np.ndarray = field(default_factory=lambda: np.zeros((0, 3)))
    start_time: float = 0.0
    track_id: int = -1
    frame: str = "camera"
    observed: np.ndarray | None = None
    contact: np.ndarray | None = None

    def __post_init__(self) -> None:
        j, t = len(self.names), len(self.root_positions)
        if len(self.parents) != j or self.parents[0] != -1:
            raise ValueError("parents must list one parent per joint, with the root (-1) first")
        if any(p >= i for i, p in enumerate(self.parents) if i):
            raise ValueError("joints must be ordered parents before children")
        if self.rotations.shape != (t, j, 3, 3) or self.offsets.shape != (j, 3):
            raise ValueError(
                f"rotations must be (T, J, 3, 3) and offsets (J, 3) with J={j}, T={t}; got "
                f"{self.rotations.shape} and {self.offsets.shape}"
            )
        if len(self.euler_orders) != j or len(self.end_parents) != len(self.end_names):
            raise ValueError("need one Euler order per joint and one parent per end site")
        if not (np.isfinite(self.frame_time) and self.frame_time > 0):
            raise ValueError(
                f"frame_time must be a positive number of seconds, got {self.frame_time}"
            )
        if self.observed is None:
            object.__setattr__(self, "observed", np.ones(t, dtype=bool))
        if self.contact is not None:
            contact = np.asarray(self.contact, dtype=bool)
            if contact.shape != (t, 2):
                raise ValueError(f"contact must be (T, 2) = ({t}, 2), got {contact.shape}")
            object.__setattr__(self, "contact", contact)

    @property
    def num_frames(self) -> int:
        """Number of frames."""
        return len(self.root_positions)

    def global_rotations(self) -> np.ndarray:
        """(T, J, 3, 3) rotation of each joint in the motion's frame."""
        g = np.empty_like(self.rotations)
        for j, p in enumerate(self.parents):
            g[:, j] = self.rotations[:, j] if p < 0 else g[:, p] @ self.rotations[:, j]
        return g

    def positions(self) -> np.ndarray:
        """(T, J + E, 3) joint then end-site positions by forward kinematics."""
        g = self.global_rotations()
        pos = np.empty((self.num_frames, len(self.names) + len(self.end_names), 3))
        for j, p in enumerate(self.parents):
            pos[:, j] = self.root_positions if p < 0 else pos[:, p] + g[:, p] @ self.offsets[j]
        for e, p in enumerate(self.end_parents):
            pos[:, len(self.names) + e] = pos[:, p] + g[:, p] @ self.end_offsets[e]
        return pos

    def euler_degrees(self) -> np.ndarray:
        """(T, J, 3) Euler angles in degrees, each joint in its own channel order.

        Taken directly from the rotation matrices by scipy, then unwrapped over time so no
        channel jumps by 360°. Near gimbal lock scipy's warning is silenced: the angles
        still reproduce the matrix.
        """
        out = np.empty((self.num_frames, len(self.names), 3))
        for j, order in enumerate(self.euler_orders):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)
                e = Rotation.from_matrix(self.rotations[:, j]).as_euler(order.upper())
            out[:, j] = np.degrees(np.unwrap(e, axis=0))
        return out

    def slice(self, start: int, stop: int) -> Motion:
        """Frames ``start:stop`` as a new motion (its ``start_time`` moved accordingly)."""
        return replace(
            self,
            rotations=self.rotations[start:stop],
            root_positions=self.root_positions[start:stop],
            observed=self.observed[start:stop],
            contact=None if self.contact is None else self.contact[start:stop],
            start_time=self.start_time + start * self.frame_time,
        )


def median_offsets(points: np.ndarray, observed: np.ndarray | None = None) -> np.ndarray:
    """(P, 3) rest offsets of the rig points: rest direction × median bone length.

    ``points`` is (T, P, 3) in :data:`rig.POINT_NAMES` order; medians use the ``observed``
    frames only (all frames when None).
    """
    pts = points if observed is None else points[np.asarray(observed, dtype=bool)]
    if len(pts) == 0:
        raise ValueError("median_offsets needs at least one observed frame")
    parents = np.array([max(p, 0) for p in rig.POINT_PARENTS])
    lengths = np.median(np.linalg.norm(pts - pts[:, parents], axis=-1), axis=0)
    return rig.REST_DIRS * lengths[:, None]


def _unit(v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    n = np.sqrt(np.sum(v * v, axis=-1, keepdims=True))
    return v / np.maximum(n, _EPS), n[..., 0]


def _cross(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``np.cross`` for (..., 3) arrays, without its axis shuffling (a hot path when live)."""
    a0, a1, a2 = a[..., 0], a[..., 1], a[..., 2]
    b0, b1, b2 = b[..., 0], b[..., 1], b[..., 2]
    return np.stack([a1 * b2 - a2 * b1, a2 * b0 - a0 * b2, a0 * b1 - a1 * b0], axis=-1)


def rotation_between(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(..., 3, 3) smallest rotations taking the directions ``a`` onto ``b`` (both (..., 3)).

    Rodrigues' formula ``I + K + K² (1 - c) / s²`` (``K`` the cross-product matrix of
    ``a × b``, ``s`` its length, ``c = a · b``). Opposite directions turn 180° about an axis
    perpendicular to ``a``; a zero vector gives the identity.
    """
    a, _ = _unit(np.asarray(a, dtype=np.float64))
    b, _ = _unit(np.asarray(b, dtype=np.float64))
    a, b = np.broadcast_arrays(a, b)
    v = _cross(a, b)
    s2 = np.sum(v * v, axis=-1)
    c = np.sum(a * b, axis=-1)
    flip = (s2 < 1e-24) & (c < 0)  # opposite: any axis perpendicular to a
    coef = np.where(c > -0.9, 1.0 / np.maximum(1.0 + c, _EPS), (1.0 - c) / np.maximum(s2, 1e-300))
    k = np.zeros((*v.shape[:-1], 3, 3))
    k[..., 0, 1], k[..., 0, 2], k[..., 1, 2] = -v[..., 2], v[..., 1], -v[..., 0]
    k[..., 1, 0], k[..., 2, 0], k[..., 2, 1] = v[..., 2], -v[..., 1], v[..., 0]
    out = np.eye(3) + k + coef[..., None, None] * (k @ k)
    if flip.any():
        helper = np.where(np.abs(a[..., :1]) < 0.9, [1.0, 0.0, 0.0], [0.0, 1.0, 0.0])
        perp, _ = _unit(_cross(a, helper))
        half_turn = 2 * perp[..., :, None] * perp[..., None, :] - np.eye(3)
        out = np.where(flip[..., None, None], half_turn, out)
    return out


def _levels() -> tuple[tuple[int, ...], ...]:
    depth = []
    for p in rig.PARENTS:
        depth.append(0 if p < 0 else depth[p] + 1)
    return tuple(
        tuple(j for j, d in enumerate(depth) if d == level) for level in range(max(depth) + 1)
    )


_LEVELS = _levels()
"""The rig's joints grouped by depth (root first): each group's parents are in earlier ones."""


def _frame(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Orthonormal frames (columns e1 ‖ a, e2 in the a-b plane) and where they are well defined."""
    e1, _ = _unit(a)
    b_perp = b - np.sum(b * e1, axis=-1, keepdims=True) * e1
    e2, n2 = _unit(b_perp)
    ok = n2 > 1e-3 * np.maximum(np.linalg.norm(b, axis=-1), _EPS)
    return np.stack([e1, e2, _cross(e1, e2)], axis=-1), ok & (n2 > 1e-6)


def solve_motion(
    points: np.ndarray,
    refs: np.ndarray,
    frame_time: float,
    offsets: np.ndarray | None = None,
    observed: np.ndarray | None = None,
    **meta: object,
) -> Motion:
    """Rig points over time -> a :class:`Motion` of the 20-joint rig.

    Args:
        points: (T, P, 3) rig points (:data:`rig.POINT_NAMES` order), metres, Y up.
        refs: (T, J, 3) twist reference vectors (:func:`rig.twist_references`).
        frame_time: seconds per frame.
        offsets: (P, 3) rest offsets; default :func:`median_offsets` of ``points``.
        observed: (T,) mask of observed frames (held frames are False).
        **meta: other :class:`Motion` fields (``start_time``, ``track_id``, ``frame``).

    Frames where a bone has (near) zero length keep the previous frame's local rotation
    (identity on the first frame), so the result never holds NaN.
    """
    points = np.asarray(points, dtype=np.float64)
    t, p_count = points.shape[:2]
    if points.shape != (t, len(rig.POINT_NAMES), 3) or refs.shape != (t, len(rig.JOINT_NAMES), 3):
        raise ValueError(
            f"points must be (T, {len(rig.POINT_NAMES)}, 3) and refs (T, {len(rig.JOINT_NAMES)}, "
            f"3); got {points.shape} and {refs.shape}"
        )
    if not (np.all(np.isfinite(points)) and np.all(np.isfinite(refs))):
        raise ValueError("points and refs must be finite (no NaN): fill or drop missing frames")
    if offsets is None:
        offsets = median_offsets(points, observed)
    nj = len(rig.JOINT_NAMES)
    glob = np.empty((t, nj, 3, 3))
    local = np.empty((t, nj, 3, 3))
    for level in _LEVELS:  # joints of one depth at once: their parents are solved
        js = list(level)
        parents = [rig.PARENTS[j] for j in js]
        rp = np.empty((t, len(js), 3, 3))
        for k, parent in enumerate(parents):
            rp[:, k] = np.eye(3) if parent < 0 else glob[:, parent]
        rest = rig.REST_DIRS[[rig.AIMS[j] for j in js]]
        aim, aim_len = _unit(points[:, [rig.AIMS[j] for j in js]] - points[:, js])
        # no twist: the smallest rotation from the parent's frame
        g = rp @ rotation_between(rest, np.einsum("tkji,tkj->tki", rp, aim))
        twist = rig.TWIST_REST[js].any(axis=-1)
        if twist.any():
            f_obs, ok = _frame(aim, refs[:, js])
            f_rest, _ = _frame(rest, np.where(twist[:, None], rig.TWIST_REST[js], 1.0))
            use = ok & twist
            g = np.where(use[..., None, None], f_obs @ np.swapaxes(f_rest, -1, -2), g)
        loc = np.swapaxes(rp, -1, -2) @ g
        for i, k in zip(*np.nonzero(aim_len < 1e-6), strict=True):  # degenerate: hold the last
            loc[i, k] = loc[i - 1, k] if i else np.eye(3)
        local[:, js] = loc
        glob[:, js] = rp @ loc
    return Motion(
        names=rig.JOINT_NAMES,
        parents=rig.PARENTS,
        offsets=offsets[:nj],
        rotations=local,
        root_positions=points[:, 0].copy(),
        frame_time=float(frame_time),
        euler_orders=rig.EULER_ORDERS,
        end_names=rig.END_NAMES,
        end_parents=rig.END_PARENTS,
        end_offsets=offsets[nj:p_count],
        observed=None if observed is None else np.asarray(observed, dtype=bool),
        **meta,  # type: ignore[arg-type]
    )
