"""The demo entry point, end to end, headless.

Models come from the session fixtures ``hmr_onnx`` and ``detector_onnx``: random-init
exports, so poses and detections are meaningless. The tests check plumbing: exit codes,
what lands in the recording, the exports and the video.

A random RF-DETR does not reliably put a person among its top-300 query/class pairs, even
with ``--det-confidence 0``, so the tests that need exactly one person per frame replace
the detector with :class:`FixedBoxDetector` (one fixed box); the HMR model stays the real
(random-init) ONNX export. The other tests run the real random detector.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import warnings
from pathlib import Path
from types import SimpleNamespace
from typing import ClassVar

import cv2
import numpy as np
import pytest
import supervision as sv

from instanthmr.commands import demo
from instanthmr.hmr.kinds import KINDS
from instanthmr.options import LIVE_DETECTOR_STRIDE, PipelineOptions
from instanthmr.results import FrameResult, StageTimings
from instanthmr.sinks.exporters import read_results
from instanthmr.sinks.rerun_sink import summarize_rrd
from instanthmr.skeleton import NUM_JOINTS

os.environ.setdefault("RERUN_ANALYTICS", "0")

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
W, H, N_FRAMES = 160, 120, 6


def _frame(i: int) -> np.ndarray:
    img = np.full((H, W, 3), 40, np.uint8)
    cv2.rectangle(img, (20 + 10 * i, 20), (60 + 10 * i, 110), (200, 180, 160), -1)
    return img


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 6-frame 160x120 MJPG clip of a moving block (no real person in it)."""
    path = tmp_path_factory.mktemp("clip") / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (W, H))
    assert writer.isOpened()
    for i in range(N_FRAMES):
        writer.write(_frame(i))
    writer.release()
    return path


@pytest.fixture(scope="module")
def models(hmr_onnx: Path, detector_onnx: Path) -> list[str]:
    """Flags selecting the random-init models, forcing one person per frame, on CPU."""
    return [
        "--model", str(hmr_onnx), "--detector-model", str(detector_onnx),
        "--detector-backend", "onnx", "--device", "cpu",
        "--det-confidence", "0", "--max-persons", "1",
    ]  # fmt: skip


class FixedBoxDetector:
    """One person box in the middle of every frame, score 0.9."""

    def detect(self, image: np.ndarray) -> sv.Detections:
        h, w = image.shape[:2]
        box = np.array([[0.3 * w, 0.1 * h, 0.6 * w, 0.95 * h]], dtype=np.float32)
        return sv.Detections(
            xyxy=box, confidence=np.array([0.9], np.float32), class_id=np.array([1])
        )


@pytest.fixture
def fixed_detector(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make PosePipeline build :class:`FixedBoxDetector` instead of RF-DETR."""
    monkeypatch.setattr("instanthmr.detector.create_detector", lambda *a, **k: FixedBoxDetector())


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.mark.usefixtures("fixed_detector")
def test_video_to_rrd_export_and_video(clip: Path, models: list[str], tmp_path: Path) -> None:
    rrd, jsonl, mp4 = tmp_path / "out.rrd", tmp_path / "out.jsonl", tmp_path / "out.mp4"
    argv = ["--video", str(clip), "--headless", "--save", str(rrd)]
    argv += ["--export", str(jsonl), "--write-video", str(mp4), *models]
    assert demo.main(argv) == 0

    summary = summarize_rrd(rrd)
    frames = list(range(N_FRAMES))
    assert summary["/camera/image"].frames == frames
    assert "Pinhole:image_from_camera" in summary["/camera"].components
    for name in ("detect_ms", "hmr_ms", "total_ms", "fps"):
        assert summary[f"/latency/{name}"].frames == frames, name
    persons = [k for k in summary if k.startswith("/world/persons/") and k.endswith("/joints")]
    assert persons, f"no 3D joints logged: {sorted(summary)}"
    counts = [c for p in persons for c in summary[p].instances["Points3D:positions"]]
    assert counts and set(counts) == {NUM_JOINTS}

    records = _jsonl(jsonl)
    header, rest = records[0], records[1:]
    assert header["type"] == "header" and len(header["joint_names"]) == NUM_JOINTS
    assert header["joint_names"][0] == "nose"
    person_lines = [r for r in rest if r["type"] == "person"]
    assert [r["frame_index"] for r in person_lines] == frames  # one person per frame
    assert all(np.shape(r["joints_2d"]) == (NUM_JOINTS, 2) for r in person_lines)
    assert all(np.shape(r["joints_3d_cam"]) == (NUM_JOINTS, 3) for r in person_lines)

    cap = cv2.VideoCapture(str(mp4))
    assert cap.isOpened() and int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == N_FRAMES
    cap.release()


def test_missing_camera_exits_cleanly() -> None:
    proc = subprocess.run(
        [sys.executable, str(REPO / "demo.py"), "--camera", "99", "--headless"],
        capture_output=True, text=True, timeout=120, cwd=REPO,
        env={**os.environ, "RERUN_ANALYTICS": "0"},
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    assert "camera" in proc.stderr and "99" in proc.stderr
    assert "Traceback" not in proc.stderr


def _check_person_lines(path: Path, frame_indices: list[int]) -> None:
    """The JSONL has the expected frames and one person line per person of each frame."""
    frames = read_results(path)
    assert [f.frame_index for f in frames] == frame_indices
    lines = [r for r in _jsonl(path) if r.get("type") == "person"]
    assert [r["frame_index"] for r in lines] == [f.frame_index for f in frames for _ in f]
    assert all(np.shape(r["joints_2d"]) == (NUM_JOINTS, 2) for r in lines)


def test_default_sample_clip(models: list[str], tmp_path: Path) -> None:
    out = tmp_path / "sample.jsonl"
    assert demo.main(["--max-frames", "3", "--headless", "--export", str(out), *models]) == 0
    _check_person_lines(out, [0, 1, 2])


def test_image_glob_with_frame_skip(models: list[str], tmp_path: Path) -> None:
    for i in range(5):
        cv2.imwrite(str(tmp_path / f"img_{i}.png"), _frame(i))
    out = tmp_path / "imgs.jsonl"
    argv = ["--image", str(tmp_path / "img_*.png"), "--frame-skip", "1", "--headless"]
    assert demo.main([*argv, "--export", str(out), *models]) == 0
    _check_person_lines(out, [0, 2, 4])


@pytest.mark.slow
@pytest.mark.usefixtures("fixed_detector")
def test_vtest_all_export_formats(shared_data: Path, models: list[str], tmp_path: Path) -> None:
    paths = [tmp_path / f"vtest.{ext}" for ext in ("jsonl", "npz", "csv")]
    argv = ["--video", str(shared_data / "vtest.avi"), "--max-frames", "50", "--headless"]
    for p in paths:
        argv += ["--export", str(p)]
    assert demo.main([*argv, *models]) == 0
    results = [read_results(p) for p in paths]
    for frames in results:
        assert [f.frame_index for f in frames] == list(range(50))
        assert all(len(f) == 1 and f[0].joints_2d.shape == (NUM_JOINTS, 2) for f in frames)
    np.testing.assert_allclose(
        results[0][10][0].joints_3d_cam, results[1][10][0].joints_3d_cam, atol=1e-4
    )
    np.testing.assert_allclose(
        results[0][10][0].joints_3d_cam, results[2][10][0].joints_3d_cam, atol=1e-3
    )


class FakePipeline:
    """Stands in for PosePipeline: records its arguments, returns empty results. Its
    ``hmr`` says what the demo reads of the model: its kind and file (InstantHMR here)."""

    options: ClassVar[PipelineOptions | None] = None
    hmr = SimpleNamespace(model_kind=KINDS["instanthmr"], model_path=Path("fake.onnx"))

    def __init__(self, *, options: PipelineOptions) -> None:
        FakePipeline.options = options

    def close(self) -> None:
        pass

    def describe(self) -> dict:
        return {"model_kind": "instanthmr", "model_file": "fake.onnx", "model_notice": None,
                "detector": None}  # fmt: skip

    def predict(self, image: np.ndarray, boxes=None, *, frame_index=None, timestamp=None):
        size = (image.shape[1], image.shape[0])
        return FrameResult([], frame_index, size, StageTimings(total=10.0), timestamp=timestamp)


@pytest.mark.parametrize(
    ("flags", "expected"),
    [([], True), (["--no-smooth"], False), (["--image"], False), (["--image", "--smooth"], True)],
)
def test_smoothing_default_by_input(
    flags: list[str], expected: bool, clip: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("instanthmr.pipeline.PosePipeline", FakePipeline)
    cv2.imwrite(str(tmp_path / "a.png"), _frame(0))
    argv = ["--headless", "--max-frames", "2", "--target", "largest"]
    if "--image" in flags:
        argv += ["--image", str(tmp_path / "a.png")]
        flags = [f for f in flags if f != "--image"]
    else:
        argv += ["--video", str(clip)]
    assert demo.main(argv + flags) == 0
    assert FakePipeline.options.smoothing is expected
    assert FakePipeline.options.target == "largest"


@pytest.mark.parametrize(
    ("flags", "field", "value"),
    [
        (["--model", "m.onnx"], "model", "m.onnx"),
        (["--device", "cpu"], "device", "cpu"),
        (["--fallback"], "fallback", True),
        (["--precision", "fp32"], "precision", "fp32"),
        (["--detector-variant", "small"], "detector_variant", "small"),
        (["--detector-backend", "onnx"], "detector_backend", "onnx"),
        (["--detector-model", "d.onnx"], "detector_model", "d.onnx"),
        (["--detector-stride", "3"], "detector_stride", 3),
        (["--det-confidence", "0.3"], "det_confidence", 0.3),
        (["--max-persons", "2"], "max_persons", 2),
        (["--no-batch-persons"], "batch_persons", False),
        (["--target", "4"], "target", 4),
        (["--async-detector"], "async_detector", True),
        (["--detector-threads", "1"], "detector_threads", 1),
    ],
)
def test_each_flag_reaches_its_option(
    flags: list[str], field: str, value: object, clip: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("instanthmr.pipeline.PosePipeline", FakePipeline)
    argv = ["--video", str(clip), "--headless", "--max-frames", "1"]
    assert demo.main(argv + flags) == 0
    assert getattr(FakePipeline.options, field) == value
    # every other option keeps the video mode's default
    expected = PipelineOptions.for_mode("video", world=FakePipeline.options.world)
    others = [f for f in PipelineOptions.__dataclass_fields__ if f != field]
    assert {f: getattr(FakePipeline.options, f) for f in others} == {
        f: getattr(expected, f) for f in others
    }


def test_detector_defaults_reach_pipeline(clip: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Unset, the detector is chosen by the rule (auto) at its own score threshold."""
    monkeypatch.setattr("instanthmr.pipeline.PosePipeline", FakePipeline)
    assert demo.main(["--video", str(clip), "--headless", "--max-frames", "1"]) == 0
    assert FakePipeline.options is not None
    assert FakePipeline.options.detector_variant == "auto"
    assert FakePipeline.options.det_confidence is None


def test_viewer_modes_and_flag_validation(capsys: pytest.CaptureFixture[str]) -> None:
    parse = demo.build_parser().parse_args
    assert demo.viewer_namespace(parse(["--headless"])) is None
    spawn = demo.viewer_namespace(parse([]))
    assert spawn is not None and not (spawn.headless or spawn.connect or spawn.save)
    connect = demo.viewer_namespace(parse(["--connect", "rerun+http://host:9876/proxy"]))
    assert connect.connect and connect.url == "rerun+http://host:9876/proxy"
    bare = demo.viewer_namespace(parse(["--connect"]))
    assert bare.connect and bare.url is None
    saved = demo.viewer_namespace(parse(["--headless", "--save", "x.rrd"]))
    assert saved.save == "x.rrd"
    assert parse(["--url", "rtsp://cam/stream"]).url == "rtsp://cam/stream"  # input, not viewer
    assert parse(["--target", "3"]).target == 3
    for bad in (["--export", "out.txt"], ["--target", "tallest"], ["--frame-skip", "-1"],
                ["--det-confidence", "2"], ["--video", "a.mp4", "--camera", "0"]):  # fmt: skip
        with pytest.raises(SystemExit) as err:
            parse(bad)
        assert err.value.code == 2
    assert "--export" in capsys.readouterr().err


class UnpluggedCamera:
    """A capture that delivers ``n`` frames, then fails every read (a camera pulled out)."""

    def __init__(self, n: int) -> None:
        self.n, self.i = n, 0

    def read(self) -> tuple[bool, np.ndarray | None]:
        time.sleep(0.005)
        if self.i >= self.n:
            return False, None
        self.i += 1
        return True, cv2.cvtColor(_frame(self.i % N_FRAMES), cv2.COLOR_RGB2BGR)

    def release(self) -> None:
        pass


def test_camera_disconnect_closes_outputs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from instanthmr.sources.live import LiveSource

    camera = UnpluggedCamera(8)
    source = LiveSource(camera, "camera:0", fps=30.0, disconnect_after=0.2, stall_timeout=5.0)
    monkeypatch.setattr("instanthmr.sources.files.open_source", lambda **kw: source)
    monkeypatch.setattr("instanthmr.pipeline.PosePipeline", FakePipeline)
    rrd, out = tmp_path / "live.rrd", tmp_path / "live.jsonl"
    argv = ["--camera", "0", "--headless", "--save", str(rrd), "--export", str(out)]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # e.g. Rerun's "RRD file has no footer" if not closed
        assert demo.main(argv) == 0
        summary = summarize_rrd(rrd)
    delivered = [f.frame_index for f in read_results(out)]
    assert delivered and delivered == list(range(len(delivered)))
    assert summary["/camera/image"].frames == delivered
    assert FakePipeline.options.smoothing is True  # live input: smoothing on by default
    assert FakePipeline.options.async_detector is True  # and the detector off the loop,
    assert FakePipeline.options.detector_stride == LIVE_DETECTOR_STRIDE  # on need
    assert not list(tmp_path.glob("*.partial*"))
    stdout = capsys.readouterr().out
    assert f"{camera.n - len(delivered)} frames dropped" in stdout
