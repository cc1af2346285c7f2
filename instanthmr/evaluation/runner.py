"""Run a pipeline over a ground-truth sequence and score it: the part every 3D dataset shares.

A dataset loader (``threedpw``, ``emdb``, ``folder``) turns its files into
:class:`EvalSequence` objects: image paths, and per person camera-frame joints in a named
joint set, a validity mask, boxes and (optionally) world-frame joints. :func:`run_sequence`
feeds the frames to a :class:`~instanthmr.pipeline.PosePipeline` (with the ground-truth
boxes, or letting its detector find people), matches predicted persons to ground-truth
persons per frame by box IoU (Hungarian, :func:`~instanthmr.evaluation.metrics.match_boxes`)
and :func:`score_sequence` computes the metrics on the matched frames.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..skeleton import JOINT_INDEX, NUM_JOINTS
from ..sources.files import read_image
from . import joints as jm
from . import metrics as M  # noqa: N812

JOINT_SETS = ("mhr70", *jm.MAPS)
FOOT_JOINTS = ("left_ankle", "right_ankle", "left_heel", "right_heel", "left_big_toe_tip",
               "right_big_toe_tip", "left_small_toe_tip", "right_small_toe_tip")  # fmt: skip


@dataclass
class PersonTrack:
    """One ground-truth person over a sequence (F frames, J joints of ``joint_set``).

    Attributes:
        person_id: a name for the report.
        joints: (F, J, 3) camera-frame joints in metres; NaN for unknown joints.
        valid: (F,) frames where this person's ground truth counts.
        boxes: (F, 4) xyxy pixel boxes (used with ``--gt-boxes`` and for matching).
        joints_world: (F, J, 3) world-frame joints in metres, or None.
    """

    person_id: str
    joints: np.ndarray
    valid: np.ndarray
    boxes: np.ndarray
    joints_world: np.ndarray | None = None


@dataclass
class EvalSequence:
    """One sequence: its frames and its ground-truth persons."""

    name: str
    frames: list[Path]
    persons: list[PersonTrack]
    joint_set: str
    fps: float = 30.0

    def __post_init__(self) -> None:
        if self.joint_set not in JOINT_SETS:
            raise ValueError(f"joint_set must be one of {JOINT_SETS}, got {self.joint_set!r}")
        n = len(self.frames)
        for p in self.persons:
            for name, arr in (("joints", p.joints), ("valid", p.valid), ("boxes", p.boxes)):
                if len(arr) != n:
                    raise ValueError(f"{self.name}/{p.person_id}: {name} has {len(arr)} frames, "
                                     f"the sequence has {n} images")  # fmt: skip


def boxes_from_points(points: np.ndarray, expand: float = 1.2) -> np.ndarray:
    """(..., 4) xyxy boxes around (..., K, 2) points (NaN ignored), grown ``expand`` times
    about their centre (joints stop short of the head top and the hands). All-NaN -> NaN."""
    p = np.asarray(points, np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN rows give NaN boxes
        lo, hi = np.nanmin(p, axis=-2), np.nanmax(p, axis=-2)
    centre, half = (lo + hi) / 2, (hi - lo) / 2 * expand
    return np.concatenate([centre - half, centre + half], axis=-1)


def project(points: np.ndarray, intrinsics: np.ndarray) -> np.ndarray:
    """(..., 3) camera-frame points -> (..., 2) pixels with a (3, 3) K; NaN behind the camera."""
    p = np.asarray(points, np.float64)
    k = np.asarray(intrinsics, np.float64)
    z = np.where(p[..., 2:3] > 0, p[..., 2:3], np.nan)
    return p[..., :2] / z * np.array([k[0, 0], k[1, 1]]) + k[:2, 2]


def to_camera(points_world: np.ndarray, extrinsics: np.ndarray) -> np.ndarray:
    """(F, K, 3) world points -> camera frame with (F, 4, 4) world-to-camera matrices."""
    e = np.asarray(extrinsics, np.float64)
    return np.einsum("fij,fkj->fki", e[:, :3, :3], points_world) + e[:, None, :3, 3]


@dataclass
class Predictions:
    """Matched predictions of one sequence, per ground-truth person (NaN where unmatched)."""

    joints_cam: list[np.ndarray]  # per person (F, 70, 3)
    joints_world: list[np.ndarray | None]  # per person (F, 70, 3), None when never given
    detection: M.DetectionCounts = field(default_factory=M.DetectionCounts)
    real_joints: np.ndarray = field(default_factory=lambda: np.ones(NUM_JOINTS, bool))
    """(70,) the joints the model really predicts (the stand-in approximates some): a
    target joint made from any other MHR70 joint is left out of the scores."""


def run_sequence(
    pipe: Any,
    seq: EvalSequence,
    *,
    gt_boxes: bool,
    iou: float = 0.5,
    progress: Callable[[int], None] | None = None,
) -> Predictions:
    """Run ``pipe`` over the frames and keep, per ground-truth person, the matched prediction.

    With ``gt_boxes`` the valid persons' boxes are given to the pipeline (the detector is
    skipped); otherwise the pipeline's detector runs. Either way each frame's predicted
    boxes are matched to the valid ground-truth boxes by IoU >= ``iou``.
    """
    n, k = len(seq.frames), len(seq.persons)
    cam = [np.full((n, NUM_JOINTS, 3), np.nan) for _ in range(k)]
    world = [np.full((n, NUM_JOINTS, 3), np.nan) for _ in range(k)]
    seen_world = [False] * k
    counts = M.DetectionCounts()
    pipe.reset()
    for f, path in enumerate(seq.frames):
        live = [
            i for i, p in enumerate(seq.persons) if p.valid[f] and np.isfinite(p.boxes[f]).all()
        ]
        boxes = np.array([seq.persons[i].boxes[f] for i in live]).reshape(-1, 4)
        kwargs = {"frame_index": f, "timestamp": f / seq.fps}
        if gt_boxes:  # nobody to give boxes for: nothing to run
            result = pipe.predict(read_image(path), boxes=boxes, **kwargs) if len(boxes) else None
        else:
            result = pipe.predict(read_image(path), **kwargs)
        pred_boxes = result.boxes if result is not None else np.zeros((0, 4))
        for pi, gi in counts.add(pred_boxes, boxes, iou):
            person, who = result[int(pi)], live[int(gi)]
            cam[who][f] = person.joints_3d_cam
            w = getattr(person, "joints_3d_world", None)
            if w is not None:
                world[who][f] = np.asarray(w, np.float64)
                seen_world[who] = True
        if progress is not None:
            progress(f)
    hmr = getattr(pipe, "hmr", None)  # any predictor works; a PosePipeline knows its joints
    real = np.asarray(hmr.real_joints if hmr is not None else np.ones(NUM_JOINTS), bool)
    return Predictions(cam, [w if s else None for w, s in zip(world, seen_world, strict=True)],
                       counts, real)  # fmt: skip


def _target(joint_set: str) -> tuple[Callable[[np.ndarray], np.ndarray], np.ndarray, list[str]]:
    """Map MHR70 -> the set, the set's joints that have a counterpart, and the set's names."""
    if joint_set == "mhr70":
        return (lambda x: np.asarray(x, np.float64)), np.arange(NUM_JOINTS), list(JOINT_INDEX)
    m = jm.MAPS[joint_set]
    return m, m.available, list(m.names)


def _real_targets(joint_set: str, avail: np.ndarray, real: np.ndarray) -> np.ndarray:
    """The targets in ``avail`` made only from joints the model really predicts."""
    if real.all():
        return avail
    if joint_set == "mhr70":
        return avail[real[avail]]
    used = jm.MAPS[joint_set].weights != 0  # (T, 70)
    return np.array([t for t in avail if real[used[t]].all()], np.int64)


def _columns(person: PersonTrack, avail: np.ndarray, names: list[str]) -> np.ndarray | None:
    """The joints compared for this person: those with a counterpart whose ground truth is
    known on every valid frame; None when a hip is missing (no pelvis to align on)."""
    gt = person.joints[person.valid]
    cols = np.array([c for c in avail if np.isfinite(gt[:, c]).all()], np.int64)
    hips = [names.index("left_hip"), names.index("right_hip")]
    return cols if all(h in cols for h in hips) else None


def _positions(cols: np.ndarray, names: list[str], wanted: tuple[str, ...]) -> list[int]:
    return [int(np.flatnonzero(cols == names.index(n))[0]) for n in wanted
            if n in names and names.index(n) in cols]  # fmt: skip


def _runs(mask: np.ndarray) -> list[slice]:
    """Maximal runs of consecutive True frames."""
    edges = np.flatnonzero(np.diff(np.r_[0, mask.astype(np.int8), 0]))
    return [slice(a, b) for a, b in zip(edges[::2], edges[1::2], strict=True)]


def score_sequence(seq: EvalSequence, pred: Predictions) -> dict[str, Any]:
    """Per-frame metric values of one sequence (arrays to pool), counts and skip reasons.

    Per person, the compared joints are those of the set with an MHR70 counterpart that
    the model really predicts (``pred.real_joints``) and a known ground truth on every valid
    frame; frames count when valid and matched.
    Acceleration and the world metrics use runs of consecutive such frames (>= 3 and >= 4).
    """
    mapper, avail, names = _target(seq.joint_set)
    vals: dict[str, list[np.ndarray]] = {}
    skipped: dict[str, str] = {"pve": "the model outputs joints, no mesh vertices"}
    real = _real_targets(seq.joint_set, avail, pred.real_joints)
    if len(real) < len(avail):
        left_out = [names[t] for t in avail if t not in real]
        skipped["approximated_joints"] = (
            "left out of every metric, the model approximates them: " + ", ".join(left_out)
        )
        avail = real
    add = lambda key, v: vals.setdefault(key, []).append(np.atleast_1d(v))  # noqa: E731
    valid_frames = matched_frames = 0
    for person, p_cam, p_world in zip(seq.persons, pred.joints_cam, pred.joints_world, strict=True):
        valid_frames += int(person.valid.sum())
        cols = _columns(person, avail, names)
        if cols is None:
            skipped[f"{seq.name}/{person.person_id}"] = "hip ground truth unknown"
            continue
        hips = _positions(cols, names, ("left_hip", "right_hip"))
        gt, pr = person.joints[:, cols], mapper(p_cam)[:, cols]
        ok = person.valid & np.isfinite(pr).all(axis=(1, 2))
        matched_frames += int(ok.sum())
        if not ok.any():
            continue
        add("mpjpe", M.mpjpe(pr[ok], gt[ok], hips=hips))
        add("pa_mpjpe", M.pa_mpjpe(pr[ok], gt[ok]))
        for run in _runs(ok):
            if run.stop - run.start >= 3:
                rel_pr = pr[run] - M.pelvis_of(pr[run], hips)  # pelvis-aligned, as GVHMR
                rel_gt = gt[run] - M.pelvis_of(gt[run], hips)
                add("accel_error", M.accel_error(rel_pr, rel_gt))
        if person.joints_world is None:
            skipped["world"] = "the dataset gives no world-frame ground truth"
            continue
        if p_world is None:
            skipped["world"] = ("the pipeline gives no joints_3d_world (the world-frame "
                                "stage is absent or off)")  # fmt: skip
            continue
        gw, pw = person.joints_world[:, cols], mapper(p_world)[:, cols]
        okw = ok & np.isfinite(gw).all(axis=(1, 2)) & np.isfinite(pw).all(axis=(1, 2))
        feet = _positions(cols, names, FOOT_JOINTS)
        for run in _runs(okw):
            if run.stop - run.start < 4:
                continue
            add("w_mpjpe", M.w_mpjpe(pw[run], gw[run]))
            add("wa_mpjpe", M.wa_mpjpe(pw[run], gw[run]))
            roots = [M.pelvis_of(x, hips)[:, 0] for x in (pw[run], gw[run])]
            if np.linalg.norm(np.diff(roots[1], axis=0), axis=-1).sum() > 0:
                add("rte", M.rte(*roots))
            add("jitter", M.jitter(pw[run], fps=seq.fps))
            if feet:
                add("foot_sliding", M.foot_sliding(pw[run][:, feet], gw[run][:, feet]))
    return {"values": {k: np.concatenate(v) for k, v in vals.items()}, "skipped": skipped,
            "frames": len(seq.frames), "persons": len(seq.persons),
            "valid_person_frames": valid_frames, "matched_person_frames": matched_frames,
            "detection": pred.detection.as_dict()}  # fmt: skip
