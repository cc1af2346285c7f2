"""SMPL joint positions from pose, shape and translation, in numpy (for EMDB ground truth).

Only the 24 joints are computed, by forward kinematics of the shaped rest skeleton:

1. rest vertices ``v = v_template + shapedirs[..., :B] @ betas``;
2. rest joints ``J = J_regressor @ v`` (24, 3);
3. ``G_0 = [R(root) | J_0]``, ``G_k = G_parent(k) [R(pose_k) | J_k - J_parent(k)]``, with
   ``R`` from axis-angle;
4. posed joint k = translation of ``G_k``, plus ``trans``.

These are the joints the SMPL layer returns first (``smplx.SMPL(...).joints[:, :24]``);
regressing joints from the posed, skinned vertices (as WHAM does) differs by a few mm.

The SMPL model file is licensed and not shipped. Pass a file with ``v_template``,
``shapedirs``, ``J_regressor`` and ``kintree_table``: an ``.npz``, or a ``.pkl`` without
chumpy objects (the smplx package's ``tools/clean_ch.py`` writes one from the original).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy.spatial.transform import Rotation

from ..errors import DatasetError
from .datafiles import read_pickle

KEYS = ("v_template", "shapedirs", "J_regressor", "kintree_table")


class SMPLJoints:
    """The joint part of an SMPL model: rest joints from shape, then forward kinematics."""

    def __init__(
        self,
        v_template: np.ndarray,
        shapedirs: np.ndarray,
        j_regressor: np.ndarray,
        kintree_table: np.ndarray,
    ) -> None:
        self.v_template = np.asarray(v_template, np.float64)
        self.shapedirs = np.asarray(shapedirs, np.float64)
        jr = j_regressor.toarray() if hasattr(j_regressor, "toarray") else j_regressor
        self.j_regressor = np.asarray(jr, np.float64)
        parents = np.asarray(kintree_table, np.int64)[0].copy()
        parents[0] = -1
        if np.any(parents[1:] >= np.arange(1, len(parents))):
            raise ValueError("kintree_table: every joint's parent must come before it")
        self.parents = parents

    @classmethod
    def load(cls, path: str | Path) -> SMPLJoints:
        """Read an SMPL model file (``.npz`` or a chumpy-free ``.pkl``)."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"SMPL model file not found: {path}")
        if path.suffix == ".npz":
            with np.load(path, allow_pickle=False) as z:
                data = {k: z[k] for k in KEYS if k in z}
        else:
            try:
                data = read_pickle(path, "SMPL model", encoding="latin1")
            except ModuleNotFoundError as e:
                raise DatasetError(
                    f"{path} holds chumpy objects ({e}); convert it with smplx's "
                    "tools/clean_ch.py, or save its arrays to an .npz"
                ) from None
        missing = [k for k in KEYS if k not in data]
        if missing:
            raise DatasetError(f"{path} is not an SMPL model file: missing {missing}")
        return cls(data["v_template"], data["shapedirs"], data["J_regressor"],
                   data["kintree_table"])  # fmt: skip

    def rest_joints(self, betas: np.ndarray) -> np.ndarray:
        """(..., 24, 3) rest-pose joints for (..., B) shape coefficients."""
        b = np.asarray(betas, np.float64)
        nb = min(b.shape[-1], self.shapedirs.shape[-1])
        v = self.v_template + np.einsum("vdk,...k->...vd", self.shapedirs[..., :nb], b[..., :nb])
        return np.einsum("jv,...vd->...jd", self.j_regressor, v)

    def joints(
        self, pose: np.ndarray, betas: np.ndarray, trans: np.ndarray | None = None
    ) -> np.ndarray:
        """(F, 24, 3) posed joints for (F, 72) axis-angle poses (root first), (B,) or (F, B)
        betas and (F, 3) translations."""
        p = np.asarray(pose, np.float64).reshape(len(pose), -1, 3)
        n, k = p.shape[:2]
        if k != len(self.parents):
            raise ValueError(f"pose has {k} joints, the model {len(self.parents)}")
        rest = np.broadcast_to(self.rest_joints(betas), (n, k, 3))
        rot = Rotation.from_rotvec(p.reshape(-1, 3)).as_matrix().reshape(n, k, 3, 3)
        g_rot = np.empty_like(rot)
        g_pos = np.empty((n, k, 3))
        g_rot[:, 0], g_pos[:, 0] = rot[:, 0], rest[:, 0]
        for j in range(1, k):
            par = self.parents[j]
            g_rot[:, j] = g_rot[:, par] @ rot[:, j]
            g_pos[:, j] = g_pos[:, par] + np.einsum("fij,fj->fi", g_rot[:, par],
                                                    rest[:, j] - rest[:, par])  # fmt: skip
        if trans is not None:
            g_pos = g_pos + np.asarray(trans, np.float64).reshape(n, 1, 3)
        return g_pos
