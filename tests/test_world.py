"""World frame: ground plane fit, WorldFrame, the online estimate, trajectories, contacts.

Known answers come from the synthetic scene in ``world_scene.py`` (walkers with a known
gait seen by a camera of known height, pitch and roll).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from world_scene import FPS, Walker, default_walkers, frames

from instanthmr.results import PersonResult
from instanthmr.skeleton import NUM_JOINTS
from instanthmr.world import (
    DegeneratePlaneError,
    EstimatorConfig,
    MotionConfig,
    WorldFrame,
    WorldTracker,
    fit_ground_plane,
)

CAMERA = WorldFrame.from_camera(2.5, 20.0, 3.0)


def _plane_points(rng: np.random.Generator, n: int, noise: float) -> np.ndarray:
    ground = np.column_stack([rng.uniform(-3, 3, n), np.zeros(n), rng.uniform(-9, -2, n)])
    return CAMERA.world_to_cam(ground) + rng.normal(0, noise, (n, 3))


def test_fit_recovers_a_known_plane_despite_outliers() -> None:
    rng = np.random.default_rng(1)
    pts = _plane_points(rng, 400, 0.01)
    outliers = pts[:80] + rng.uniform(0.2, 1.0, (80, 1)) * CAMERA.normal  # feet in the air
    plane = fit_ground_plane(np.vstack([outliers, pts[80:]]))
    assert math.degrees(math.acos(plane.normal @ CAMERA.normal)) < 0.5
    assert abs(plane.offset - 2.5) < 0.01
    assert plane.num_inliers >= 310 and not plane.inliers[:80].any()
    assert plane.rms < 0.02


def test_up_vector_follows_the_body_not_the_sign_of_the_svd() -> None:
    pts = _plane_points(np.random.default_rng(2), 100, 0.0)
    down = -CAMERA.normal  # neck -> ankle points down
    assert fit_ground_plane(pts, down=down).normal @ CAMERA.normal > 0.99
    with pytest.raises(DegeneratePlaneError, match="wrong side"):
        fit_ground_plane(pts, down=CAMERA.normal)  # a body upside down: camera under floor


def test_degenerate_planes_are_refused() -> None:
    with pytest.raises(DegeneratePlaneError, match="need at least 3"):
        fit_ground_plane(np.zeros((2, 3)))
    line = np.column_stack([np.linspace(-1, 1, 50), np.full(50, 1.5), np.linspace(3, 6, 50)])
    with pytest.raises(DegeneratePlaneError, match="on a line"):
        fit_ground_plane(line)
    with pytest.raises(ValueError, match=r"shape \(N, 3\)"):
        fit_ground_plane(np.zeros((5, 2)))
    # Camera looking straight down: the plane fits, but it has no usable heading.
    down_cam = WorldFrame.from_camera(3.0, 80.0)
    ground = np.random.default_rng(3).uniform(-1, 1, (60, 3)) * [1, 0, 1]
    n = down_cam.world_to_cam(ground)
    tilted = n @ _rot_x(math.radians(9.5)).T  # now about 89.5 deg down
    plane = fit_ground_plane(tilted)
    with pytest.raises(DegeneratePlaneError, match="straight down"):
        WorldFrame.from_plane(plane)


def _rot_x(a: float) -> np.ndarray:
    c, s = math.cos(a), math.sin(a)
    return np.array([[1, 0, 0], [0, c, -s], [0, s, c]])


def test_world_frame_axes_height_pitch_roll() -> None:
    w = WorldFrame.from_camera(1.8, 15.0, -4.0)
    assert w.camera_height == pytest.approx(1.8)
    assert w.pitch_deg == pytest.approx(15.0) and w.roll_deg == pytest.approx(-4.0)
    below = -1.8 * w.normal  # the point on the ground right below the camera
    np.testing.assert_allclose(w.cam_to_world(below), [0, 0, 0], atol=1e-12)
    np.testing.assert_allclose(w.cam_to_world(np.zeros(3)), [0, 1.8, 0], atol=1e-12)
    level = WorldFrame.from_camera(2.0, 0.0)
    np.testing.assert_allclose(level.cam_to_world([0, 0, 5]), [0, 2, -5], atol=1e-12)
    np.testing.assert_allclose(level.cam_to_world([1, 0, 0]), [1, 2, 0], atol=1e-12)
    r = w.rotation
    np.testing.assert_allclose(r @ r.T, np.eye(3), atol=1e-12)
    assert np.linalg.det(r) == pytest.approx(1.0)
    pts = np.random.default_rng(0).normal(size=(10, 3))
    np.testing.assert_allclose(w.world_to_cam(w.cam_to_world(pts)), pts, atol=1e-12)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"height": 0.0, "pitch_deg": 10}, r"camera height 0.0 m is out of range.*0.1\.\.50 m"),
        ({"height": 2.0, "pitch_deg": 89}, r"camera pitch 89 deg .*-80\.\.80 deg"),
        ({"height": 2.0, "pitch_deg": 10, "roll_deg": 60}, r"camera roll 60 deg .*-45\.\.45"),
        ({"height": float("nan"), "pitch_deg": 10}, "out of range"),
    ],
)
def test_user_values_out_of_range_name_the_range(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        WorldFrame.from_camera(**kwargs)


def test_calibration_save_and_load(tmp_path: Path) -> None:
    path = CAMERA.save(tmp_path / "sub" / "calib.json")
    assert not list(tmp_path.rglob("*.partial"))
    loaded = WorldFrame.load(path)
    assert loaded.source == "file"
    np.testing.assert_allclose(loaded.normal, CAMERA.normal, atol=1e-12)
    assert loaded.pitch_deg == pytest.approx(20.0) and loaded.roll_deg == pytest.approx(3.0)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"format": "something-else"}))
    with pytest.raises(ValueError, match="not an InstantHMR world calibration"):
        WorldFrame.load(bad)
    bad.write_text(json.dumps({**CAMERA.to_dict(), "camera_height_m": 99.0}))
    with pytest.raises(ValueError, match="out of range"):
        WorldFrame.load(bad)
    with pytest.raises(FileNotFoundError, match="not found"):
        WorldFrame.load(tmp_path / "missing.json")


def _run(stage: WorldTracker, scene: list) -> list:
    return [stage.update(persons, t) for t, persons, _ in scene]


@pytest.mark.parametrize("noise", [0.0, 0.01])
def test_online_estimate_matches_the_true_camera(noise: float) -> None:
    """3 walkers, 1 cm joint noise: height within 2 cm, pitch within 1 deg after 120 frames."""
    stage = WorldTracker()
    out = _run(stage, frames(CAMERA, default_walkers(), 120, noise=noise, seed=5))
    _, info = out[-1]
    assert info.known and info.source == "fitted" and info.reason == ""
    assert abs(info.camera_height - 2.5) < (0.002 if noise == 0 else 0.02)
    assert abs(info.pitch_deg - 20.0) < (0.05 if noise == 0 else 1.0)
    assert abs(info.roll_deg - 3.0) < 1.0
    assert info.inliers >= 100 and 0 < info.confidence <= 1
    first_known = next(i for i, (_, f) in enumerate(out) if f.known)
    assert first_known > 0  # not known on the very first frame: nothing has been still yet
    confidences = [f.confidence for _, f in out if f.known]
    assert confidences[-1] >= confidences[0]  # improves as people walk
    persons, _ = out[-1]
    assert all(p.joints_3d_world is not None and p.joints_3d_world.shape == (70, 3)
               for p in persons)  # fmt: skip


def test_estimate_settles_once_confident() -> None:
    stage = WorldTracker()
    out = _run(stage, frames(CAMERA, default_walkers(), 150, noise=0.005, seed=2))
    settled = [i for i, (_, f) in enumerate(out) if f.settled]
    assert settled, "never settled"
    fixed = out[settled[0]][1].plane
    assert all(np.array_equal(f.plane, fixed) and f.settled for _, f in out[settled[0] :])
    assert out[-1][1].confidence >= 0.8 and not out[-1][1].frozen and out[-1][1].reopened == 0


def test_too_few_ground_samples_keeps_the_world_unknown_and_says_why() -> None:
    stage = WorldTracker()
    scene = frames(CAMERA, default_walkers()[:1], 3)
    for t, persons, _ in scene:
        out, info = stage.update(persons, t)
        assert not info.known and info.plane is None and info.camera_height is None
        assert info.height_std is None and info.pitch_std_deg is None
        assert all(p.joints_3d_world is None and p.root_world is None for p in out)
    assert "3 ground samples" in info.reason and "need 30" in info.reason
    with pytest.raises(RuntimeError, match="no world frame to save"):
        stage.save(Path("never-written.json"))
    # Untracked persons (id -1) give no samples: unknown, never a guess.
    stage = WorldTracker()
    for t, persons, _ in frames(CAMERA, default_walkers(), 60):
        _, info = stage.update([p.replace(track_id=-1) for p in persons], t)
    assert not info.known and "0 ground samples" in info.reason


def test_single_straight_walker_trajectory_rte_under_one_percent() -> None:
    """Noise-free straight line (the others make the floor known): root error as a
    percentage of path length under 1%."""
    walker = Walker(1, (-3.0, -5.0), (1.0, -0.2), speed=1.4)
    stage = WorldTracker()
    errors, path = [], []
    for t, persons, _ in frames(CAMERA, [walker, *default_walkers()[1:]], 240):
        out, info = stage.update(persons, t)
        if info.known:
            truth = walker.pelvis(t) * [1, 0, 1]
            errors.append(np.linalg.norm(info.person(1).position - truth))
            path.append(truth)
            np.testing.assert_allclose(out[0].root_world, walker.pelvis(t), atol=0.01)
    length = np.linalg.norm(np.diff(path, axis=0), axis=1).sum()
    assert length > 4.0
    assert 100 * np.mean(errors) / length < 1.0
    last = info.person(1)
    assert last.speed == pytest.approx(1.4, abs=0.05)
    facing = math.atan2(-1.0, 0.2)  # heading of direction (x, z) = (1, -0.2): atan2(-x, -z)
    assert last.heading == pytest.approx(facing, abs=0.02)


def _contacts(foot_lock: bool, noise: float) -> tuple[list, list, list]:
    stage = WorldTracker(CAMERA, motion=MotionConfig(foot_lock=foot_lock))
    pred, truth, feet = [], [], []
    for t, persons, contacts in frames(CAMERA, default_walkers(), 120, noise=noise, seed=9):
        out, info = stage.update(persons, t)
        assert info.known and info.source == "user" and info.confidence == 1.0
        for p, c in zip(out, contacts, strict=True):
            pred.extend(info.person(p.track_id).contact)
            truth.extend(c)
            feet.append(p.joints_3d_world)
    return pred, truth, feet


def test_foot_contact_precision_and_recall_on_a_synthetic_gait() -> None:
    pred, truth, _ = _contacts(False, noise=0.005)
    pred, truth = np.array(pred), np.array(truth)
    tp = np.sum(pred & truth)
    precision, recall = tp / pred.sum(), tp / truth.sum()
    assert precision > 0.9 and recall > 0.9, (precision, recall)


def test_foot_lock_removes_sliding_during_contact() -> None:
    from instanthmr.world.trajectory import FOOT_LOCKED

    def slide(foot_lock: bool) -> float:
        """Mean frame-to-frame ground motion of walker 1's left foot while it is planted."""
        pred, _, joints = _contacts(foot_lock, noise=0.01)
        left = np.array(pred)[0::2][0::3]  # walker 1's left foot, one entry per frame
        xz = np.array([j[list(FOOT_LOCKED[0])][:, [0, 2]].mean(axis=0) for j in joints[0::3]])
        moves = [np.linalg.norm(xz[i] - xz[i - 1]) for i in range(1, len(xz))
                 if left[i] and left[i - 1]]  # fmt: skip
        assert len(moves) > 30
        return float(np.mean(moves))

    assert slide(False) > 0.003  # 1 cm joint noise slides the planted foot by millimetres
    assert slide(True) < 1e-6  # locked: the foot stays where the contact began


def test_person_result_world_fields_are_validated() -> None:
    p = frames(CAMERA, default_walkers()[:1], 1)[0][1][0]
    assert p.joints_3d_world is None and p.root_world is None  # default: unchanged API
    with pytest.raises(ValueError, match=r"joints_3d_world must have shape \(70, 3\)"):
        p.replace(joints_3d_world=np.zeros((70, 2)))
    with pytest.raises(ValueError, match=r"root_world must have shape \(3,\)"):
        p.replace(root_world=np.zeros(2))
    with pytest.raises(ValueError, match="root_world contains NaN"):
        p.replace(root_world=np.array([0.0, np.nan, 0.0]))
    q = p.replace(joints_3d_world=np.ones((NUM_JOINTS, 3)), root_world=np.ones(3))
    assert isinstance(q, PersonResult) and q.root_world.dtype == np.float32


def test_config_errors_are_clear() -> None:
    with pytest.raises(ValueError, match="unknown trajectory preset 'silky'"):
        MotionConfig(trajectory="silky")
    with pytest.raises(ValueError, match="min_samples"):
        EstimatorConfig(min_samples=2)
    with pytest.raises(ValueError, match="max_angle_std"):
        EstimatorConfig(max_angle_std=0.0)
    with pytest.raises(TypeError, match="WorldFrame or None"):
        WorldTracker("2.5 m")  # type: ignore[arg-type]


def test_frame_rate_does_not_change_the_answer() -> None:
    """The still-foot test is in m/s over a time baseline: 15 FPS gives the same plane."""
    scene = frames(CAMERA, default_walkers(), 240, noise=0.0)[::2]
    stage = WorldTracker()
    _, info = _run(stage, scene)[-1]
    assert info.known and abs(info.camera_height - 2.5) < 0.005
    assert 1 / FPS < scene[1][0] - scene[0][0]


def test_implausible_fitted_height_keeps_the_world_unknown() -> None:
    """Feet 80 m below the camera fit a plane, but a height outside 0.1..50 m is refused."""
    far = WorldFrame.from_camera(40.0, 20.0)
    stage = WorldTracker()
    for t, persons, _ in frames(far, default_walkers(), 40):
        scaled = [p.replace(cam_trans=p.cam_trans * 2.0, joints_3d_local=p.joints_3d_local * 2)
                  for p in persons]  # fmt: skip
        _, info = stage.update(scaled, t)
    assert not info.known and "out of range" in info.reason and "0.1..50 m" in info.reason
