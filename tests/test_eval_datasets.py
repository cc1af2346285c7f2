"""Dataset loaders on synthetic files written in each dataset's real layout, and the eval CLI
end to end. The model is the analytic oracle (outputs known from the inputs), never a pose
model, so metric values here check plumbing and geometry, not accuracy."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest
from onnx_builders import build_oracle, oracle_expected

from instanthmr.commands.eval import main as eval_main
from instanthmr.evaluation import emdb, folder, threedpw
from instanthmr.evaluation import joints as jm
from instanthmr.evaluation.runner import boxes_from_points, run_sequence, score_sequence
from instanthmr.evaluation.smpl import SMPLJoints
from instanthmr.geometry import cliff_vectors
from instanthmr.pipeline import PosePipeline
from instanthmr.results import FrameResult
from instanthmr.skeleton import JOINT_INDEX

W, H = 640, 480
SMPL_PARENTS = [-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19, 20, 21]


@pytest.fixture(scope="module")
def oracle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("oracle") / "oracle.onnx"
    onnx.save(build_oracle(), path)
    return path


def _blob_image(path: Path, centres: list[np.ndarray], sigma: float = 6.0) -> None:
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float64)
    v = np.zeros((H, W))
    for x0, y0 in centres:
        v = np.maximum(v, 255 * np.exp(-((xx - x0) ** 2 + (yy - y0) ** 2) / (2 * sigma**2)))
    img = np.zeros((H, W, 3), np.uint8)
    img[..., 2] = np.round(v).astype(np.uint8)  # red, written as BGR
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), img)


def _rot(axis: str, deg: float) -> np.ndarray:
    from scipy.spatial.transform import Rotation

    return Rotation.from_euler(axis, deg, degrees=True).as_matrix()


def _body(rng: np.random.Generator) -> np.ndarray:
    """(24, 3) a standing body-sized point set, metres, Y down, about 1.6 m tall."""
    return np.c_[
        rng.uniform(-0.25, 0.25, 24), rng.uniform(-0.8, 0.8, 24), rng.uniform(-0.1, 0.1, 24)
    ]


# ---------------------------------------------------------------------------------- 3DPW


def _write_3dpw(root: Path, frames: int = 6) -> dict:
    rng = np.random.default_rng(1)
    ext = np.tile(np.eye(4), (frames, 1, 1))
    ext[:, :3, :3] = _rot("y", 10)
    ext[:, :3, 3] = [0.1, 0.0, 0.5] + np.arange(frames)[:, None] * [0.01, 0, 0]
    k = np.array([[800.0, 0, W / 2], [0, 800.0, H / 2], [0, 0, 1]])
    bodies = [_body(rng), _body(rng)]
    world = []
    for x, body in zip((-1.0, 1.0), bodies, strict=True):
        cam_path = np.array([x, 0.0, 5.0]) + np.arange(frames)[:, None] * [0.02, 0, 0]
        cam = body[None] + cam_path[:, None]  # camera frame
        r, t = ext[:, :3, :3], ext[:, :3, 3]
        world.append(np.einsum("fji,fkj->fki", r, cam - t[:, None]))  # R^T (X - t)
    valid = [np.ones(frames, bool), np.r_[np.zeros(1, bool), np.ones(frames - 1, bool)]]
    data = {
        "sequence": "courtyard_synthetic_00", "betas": [np.zeros(10)] * 2,
        "poses": [np.zeros((frames, 72))] * 2, "trans": [np.zeros((frames, 3))] * 2,
        "poses_60Hz": [np.zeros((2 * frames, 72))] * 2,
        "trans_60Hz": [np.zeros((2 * frames, 3))] * 2,
        "genders": ["m", "f"], "poses2d": [np.zeros((frames, 3, 18))] * 2,
        "jointPositions": [w.reshape(frames, 72) for w in world],
        "img_frame_ids": np.arange(frames), "cam_poses": ext, "campose_valid": valid,
        "cam_intrinsics": k,
    }  # fmt: skip
    pkl = root / "sequenceFiles" / "test" / "courtyard_synthetic_00.pkl"
    pkl.parent.mkdir(parents=True)
    with pkl.open("wb") as f:
        pickle.dump(data, f, protocol=2)  # the originals are Python 2 pickles
    return {"world": world, "ext": ext, "k": k, "valid": valid, "pkl": pkl}


def test_3dpw_loader_moves_world_joints_into_the_camera(tmp_path: Path) -> None:
    made = _write_3dpw(tmp_path)
    (seq,) = threedpw.load(tmp_path, "test")
    assert seq.name == "courtyard_synthetic_00" and seq.joint_set == "smpl24"
    assert seq.frames[3] == tmp_path / "imageFiles" / seq.name / "image_00003.jpg"
    r, t = made["ext"][2, :3, :3], made["ext"][2, :3, 3]
    np.testing.assert_allclose(seq.persons[1].joints[2], made["world"][1][2] @ r.T + t)
    np.testing.assert_allclose(seq.persons[0].joints[:, 0, 2], 5.0 + np.zeros(6), atol=0.3)
    assert seq.persons[1].valid.tolist() == made["valid"][1].tolist()
    uv = seq.persons[0].joints[4, :, :2] / seq.persons[0].joints[4, :, 2:] * 800 + [W / 2, H / 2]
    lo, hi = uv.min(0), uv.max(0)
    np.testing.assert_allclose(
        seq.persons[0].boxes[4],
        np.r_[(lo + hi) / 2 - (hi - lo) * 0.6, (lo + hi) / 2 + (hi - lo) * 0.6],
    )
    with pytest.raises(ValueError, match="split"):
        threedpw.load(tmp_path, "val")


def test_3dpw_end_to_end_through_the_cli(tmp_path: Path, oracle: Path, capsys) -> None:
    _write_3dpw(tmp_path)
    (seq,) = threedpw.load(tmp_path, "test")
    for f, path in enumerate(seq.frames):
        boxes = [p.boxes[f] for p in seq.persons]
        _blob_image(path, [(b[:2] + b[2:]) / 2 for b in boxes])
    out = tmp_path / "out" / "r"
    rc = eval_main(["3dpw", "--root", str(tmp_path), "--model", str(oracle), "--gt-boxes",
                    "--device", "cpu", "--out", str(out)])  # fmt: skip
    assert rc == 0
    report = json.loads(out.with_suffix(".json").read_text())
    s = report["sequences"][seq.name]
    assert (s["frames"], s["persons"]) == (6, 2)
    assert s["valid_person_frames"] == s["matched_person_frames"] == 11  # actor 1 misses frame 0
    assert s["detection"]["tp"] == 11 and s["detection"]["fp"] == 0
    assert np.isfinite(s["metrics"]["mpjpe"]) and s["metrics"]["mpjpe"] > 0
    assert "world" in report["overall"]["skipped"]
    assert report["model"]["random_init"] is False and len(report["model"]["sha256"]) == 64
    assert report["banner"] is None
    assert report["options"]["gt_boxes"] is True
    md = out.with_suffix(".md").read_text()
    assert "| courtyard_synthetic_00 | 6 | 2 |" in md and "mpjpe (mm)" in md
    assert "**overall**" in capsys.readouterr().out


# ---------------------------------------------------------------------------------- SMPL / EMDB


def _smpl_model(path: Path) -> dict:
    rng = np.random.default_rng(5)
    v = rng.normal(size=(48, 3)) * 0.3
    jr = np.zeros((24, 48))
    for j in range(24):
        jr[j, 2 * j : 2 * j + 2] = 0.5  # joint j = mean of vertices 2j, 2j+1
    shapedirs = rng.normal(size=(48, 3, 10)) * 0.01
    kin = np.array([[4294967295, *SMPL_PARENTS[1:]], list(range(24))], np.int64)
    np.savez(path, v_template=v, shapedirs=shapedirs, J_regressor=jr, kintree_table=kin)
    return {"v": v, "jr": jr, "shapedirs": shapedirs}


def test_smpl_joints_forward_kinematics(tmp_path: Path) -> None:
    m = _smpl_model(tmp_path / "SMPL_NEUTRAL.npz")
    smpl = SMPLJoints.load(tmp_path / "SMPL_NEUTRAL.npz")
    betas = np.linspace(-1, 1, 10)
    rest = m["jr"] @ (m["v"] + m["shapedirs"] @ betas)
    trans = np.array([[0.5, -0.2, 3.0]])
    np.testing.assert_allclose(smpl.joints(np.zeros((1, 72)), betas, trans)[0], rest + trans[0])
    pose = np.zeros((1, 72))
    pose[0, :3] = [0, np.pi / 2, 0]  # root: 90 degrees about Y, about joint 0
    pose[0, 3 * 4 : 3 * 5] = [np.pi / 2, 0, 0]  # left knee (4): 90 degrees about X
    out = smpl.joints(pose, betas)[0]
    ry, rx = _rot("y", 90), _rot("x", 90)
    np.testing.assert_allclose(out[1], ry @ (rest[1] - rest[0]) + rest[0], atol=1e-12)
    knee = ry @ (rest[4] - rest[0]) + rest[0]
    np.testing.assert_allclose(out[4], knee, atol=1e-12)
    np.testing.assert_allclose(out[7], knee + ry @ rx @ (rest[7] - rest[4]), atol=1e-12)
    with pytest.raises(ValueError, match="missing"):
        np.savez(tmp_path / "bad.npz", v_template=m["v"])
        SMPLJoints.load(tmp_path / "bad.npz")


def _write_emdb(root: Path, frames: int = 12) -> dict:
    seq_dir = root / "P3" / "14_outdoor_climb"
    seq_dir.mkdir(parents=True)
    ext = np.tile(np.eye(4), (frames, 1, 1))
    ext[:, :3, :3] = _rot("x", 180)  # EMDB world is Y up; the camera looks along -Z world
    ext[:, :3, 3] = [0.0, 0.0, 4.0]
    poses_root = np.tile([np.pi, 0, 0], (frames, 1))
    trans = np.c_[np.linspace(0, 0.3, frames), np.zeros(frames), np.zeros(frames)]
    boxes = np.tile([260.0, 120.0, 380.0, 360.0], (frames, 1))
    boxes[:, [0, 2]] += np.arange(frames)[:, None] * 3
    boxes[5] = [0, 0, 0, 0]
    good = np.ones(frames, bool)
    good[2] = False
    data = {
        "gender": "female", "name": "P3_14_outdoor_climb", "emdb1": True, "emdb2": False,
        "n_frames": frames, "good_frames_mask": good,
        "camera": {"intrinsics": np.array([[1000.0, 0, W / 2], [0, 1000.0, H / 2], [0, 0, 1]]),
                   "extrinsics": ext, "width": W, "height": H},
        "smpl": {"poses_root": poses_root, "poses_body": np.zeros((frames, 69)), "trans": trans,
                 "betas": np.zeros(10)},
        "kp2d": np.zeros((frames, 24, 2)),
        "bboxes": {"bboxes": boxes, "invalid_idxs": np.array([5])},
    }  # fmt: skip
    with (seq_dir / "P3_14_outdoor_climb_data.pkl").open("wb") as f:
        pickle.dump(data, f)
    for i in range(frames):
        b = boxes[i] if i != 5 else boxes[4]
        _blob_image(seq_dir / "images" / f"{i:05d}.jpg", [(b[:2] + b[2:]) / 2])
    return data


def test_emdb_loader(tmp_path: Path) -> None:
    _smpl_model(tmp_path / "smpl.npz")
    data = _write_emdb(tmp_path / "emdb")
    (seq,) = emdb.load(tmp_path / "emdb", tmp_path / "smpl.npz")
    p = seq.persons[0]
    smpl = SMPLJoints.load(tmp_path / "smpl.npz")
    pose = np.c_[data["smpl"]["poses_root"], data["smpl"]["poses_body"]]
    world = smpl.joints(pose, np.zeros(10), data["smpl"]["trans"])
    np.testing.assert_allclose(p.joints_world, world)
    np.testing.assert_allclose(p.joints[3], world[3] @ _rot("x", 180).T + [0, 0, 4.0])
    assert p.valid.tolist() == [True, True, False, True, True, False] + [True] * 6
    assert seq.frames[7].name == "00007.jpg"
    with pytest.raises(ValueError, match="no EMDB sequence matched"):
        emdb.load(tmp_path / "emdb", tmp_path / "smpl.npz", subset="emdb2")
    with pytest.raises(FileNotFoundError, match="SMPL_NEUTRAL"):
        emdb.load(tmp_path / "emdb", tmp_path)


class WorldPipe:
    """Wraps a pipeline and gives each person world joints: here the ground truth itself on
    the 12 shared SMPL24 joints, so every world metric has a known value."""

    def __init__(self, pipe: PosePipeline, gt_world: np.ndarray) -> None:
        self.pipe, self.gt = pipe, gt_world

    def reset(self) -> None:
        self.pipe.reset()

    def predict(self, image, boxes=None, *, frame_index, timestamp) -> FrameResult:
        res = self.pipe.predict(image, boxes=boxes, frame_index=frame_index, timestamp=timestamp)
        world = np.zeros((70, 3))
        for i in jm.SMPL24.available:
            world[JOINT_INDEX[jm.SMPL24.names[i]]] = self.gt[frame_index, i]
        res.persons = [p.replace(joints_3d_world=world) for p in res.persons[:1]]
        return res


def test_emdb_local_and_world_metrics(tmp_path: Path, oracle: Path) -> None:
    _smpl_model(tmp_path / "smpl.npz")
    _write_emdb(tmp_path / "emdb")
    (seq,) = emdb.load(tmp_path / "emdb", tmp_path / "smpl.npz")
    pipe = PosePipeline(oracle, device="cpu", detector=None)
    plain = score_sequence(seq, run_sequence(pipe, seq, gt_boxes=True))
    assert plain["matched_person_frames"] == 10
    assert {"mpjpe", "pa_mpjpe"} <= set(plain["values"]) and "w_mpjpe" not in plain["values"]
    assert "joints_3d_world" in plain["skipped"]["world"]
    world = score_sequence(seq, run_sequence(WorldPipe(pipe, seq.persons[0].joints_world), seq,
                                             gt_boxes=True))  # fmt: skip
    v = world["values"]
    assert "world" not in world["skipped"]
    for key in ("w_mpjpe", "wa_mpjpe", "rte"):  # results hold float32: ~1e-5 mm rounding
        np.testing.assert_allclose(v[key], 0, atol=1e-3)
    assert len(v["w_mpjpe"]) == 6  # world metrics on runs of >= 4 valid frames: 6..11 only
    np.testing.assert_allclose(v["foot_sliding"], 0, atol=1e-9)  # the feet do not move


# ---------------------------------------------------------------------------------- folder


def _folder_sequence(root: Path, fmt: str) -> np.ndarray:
    boxes = np.array([[[200.0, 100, 320, 340]], [[206, 100, 326, 340]], [[212, 101, 332, 341]]])
    pred = oracle_expected(cliff_vectors(boxes[:, 0], (W, H)))
    cam = pred["joints_3d"] + pred["cam_trans"][:, None]  # what the oracle will say, (3, 70, 3)
    gt = cam + [0.01, 0.0, 0.0]
    gt[:, JOINT_INDEX["nose"]] += [0.0, 0.035, 0.0]  # one joint 35 mm off: MPJPE 35/70 = 0.5 mm
    for f, b in enumerate(boxes[:, 0]):
        _blob_image(root / "images" / f"frame_{f}.png", [(b[:2] + b[2:]) / 2])
    if fmt == "npz":
        np.savez(root / "gt.npz", joint_set="mhr70", joints_cam=gt[:, None], boxes=boxes, fps=25.0)
    else:
        lines = [json.dumps({"joint_set": "mhr70", "fps": 25})]
        lines += [json.dumps({"frame": f, "persons": [{"id": "me", "joints_cam": gt[f].tolist(),
                                                       "box": boxes[f, 0].tolist()}]})
                  for f in range(3)]  # fmt: skip
        (root / "gt.jsonl").write_text("\n".join(lines) + "\n")
    return gt


@pytest.mark.parametrize("fmt", ["npz", "jsonl"])
def test_folder_format_gives_the_known_mpjpe(tmp_path: Path, oracle: Path, fmt: str) -> None:
    _folder_sequence(tmp_path / "walk", fmt)
    (seq,) = folder.load(tmp_path)
    assert seq.fps == 25.0 and seq.joint_set == "mhr70"
    pipe = PosePipeline(oracle, device="cpu", detector=None, smoothing=False)
    scored = score_sequence(seq, run_sequence(pipe, seq, gt_boxes=True))
    np.testing.assert_allclose(scored["values"]["mpjpe"], 0.5, atol=1e-3)
    assert scored["values"]["accel_error"].shape == (1,)
    (none,) = folder.load(tmp_path, ["walk"])
    assert none.name == "walk"
    with pytest.raises(FileNotFoundError, match=r"gt\.npz or gt\.jsonl"):
        folder.load(tmp_path / "nothing-here")


def test_joints_the_model_only_approximates_are_left_out(tmp_path: Path, oracle: Path) -> None:
    """A model that marks the nose as approximated (as the stand-in does its fingers): the
    35 mm nose error no longer counts, and the report says which joints were left out."""
    _folder_sequence(tmp_path / "walk", "npz")
    (seq,) = folder.load(tmp_path)
    pipe = PosePipeline(oracle, device="cpu", detector=None, smoothing=False)
    pipe.hmr.real_joints = np.arange(70) != JOINT_INDEX["nose"]
    scored = score_sequence(seq, run_sequence(pipe, seq, gt_boxes=True))
    np.testing.assert_allclose(scored["values"]["mpjpe"], 0.0, atol=1e-3)
    assert scored["skipped"]["approximated_joints"].endswith(": nose")


def test_folder_cli_with_a_random_init_model_carries_the_banner(tmp_path: Path) -> None:
    model = build_oracle()
    onnx.helper.set_model_props(model, {"instanthmr_random_init": "true"})
    onnx.save(model, tmp_path / "random.onnx")
    _folder_sequence(tmp_path / "data" / "walk", "npz")
    out = tmp_path / "rep"
    rc = eval_main(["folder", "--root", str(tmp_path / "data"), "--model",
                    str(tmp_path / "random.onnx"), "--gt-boxes", "--no-smoothing", "--device",
                    "cpu", "--out", str(out)])  # fmt: skip
    assert rc == 0
    report = json.loads(out.with_suffix(".json").read_text())
    assert report["model"]["random_init"] is True
    assert "meaningless" in report["banner"]
    assert out.with_suffix(".md").read_text().startswith("> **RANDOM-INIT MODEL")
    assert report["overall"]["metrics"]["mpjpe"] == pytest.approx(0.5, abs=1e-3)


def test_cli_reports_user_errors(tmp_path: Path, capsys) -> None:
    assert eval_main(["3dpw", "--root", str(tmp_path), "--gt-boxes"]) == 2
    assert "sequenceFiles" in capsys.readouterr().err


def test_boxes_from_points_ignores_nan() -> None:
    pts = np.array([[[0.0, 0], [10, 20], [np.nan, np.nan]], [[np.nan] * 2] * 3])
    b = boxes_from_points(pts, expand=1.0)
    np.testing.assert_allclose(b[0], [0, 0, 10, 20])
    assert np.isnan(b[1]).all()


def test_unknown_ground_truth_joints_are_left_out(tmp_path: Path, oracle: Path) -> None:
    gt = _folder_sequence(tmp_path / "walk", "npz")
    gt[:, JOINT_INDEX["nose"]] = np.nan  # the only joint that was off: now unknown
    boxes = np.load(tmp_path / "walk" / "gt.npz")["boxes"]
    np.savez(tmp_path / "walk" / "gt.npz", joint_set="mhr70", joints_cam=gt[:, None], boxes=boxes)
    (seq,) = folder.load(tmp_path)
    pipe = PosePipeline(oracle, device="cpu", detector=None, smoothing=False)
    scored = score_sequence(seq, run_sequence(pipe, seq, gt_boxes=True))
    assert scored["matched_person_frames"] == 3
    np.testing.assert_allclose(scored["values"]["mpjpe"], 0.0, atol=1e-3)
    gt[:, JOINT_INDEX["left_hip"]] = np.nan  # no pelvis: the person is skipped, with a reason
    np.savez(tmp_path / "walk" / "gt.npz", joint_set="mhr70", joints_cam=gt[:, None], boxes=boxes)
    (seq,) = folder.load(tmp_path)
    scored = score_sequence(seq, run_sequence(pipe, seq, gt_boxes=True))
    assert "mpjpe" not in scored["values"]
    assert scored["skipped"]["walk/person0"] == "hip ground truth unknown"


def test_a_random_init_detector_also_raises_the_banner(oracle: Path) -> None:
    from instanthmr.evaluation import report as R  # noqa: N812

    class Det:
        variant, backend, model_path, random_init = "nano", "onnx", Path("det.onnx"), True

    model = R.model_entry(oracle, False, Det())
    assert model["detector"] == {"name": "Det", "variant": "nano", "backend": "onnx",
                                 "path": "det.onnx", "random_init": True}  # fmt: skip
    rep = R.build_report("coco", {}, {"metrics": {}}, model, {})
    assert rep["banner"] == R.RANDOM_INIT_BANNER
    assert R.build_report("coco", {}, {"metrics": {}}, R.model_entry(oracle, False), {})[
        "banner"] is None  # fmt: skip
