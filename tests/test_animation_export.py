"""``.bvh`` / ``.glb`` exporters: tracks to files, timelines, gaps, frames, the MHR hook.

Inputs are FrameResults built from the synthetic walker (tests/animation_synth.py), whose
joint positions are known exactly.
"""

from __future__ import annotations

import os

import numpy as np
import pygltflib
import pytest
from animation_synth import (
    frames_from,
    glb_positions,
    mhr70_from_points,
    track_groups,
    walker,
    with_world,
)
from scipy.spatial.transform import Rotation

from instanthmr.animation import rig
from instanthmr.animation.bvh import read_bvh, write_bvh
from instanthmr.animation.exporter import BvhExporter, GlbExporter
from instanthmr.animation.mhr import (
    MhrSkeleton,
    MhrUnavailableError,
    mhr_missing,
    motion_from_skeleton_states,
)
from instanthmr.results import FrameResult
from instanthmr.sinks.exporters import EXPORT_SUFFIXES, open_exporter, read_results

MM = 1e-3
FRAMES = 40


def _walker_joints(shift: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """(Y-up rig points (T, P, 3), camera-frame MHR70 joints (T, 70, 3)) of a walker."""
    m = walker(FRAMES)
    pts = m.positions() + [shift, 0, 0]
    yup = mhr70_from_points(pts, m.global_rotations())
    return pts, rig.camera_to_yup(yup)  # the flip is its own inverse: Y-up -> camera


def _export(path, frames: list[FrameResult], **kw) -> list:
    exporter = (
        open_exporter(path)
        if not kw
        else {".bvh": BvhExporter, ".glb": GlbExporter}[path.suffix](path, **kw)
    )
    with exporter:
        for f in frames:
            exporter.write(f)
    return exporter.written


def test_one_bvh_per_track_reproduces_each_walker(tmp_path) -> None:
    pts_a, cam_a = _walker_joints()
    pts_b, cam_b = _walker_joints(shift=2.0)
    written = _export(tmp_path / "out.bvh", frames_from({3: cam_a, 11: cam_b}, FRAMES, fps=25.0))
    assert [p.name for p in written] == ["out.track3.bvh", "out.track11.bvh"]
    assert not (tmp_path / "out.bvh").exists()
    for path, pts in zip(written, (pts_a, pts_b), strict=True):
        bvh = read_bvh(path)
        assert bvh.frame_time == pytest.approx(0.04)  # from the 25 fps timestamps
        assert np.abs(bvh.positions() - pts).max() < MM  # camera frame turned Y-up


def test_world_joints_are_used_when_every_frame_has_them(tmp_path) -> None:
    pts, cam = _walker_joints()
    offset = np.array([5.0, 0.0, -1.0])  # a "world" frame: the Y-up walker moved
    world = rig.camera_to_yup(cam) + offset
    frames = frames_from({1: cam}, FRAMES)
    for i, f in enumerate(frames):
        f.persons = [with_world(p, world[i]) for p in f.persons]
    bvh = read_bvh(_export(tmp_path / "w.bvh", frames)[0])
    assert np.abs(bvh.positions() - (pts + offset)).max() < MM
    # One frame without world joints: the whole track falls back to the camera frame.
    frames = frames_from({1: cam}, FRAMES)
    for i, f in enumerate(frames[1:], start=1):
        f.persons = [with_world(p, world[i]) for p in f.persons]
    bvh = read_bvh(_export(tmp_path / "c.bvh", frames)[0])
    assert np.abs(bvh.positions() - pts).max() < MM


def test_gaps_hold_the_last_pose_on_the_source_timeline(tmp_path) -> None:
    pts, cam = _walker_joints()
    cam = cam.copy()
    cam[10:15] = np.nan  # the track is lost for five frames
    cam[:3] = np.nan  # and appears only at frame 3
    written = _export(tmp_path / "g.bvh", frames_from({2: cam}, FRAMES, fps=30.0))
    assert len(written) == 1
    text = written[0].read_text()
    assert "nan" not in text.lower()
    bvh = read_bvh(written[0])
    assert len(bvh.values) == FRAMES - 3  # first to last frame seen, gaps included
    fk = bvh.positions()
    np.testing.assert_allclose(fk[10 - 3 : 15 - 3], fk[[9 - 3] * 5], atol=1e-5)  # held
    seen = np.r_[3:10, 15:FRAMES]
    assert np.abs(fk[seen - 3] - pts[seen]).max() < MM


def test_split_writes_one_clip_per_unbroken_run(tmp_path) -> None:
    pts, cam = _walker_joints()
    cam = cam.copy()
    cam[10:15] = np.nan
    written = _export(tmp_path / "s.bvh", frames_from({4: cam}, FRAMES), gaps="split")
    assert [p.name for p in written] == ["s.track4.clip1.bvh", "s.track4.clip2.bvh"]
    first, second = (read_bvh(p) for p in written)
    assert len(first.values) == 10 and len(second.values) == FRAMES - 15
    assert np.abs(second.positions() - pts[15:]).max() < MM


def test_frames_without_timestamps_use_the_default_fps(tmp_path) -> None:
    _, cam = _walker_joints()
    bvh = read_bvh(_export(tmp_path / "n.bvh", frames_from({0: cam}, FRAMES, fps=None))[0])
    assert bvh.frame_time == pytest.approx(1 / 30)


def test_dropped_source_frames_keep_real_time(tmp_path) -> None:
    """A live source that skipped frames: slots follow the timestamps, the gap is held."""
    _, cam = _walker_joints()
    frames = frames_from({0: cam}, FRAMES, fps=30.0)
    del frames[20:23]  # three frames never reached the exporter
    bvh = read_bvh(_export(tmp_path / "d.bvh", frames)[0])
    assert bvh.frame_time == pytest.approx(1 / 30) and len(bvh.values) == FRAMES


def test_untracked_only_writes_nothing_and_does_not_crash(tmp_path) -> None:
    _, cam = _walker_joints()
    written = _export(tmp_path / "u.bvh", frames_from({-1: cam}, 5))
    assert written == [] and not list(tmp_path.iterdir())
    assert _export(tmp_path / "e.glb", [FrameResult([], 0, (640, 480))]) == []


def test_glb_holds_every_track_in_one_file(tmp_path) -> None:
    pts_a, cam_a = _walker_joints()
    pts_b, cam_b = _walker_joints(shift=2.0)
    cam_b = cam_b.copy()
    cam_b[:10] = np.nan  # track 8 starts at frame 10
    written = _export(tmp_path / "scene.glb", frames_from({5: cam_a, 8: cam_b}, FRAMES))
    assert written == [tmp_path / "scene.glb"]
    doc = pygltflib.GLTF2().load(str(written[0]))
    groups = [doc.nodes[i] for i in track_groups(doc)]
    assert [g.name for g in groups] == ["track5", "track8"]
    assert groups[0].extras == {"track_id": 5, "frame": "camera", "rig": "plain"}
    toe = rig.POINT_NAMES.index("LeftToe")
    world, _, tracks = glb_positions(written[0], group=0)
    assert np.abs(world["LeftToe"] - pts_a[:, toe]).max() < MM
    world, times, _ = glb_positions(written[0], group=1)
    np.testing.assert_allclose(times, np.arange(10, FRAMES) / 25, atol=1e-6)  # shared timeline
    assert np.abs(world["LeftToe"] - pts_b[10:, toe]).max() < MM
    scale_t, scale_v = tracks[(track_groups(doc)[1], "scale")]
    np.testing.assert_allclose(scale_t, [0.0, 10 / 25, FRAMES / 25], atol=1e-6)
    np.testing.assert_allclose(scale_v[:, 0], [0.0, 1.0, 0.0])  # hidden, shown, hidden


def test_glb_split_hides_the_skeleton_during_gaps(tmp_path) -> None:
    _, cam = _walker_joints()
    cam = cam.copy()
    cam[10:15] = np.nan
    path = _export(tmp_path / "h.glb", frames_from({1: cam}, FRAMES), gaps="split")[0]
    _, _, tracks = glb_positions(path)
    doc = pygltflib.GLTF2().load(str(path))
    _, scale = tracks[(track_groups(doc)[0], "scale")]
    np.testing.assert_allclose(scale[:, 0], [1.0, 0.0, 1.0, 0.0])


def test_animation_files_are_not_results_files(tmp_path) -> None:
    assert {".bvh", ".glb"} <= set(EXPORT_SUFFIXES)
    path = tmp_path / "x.bvh"
    path.write_text("HIERARCHY")
    with pytest.raises(ValueError, match=r"animation export \(\.bvh\).*read_results reads"):
        read_results(path)
    with pytest.raises(ValueError, match=r"\.bvh, \.glb"):
        open_exporter(tmp_path / "x.txt")
    with pytest.raises(ValueError, match="gaps must be one of hold, split"):
        BvhExporter(tmp_path / "y.bvh", gaps="interpolate")


def test_demo_accepts_animation_exports() -> None:
    from instanthmr.commands.demo import build_parser

    args = build_parser().parse_args(["--export", "a.bvh", "--export", "b.glb"])
    assert args.export == ["a.bvh", "b.glb"]
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--export", "a.fbx"])


def test_skeleton_states_become_a_motion_that_reproduces_them(tmp_path) -> None:
    """The MHR hook's conversion, on synthetic global transforms (centimetres)."""
    m = walker(20)
    glob = m.global_rotations()
    pos = m.positions()[:, : len(m.names)]
    states = np.concatenate(
        [pos * 100.0, Rotation.from_matrix(glob.reshape(-1, 3, 3)).as_quat().reshape(20, -1, 4),
         np.ones((20, len(m.names), 1))], axis=2,
    )  # fmt: skip
    got = motion_from_skeleton_states(states, m.names, m.parents, 0.04, unit=0.01, track_id=2)
    np.testing.assert_allclose(got.positions(), pos, atol=1e-9)
    with pytest.raises(ValueError, match=r"\(T, 20, 7 or 8\)"):
        motion_from_skeleton_states(states[:, :5], m.names, m.parents, 0.04)


def test_mhr_skeleton_says_what_to_install_when_absent(tmp_path) -> None:
    if mhr_missing() is None:
        pytest.skip("Meta's mhr package is installed here; see test_mhr_skeleton_with_assets")
    with pytest.raises(MhrUnavailableError, match=r"pip install 'instanthmr\[mhr\]'"):
        MhrSkeleton(tmp_path)


def test_mhr_skeleton_with_assets(tmp_path) -> None:
    reason = mhr_missing()
    if reason:
        pytest.skip(f"MHR not available: {reason}")
    folder = os.environ.get("INSTANTHMR_MHR_ASSETS")
    if not folder:
        pytest.skip("set INSTANTHMR_MHR_ASSETS to the unzipped MHR assets folder to run this")
    skeleton = MhrSkeleton(folder)
    motion = skeleton.motion(np.zeros((3, 204)), np.zeros(45), 1 / 30)
    joints = len(skeleton.joint_names)
    assert motion.rotations.shape == (3, joints, 3, 3)
    fk = read_bvh(write_bvh(tmp_path / "mhr.bvh", motion)).positions()[:, :joints]
    np.testing.assert_allclose(fk, motion.positions()[:, :joints], atol=MM)


class _OneBoxDetector:
    """One person box in the middle of every frame (stands in for RF-DETR's boxes only)."""

    def detect(self, image: np.ndarray):
        import supervision as sv

        h, w = image.shape[:2]
        box = np.array([[0.3 * w, 0.1 * h, 0.6 * w, 0.95 * h]], dtype=np.float32)
        return sv.Detections(
            xyxy=box, confidence=np.array([0.9], np.float32), class_id=np.array([1])
        )


@pytest.mark.slow
def test_demo_exports_bvh_and_glb_from_the_real_pipeline(
    hmr_onnx, tmp_path, monkeypatch, capsys
) -> None:
    """The random-init HMR export (meaningless poses) on the sample clip: files parse, no NaN."""
    from instanthmr.commands import demo

    monkeypatch.setattr("instanthmr.detector.create_detector", lambda *a, **k: _OneBoxDetector())
    out = [tmp_path / "run.jsonl", tmp_path / "run.bvh", tmp_path / "run.glb"]
    argv = ["--max-frames", "6", "--headless", "--model", str(hmr_onnx), "--device", "cpu"]
    assert demo.main([*argv, *(a for p in out for a in ("--export", str(p)))]) == 0
    frames = read_results(out[0])
    ids = {p.track_id for f in frames for p in f}
    assert len(ids) == 1 and min(ids) >= 0
    bvh_path = tmp_path / f"run.track{ids.pop()}.bvh"
    summary = capsys.readouterr().out
    assert str(bvh_path) in summary and f"{tmp_path / 'run.bvh'}," not in summary
    assert "nan" not in bvh_path.read_text().lower()
    bvh = read_bvh(bvh_path)
    assert len(bvh.values) == 6 and np.all(np.isfinite(bvh.positions()))
    assert bvh.frame_time == pytest.approx(frames[1].timestamp - frames[0].timestamp, rel=1e-3)
    assert pygltflib.GLTF2().load(str(out[2])).animations[0].channels


def test_demo_exports_a_mixamo_glb_and_streams_vmc(hmr_onnx, tmp_path, monkeypatch) -> None:
    """--export run.glb --rig mixamo --stream vmc://127.0.0.1:PORT on the sample clip (the
    random-init model: meaningless poses): a skinned mixamo armature, and a receiver that
    gets one bundle per frame."""
    import socket

    from pythonosc.osc_packet import OscPacket

    from instanthmr.animation.gltf_check import check_glb
    from instanthmr.commands import demo

    monkeypatch.setattr("instanthmr.detector.create_detector", lambda *a, **k: _OneBoxDetector())
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as rx:
        rx.bind(("127.0.0.1", 0))
        rx.settimeout(5.0)
        url = f"vmc://127.0.0.1:{rx.getsockname()[1]}"
        argv = ["--max-frames", "5", "--headless", "--model", str(hmr_onnx), "--device", "cpu",
                "--export", str(tmp_path / "run.glb"), "--rig", "mixamo",
                "--stream", url]  # fmt: skip
        assert demo.main(argv) == 0
        bundles = [OscPacket(rx.recv(65536)).messages for _ in range(5)]
    doc = pygltflib.GLTF2().load(str(tmp_path / "run.glb"))
    assert check_glb(tmp_path / "run.glb") == []
    assert len(doc.skins) == 1 and doc.nodes[doc.skins[0].skeleton].name == "mixamorig:Hips"
    for msgs in bundles:
        addresses = [m.message.address for m in msgs]
        assert addresses[0] == "/VMC/Ext/Root/Pos" and addresses[-2:] == ["/VMC/Ext/OK",
                                                                           "/VMC/Ext/T"]
        assert msgs[1].message.params[0] == "Hips" and len(addresses) == 23


def test_demo_refuses_rig_without_an_animation_export_and_a_bad_stream(capsys) -> None:
    from instanthmr.commands import demo

    with pytest.raises(SystemExit) as exc:
        demo.main(["--rig", "vrm", "--export", "a.jsonl"])
    assert exc.value.code == 2 and "--rig names the bones" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        demo.main(["--stream", "udp://1.2.3.4:9"])
    assert exc.value.code == 2 and "only the VMC protocol" in capsys.readouterr().err
