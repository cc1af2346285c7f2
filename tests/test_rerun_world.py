"""The Rerun sink's world space: ground, camera pose, world joints, contacts, trajectories.

Frames come from the synthetic walkers of ``world_bench.py`` (depth noise included) through
a real :class:`WorldTracker`, logged to an ``.rrd`` and read back with Rerun's own reader.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("RERUN_ANALYTICS", "0")

import rerun as rr
from test_rerun_sink import _column
from world_bench import scene

from instanthmr.results import FrameResult, WorldInfo
from instanthmr.sinks.rerun_sink import RerunSink, summarize_rrd
from instanthmr.world import WorldTracker

W, H = 64, 48
N = 200
LEAVES = 190  # walker 2 is out of view from this frame on


def _frames() -> list[FrameResult]:
    stage = WorldTracker()
    out = []
    for i, (t, persons, _) in enumerate(scene("walk", "room", 2, seconds=N / 30).render(seed=0)):
        persons = [p.replace(image_size=(W, H)) for p in persons]
        if i >= LEAVES:
            persons = persons[:1]
        persons, world = stage.update(persons, t)
        out.append(FrameResult(persons, i, (W, H), detector_ran=True, timestamp=t, world=world))
    return out


@pytest.fixture(scope="module")
def logged(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[FrameResult]]:
    path = tmp_path_factory.mktemp("rrd") / "world.rrd"
    rec = rr.RecordingStream("instanthmr-test", recording_id="world-test")
    rec.save(path)
    sink = RerunSink(rec, world=True)
    fr = _frames()
    for frame in fr:
        sink.log_frame(np.zeros((H, W, 3), np.uint8), frame)
    rec.flush()
    rec.disconnect()
    return path, fr


def test_world_space_holds_ground_camera_and_status(logged) -> None:
    path, fr = logged
    known = [f.frame_index for f in fr if f.world.known]
    assert known and known[0] > 0, "the scene must start with an unknown world"
    s = summarize_rrd(path)
    assert s["/ground"].static_rows == 1 and "ViewCoordinates:xyz" in s["/ground"].components
    assert s["/ground/plane/grid"].static_rows == 1
    assert s["/ground/plane/grid"].instances["LineStrips3D:strips"] == [42]  # 21 + 21 lines
    assert s["/ground/plane/box"].static_rows == 1
    assert s["/ground/camera"].frames == known
    status = _column(path, "/ground/status", "TextLog:text")
    assert status[0][0].startswith("world frame unknown:")
    assert ["world frame known"] in status and status[-1] == ["world frame known (settled)"]
    info = fr[-1].world
    (translation,) = _column(path, "/ground/camera", "Transform3D:translation")[-1]
    assert translation == pytest.approx([0.0, info.camera_height, 0.0], abs=1e-5)
    assert info.camera_height == pytest.approx(2.5, abs=0.02)
    (mat,) = _column(path, "/ground/camera", "Transform3D:mat3x3")[-1]
    world_from_cam = np.asarray(mat, dtype=np.float64).reshape(3, 3).T  # stored column-major
    forward = world_from_cam @ [0.0, 0.0, 1.0]  # the optical axis, in the world
    pitch = np.radians(info.pitch_deg)
    assert forward == pytest.approx([forward[0], -np.sin(pitch), -np.cos(pitch)], abs=0.06)
    assert abs(forward[0]) < 0.06 and world_from_cam[1] @ [0, -1, 0] > 0.9  # image up ~ up
    (label,) = _column(path, "/ground/camera/label", "Points3D:labels")[-1]
    assert f"camera {info.camera_height:.2f} +- {2 * info.height_std:.2f} m" in label
    assert f"pitch {info.pitch_deg:.1f} +- {2 * info.pitch_std_deg:.1f} deg" in label
    assert label.endswith(f"(fitted, confidence {info.confidence:.2f}, settled)")


def test_world_joints_contacts_and_trajectories(logged) -> None:
    path, fr = logged
    known = [f for f in fr if f.world.known]
    s = summarize_rrd(path)
    joints = _column(path, "/ground/persons/1/joints", "Points3D:positions")
    assert len(joints) == len(known)
    np.testing.assert_allclose(joints[-1], fr[-1].persons[0].joints_3d_world, atol=1e-5)
    contacts = s["/ground/persons/1/contacts"].instances["Points3D:positions"]
    assert set(contacts) <= {0, 3, 6} and max(contacts) > 0
    strip = _column(path, "/ground/trajectories/1", "LineStrips3D:strips")[-1][0]
    assert len(strip) == len(known)  # one point per known frame, kept as a trail
    np.testing.assert_allclose(strip[-1], fr[-1].world.person(1).position, atol=1e-5)
    assert np.allclose(np.asarray(strip)[:, 1], 0.0)  # on the ground
    # Walker 2 left: its world entities are cleared, its trajectory stays as a trail.
    assert s["/ground/persons/2"].frames == [LEAVES]
    assert _column(path, "/ground/persons/2", "Clear:is_recursive") == [[True]]
    assert s["/ground/trajectories/2"].frames[-1] == LEAVES - 1


def test_no_world_stage_logs_no_world_space(tmp_path: Path) -> None:
    rec = rr.RecordingStream("instanthmr-test", recording_id="no-world")
    rec.save(tmp_path / "n.rrd")
    sink = RerunSink(rec)
    frame = _frames()[0]
    sink.log_frame(np.zeros((H, W, 3), np.uint8), FrameResult(frame.persons, 0, (W, H)))
    rec.flush()
    rec.disconnect()
    assert not [e for e in summarize_rrd(tmp_path / "n.rrd") if e.startswith("/ground")]


REOPENED = (
    "re-opened at 12.0 s: the ground seen since 7.0 s is 9.1 cm and 3.02 deg from the settled "
    "frame"
)


def test_status_says_when_the_frame_reopens(tmp_path: Path) -> None:
    """Known and settled, then re-opened (unknown while the new evidence builds), then known
    again: the status log and the camera label say each."""
    plane = np.array([0.0, -0.94, -0.34, 2.5])
    known = {"known": True, "confidence": 0.9, "source": "fitted", "plane": plane,
             "camera_height": 2.5, "pitch_deg": 20.0, "roll_deg": 0.0, "height_std": 0.01,
             "pitch_std_deg": 0.1, "roll_std_deg": 0.1}  # fmt: skip
    infos = [
        WorldInfo(reason="12 ground samples, need 30"),
        WorldInfo(**known, settled=True),
        WorldInfo(reason=REOPENED, reopened=1),
        WorldInfo(**known, reopened=1),
    ]
    rec = rr.RecordingStream("instanthmr-test", recording_id="reopen")
    rec.save(tmp_path / "r.rrd")
    sink = RerunSink(rec, world=True)
    for i, info in enumerate(infos):
        sink.log_frame(np.zeros((H, W, 3), np.uint8), FrameResult([], i, (W, H), world=info))
    rec.flush()
    rec.disconnect()
    status = [row[0] for row in _column(tmp_path / "r.rrd", "/ground/status", "TextLog:text")]
    assert status == [
        "world frame unknown: 12 ground samples, need 30",
        "world frame known (settled)",
        f"world frame re-opened (1x): {REOPENED}",
        "world frame known",
    ]
    labels = _column(tmp_path / "r.rrd", "/ground/camera/label", "Points3D:labels")
    assert labels[0][0].endswith("settled)") and labels[-1][0].endswith(", re-opened 1x)")
