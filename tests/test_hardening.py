"""Hostile but realistic inputs (issue 13): each one fails with a clear message naming the
problem, or is handled, never a raw library error or a traceback.

The pipeline tests use the analytic oracle ONNX model (tests/onnx_builders.py), whose
outputs are known functions of its inputs; no random-init model is needed here.
"""

from __future__ import annotations

import itertools
import json
import logging
import struct
from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest
import supervision as sv
from onnx_builders import build_oracle

from instanthmr.commands import demo
from instanthmr.geometry import validate_boxes
from instanthmr.pipeline import PosePipeline
from instanthmr.results import FrameResult, PersonResult, StageTimings
from instanthmr.runtime.session import Runtime
from instanthmr.sinks.exporters import UnwritablePathError, open_exporter, read_results
from instanthmr.sources.files import VideoSource

SIZE = (320, 240)


@pytest.fixture(scope="module")
def oracle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("oracle") / "oracle.onnx"
    onnx.save(build_oracle(), path)
    return path


def _frames(n: int = 4) -> list[FrameResult]:
    rng = np.random.default_rng(0)
    out = []
    for i in range(n):
        person = PersonResult(
            bbox=[10.0, 10, 90, 200], score=0.9, joints_2d=rng.uniform(0, 300, (70, 2)),
            joints_3d_local=rng.normal(0, 0.5, (70, 3)), cam_trans=[0.0, 0, 5],
            mhr_params=np.zeros(204), shape_params=np.zeros(45), focal_length=400.0,
            principal_point=[160.0, 120], image_size=SIZE, track_id=1,
        )  # fmt: skip
        out.append(FrameResult([person], i, SIZE, StageTimings(total=5.0), timestamp=i / 10))
    return out


def _write(path: Path, frames: list[FrameResult]) -> Path:
    with open_exporter(path) as exp:
        for f in frames:
            exp.write(f)
    return path


# ----------------------------------------------------------------------------- 2. NPZ reader
@pytest.mark.parametrize(
    ("name", "content", "problem"),
    [
        ("empty", b"", "empty"),
        ("text", b"frame_index,timestamp\n0,0.0\n", "not a zip archive"),
        ("truncated", None, "not a zip archive"),
    ],
)
def test_npz_reader_names_file_and_problem(tmp_path, name, content, problem) -> None:
    path = tmp_path / f"{name}.npz"
    if content is None:
        good = _write(tmp_path / "good.npz", _frames()).read_bytes()
        content = good[: len(good) // 2]
    path.write_bytes(content)
    with pytest.raises(ValueError, match=problem) as err:
        read_results(path)
    assert str(path) in str(err.value) and "pickle" not in str(err.value)


def test_npz_reader_never_unpickles(tmp_path) -> None:
    path = tmp_path / "objects.npz"
    good = dict(np.load(_write(tmp_path / "good.npz", _frames()), allow_pickle=False))
    good["track_id"] = np.array([{"x": 1}] * 4, dtype=object)  # a pickled object array
    np.savez(path, **good)
    with pytest.raises(ValueError, match="Python objects") as err:
        read_results(path)
    assert "allow_pickle" not in str(err.value) and str(path) in str(err.value)


def test_npz_reader_damaged_member_and_missing_array(tmp_path) -> None:
    good = dict(np.load(_write(tmp_path / "good.npz", _frames()), allow_pickle=False))
    del good["joints_2d"]
    np.savez(tmp_path / "missing.npz", **good)
    with pytest.raises(ValueError, match="arrays missing: joints_2d"):
        read_results(tmp_path / "missing.npz")


# ----------------------------------------------------------------------------- 3. boxes
@pytest.mark.parametrize("box", [[0, 0, 1e9, 1e9], [-1e300, -1e300, 1e300, 1e300]])
def test_absurd_boxes_are_refused_naming_the_box(box) -> None:
    with pytest.raises(ValueError, match=r"box 0 .*more than 10x the diagonal"):
        validate_boxes([box], SIZE)


def test_huge_box_values_that_overflow_are_refused() -> None:
    with pytest.raises(ValueError, match="NaN or infinite"):
        validate_boxes([[0, 0, 1e309, 10]], SIZE)  # 1e309 is inf as float64
    with pytest.raises(ValueError, match="must be numbers"):
        validate_boxes([[0, 0, 10**400, 10]], SIZE)  # an int too large for float64
    with pytest.raises(ValueError, match="must be numbers"):
        validate_boxes([["a", 0, 10, 10]], SIZE)


def test_pipeline_refuses_absurd_box_before_the_model(oracle) -> None:
    pipe = PosePipeline(oracle, device="cpu", detector=None)
    image = np.full((SIZE[1], SIZE[0], 3), 128, np.uint8)  # the oracle needs some light
    with pytest.raises(ValueError, match=r"box 0 \[0.0, 0.0, 1000000000.0"):
        pipe.predict(image, boxes=np.array([[0.0, 0, 1e9, 1e9]]))
    big = np.array([[-100.0, -100, 420, 340]])  # larger than the frame but plausible
    assert len(pipe.predict(image, boxes=big)) == 1


# ----------------------------------------------------------------------------- 4. scores
def test_nan_confidence_is_refused_up_front(oracle) -> None:
    pipe = PosePipeline(oracle, device="cpu", detector=None)
    image = np.zeros((SIZE[1], SIZE[0], 3), np.uint8)
    calls = []
    pipe.hmr.infer = lambda *a, **k: calls.append(1)  # must not be reached
    det = sv.Detections(xyxy=np.array([[10.0, 10, 100, 200]]), confidence=np.array([np.nan]))
    with pytest.raises(ValueError, match="detection 0 has confidence nan"):
        pipe.predict(image, boxes=det)
    det = sv.Detections(xyxy=np.array([[10.0, 10, 100, 200]]), confidence=np.array([np.inf]))
    with pytest.raises(ValueError, match="finite"):
        pipe.predict(image, boxes=det)
    assert calls == []


def test_non_person_classes(oracle) -> None:
    """Decision (docs/pipeline.md): class_name decides; class_id alone only warns."""
    pipe = PosePipeline(oracle, device="cpu", detector=None)
    image = np.full((SIZE[1], SIZE[0], 3), 128, np.uint8)
    xyxy = np.array([[10.0, 10, 100, 200], [150, 20, 250, 220]])
    named = sv.Detections(
        xyxy=xyxy, confidence=np.array([0.9, 0.8]), class_id=np.array([1, 3]),
        data={"class_name": np.array(["person", "car"])},
    )  # fmt: skip
    with pytest.warns(UserWarning, match="only the 'person' rows"):
        res = pipe.predict(image, boxes=named)
    assert len(res) == 1 and res.scores.tolist() == pytest.approx([0.9])
    ids_only = sv.Detections(xyxy=xyxy, confidence=np.array([0.9, 0.8]), class_id=np.array([0, 2]))
    with pytest.warns(UserWarning, match="several class_id values"):
        res = pipe.predict(image, boxes=ids_only)
    assert len(res) == 2


# ----------------------------------------------------------------------------- 5. export path
def test_unwritable_export_path_names_the_users_path(tmp_path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    target = blocker / "out.jsonl"  # the parent is a file
    with pytest.raises(UnwritablePathError) as err:
        open_exporter(target)
    assert f"cannot write {target}" in str(err.value) and ".partial" not in str(err.value)
    folder = tmp_path / "adir.jsonl"
    folder.mkdir()
    with pytest.raises(UnwritablePathError, match="it is a folder"):
        open_exporter(folder)


def test_demo_reports_unwritable_export_without_traceback(
    tmp_path, oracle, capsys, monkeypatch
) -> None:
    monkeypatch.setattr("instanthmr.detector.create_detector", lambda *a, **k: _FixedBox())
    missing = tmp_path / "file"
    missing.write_text("x")
    code = demo.main(
        ["--image", str(_image(tmp_path / "a.png", (64, 48))), "--headless", "--model",
         str(oracle), "--device", "cpu", "--export", str(missing / "out.jsonl")]
    )  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and f"cannot write {missing / 'out.jsonl'}" in err
    assert ".partial" not in err and "Traceback" not in err


# ----------------------------------------------------------------------------- 6. empty model
def test_zero_byte_model_says_truncated_or_empty(tmp_path) -> None:
    empty = tmp_path / "empty.onnx"
    empty.write_bytes(b"")
    with pytest.raises(ValueError, match=r"truncated or empty.*download or export it again"):
        Runtime("cpu").load(empty)


# ----------------------------------------------------------------------------- 7. mixed sizes
class _FixedBox:
    def detect(self, image: np.ndarray) -> sv.Detections:
        h, w = image.shape[:2]
        return sv.Detections(
            xyxy=np.array([[0.3 * w, 0.1 * h, 0.6 * w, 0.9 * h]]),
            confidence=np.array([0.9]),
            class_id=np.array([1]),
        )


def _image(path: Path, size: tuple[int, int]) -> Path:
    cv2.imwrite(str(path), np.full((size[1], size[0], 3), 90, np.uint8))
    return path


def test_images_of_mixed_sizes_letterbox_into_the_video(tmp_path, oracle, monkeypatch) -> None:
    monkeypatch.setattr("instanthmr.detector.create_detector", lambda *a, **k: _FixedBox())
    a, b = _image(tmp_path / "a.png", (160, 120)), _image(tmp_path / "b.png", (90, 200))
    out = tmp_path / "out.mp4"
    argv = ["--image", str(a), "--image", str(b), "--write-video", str(out), "--headless"]
    assert demo.main([*argv, "--model", str(oracle), "--device", "cpu"]) == 0
    cap = cv2.VideoCapture(str(out))
    frames = []
    while (got := cap.read())[0]:
        frames.append(got[1])
    cap.release()
    assert len(frames) == 2 and {f.shape for f in frames} == {(120, 160, 3)}
    second = frames[1].astype(int).sum(axis=2)
    assert second[:, :20].max() < 30 and second[:, -20:].max() < 30  # black bars
    assert second[60, 80] > 100  # the grey image, scaled into the middle


# ----------------------------------------------------------------------------- 8. Ctrl-C, time
class _InterruptingDetector(_FixedBox):
    def __init__(self) -> None:
        self.calls = 0

    def detect(self, image: np.ndarray) -> sv.Detections:
        self.calls += 1
        if self.calls == 3:
            raise KeyboardInterrupt  # as if Ctrl-C arrived during the third frame
        return super().detect(image)


def test_ctrl_c_exits_130_and_keeps_outputs(tmp_path, oracle, monkeypatch, capsys) -> None:
    det = _InterruptingDetector()
    monkeypatch.setattr("instanthmr.detector.create_detector", lambda *a, **k: det)
    out = tmp_path / "r.jsonl"
    argv = ["--headless", "--export", str(out), "--model", str(oracle), "--device", "cpu"]
    assert demo.main(argv) == 130
    assert "interrupted" in capsys.readouterr().err
    assert [f.frame_index for f in read_results(out)] == [0, 1]


_BOXES = {b"moov", b"trak", b"mdia", b"minf", b"stbl"}


def _with_stts(buf: bytes, start: int, end: int, stts: bytes) -> bytes:
    """The MP4 boxes in buf[start:end] with the time-to-sample table replaced."""
    out, i = b"", start
    while i < end:
        size, kind = struct.unpack(">I4s", buf[i : i + 8])
        if kind in _BOXES:
            inner = _with_stts(buf, i + 8, i + size, stts)
            out += struct.pack(">I4s", 8 + len(inner), kind) + inner
        else:
            out += stts if kind == b"stts" else buf[i : i + size]
        i += size
    return out


def _damaged_video(path: Path) -> Path:
    """6 frames at 10 fps whose 4th frame repeats the 3rd one's timestamp (damaged stts)."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10, (64, 48))
    for k in range(6):
        writer.write(np.full((48, 64, 3), 40 * k, np.uint8))
    writer.release()
    buf = path.read_bytes()
    entries = [(2, 1024), (1, 0), (3, 1024)]  # sample deltas in a 10240 Hz timescale
    stts = struct.pack(">I4sII", 16 + 8 * len(entries), b"stts", 0, len(entries))
    path.write_bytes(_with_stts(buf, 0, len(buf), stts + b"".join(
        struct.pack(">II", *e) for e in entries)))  # fmt: skip
    return path


def test_repeated_video_timestamps_are_nudged_and_counted(tmp_path, caplog) -> None:
    path = _damaged_video(tmp_path / "damaged.mp4")
    with caplog.at_level(logging.WARNING), VideoSource(path) as src:
        ts = [f.timestamp for f in src]
    assert len(ts) == 6 and ts[2] == pytest.approx(0.2)
    assert all(b > a for a, b in itertools.pairwise(ts))
    assert ts[3] == pytest.approx(0.201) and ts[4] == pytest.approx(0.3)
    assert src.nudged == 1
    warned = [r.getMessage() for r in caplog.records if "timestamp" in r.getMessage()]
    assert len(warned) == 1 and "1 frames" in warned[0]


# ----------------------------------------------------------------------------- 9. errors=skip
def test_jsonl_corrupt_middle_line_strict_and_skip(tmp_path, caplog) -> None:
    path = _write(tmp_path / "r.jsonl", _frames(4))
    lines = path.read_text().splitlines()
    lines[4] = lines[4][: len(lines[4]) // 2]  # frame 1's person line, cut in half
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(ValueError, match=r"r\.jsonl:5: not valid JSON"):
        read_results(path)
    with caplog.at_level(logging.WARNING):
        frames = read_results(path, errors="skip")
    assert [f.frame_index for f in frames] == [0, 2, 3]
    assert any("skipped 2 bad records" in r.getMessage() for r in caplog.records)


def test_jsonl_corrupt_frame_line_drops_only_its_persons(tmp_path) -> None:
    path = _write(tmp_path / "r.jsonl", _frames(4))
    lines = path.read_text().splitlines()
    lines[3] = "{not json"  # frame 1's frame line
    path.write_text("\n".join(lines) + "\n")
    assert [f.frame_index for f in read_results(path, errors="skip")] == [0, 2, 3]


def test_csv_bad_row_strict_and_skip(tmp_path, caplog) -> None:
    path = _write(tmp_path / "r.csv", _frames(4))
    lines = path.read_text().splitlines()
    cells = lines[3].split(",")
    cells[lines[1].split(",").index("cam_trans.z")] = "garbage"
    lines[3] = ",".join(cells)  # frame 1's row
    lines[4] = lines[4][:40]  # frame 2's row, too few columns
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(ValueError, match=r"r\.csv:4: could not convert"):
        read_results(path)
    with caplog.at_level(logging.WARNING):
        frames = read_results(path, errors="skip")
    assert [f.frame_index for f in frames] == [0, 3]
    assert any("skipped 2 bad records" in r.getMessage() for r in caplog.records)
    with pytest.raises(ValueError, match="'strict' or 'skip'"):
        read_results(path, errors="ignore")


def test_skip_keeps_good_files_identical(tmp_path) -> None:
    for suffix in (".jsonl", ".csv", ".npz"):
        path = _write(tmp_path / f"r{suffix}", _frames(3))
        strict, skip = read_results(path), read_results(path, errors="skip")
        assert [f.frame_index for f in skip] == [f.frame_index for f in strict] == [0, 1, 2]
        assert json.dumps([f.timestamp for f in skip]) == json.dumps([0.0, 0.1, 0.2])
