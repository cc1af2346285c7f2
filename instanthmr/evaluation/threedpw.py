"""3DPW (von Marcard et al., ECCV 2018): its sequence pickles as ground truth.

Layout (as distributed)::

    ROOT/sequenceFiles/{train,validation,test}/<sequence>.pkl
    ROOT/imageFiles/<sequence>/image_00000.jpg ...

Each pickle is a Python 2 pickle (read with ``encoding="latin1"``) of a dict with, per
actor (lists of length A): ``poses`` (N, 72), ``trans`` (N, 3), ``betas`` (10,),
``jointPositions`` (N, 72: the 24 SMPL joints in **world** coordinates, metres),
``poses2d`` (N, 3, 18), ``campose_valid`` (N,) and ``genders``; and per sequence:
``sequence`` (name), ``img_frame_ids`` (N,), ``cam_poses`` (N, 4, 4: world-to-camera),
``cam_intrinsics`` (3, 3). Row i belongs to ``image_{i:05d}.jpg``.

Ground truth here: ``jointPositions`` moved into the camera frame by ``cam_poses`` and
compared on the SMPL24 joints that have an MHR70 counterpart (:data:`~instanthmr.evaluation.
joints.SMPL24`: hips, knees, ankles, shoulders, elbows, wrists). Valid frames are those with
``campose_valid``. Boxes for ``--gt-boxes`` are the extent of the projected joints grown
1.2x. World ground truth is the ``jointPositions`` themselves (3DPW's world is the
recording's frame, not gravity-aligned; the world metrics align before comparing).

These numbers are not the published 3DPW tables: those use 14 LSP joints regressed from
SMPL vertices by the H36M regressor, which needs the SMPL model.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import DatasetError
from .datafiles import read_pickle
from .runner import EvalSequence, PersonTrack, boxes_from_points, project, to_camera

SPLITS = ("train", "validation", "test")
REQUIRED = ("sequence", "jointPositions", "cam_poses", "cam_intrinsics", "campose_valid")


def load_pickle(path: str | Path) -> dict:
    """A 3DPW sequence pickle (Python 2, latin1) as a dict; checks the keys it needs."""
    path = Path(path)
    data = read_pickle(path, "3DPW sequence", encoding="latin1")
    if not isinstance(data, dict):
        raise DatasetError(f"{path}: not a 3DPW sequence pickle (expected a dict)")
    missing = [k for k in REQUIRED if k not in data]
    if missing:
        raise DatasetError(f"{path}: not a 3DPW sequence pickle, missing keys {missing}")
    return data


def load_sequence(pkl: str | Path, image_root: str | Path) -> EvalSequence:
    """One 3DPW sequence: GT SMPL24 joints in the camera frame, validity and boxes."""
    data = load_pickle(pkl)
    name = str(data["sequence"])
    extr = np.asarray(data["cam_poses"], np.float64)
    k = np.asarray(data["cam_intrinsics"], np.float64)
    n = len(extr)
    persons = []
    for a, jp in enumerate(data["jointPositions"]):
        world = np.asarray(jp, np.float64).reshape(-1, 24, 3)
        if len(world) != n:
            raise DatasetError(f"{pkl}: actor {a} has {len(world)} joint frames, {n} camera poses")
        cam = to_camera(world, extr)
        valid = np.asarray(data["campose_valid"][a], bool).reshape(-1)
        boxes = boxes_from_points(project(cam, k))
        valid &= np.isfinite(boxes).all(axis=1)
        persons.append(PersonTrack(f"actor{a}", cam, valid, boxes, joints_world=world))
    frames = [Path(image_root) / name / f"image_{i:05d}.jpg" for i in range(n)]
    return EvalSequence(name, frames, persons, joint_set="smpl24", fps=30.0)


def find_sequences(root: str | Path, split: str = "test") -> list[Path]:
    """The sequence pickles of one split under ``ROOT/sequenceFiles``."""
    if split not in SPLITS:
        raise DatasetError(f"3DPW split must be one of {SPLITS}, got {split!r}")
    folder = Path(root) / "sequenceFiles" / split
    files = sorted(folder.glob("*.pkl"))
    if not files:
        raise FileNotFoundError(
            f"no 3DPW sequence pickles in {folder}; --root must hold sequenceFiles/ and "
            "imageFiles/ as unpacked from the 3DPW download"
        )
    return files


def load(
    root: str | Path, split: str = "test", sequences: list[str] | None = None
) -> list[EvalSequence]:
    """Every sequence of a split (or the named ones)."""
    files = find_sequences(root, split)
    if sequences:
        files = [f for f in files if f.stem in set(sequences)]
        if not files:
            raise DatasetError(f"none of {sequences} is a 3DPW {split} sequence")
    return [load_sequence(f, Path(root) / "imageFiles") for f in files]
