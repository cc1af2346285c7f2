"""Optional: Meta's MHR skeleton from the model's ``mhr_params`` and ``shape_params``.

Where Meta's ``mhr`` package (with ``pymomentum``) and the MHR assets are installed, the
body-model parameters each :class:`~instanthmr.results.PersonResult` carries can drive the
full MHR skeleton instead of the 20-joint rig fitted to keypoints::

    pip install 'instanthmr[mhr]'   # Meta's mhr + pymomentum-cpu (Python >= 3.11, pulls torch)
    curl -OL https://github.com/facebookresearch/MHR/releases/download/v1.0.0/assets.zip
    unzip assets.zip                # then MhrSkeleton(asset_folder="assets")

:class:`MhrSkeleton` poses the skeleton (global joint transforms, ``skel_state``: translation,
quaternion x y z w, scale per joint) and :func:`motion_from_skeleton_states` turns any such
global transforms into a :class:`~.kinematics.Motion` that the BVH and glTF writers take.
The conversion is tested here on synthetic transforms; the MHR call itself could not be run
on the build machines (no assets), and its tests skip with the reason. The frame of the
MHR output (its axes and centimetre units) is MHR's: check it against your assets before
relying on the root position.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import numpy as np
from scipy.spatial.transform import Rotation

from ..errors import UserError
from .kinematics import Motion

INSTALL_HINT = (
    "install Meta's MHR with `pip install 'instanthmr[mhr]'` (the mhr and pymomentum-cpu "
    "packages, Python >= 3.11) and download its assets: "
    "https://github.com/facebookresearch/MHR/releases/download/v1.0.0/assets.zip"
)


class MhrUnavailableError(UserError, RuntimeError):
    """Meta's MHR package or its assets are missing; the message says what to install."""


def mhr_missing() -> str | None:
    """Why the MHR skeleton cannot be used here, or None when the packages are importable."""
    missing = [m for m in ("mhr", "pymomentum", "torch") if importlib.util.find_spec(m) is None]
    if missing:
        return f"Python package(s) {', '.join(missing)} not installed: {INSTALL_HINT}"
    return None


def motion_from_skeleton_states(
    states: np.ndarray,
    names: list[str] | tuple[str, ...],
    parents: list[int] | tuple[int, ...],
    frame_time: float,
    unit: float = 1.0,
    **meta: object,
) -> Motion:
    """Global joint transforms over time -> a :class:`Motion` of that skeleton.

    Args:
        states: (T, J, 7 or 8) per joint ``tx ty tz qx qy qz qw [scale]`` in the motion's
            frame (scale is ignored); joints ordered parents before children.
        names, parents: the skeleton (root's parent -1, first).
        frame_time: seconds per frame.
        unit: multiplies translations (0.01 turns MHR's centimetres into metres).
        **meta: other :class:`Motion` fields (``track_id``, ``start_time``, ``frame``).

    Rest offsets are the medians over frames of each joint's position in its parent's
    frame; local rotations are ``parent⁻¹ · global``. Every joint uses ``ZXY`` channels.
    """
    states = np.asarray(states, dtype=np.float64)
    if states.ndim != 3 or states.shape[1] != len(names) or states.shape[2] not in (7, 8):
        raise ValueError(f"states must be (T, {len(names)}, 7 or 8), got {states.shape}")
    if not np.all(np.isfinite(states[..., :7])):
        raise ValueError("skeleton states must be finite")
    t, j = states.shape[:2]
    glob = Rotation.from_quat(states[..., 3:7].reshape(-1, 4)).as_matrix().reshape(t, j, 3, 3)
    pos = states[..., :3] * unit
    local = np.empty_like(glob)
    offsets = np.zeros((j, 3))
    for i, p in enumerate(parents):
        if p < 0:
            local[:, i] = glob[:, i]
            continue
        inv = np.swapaxes(glob[:, p], -1, -2)
        local[:, i] = inv @ glob[:, i]
        offsets[i] = np.median(np.einsum("tab,tb->ta", inv, pos[:, i] - pos[:, p]), axis=0)
    return Motion(
        names=tuple(names), parents=tuple(parents), offsets=offsets, rotations=local,
        root_positions=pos[:, 0].copy(), frame_time=float(frame_time),
        euler_orders=("ZXY",) * j, **meta,  # type: ignore[arg-type]
    )  # fmt: skip


class MhrSkeleton:
    """Meta's MHR body model, loaded to pose its skeleton from InstantHMR's parameters.

    Raises :class:`MhrUnavailableError` naming what to install when the ``mhr`` package,
    ``pymomentum``, torch or the asset files are missing.
    """

    def __init__(self, asset_folder: str | Path, lod: int = 1) -> None:
        reason = mhr_missing()
        if reason:
            raise MhrUnavailableError(reason)
        folder = Path(asset_folder)
        if not folder.is_dir():
            raise MhrUnavailableError(f"MHR asset folder not found: {folder}; {INSTALL_HINT}")
        import torch
        from mhr.mhr import MHR

        self._torch = torch
        try:
            self._model: Any = MHR.from_files(
                folder=folder, device=torch.device("cpu"), lod=lod, wants_pose_correctives=False
            )
        except (AssertionError, FileNotFoundError, OSError) as exc:  # MHR asserts on missing files
            raise MhrUnavailableError(f"cannot load MHR assets from {folder}: {exc}") from exc
        skeleton = self._model.character.skeleton
        self.joint_names: tuple[str, ...] = tuple(skeleton.joint_names)
        self.parents: tuple[int, ...] = tuple(int(p) for p in skeleton.joint_parents)

    def skeleton_states(self, mhr_params: np.ndarray, shape_params: np.ndarray) -> np.ndarray:
        """(T, 204) pose and (T, 45) or (45,) identity -> (T, J, 8) global joint transforms."""
        torch = self._torch
        pose = torch.as_tensor(np.atleast_2d(mhr_params), dtype=torch.float32)
        shape = torch.as_tensor(np.atleast_2d(shape_params), dtype=torch.float32)
        with torch.no_grad():
            _, states = self._model(shape, pose, None, apply_correctives=False)
        return states.cpu().numpy()

    def motion(
        self, mhr_params: np.ndarray, shape_params: np.ndarray, frame_time: float, **meta: object
    ) -> Motion:
        """A :class:`Motion` of the MHR skeleton (centimetres turned into metres)."""
        states = self.skeleton_states(mhr_params, shape_params)
        roots = [i for i, p in enumerate(self.parents) if p < 0]
        if roots != [0] or any(p >= i for i, p in enumerate(self.parents) if i):
            raise ValueError("the MHR skeleton is not ordered root-first, parents before children")
        return motion_from_skeleton_states(
            states, self.joint_names, self.parents, frame_time, unit=0.01, frame="mhr", **meta
        )
