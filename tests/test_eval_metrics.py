"""Metrics and joint maps with known answers."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from instanthmr.evaluation import joints as jm
from instanthmr.evaluation import metrics as M  # noqa: N812
from instanthmr.skeleton import JOINT_INDEX, JOINT_NAMES

RNG = np.random.default_rng(0)
POSE = RNG.normal(size=(14, 3)) * 0.3  # a non-planar, non-symmetric point set (metres)


def _similar(points: np.ndarray, seed: int) -> np.ndarray:
    r = Rotation.random(random_state=seed).as_matrix()
    return 1.7 * points @ r.T + np.array([0.4, -1.2, 3.0])


def test_pa_mpjpe_is_zero_for_a_similar_copy_and_not_for_a_mirror() -> None:
    frames = np.stack([POSE, POSE * 0.9])
    copies = np.stack([_similar(POSE, 1), _similar(POSE * 0.9, 2)])
    np.testing.assert_allclose(M.pa_mpjpe(copies, frames), 0, atol=1e-9)
    mirrored = POSE * np.array([-1.0, 1.0, 1.0])
    assert M.pa_mpjpe(mirrored, POSE) > 10  # mm: a reflection is not a rotation
    _, r, _ = M.similarity_transform(mirrored, POSE)
    assert np.linalg.det(r) == pytest.approx(1.0)


def test_mpjpe_offset_is_10mm_raw_and_0_after_pelvis_alignment() -> None:
    gt = POSE * 1000  # in mm: scale=1
    pred = gt + np.array([10.0, 0, 0])
    assert M.mpjpe(pred, gt, align=False, scale=1) == pytest.approx(10.0)
    assert M.mpjpe(pred, gt, hips=(2, 3), scale=1) == pytest.approx(0.0, abs=1e-9)
    assert M.mpjpe(pred, gt, pelvis=0, scale=1) == pytest.approx(0.0, abs=1e-9)
    # metres in, mm out by default; leading axes are kept (frames x persons)
    out = M.mpjpe(
        np.broadcast_to(POSE + [0.01, 0, 0], (5, 2, 14, 3)),
        np.broadcast_to(POSE, (5, 2, 14, 3)),
        align=False,
    )
    assert out.shape == (5, 2)
    np.testing.assert_allclose(out, 10.0)
    with pytest.raises(ValueError, match="hips"):
        M.mpjpe(pred, gt)


def test_mpjpe_pelvis_alignment_leaves_pose_errors() -> None:
    pred = POSE.copy()
    pred[5] += [0.0, 0.014, 0.0]  # one joint 14 mm off; hips (2, 3) untouched
    assert M.mpjpe(pred, POSE, hips=(2, 3)) == pytest.approx(1.0)  # 14 mm / 14 joints


def test_rte_on_a_known_drift() -> None:
    gt = np.array([[0.0, 0, 0], [1, 0, 0], [2, 0, 0]])
    pred = gt * 2  # twice as fast: rigid (no scale) alignment leaves 1, 0, 1 m
    np.testing.assert_allclose(M.rte(pred, gt), [50.0, 0.0, 50.0], atol=1e-9)  # / 2 m path
    moved = _similar(np.c_[np.arange(5.0), np.sin(np.arange(5.0)), np.zeros(5)], 3) / 1.7
    assert M.rte(moved, np.c_[np.arange(5.0), np.sin(np.arange(5.0)), np.zeros(5)]).max() < 1e-9
    with pytest.raises(ValueError, match="does not move"):
        M.rte(pred, np.zeros((3, 3)))


def test_accel_error_jitter_and_foot_sliding() -> None:
    t = np.arange(10.0)[:, None, None]
    gt = POSE[None] + t * np.array([0.01, 0.0, 0.02])
    pred = POSE[None] + 0.05 + t * np.array([-0.03, 0.01, 0.0])  # another constant velocity
    np.testing.assert_allclose(M.accel_error(pred, gt), 0, atol=1e-9)
    bump = gt.copy()
    bump[4] += [0.003, 0, 0]  # 3 mm at frame 4: accelerations -3, +6, -3 mm/frame^2 around it
    err = M.accel_error(bump, gt)
    np.testing.assert_allclose(err[[2, 3, 4]], [3.0, 6.0, 3.0], atol=1e-9)
    assert len(M.accel_error(bump, gt, valid=np.arange(10) != 4)) == 8 - 3
    np.testing.assert_allclose(M.jitter(gt), 0, atol=1e-6)
    cubic = t**3 * np.array([0.001, 0, 0])  # third difference 6 mm/frame^3
    np.testing.assert_allclose(
        M.jitter(np.broadcast_to(cubic, (10, 14, 3)), fps=30), 0.006 * 30**3 / 10
    )
    feet_gt = np.zeros((6, 4, 3))
    feet_gt[3:, 2:] += np.arange(3.0)[:, None, None] * [0.05, 0, 0]  # feet 2, 3 step later
    feet_pred = np.arange(6.0)[:, None, None] * np.array([0.005, 0, 0]) * np.ones((6, 4, 3))
    fs = M.foot_sliding(feet_pred, feet_gt)
    # contacts: feet 0, 1 on all 5 steps, feet 2, 3 on the first 3 steps -> 16 samples of 5 mm
    assert fs.shape == (16,)
    np.testing.assert_allclose(fs, 5.0)


def test_world_metrics() -> None:
    track = POSE[None] + np.arange(150.0)[:, None, None] * np.array([0.02, 0, 0.01])
    copy = np.concatenate([_similar(track[:100], 4), _similar(track[100:], 5)])
    np.testing.assert_allclose(M.wa_mpjpe(copy, track), 0, atol=1e-7)
    np.testing.assert_allclose(M.w_mpjpe(copy, track), 0, atol=1e-7)  # per-chunk start
    drift = track + np.arange(150.0)[:, None, None] * np.array([0, 0.001, 0])
    w, wa = M.w_mpjpe(drift, track), M.wa_mpjpe(drift, track)
    assert w.shape == wa.shape == (150,)
    assert w[99] > 90 and w.mean() > wa.mean() > 0  # 1 mm/frame drift, only partly aligned
    with pytest.raises(ValueError, match="track"):
        M.w_mpjpe(POSE, POSE)


def test_pck_oks_and_detection_scores() -> None:
    gt = RNG.uniform(0, 100, (2, 17, 2))
    pred = gt.copy()
    pred[0, :8] += 20  # 8 of 17 joints 28 px off in sample 0
    np.testing.assert_allclose(M.pck(pred, gt, 5.0), [100 * 9 / 17, 100.0])
    assert M.pck(pred, gt, 0.5, ref=np.array([100.0, 100.0]))[0] == pytest.approx(100.0)
    vis = np.ones((2, 17), bool)
    o = M.oks(pred, gt, vis, area=np.array([900.0, 900.0]))
    assert o[1] == pytest.approx(1.0) and 0 < o[0] < 1
    counts = M.detection_scores(
        [
            (
                np.array([[0, 0, 10, 10], [50, 50, 60, 60]]),
                np.array([[1, 1, 10, 10], [20, 20, 30, 30]]),
            ),
            (np.zeros((0, 4)), np.array([[0, 0, 5, 5]])),
        ]
    )
    assert (counts.tp, counts.fp, counts.fn) == (1, 1, 2)
    assert counts.precision == pytest.approx(50.0)
    assert counts.recall == pytest.approx(100 / 3)
    assert counts.f1 == pytest.approx(40.0)
    # Hungarian: the globally best pairing, not the greedy one
    pairs = M.match_boxes([[0, 0, 10, 10], [4, 0, 14, 10]], [[2, 0, 12, 10], [6, 0, 16, 10]], 0.3)
    assert sorted(map(tuple, pairs.tolist())) == [(0, 0), (1, 1)]


COCO_ORDER = [
    "nose",
    "left_eye",
    "right_eye",
    "left_ear",
    "right_ear",
    "left_shoulder",
    "right_shoulder",
    "left_elbow",
    "right_elbow",
    "left_wrist",
    "right_wrist",
    "left_hip",
    "right_hip",
    "left_knee",
    "right_knee",
    "left_ankle",
    "right_ankle",
]
LSP_ORDER = [
    "right_ankle",
    "right_knee",
    "right_hip",
    "left_hip",
    "left_knee",
    "left_ankle",
    "right_wrist",
    "right_elbow",
    "right_shoulder",
    "left_shoulder",
    "left_elbow",
    "left_wrist",
    "neck",
    "head_top",
]
H36M_ORDER = [
    "pelvis",
    "right_hip",
    "right_knee",
    "right_ankle",
    "left_hip",
    "left_knee",
    "left_ankle",
    "spine",
    "thorax",
    "neck_nose",
    "head",
    "left_shoulder",
    "left_elbow",
    "left_wrist",
    "right_shoulder",
    "right_elbow",
    "right_wrist",
]
EXPECTED_SOURCE = {"neck_nose": "nose"}  # documented: the H36M marker taken as the nose


@pytest.mark.parametrize("jmap", [jm.COCO17, jm.LSP14, jm.H36M17, jm.SMPL24], ids=lambda m: m.name)
def test_every_map_index_matches_the_skeleton_names(jmap: jm.JointMap) -> None:
    order = {
        "coco17": COCO_ORDER,
        "lsp14": LSP_ORDER,
        "h36m17": H36M_ORDER,
        "smpl24": list(jm.SMPL24_NAMES),
    }[jmap.name]
    assert list(jmap.names) == order
    for row, src in zip(jmap.weights, jmap.sources, strict=True):
        if src.kind == "direct":
            (k,) = np.flatnonzero(row)
            assert row[k] == 1.0
            assert JOINT_NAMES[k] == EXPECTED_SOURCE.get(src.target, src.target)
        elif src.kind == "none":
            assert not row.any()
    out = jmap(RNG.normal(size=(3, 70, 3)))
    assert out.shape == (3, len(order), 3)
    assert np.isnan(out[:, [jmap.index(n) for n in jmap.missing]]).all()
    assert np.isfinite(out[:, jmap.available]).all()


def test_derived_joints_and_missing_ones() -> None:
    x = RNG.normal(size=(70, 3))
    h = jm.H36M17(x)
    hips = (x[JOINT_INDEX["left_hip"]] + x[JOINT_INDEX["right_hip"]]) / 2
    thorax = (x[JOINT_INDEX["left_shoulder"]] + x[JOINT_INDEX["right_shoulder"]]) / 2
    np.testing.assert_allclose(h[jm.H36M17.index("pelvis")], hips)
    np.testing.assert_allclose(h[jm.H36M17.index("thorax")], thorax)
    np.testing.assert_allclose(h[jm.H36M17.index("spine")], (hips + thorax) / 2)
    x_nan = x.copy()
    x_nan[JOINT_INDEX["left_index_tip"]] = np.nan  # unused by H36M17: must not leak in
    x_nan[JOINT_INDEX["left_hip"]] = np.nan  # used by left_hip, pelvis and spine only
    h_nan = jm.H36M17(x_nan)
    bad = {jm.H36M17.index(n) for n in ("left_hip", "pelvis", "spine", "head")}
    assert [i for i in range(17) if np.isnan(h_nan[i]).any()] == sorted(bad)
    np.testing.assert_allclose(h_nan[jm.H36M17.index("thorax")], thorax)
    assert jm.LSP14.missing == ("head_top",)
    assert jm.H36M17.missing == ("head",)
    assert len(jm.SMPL24.available) == 12
    assert jm.HIPS["lsp14"] == (3, 2)
    with pytest.raises(KeyError, match="unknown joint set"):
        jm.map_joints(x, "mpii")
