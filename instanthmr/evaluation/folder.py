"""Your own ground truth: a folder per sequence with images and a ``gt.npz`` or ``gt.jsonl``.

Layout::

    ROOT/<sequence>/images/   frames, sorted naturally by name (jpg, png, ...)
    ROOT/<sequence>/gt.npz    or   ROOT/<sequence>/gt.jsonl

``gt.npz`` (F frames, P persons, J joints of ``joint_set``):

=================  ==============  ==========================================================
key                shape           meaning
=================  ==============  ==========================================================
``joint_set``      ()  str         ``mhr70``, ``coco17``, ``lsp14``, ``h36m17`` or ``smpl24``
``joints_cam``     (F, P, J, 3)    camera-frame joints, metres (X right, Y down, Z forward);
                                   NaN for unknown joints or absent persons
``valid``          (F, P) bool     optional; default: the person has a finite joint
``boxes``          (F, P, 4)       optional xyxy pixels; default: projected joints (needs
                                   ``intrinsics``), grown 1.2x
``intrinsics``     (3, 3)          optional camera matrix K
``joints_world``   (F, P, J, 3)    optional world-frame joints, metres (enables W-MPJPE,
                                   WA-MPJPE, RTE, jitter, foot sliding)
``fps``            ()              optional, default 30
``person_ids``     (P,) str        optional names
=================  ==============  ==========================================================

``gt.jsonl``: a header line ``{"joint_set": ..., "fps": 30, "intrinsics": [[...], ...]}``,
then one line per frame, in image order:
``{"frame": 0, "persons": [{"id": "a", "joints_cam": [[x, y, z], ...], "box": [x1, y1, x2,
y2], "joints_world": [[x, y, z], ...]}]}`` (``box`` and ``joints_world`` optional; persons
are matched across frames by ``id``).
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from ..errors import DatasetError
from ..sources.files import folder_images
from .datafiles import read_json_lines
from .runner import JOINT_SETS, EvalSequence, PersonTrack, boxes_from_points, project


def _from_npz(path: Path) -> dict:
    with np.load(path, allow_pickle=False) as z:
        d = {k: z[k] for k in z.files}
    if "joints_cam" not in d or "joint_set" not in d:
        raise DatasetError(f"{path}: needs 'joints_cam' (F, P, J, 3) and 'joint_set'")
    d["joint_set"] = str(d["joint_set"])
    return d


def _from_jsonl(path: Path) -> dict:
    lines = read_json_lines(path, "ground truth")
    if not lines or "joint_set" not in lines[0]:
        raise DatasetError(f"{path}: the first line must be a header with 'joint_set'")
    head, frames = lines[0], lines[1:]
    ids = sorted({str(p["id"]) for fr in frames for p in fr.get("persons", [])})
    sizes = {len(p["joints_cam"]) for fr in frames for p in fr.get("persons", [])}
    if len(sizes) > 1:
        raise DatasetError(f"{path}: persons have different joint counts {sorted(sizes)}")
    j = sizes.pop() if sizes else 0
    n, k = len(frames), len(ids)
    d: dict = {"joint_set": str(head["joint_set"]), "person_ids": np.array(ids),
               "joints_cam": np.full((n, k, j, 3), np.nan)}  # fmt: skip
    for key in ("fps", "intrinsics"):
        if key in head:
            d[key] = np.asarray(head[key], np.float64)
    for f, fr in enumerate(frames):
        for p in fr.get("persons", []):
            i = ids.index(str(p["id"]))
            d["joints_cam"][f, i] = np.asarray(p["joints_cam"], np.float64)
            if "box" in p:
                d.setdefault("boxes", np.full((n, k, 4), np.nan))[f, i] = p["box"]
            if "joints_world" in p:
                d.setdefault("joints_world", np.full((n, k, j, 3), np.nan))[f, i] = np.asarray(
                    p["joints_world"], np.float64)  # fmt: skip
    return d


def load_sequence(folder: str | Path) -> EvalSequence:
    """One sequence folder (``images/`` and ``gt.npz`` or ``gt.jsonl``)."""
    folder = Path(folder)
    if (folder / "gt.npz").is_file():
        d = _from_npz(folder / "gt.npz")
    elif (folder / "gt.jsonl").is_file():
        d = _from_jsonl(folder / "gt.jsonl")
    else:
        raise FileNotFoundError(f"{folder}: no gt.npz or gt.jsonl (see docs/evaluation.md)")
    if d["joint_set"] not in JOINT_SETS:
        raise DatasetError(
            f"{folder}: joint_set must be one of {JOINT_SETS}, got {d['joint_set']!r}"
        )
    joints = np.asarray(d["joints_cam"], np.float64)
    if joints.ndim != 4 or joints.shape[-1] != 3:
        raise DatasetError(f"{folder}: joints_cam must be (F, P, J, 3), got {joints.shape}")
    frames = folder_images(folder / "images")
    if len(frames) != len(joints):
        raise DatasetError(
            f"{folder}: {len(frames)} images but ground truth for {len(joints)} frames"
        )
    valid = (np.asarray(d["valid"], bool) if "valid" in d
             else np.isfinite(joints).all(axis=-1).any(axis=-1))  # fmt: skip
    if "boxes" in d:
        boxes = np.asarray(d["boxes"], np.float64)
    elif "intrinsics" in d:
        boxes = boxes_from_points(project(joints, d["intrinsics"]))
    else:
        raise DatasetError(f"{folder}: give 'boxes' or 'intrinsics' so persons can be matched")
    world = d.get("joints_world")
    ids = [str(x) for x in d.get("person_ids", [f"person{i}" for i in range(joints.shape[1])])]
    persons = [
        PersonTrack(ids[i], joints[:, i], valid[:, i] & np.isfinite(boxes[:, i]).all(-1),
                    boxes[:, i], None if world is None else np.asarray(world, np.float64)[:, i])
        for i in range(joints.shape[1])
    ]  # fmt: skip
    fps = float(d.get("fps", 30.0))
    return EvalSequence(folder.name, frames, persons, joint_set=d["joint_set"], fps=fps)


def load(root: str | Path, sequences: list[str] | None = None) -> list[EvalSequence]:
    """Every sequence folder under ``root`` (or ``root`` itself when it is one)."""
    root = Path(root)
    if (root / "images").is_dir():
        return [_load_checked(root)]
    folders = sorted(p for p in root.iterdir() if (p / "images").is_dir()) if root.is_dir() else []
    if sequences:
        folders = [f for f in folders if f.name in set(sequences)]
    if not folders:
        raise FileNotFoundError(
            f"no sequence folders under {root}: each needs images/ and gt.npz or gt.jsonl "
            "(see docs/evaluation.md)"
        )
    return [_load_checked(f) for f in folders]


def _load_checked(folder: Path) -> EvalSequence:
    """:func:`load_sequence`, with a malformed ground truth reported as a DatasetError."""
    try:
        return load_sequence(folder)
    except (DatasetError, OSError):
        raise
    except (KeyError, TypeError, IndexError, ValueError, zipfile.BadZipFile) as exc:
        raise DatasetError(
            f"{folder}: the ground truth does not fit the layout of docs/evaluation.md "
            f"({type(exc).__name__}: {exc})"
        ) from None
