"""EMDB (Kaufmann et al., ICCV 2023): its per-sequence pickles as ground truth.

Layout (as distributed)::

    ROOT/P0/<sequence>/images/00000.jpg ...
    ROOT/P0/<sequence>/P0_<sequence>_data.pkl
    ...  (participants P0-P9)

Each ``*_data.pkl`` is a dict: ``gender``, ``name``, ``emdb1``/``emdb2`` (subset flags),
``n_frames``, ``good_frames_mask`` (N,), ``camera`` {``intrinsics`` (3, 3), ``extrinsics``
(N, 4, 4) world-to-camera, ``width``, ``height``}, ``smpl`` {``poses_root`` (N, 3),
``poses_body`` (N, 69), ``trans`` (N, 3), ``betas`` (10,)}, ``kp2d`` (N, 24, 2) and
``bboxes`` {``bboxes`` (N, 4) xyxy, ``invalid_idxs``}.

EMDB gives SMPL parameters, not joints, so the ground-truth joints come from an SMPL model
file (``--smpl``, see :mod:`instanthmr.evaluation.smpl`): world joints by forward
kinematics plus ``trans``, camera-frame joints through ``extrinsics``. Local metrics use the
SMPL24 joints with an MHR70 counterpart; world metrics (W-MPJPE, WA-MPJPE, RTE, jitter,
foot sliding) need the pipeline's ``joints_3d_world`` and are skipped with a reason when it
is absent. EMDB 1 (``emdb1``) is the subset used for camera-frame tables, EMDB 2
(``emdb2``) the one for world-frame tables.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import DatasetError
from .datafiles import read_pickle
from .runner import EvalSequence, PersonTrack, to_camera
from .smpl import SMPLJoints

SUBSETS = ("emdb1", "emdb2", "all")


def load_pickle(path: str | Path) -> dict:
    """An EMDB ``*_data.pkl`` as a dict; checks the keys it needs."""
    path = Path(path)
    data = read_pickle(path, "EMDB sequence")
    need = ("name", "good_frames_mask", "camera", "smpl", "bboxes")
    missing = [k for k in need if not (isinstance(data, dict) and k in data)]
    if missing:
        raise DatasetError(f"{path}: not an EMDB sequence pickle, missing keys {missing}")
    return data


def load_sequence(
    pkl: str | Path, models: dict[str, SMPLJoints], data: dict | None = None
) -> EvalSequence:
    """One EMDB sequence; ``models`` maps gender (``neutral`` at least) to an SMPL model;
    ``data`` is the pickle's content when already read."""
    pkl = Path(pkl)
    data = load_pickle(pkl) if data is None else data
    smpl = data["smpl"]
    model = models.get(str(data.get("gender", "neutral")), models["neutral"])
    pose = np.concatenate([np.asarray(smpl["poses_root"], np.float64),
                           np.asarray(smpl["poses_body"], np.float64)], axis=1)  # fmt: skip
    world = model.joints(pose, np.asarray(smpl["betas"], np.float64).reshape(-1),
                         np.asarray(smpl["trans"], np.float64))  # fmt: skip
    cam = to_camera(world, np.asarray(data["camera"]["extrinsics"], np.float64))
    boxes = np.asarray(data["bboxes"]["bboxes"], np.float64).copy()
    valid = np.asarray(data["good_frames_mask"], bool).copy()
    bad = np.asarray(data["bboxes"].get("invalid_idxs", []), np.int64).reshape(-1)
    valid[bad] = False
    valid &= (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
    frames = [pkl.parent / "images" / f"{i:05d}.jpg" for i in range(len(world))]
    person = PersonTrack("subject", cam, valid, boxes, joints_world=world)
    return EvalSequence(str(data["name"]), frames, [person], joint_set="smpl24", fps=30.0)


def load_models(smpl: str | Path) -> dict[str, SMPLJoints]:
    """SMPL models by gender: a file (used for everyone) or a folder holding
    ``SMPL_NEUTRAL``, ``SMPL_MALE`` and ``SMPL_FEMALE`` (``.npz`` or ``.pkl``)."""
    path = Path(smpl)
    if path.is_file():
        return {"neutral": SMPLJoints.load(path)}
    models = {}
    for gender in ("neutral", "male", "female"):
        for ext in (".npz", ".pkl"):
            f = path / f"SMPL_{gender.upper()}{ext}"
            if f.is_file():
                models[gender] = SMPLJoints.load(f)
                break
    if "neutral" not in models:
        raise FileNotFoundError(
            f"no SMPL_NEUTRAL.npz or SMPL_NEUTRAL.pkl in {path}; --smpl takes an SMPL model "
            "file or a folder of them (download SMPL from smpl.is.tue.mpg.de)"
        )
    return models


def load(
    root: str | Path, smpl: str | Path, subset: str = "emdb1", sequences: list[str] | None = None
) -> list[EvalSequence]:
    """Every sequence of ``subset`` (``emdb1``, ``emdb2`` or ``all``), or the named ones."""
    if subset not in SUBSETS:
        raise DatasetError(f"EMDB subset must be one of {SUBSETS}, got {subset!r}")
    files = sorted(Path(root).glob("P*/*/*_data.pkl"))
    if not files:
        raise FileNotFoundError(
            f"no EMDB sequences under {root}; --root must hold P0 ... P9 as unpacked from "
            "the EMDB download (ROOT/P0/<sequence>/P0_<sequence>_data.pkl)"
        )
    models = load_models(smpl)
    out = []
    for f in files:
        data = load_pickle(f)
        if sequences and str(data["name"]) not in set(sequences):
            continue
        if subset != "all" and not sequences and not data.get(subset, False):
            continue
        out.append(load_sequence(f, models, data))
    if not out:
        raise DatasetError(f"no EMDB sequence matched (subset {subset!r}, names {sequences})")
    return out
