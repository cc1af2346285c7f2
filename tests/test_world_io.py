"""World fields in the result files: round trips in every format, and version 1 files still read.

``fixtures/results_v1/v1.{jsonl,npz,csv}`` were written by the exporters of commit 7ab8545
(format version 1, before the world fields existed): one frame with track 1 (joints rounded
to the printed values), then an empty frame.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from world_scene import default_walkers, frames

from instanthmr.results import FrameResult, StageTimings
from instanthmr.sinks.exporters import SUPPORTED_SUFFIXES, VERSION, open_exporter, read_results
from instanthmr.world import WorldFrame, WorldTracker

V1 = Path(__file__).parent / "fixtures" / "results_v1"
CAMERA = WorldFrame.from_camera(2.5, 20.0, 3.0)


def _world_frames() -> list[FrameResult]:
    """Unknown world first (too few samples), then known, plus untracked and empty frames."""
    stage = WorldTracker()
    out = []
    for i, (t, persons, _) in enumerate(frames(CAMERA, default_walkers()[:2], 24, noise=0.005)):
        if i == 20:
            persons = [*persons, persons[0].replace(track_id=-1)]  # untracked: no trajectory
        persons, world = stage.update(persons, t)
        if i == 22:
            persons, world = [], dataclasses.replace(world, persons=())
        out.append(
            FrameResult(persons, i, (640, 480), StageTimings(total=2.0), True, t, world=world)
        )
    out.append(FrameResult([], 24, (640, 480), StageTimings(), False, 0.8))  # no world stage
    assert not out[0].world.known and out[21].world.known, "scene must cover both states"
    return out


@pytest.fixture(scope="module")
def written() -> list[FrameResult]:
    return _world_frames()


def _assert_world_equal(got: list[FrameResult], want: list[FrameResult]) -> None:
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        if w.world is None:
            assert g.world is None
            continue
        gw, ww = g.world, w.world
        assert (gw.known, gw.source, gw.reason, gw.frozen, gw.inliers) == (
            ww.known, ww.source, ww.reason, ww.frozen, ww.inliers,
        )  # fmt: skip
        assert gw.confidence == pytest.approx(ww.confidence, rel=1e-6)
        for k in ("camera_height", "pitch_deg", "roll_deg"):
            assert (getattr(gw, k) is None) == (getattr(ww, k) is None), k
            if getattr(ww, k) is not None:
                assert getattr(gw, k) == pytest.approx(getattr(ww, k), rel=1e-6)
        if ww.plane is None:
            assert gw.plane is None
        else:
            np.testing.assert_allclose(gw.plane, ww.plane, rtol=1e-6)
        assert [p.track_id for p in gw.persons] == [p.track_id for p in ww.persons]
        for gp, wp in zip(gw.persons, ww.persons, strict=True):
            np.testing.assert_allclose(gp.position, wp.position, atol=1e-6)
            assert gp.heading == pytest.approx(wp.heading, abs=1e-6)
            assert gp.speed == pytest.approx(wp.speed, abs=1e-6)
            assert gp.contact == wp.contact
        for gp, wp in zip(g.persons, w.persons, strict=True):
            for k in ("joints_3d_world", "root_world"):
                if getattr(wp, k) is None:
                    assert getattr(gp, k) is None, k
                else:
                    np.testing.assert_allclose(getattr(gp, k), getattr(wp, k), atol=1e-6)


@pytest.mark.parametrize("suffix", SUPPORTED_SUFFIXES)
def test_world_fields_round_trip(tmp_path: Path, suffix: str, written: list) -> None:
    path = tmp_path / f"world{suffix}"
    with open_exporter(path) as exp:
        for frame in written:
            exp.write(frame)
    got = read_results(path)
    _assert_world_equal(got, written)
    known = [f for f in got if f.world is not None and f.world.known and f.persons]
    assert known and all(p.joints_3d_world is not None for f in known for p in f)
    assert any(c for f in known for pw in f.world.persons for c in pw.contact)


@pytest.mark.parametrize("suffix", SUPPORTED_SUFFIXES)
def test_version_1_files_still_read(suffix: str) -> None:
    assert VERSION == 2
    got = read_results(V1 / f"v1{suffix}")
    assert [f.frame_index for f in got] == [0, 1] and len(got[0]) == 1 and len(got[1]) == 0
    p = got[0][0]
    assert p.track_id == 1 and p.score == pytest.approx(0.875)
    np.testing.assert_allclose(p.cam_trans, [0.25, -0.5, 4.0])
    assert p.joints_3d_world is None and p.root_world is None
    assert all(f.world is None for f in got)


def test_jsonl_records_name_the_world_fields(tmp_path: Path, written: list) -> None:
    import json

    path = tmp_path / "w.jsonl"
    with open_exporter(path) as exp:
        for frame in written:
            exp.write(frame)
    lines = [json.loads(x) for x in path.read_text().splitlines()]
    assert lines[0]["version"] == VERSION and "Y up" in lines[0]["world"]
    known = next(r for r in lines if r["type"] == "frame" and r["world"] and r["world"]["known"])
    assert set(known["world"]) >= {"known", "confidence", "plane", "camera_height", "pitch_deg"}
    person = next(r for r in lines if r["type"] == "person" and r["world"])
    assert len(person["joints_3d_world"]) == 70 and len(person["root_world"]) == 3
    assert set(person["world"]) == {"position", "heading", "speed", "contact"}
