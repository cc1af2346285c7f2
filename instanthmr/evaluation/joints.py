"""Joint maps from MHR70 (the model's 70 keypoints) to the benchmark joint sets.

Each target set is a tuple of :class:`JointSource`, one per target joint, in the target's
order. A source is one of:

- ``"direct"``: the MHR70 joint of that name (``skeleton.JOINT_INDEX``).
- ``"derived"``: a point made from named MHR70 joints by a documented rule
  (:data:`DERIVED`), the same rule on both sides when the ground truth is MHR70 too.
- ``"none"``: the target joint has no MHR70 counterpart. It is left out of every metric,
  never filled with a wrong joint (:func:`map_joints` gives NaN there and
  :meth:`JointMap.available` lists the joints that exist).

Derived joints (rules; all are means of named joints, so they sit where the named joints
put them and nowhere else):

- ``pelvis`` = mean(left_hip, right_hip). The usual MPJPE root.
- ``thorax`` = mean(left_shoulder, right_shoulder).
- ``spine`` = mean(pelvis, thorax): the middle of the trunk.
- ``head`` = mean(left_ear, right_ear): the centre of the head at ear level. Not a head
  top: where a set asks for the top of the head (LSP ``head_top``, H36M ``head``), the
  joint is ``none``.

Sets:

- COCO17: all 17 are MHR70 joints of the same name.
- LSP14 / J14 (the 14 joints of HMR-style 3DPW evaluation): 13 direct; ``head_top`` has no
  counterpart (sam-3d-body's own metadata maps 13 of the 14 too).
- H36M17: pelvis, spine and thorax derived; ``neck_nose`` (the H36M marker between the
  chin and the nose) taken as the MHR70 ``nose``, the nearest named point; ``head`` (top)
  none.
- SMPL24 (3DPW ``jointPositions``, EMDB): only the 12 limb joints whose anatomical
  location matches (hips, knees, ankles, shoulders, elbows, wrists). SMPL's pelvis, spine,
  neck, head, collar, foot and hand joints are rig joints with no MHR70 namesake, so they
  are ``none``. MPJPE on this subset is pelvis-aligned by the mean of the hips on both sides.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..skeleton import JOINT_INDEX, NUM_JOINTS

DERIVED: dict[str, tuple[str, ...]] = {
    "pelvis": ("left_hip", "right_hip"),
    "thorax": ("left_shoulder", "right_shoulder"),
    "spine": ("pelvis", "thorax"),
    "head": ("left_ear", "right_ear"),
}
"""Derived joint -> the named joints (MHR70 names or other derived joints) it averages."""


@dataclass(frozen=True)
class JointSource:
    """Where one target joint comes from: ``kind`` is ``direct``, ``derived`` or ``none``;
    ``name`` is the MHR70 joint (direct) or the :data:`DERIVED` key (derived)."""

    target: str
    kind: str
    name: str = ""


def _weights(name: str) -> dict[int, float]:
    if name in JOINT_INDEX:
        return {JOINT_INDEX[name]: 1.0}
    parts = DERIVED[name]
    out: dict[int, float] = {}
    for part in parts:
        for k, w in _weights(part).items():
            out[k] = out.get(k, 0.0) + w / len(parts)
    return out


class JointMap:
    """A linear map from MHR70 joints to a target set (direct, derived or missing joints).

    The map is a (T, 70) weight matrix: a direct joint has one 1, a derived joint equal
    weights over the joints it averages, a missing joint a row of zeros (and NaN output).
    """

    def __init__(self, name: str, sources: tuple[JointSource, ...]) -> None:
        self.name = name
        self.sources = sources
        self.names: tuple[str, ...] = tuple(s.target for s in sources)
        w = np.zeros((len(sources), NUM_JOINTS))
        for i, s in enumerate(sources):
            if s.kind == "direct":
                w[i, JOINT_INDEX[s.name]] = 1.0
            elif s.kind == "derived":
                for k, v in _weights(s.name).items():
                    w[i, k] = v
            elif s.kind != "none":
                raise ValueError(f"unknown joint source kind {s.kind!r} for {s.target}")
        self.weights = w

    @property
    def available(self) -> np.ndarray:
        """Indices (into the target set) of the joints that have an MHR70 counterpart."""
        return np.array([i for i, s in enumerate(self.sources) if s.kind != "none"], np.int64)

    @property
    def missing(self) -> tuple[str, ...]:
        """Target joints with no MHR70 counterpart."""
        return tuple(s.target for s in self.sources if s.kind == "none")

    def index(self, target: str) -> int:
        """Position of a target joint in this set."""
        try:
            return self.names.index(target)
        except ValueError:
            raise KeyError(f"{target!r} is not a {self.name} joint; joints: {self.names}") from None

    def __call__(self, joints70: object) -> np.ndarray:
        """(..., 70, D) MHR70 joints -> (..., T, D); NaN for joints with no counterpart and
        where a joint a target is made from is NaN (unused MHR70 joints never leak in)."""
        j = np.asarray(joints70, dtype=np.float64)
        if j.ndim < 2 or j.shape[-2] != NUM_JOINTS:
            raise ValueError(f"expected (..., {NUM_JOINTS}, D) MHR70 joints, got {j.shape}")
        w = self.weights
        bad = ~np.isfinite(j).all(axis=-1)
        out = np.einsum("tk,...kd->...td", w, np.where(bad[..., None], 0.0, j))
        hit = np.einsum("tk,...k->...t", (w != 0).astype(np.float64), bad.astype(np.float64))
        out[hit > 0] = np.nan
        out[..., ~w.any(axis=1), :] = np.nan
        return out


def _direct(*names: str) -> list[JointSource]:
    return [JointSource(n, "direct", n) for n in names]


COCO17_NAMES: tuple[str, ...] = (
    "nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder",
    "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hip",
    "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle",
)  # fmt: skip
COCO17 = JointMap("coco17", tuple(_direct(*COCO17_NAMES)))

LSP14 = JointMap("lsp14", (
    *_direct("right_ankle", "right_knee", "right_hip", "left_hip", "left_knee", "left_ankle",
             "right_wrist", "right_elbow", "right_shoulder", "left_shoulder", "left_elbow",
             "left_wrist", "neck"),
    JointSource("head_top", "none"),
))  # fmt: skip
J14 = LSP14  # the same 14 joints under the name HMR-style code uses

H36M17 = JointMap("h36m17", (
    JointSource("pelvis", "derived", "pelvis"),
    *_direct("right_hip", "right_knee", "right_ankle", "left_hip", "left_knee", "left_ankle"),
    JointSource("spine", "derived", "spine"),
    JointSource("thorax", "derived", "thorax"),
    JointSource("neck_nose", "direct", "nose"),
    JointSource("head", "none"),
    *_direct("left_shoulder", "left_elbow", "left_wrist",
             "right_shoulder", "right_elbow", "right_wrist"),
))  # fmt: skip

SMPL24_NAMES: tuple[str, ...] = (
    "pelvis", "left_hip", "right_hip", "spine1", "left_knee", "right_knee", "spine2",
    "left_ankle", "right_ankle", "spine3", "left_foot", "right_foot", "neck", "left_collar",
    "right_collar", "head", "left_shoulder", "right_shoulder", "left_elbow", "right_elbow",
    "left_wrist", "right_wrist", "left_hand", "right_hand",
)  # fmt: skip
_SMPL_SHARED = {"left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle",
                "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist",
                "right_wrist"}  # fmt: skip
SMPL24 = JointMap("smpl24", tuple(
    JointSource(n, "direct", n) if n in _SMPL_SHARED else JointSource(n, "none")
    for n in SMPL24_NAMES
))  # fmt: skip

MAPS: dict[str, JointMap] = {m.name: m for m in (COCO17, LSP14, H36M17, SMPL24)}
HIPS: dict[str, tuple[int, int]] = {
    name: (m.index("left_hip"), m.index("right_hip")) for name, m in MAPS.items()
}
"""(left_hip, right_hip) positions in each target set, for pelvis alignment."""


def map_joints(joints70: object, target: str) -> np.ndarray:
    """MHR70 joints mapped to ``target`` (``coco17``, ``lsp14``, ``h36m17``, ``smpl24``)."""
    try:
        return MAPS[target](joints70)
    except KeyError:
        raise KeyError(f"unknown joint set {target!r}; choose one of {sorted(MAPS)}") from None
