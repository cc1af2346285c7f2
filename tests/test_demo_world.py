"""The demo's world-frame flags, end to end, headless.

The model is the analytic oracle of ``onnx_builders.py`` (keypoints follow a bright blob,
the rest is linear in the crop's CLIFF vector), run by the real onnxruntime; the detector is
replaced by one fixed box per frame. The poses are synthetic, so these tests check plumbing:
flags, defaults, errors, what lands in the exports, the recording and the calibration file.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import supervision as sv

from instanthmr.commands import demo
from instanthmr.sinks.exporters import read_results
from instanthmr.sinks.rerun_sink import summarize_rrd
from instanthmr.world import WorldFrame

W, H, N = 160, 120, 5


class _OneBox:
    def detect(self, image: np.ndarray) -> sv.Detections:
        h, w = image.shape[:2]
        box = np.array([[0.2 * w, 0.1 * h, 0.7 * w, 0.95 * h]], dtype=np.float32)
        return sv.Detections(xyxy=box, confidence=np.array([0.9], np.float32),
                             class_id=np.array([1]))  # fmt: skip


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("clip") / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (W, H))
    for i in range(N):
        img = np.full((H, W, 3), 30, np.uint8)
        cv2.rectangle(img, (50 + 2 * i, 20), (90 + 2 * i, 110), (255, 255, 255), -1)
        writer.write(img)
    writer.release()
    return path


@pytest.fixture
def argv(clip: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    import onnx
    from onnx_builders import build_oracle

    monkeypatch.setattr("instanthmr.detector.create_detector", lambda *a, **k: _OneBox())
    model = tmp_path / "oracle.onnx"
    onnx.save(build_oracle(), model)
    return ["--video", str(clip), "--model", str(model), "--device", "cpu", "--headless"]


def test_video_world_export_jsonl(argv: list[str], tmp_path: Path) -> None:
    """``--video clip --world --export out.jsonl``: every frame reports its world state."""
    out = tmp_path / "out.jsonl"
    assert demo.main([*argv, "--world", "--export", str(out)]) == 0
    frames = read_results(out)
    assert len(frames) == N and all(f.world is not None for f in frames)
    unknown = [f for f in frames if not f.world.known]
    assert all(f.world.reason for f in unknown)  # never a silent guess
    header = json.loads(out.read_text().splitlines()[0])
    assert "Y up" in header["world"]


def test_given_camera_fills_world_everywhere(
    argv: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out, rrd, calib = tmp_path / "w.npz", tmp_path / "w.rrd", tmp_path / "calib.json"
    flags = ["--camera-height", "2.5", "--camera-pitch", "15", "--save", str(rrd)]
    assert demo.main([*argv, *flags, "--export", str(out), "--save-world", str(calib)]) == 0
    frames = read_results(out)
    assert all(f.world.known and f.world.source == "user" for f in frames)
    assert all(p.joints_3d_world is not None for f in frames for p in f)
    assert frames[0].world.pitch_deg == pytest.approx(15.0)
    summary = summarize_rrd(rrd)
    assert summary["/ground/camera"].frames == list(range(N))
    assert summary["/ground/plane/grid"].static_rows == 1
    assert "world: camera 2.50 m above the ground, pitch 15.0 deg" in capsys.readouterr().err
    saved = WorldFrame.load(calib)
    assert saved.camera_height == pytest.approx(2.5) and saved.pitch_deg == pytest.approx(15.0)
    # The calibration feeds a later run.
    out2 = tmp_path / "w2.csv"
    assert demo.main([*argv, "--world-from", str(calib), "--export", str(out2)]) == 0
    again = read_results(out2)
    assert all(f.world.source == "file" for f in again)
    np.testing.assert_allclose(again[0].world.plane, frames[0].world.plane, atol=1e-6)


def test_save_world_without_a_world_says_why(
    argv: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    calib = tmp_path / "calib.json"
    assert demo.main([*argv, "--max-frames", "1", "--save-world", str(calib)]) == 0
    assert not calib.exists()
    assert "not written" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--camera-height", "90", "--camera-pitch", "10"], "0.1..50 m"),
        (["--camera-height", "2", "--camera-pitch", "89"], "-80..80 deg"),
        (["--camera-pitch", "10"], "go together"),
        (["--no-world", "--camera-height", "2", "--camera-pitch", "5"], "contradicts"),
        (["--world-from", "missing.json"], "not found"),
    ],
)
def test_world_flag_errors(
    flags: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as err:
        demo.main(["--headless", *flags])
    assert err.value.code == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        (["--video", "a.mp4"], True),
        (["--camera", "0"], True),
        (["--url", "rtsp://cam/x"], True),
        ([], True),  # the sample clip
        (["--folder", "shots"], False),
        (["--image", "a.jpg"], False),
        (["--image", "a.jpg", "--world"], True),
        (["--video", "a.mp4", "--no-world"], False),
    ],
)
def test_world_default_by_input(flags: list[str], expected: bool) -> None:
    args = demo.build_parser().parse_args(flags)
    static = demo.input_kind(args) not in demo.IMAGE_INPUTS
    assert demo.world_option(args, static=static) is expected
