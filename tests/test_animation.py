"""Animation export core: rig rules, rotation solving, BVH and glTF round trips.

Motions are synthetic (tests/animation_synth.py): the rig posed by forward kinematics, so
bone lengths are constant and the joint positions are known exactly.
"""

from __future__ import annotations

import numpy as np
import pygltflib
import pytest
from animation_synth import glb_positions, mhr70_from_points, rest_offsets, walker
from scipy.spatial.transform import Rotation

from instanthmr.animation import rig
from instanthmr.animation.bvh import bvh_text, read_bvh, write_bvh
from instanthmr.animation.gltf import write_glb
from instanthmr.animation.kinematics import Motion, median_offsets, solve_motion

MM = 1e-3


def _solved_walker(noise: float = 0.0, seed: int = 0) -> tuple[Motion, np.ndarray, Motion]:
    """(truth motion, its (T, P, 3) points, motion solved from MHR70 joints with noise)."""
    truth = walker()
    pts = truth.positions()
    j70 = mhr70_from_points(pts, truth.global_rotations())
    j70 = j70 + np.random.default_rng(seed).normal(0, noise, j70.shape) if noise else j70
    solved = solve_motion(rig.rig_points(j70), rig.twist_references(j70), truth.frame_time)
    return truth, pts, solved


def test_rig_rules_are_weighted_means_and_every_joint_aims_at_one_bone() -> None:
    assert len(rig.JOINT_NAMES) == 20
    np.testing.assert_allclose(rig.POINT_WEIGHTS.sum(axis=1), 1.0)  # means of MHR70 joints
    np.testing.assert_allclose(rig.TWIST_WEIGHTS.sum(axis=1), 0.0, atol=1e-12)  # vectors
    for j, aim in enumerate(rig.AIMS):
        assert rig.POINT_PARENTS[aim] == j and rig.REST_DIRS[aim].any()
        others = [p for p, par in enumerate(rig.POINT_PARENTS) if par == j and p != aim]
        for p in others:  # zero offset, or on the aim line: the rotation fits them all
            cross = np.cross(rig.REST_DIRS[p], rig.REST_DIRS[aim])
            assert not rig.REST_DIRS[p].any() or np.allclose(cross, 0), rig.POINT_NAMES[p]


def test_camera_to_yup_flips_y_and_z() -> None:
    np.testing.assert_allclose(rig.camera_to_yup(np.array([1.0, 2.0, 3.0])), [1, -2, -3])


def test_solve_reproduces_random_poses_exactly_and_recovers_twist() -> None:
    rng = np.random.default_rng(0)
    t, nj = 40, len(rig.JOINT_NAMES)
    offsets = rest_offsets()
    local = Rotation.from_rotvec(rng.normal(0, 0.7, (t * nj, 3))).as_matrix().reshape(t, nj, 3, 3)
    truth = Motion(
        rig.JOINT_NAMES, rig.PARENTS, offsets[:nj], local, rng.normal(0, 1, (t, 3)), 0.04,
        rig.EULER_ORDERS, rig.END_NAMES, rig.END_PARENTS, offsets[nj:],
    )  # fmt: skip
    pts, glob = truth.positions(), truth.global_rotations()
    refs = np.einsum("tjab,jb->tja", glob, rig.TWIST_REST)  # the references as posed
    got = solve_motion(pts, refs, 0.04)
    np.testing.assert_allclose(got.positions(), pts, atol=1e-9)
    np.testing.assert_allclose(got.offsets, offsets[:nj], atol=1e-12)  # medians of lengths
    twisted = [i for i, n in enumerate(rig.JOINT_NAMES) if n in rig.TWIST_RULES]
    np.testing.assert_allclose(got.global_rotations()[:, twisted], glob[:, twisted], atol=1e-9)


def test_euler_channels_are_continuous_through_a_full_turn_and_deep_bends() -> None:
    _, _, solved = _solved_walker()
    euler = solved.euler_degrees()
    assert np.abs(np.diff(euler, axis=0)).max() < 30.0  # no 360° or gimbal flips
    assert np.ptp(euler[:, 0, 0]) > 300.0  # the root's heading really turned a full circle
    assert np.abs(euler[:, 1:, 1]).max() < 80.0  # the bone-axis (middle) angle: no gimbal lock
    knee = rig.JOINT_NAMES.index("LeftLeg")
    assert np.abs(euler[:, knee, 0]).max() > 100.0  # knee bends past 100° in its first channel


def test_bvh_round_trip_own_parser_within_1mm(tmp_path) -> None:
    _, pts, solved = _solved_walker()
    path = write_bvh(tmp_path / "walk.bvh", solved)
    assert not path.with_name("walk.bvh.partial").exists()
    text = path.read_text()
    assert "nan" not in text.lower() and "inf" not in text.lower()
    bvh = read_bvh(path)
    assert bvh.names == list(rig.JOINT_NAMES)
    assert bvh.frame_time == pytest.approx(solved.frame_time, rel=1e-6)
    assert bvh.values.shape == (solved.num_frames, 3 + 3 * len(rig.JOINT_NAMES))
    assert np.abs(bvh.positions() - pts).max() < MM  # joints and end sites


def test_bvh_round_trip_with_bvhio_within_1mm(tmp_path) -> None:
    bvhio = pytest.importorskip("bvhio")
    _, pts, solved = _solved_walker()
    path = write_bvh(tmp_path / "walk.bvh", solved)
    root = bvhio.readAsHierarchy(str(path))
    joints = {j.Name: j for j, _, _ in root.layout()}
    assert set(joints) == set(rig.JOINT_NAMES)
    worst = 0.0
    for frame in range(0, solved.num_frames, 5):
        root.loadPose(frame)
        for name, joint in joints.items():
            err = np.abs(np.array(joint.PositionWorld) - pts[frame, rig.JOINT_NAMES.index(name)])
            worst = max(worst, float(err.max()))
    assert worst < MM


def test_own_parser_reads_a_bvh_written_by_bvhio(tmp_path) -> None:
    bvhio = pytest.importorskip("bvhio")
    _, pts, solved = _solved_walker()
    ours = write_bvh(tmp_path / "ours.bvh", solved)
    theirs = tmp_path / "theirs.bvh"
    bvhio.writeBvh(str(theirs), bvhio.readAsBvh(str(ours)), percision=7)  # bvhio's own writer
    parsed = read_bvh(theirs)
    joints = parsed.positions()[:, : len(rig.JOINT_NAMES)]
    assert np.abs(joints - pts[:, : len(rig.JOINT_NAMES)]).max() < MM


def test_parser_rejects_truncated_files(tmp_path) -> None:
    _, _, solved = _solved_walker()
    path = tmp_path / "cut.bvh"
    path.write_text(bvh_text(solved)[:-400])
    with pytest.raises(SyntaxError, match="motion values"):
        read_bvh(path)


def test_noisy_keypoints_stay_within_stated_tolerance(tmp_path) -> None:
    """σ = 1 cm per coordinate on every MHR70 joint: mean error < 2.5 cm, p95 < 5 cm."""
    _, pts, solved = _solved_walker(noise=0.01, seed=3)
    fk = read_bvh(write_bvh(tmp_path / "noisy.bvh", solved)).positions()
    err = np.linalg.norm(fk - pts, axis=-1)
    assert err.mean() < 0.025 and np.percentile(err, 95) < 0.05
    assert err.mean() > 0.002  # the noise did reach the output (the test is not vacuous)


def test_degenerate_frames_hold_the_last_pose_without_nan(tmp_path) -> None:
    truth, pts, _ = _solved_walker()
    j70 = mhr70_from_points(pts, truth.global_rotations())
    j70[10:13] = j70[10:13].mean(axis=1, keepdims=True)  # every joint on one point
    solved = solve_motion(rig.rig_points(j70), rig.twist_references(j70), truth.frame_time)
    assert np.all(np.isfinite(solved.rotations))
    np.testing.assert_allclose(solved.rotations[10:13], solved.rotations[[9, 9, 9]], atol=1e-9)
    assert "nan" not in bvh_text(solved).lower()


def test_median_offsets_ignore_held_frames() -> None:
    _, pts, _ = _solved_walker()
    pts = pts.copy()
    pts[:5, 2] += 1.0  # five bad knee frames...
    observed = np.ones(len(pts), dtype=bool)
    observed[:5] = False  # ...marked as not observed
    np.testing.assert_allclose(median_offsets(pts, observed), rest_offsets(), atol=1e-9)


def test_glb_round_trip_with_pygltflib_within_1mm(tmp_path) -> None:
    _, pts, solved = _solved_walker()
    path = write_glb(tmp_path / "walk.glb", [solved])
    assert not path.with_name("walk.glb.partial").exists()
    world, times, tracks = glb_positions(path)
    np.testing.assert_allclose(times, np.arange(solved.num_frames) * solved.frame_time, atol=1e-6)
    for p, name in enumerate(rig.POINT_NAMES):
        assert np.abs(world[name] - pts[:, p]).max() < MM
    doc = pygltflib.GLTF2().load(str(path))
    assert len(doc.skins) == 1 and len(doc.meshes) == 1  # one skinned body per track
    assert len(doc.animations[0].channels) == len(rig.JOINT_NAMES) + 2  # rotations, root, scale
    quats = [v[1] for k, v in tracks.items() if k[1] == "rotation"]
    for q in quats:  # unit and sign-continuous (no flips for LINEAR interpolation)
        np.testing.assert_allclose(np.linalg.norm(q, axis=1), 1.0, atol=1e-5)
        assert np.all(np.sum(q[1:] * q[:-1], axis=1) >= 0)


def test_glb_with_trimesh_if_installed(tmp_path) -> None:
    trimesh = pytest.importorskip("trimesh", reason="trimesh is not a dependency; optional check")
    _, _, solved = _solved_walker()
    scene = trimesh.load(str(write_glb(tmp_path / "walk.glb", [solved])), force="scene")
    transform, _ = scene.graph["LeftUpLeg"]  # rest node transforms
    hips, _ = scene.graph["Hips"]
    assert np.linalg.norm(transform[:3, 3] - hips[:3, 3]) == pytest.approx(0.1, abs=MM)
