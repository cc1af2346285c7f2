"""RerunSink: log synthetic FrameResults to an .rrd and read it back with Rerun's own reader."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import pytest

os.environ.setdefault("RERUN_ANALYTICS", "0")

import rerun as rr
from rerun.chunk import RrdReader

from instanthmr.results import FrameResult, PersonResult, StageTimings
from instanthmr.sinks.rerun_sink import RerunSink, summarize_rrd
from instanthmr.skeleton import BODY_EDGES, NUM_JOINTS

W, H = 160, 120


def make_person(track_id: int, x: float, rng: np.random.Generator) -> PersonResult:
    """A person with plausible geometry (values are synthetic, not a model's output)."""
    focal = float(np.hypot(W, H))
    joints_2d = np.column_stack(
        [rng.uniform(x, x + 30, NUM_JOINTS), rng.uniform(20, 100, NUM_JOINTS)]
    )
    return PersonResult(
        bbox=np.array([x, 20, x + 30, 100]),
        score=0.9,
        joints_2d=joints_2d,
        joints_3d_local=rng.normal(0, 0.3, (NUM_JOINTS, 3)),
        cam_trans=np.array([0.5 * track_id, 0.0, 5.0]),
        mhr_params=np.zeros(204),
        shape_params=np.zeros(45),
        focal_length=focal,
        principal_point=np.array([W / 2, H / 2]),
        image_size=(W, H),
        track_id=track_id,
    )


def make_frames() -> list[FrameResult]:
    """Frames 0-1: persons 1 and 2; frames 2-3: person 2 has left."""
    rng = np.random.default_rng(0)
    frames = []
    for i in range(4):
        ids = [1, 2] if i < 2 else [1]
        persons = [make_person(t, 20 + 60 * k, rng) for k, t in enumerate(ids)]
        timings = StageTimings(detect=10.0, crop=1.0, hmr=20.0 + i, track=0.5, total=40.0)
        frames.append(
            FrameResult(persons, i, (W, H), timings, detector_ran=True, timestamp=i / 25.0)
        )
    return frames


def gradient_image() -> np.ndarray:
    x = np.linspace(0, 255, W, dtype=np.float32)
    img = np.zeros((H, W, 3), np.uint8)
    img[..., 0] = x[None, :].astype(np.uint8)
    img[..., 2] = 128
    return img


@pytest.fixture(scope="module")
def rrd(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("rrd") / "sink.rrd"
    rec = rr.RecordingStream("instanthmr-test", recording_id="sink-test")
    rec.save(path)
    sink = RerunSink(rec)
    sink.log_static()
    sink.log_static()  # idempotent: must not log the static data twice
    for frame in make_frames():
        sink.log_frame(gradient_image(), frame, extra_timings={"read_ms": 2.0})
    rec.flush()
    rec.disconnect()
    return path


def _column(path: Path, entity: str, component: str) -> list:
    values = []
    for chunk in RrdReader(str(path)).stream().to_chunks():
        if chunk.entity_path == entity:
            batch = chunk.to_record_batch()
            if component in batch.schema.names:
                values += batch.column(component).to_pylist()
    return values


def test_image_is_jpeg_per_frame(rrd: Path) -> None:
    summary = summarize_rrd(rrd)
    assert summary["/camera/image"].frames == [0, 1, 2, 3]
    assert _column(rrd, "/camera/image", "EncodedImage:media_type") == [["image/jpeg"]] * 4
    blob = _column(rrd, "/camera/image", "EncodedImage:blob")[0][0]
    decoded = cv2.imdecode(np.frombuffer(bytes(blob), np.uint8), cv2.IMREAD_COLOR)
    assert decoded.shape == (H, W, 3)
    # RGB in, so the gradient is in the red channel (index 2 of OpenCV's BGR).
    assert decoded[:, -1, 2].mean() > 200 and decoded[:, 0, 2].mean() < 50


def test_static_data_logged_once(rrd: Path) -> None:
    summary = summarize_rrd(rrd)
    pinhole = summary["/camera"]
    assert pinhole.static_rows == 1 and pinhole.frames == []
    (matrix,) = _column(rrd, "/camera", "Pinhole:image_from_camera")[0]
    k = np.asarray(matrix, dtype=np.float64).reshape(3, 3).T  # stored column-major
    assert k[0, 0] == pytest.approx(np.hypot(W, H), rel=1e-5)
    assert k[:2, 2] == pytest.approx([W / 2, H / 2])
    assert _column(rrd, "/camera", "Pinhole:resolution") == [[[W, H]]]
    assert summary["/"].static_rows == 2  # the annotation context and the view coordinates
    assert "AnnotationContext:context" in summary["/"].components
    assert "ViewCoordinates:xyz" in summary["/"].components
    assert RrdReader(str(rrd)).blueprints(), "the default blueprint was not written"


def test_annotation_context_has_skeleton(rrd: Path) -> None:
    (context,) = _column(rrd, "/", "AnnotationContext:context")
    ((person,),) = context
    desc = person["class_description"]
    assert desc["info"]["label"] == "person"
    names = [kp["label"] for kp in desc["keypoint_annotations"]]
    assert len(names) == NUM_JOINTS and names[0] == "nose" and names[69] == "neck"
    edges = {(e["keypoint0"], e["keypoint1"]) for e in desc["keypoint_connections"]}
    assert edges == set(BODY_EDGES)


def test_persons_points_and_clear(rrd: Path) -> None:
    summary = summarize_rrd(rrd)
    p1 = summary["/world/persons/1/joints"]
    assert p1.frames == [0, 1, 2, 3]
    assert p1.instances["Points3D:positions"] == [NUM_JOINTS] * 4
    assert p1.instances["Points3D:keypoint_ids"] == [NUM_JOINTS] * 4
    assert summary["/world/persons/2/joints"].frames == [0, 1]
    assert summary["/camera/persons/2/keypoints"].instances["Points2D:positions"] == [70, 70]
    assert summary["/camera/persons/1/box"].frames == [0, 1, 2, 3]
    # Person 2 left at frame 2: one recursive Clear for its 3D and 2D entities, none for 1.
    for entity in ("/world/persons/2", "/camera/persons/2"):
        assert summary[entity].frames == [2]
        assert _column(rrd, entity, "Clear:is_recursive") == [[True]]
    assert "/world/persons/1" not in summary
    labels = _column(rrd, "/camera/persons/1/box", "Boxes2D:labels")
    assert labels[0] == ["id 1 0.90"]


def test_joints_are_camera_space(rrd: Path) -> None:
    positions = _column(rrd, "/world/persons/1/joints", "Points3D:positions")
    first = np.asarray(positions[0])
    expected = make_frames()[0].persons[0].joints_3d_cam
    assert first == pytest.approx(expected, abs=1e-5)


def test_latency_scalars(rrd: Path) -> None:
    summary = summarize_rrd(rrd)
    for name in ("detect_ms", "hmr_ms", "total_ms", "fps", "read_ms"):
        assert summary[f"/latency/{name}"].frames == [0, 1, 2, 3], name
    assert _column(rrd, "/latency/hmr_ms", "Scalars:scalars")[-1] == [pytest.approx(23.0)]
    assert _column(rrd, "/latency/fps", "Scalars:scalars")[0] == [pytest.approx(25.0)]


def test_untracked_and_bad_input(tmp_path: Path) -> None:
    rec = rr.RecordingStream("instanthmr-test", recording_id="sink-untracked")
    rec.save(tmp_path / "u.rrd")
    sink = RerunSink(rec)
    person = make_person(-1, 20, np.random.default_rng(1))
    sink.log_frame(gradient_image(), FrameResult([person], 0, (W, H)))
    with pytest.raises(ValueError, match="FrameResult says"):
        sink.log_frame(np.zeros((10, 10, 3), np.uint8), FrameResult([], 1, (W, H)))
    with pytest.raises(TypeError, match="uint8"):
        sink.log_frame(np.zeros((H, W, 3), np.float32), FrameResult([], 1, (W, H)))
    rec.flush()
    rec.disconnect()
    summary = summarize_rrd(tmp_path / "u.rrd")
    assert summary["/world/persons/untracked_0/joints"].frames == [0]
    assert summary["/latency/fps"].frames == []  # total_ms was 0: no FPS to plot
    assert summary["/latency/total_ms"].frames == [0]


def test_camera_uses_the_results_focal(tmp_path: Path) -> None:
    """A focal-aware model's results carry their own focal: the logged pinhole follows it
    (an empty first frame logs the image diagonal until persons say otherwise)."""
    rec = rr.RecordingStream("instanthmr-test", recording_id="sink-focal")
    rec.save(tmp_path / "f.rrd")
    sink = RerunSink(rec)
    person = make_person(1, 20, np.random.default_rng(2)).replace(focal_length=321.0)
    sink.log_frame(gradient_image(), FrameResult([], 0, (W, H)))
    sink.log_frame(gradient_image(), FrameResult([person], 1, (W, H)))
    sink.log_frame(gradient_image(), FrameResult([person], 2, (W, H)))
    rec.flush()
    rec.disconnect()
    focals = [np.asarray(m[0], dtype=np.float64).reshape(3, 3).T[0, 0]
              for m in _column(tmp_path / "f.rrd", "/camera", "Pinhole:image_from_camera")]
    assert focals == pytest.approx([np.hypot(W, H), 321.0], rel=1e-5)  # logged twice, not thrice
