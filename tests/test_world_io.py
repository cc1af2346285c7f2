"""World fields in the result files: round trips in every format; version 1 and 2 files still read.

``fixtures/results_v1/v1.{jsonl,npz,csv}`` were written by the exporters of commit 7ab8545
(format version 1, before the world fields existed): one frame with track 1 (joints rounded
to the printed values), then an empty frame. ``fixtures/results_v2/v2.*`` were written by
those of commit 43149a2 (format version 2, before the world frame's uncertainty): a frame
with the world unknown, one with a fitted frame that had frozen (track 1 with its world
record), then an empty frame without the world stage.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from world_bench import scene

from instanthmr.results import FrameResult, StageTimings
from instanthmr.sinks.exporters import SUPPORTED_SUFFIXES, VERSION, open_exporter, read_results
from instanthmr.world import WorldTracker

V1 = Path(__file__).parent / "fixtures" / "results_v1"
V2 = Path(__file__).parent / "fixtures" / "results_v2"


def _world_frames() -> list[FrameResult]:
    """Unknown world first, then known and settled, plus untracked and empty frames."""
    stage = WorldTracker()
    out = []
    for i, (t, persons, _) in enumerate(scene("walk", "room", 3, seconds=6).render(seed=0)):
        if i == 170:
            persons = [*persons, persons[0].replace(track_id=-1)]  # untracked: no trajectory
        persons, world = stage.update(persons, t)
        if i == 172:
            persons, world = [], dataclasses.replace(world, persons=())
        if i % 15 == 0 or i >= 165:
            out.append(FrameResult(persons, i, (1280, 960), StageTimings(total=2.0), True, t,
                                   world=world))  # fmt: skip
    out.append(FrameResult([], 180, (640, 480), StageTimings(), False, 6.0))  # no world stage
    worlds = [f.world for f in out if f.world is not None]
    assert not worlds[0].known and worlds[-1].known and worlds[-1].settled, "need all states"
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
        assert (gw.settled, gw.reopened, gw.levels) == (ww.settled, ww.reopened, ww.levels)
        assert gw.confidence == pytest.approx(ww.confidence, rel=1e-6)
        for k in ("camera_height", "pitch_deg", "roll_deg", "height_std", "pitch_std_deg",
                  "roll_std_deg"):  # fmt: skip
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
    assert VERSION == 3
    got = read_results(V1 / f"v1{suffix}")
    assert [f.frame_index for f in got] == [0, 1] and len(got[0]) == 1 and len(got[1]) == 0
    p = got[0][0]
    assert p.track_id == 1 and p.score == pytest.approx(0.875)
    np.testing.assert_allclose(p.cam_trans, [0.25, -0.5, 4.0])
    assert p.joints_3d_world is None and p.root_world is None
    assert all(f.world is None for f in got)


@pytest.mark.parametrize("suffix", SUPPORTED_SUFFIXES)
def test_version_2_files_still_read(suffix: str) -> None:
    """No uncertainty in version 2: the fields read None; its frozen fitted frame is settled."""
    got = read_results(V2 / f"v2{suffix}")
    assert [f.frame_index for f in got] == [0, 1, 2] and got[2].world is None
    unknown, fitted = got[0].world, got[1].world
    assert not unknown.known and unknown.reason.startswith("12 still-foot samples")
    assert fitted.known and fitted.source == "fitted" and fitted.camera_height == 2.5
    assert fitted.settled and not fitted.frozen and fitted.reopened == 0
    assert fitted.height_std is None and fitted.pitch_std_deg is None
    assert fitted.person(1).contact == (True, False)
    assert got[1][0].joints_3d_world is not None and got[0][0].joints_3d_world is None


def test_jsonl_records_name_the_world_fields(tmp_path: Path, written: list) -> None:
    import json

    path = tmp_path / "w.jsonl"
    with open_exporter(path) as exp:
        for frame in written:
            exp.write(frame)
    lines = [json.loads(x) for x in path.read_text().splitlines()]
    assert lines[0]["version"] == VERSION and "Y up" in lines[0]["world"]
    known = next(r for r in lines if r["type"] == "frame" and r["world"] and r["world"]["known"])
    assert set(known["world"]) >= {"known", "confidence", "plane", "camera_height", "pitch_deg",
                                   "height_std", "pitch_std_deg", "roll_std_deg", "settled",
                                   "reopened", "levels"}  # fmt: skip
    assert 0 < known["world"]["height_std"] < 0.05
    person = next(r for r in lines if r["type"] == "person" and r["world"])
    assert len(person["joints_3d_world"]) == 70 and len(person["root_world"]) == 3
    assert set(person["world"]) == {"position", "heading", "speed", "contact"}
