"""The quality metrics of ``instanthmr.evaluation.footage`` on small inputs with known answers.

Each figure of ``docs/quality.md`` comes from one of these functions; here they see
hand-made runs (boxes, ids, joints, world reports) whose right answers are counted by hand,
so a metric cannot silently be wrong. No footage and no model are needed.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from instanthmr.evaluation.footage import tables
from instanthmr.evaluation.footage.animation import (
    export_walkers,
    only_tracks,
    read_bvh_back,
    read_glb_back,
    stride_lengths,
    walking_frame,
)
from instanthmr.evaluation.footage.carried import (
    carried_ious,
    compare_runs,
    match_boxes,
    per_frame_counts,
)
from instanthmr.evaluation.footage.live import REASON_GROUPS, detector_runs
from instanthmr.evaluation.footage.runs import ClipRun, Detections
from instanthmr.evaluation.footage.tracks import (
    expected_boxes,
    id_boxes,
    track_lengths,
    track_stats,
)
from instanthmr.evaluation.footage.world import (
    FOOT_POINTS,
    Spread,
    camera_series,
    height_above,
    on_ground,
    world_stats,
)
from instanthmr.results import FrameResult, PersonResult, PersonWorld, WorldInfo
from instanthmr.tracking.schedule import REASONS

SIZE = (640, 480)
REAL = np.zeros(70, bool)
REAL[:3] = True  # the "real" joints of these runs: the first three


def _person(box, track_id: int = -1, joints_2d=None, joints_cam=None) -> PersonResult:
    b = np.asarray(box, float)
    if joints_2d is None:
        joints_2d = np.tile((b[:2] + b[2:]) / 2, (70, 1))
    cam = np.zeros((70, 3)) if joints_cam is None else np.asarray(joints_cam, float)
    trans = cam.mean(axis=0)
    return PersonResult(
        bbox=b, score=0.9, joints_2d=joints_2d, joints_3d_local=cam - trans, cam_trans=trans,
        mhr_params=np.zeros(204), shape_params=np.zeros(45), focal_length=800.0,
        principal_point=[320, 240], image_size=SIZE, track_id=track_id,
    )  # fmt: skip


def _frames(spec: list[dict[int, list[float]]], **kw) -> list[FrameResult]:
    """FrameResults from ``[{track id: box}, ...]`` (one dict per frame)."""
    return [FrameResult([_person(b, tid) for tid, b in f.items()], i, SIZE, **kw)
            for i, f in enumerate(spec)]  # fmt: skip


def _box(x: float, y: float = 100.0, w: float = 40.0, h: float = 100.0) -> list[float]:
    return [x, y, x + w, y + h]


# --- tracks -----------------------------------------------------------------------------


def test_two_tracks_that_trade_boxes_count_one_swap_and_two_takeovers() -> None:
    # ids 1 and 2 walk apart; on frame 2 they trade places (each one's box lands where the
    # other one's was)
    spec = [{1: _box(100), 2: _box(300)}, {1: _box(102), 2: _box(298)},
            {1: _box(298), 2: _box(102)}, {1: _box(296), 2: _box(104)}]  # fmt: skip
    s = track_stats(_frames(spec))
    assert (s.swaps, s.takeovers) == (1, 2)
    assert s.events.swaps == [(2, 1, 2)]
    assert sorted(s.events.takeovers) == [(2, 1, 2), (2, 2, 1)]
    assert (s.breaks, s.duplicates, s.tracks, s.short_tracks) == (0, 0, 2, 2)


def test_tracks_that_cross_without_trading_count_no_swap() -> None:
    # two people walking past each other, 20 px a frame (half a box width), keep their ids.
    # On frame 3 id 1's box overlaps id 2's box of frame 2 (IoU 0.6) more than its own of
    # frame 2 (0.33): only the expected boxes (constant velocity) tell this from a swap
    spec = [{1: _box(100 + 20 * t), 2: _box(190 - 20 * t)} for t in range(10)]
    s = track_stats(_frames(spec))
    assert (s.swaps, s.takeovers, s.breaks, s.duplicates) == (0, 0, 0, 0)
    frames = id_boxes(_frames(spec))
    np.testing.assert_allclose(expected_boxes(frames[1], frames[2])[1], _box(160))
    np.testing.assert_allclose(expected_boxes({}, frames[2])[2], _box(150))
    # one frame where the detector put both on one box: a duplicate
    spec[4] = {1: _box(170), 2: _box(172)}
    assert track_stats(_frames(spec)).events.duplicates == [(4, 1, 2)]


def test_one_id_jumping_onto_another_person_is_a_takeover_not_a_swap() -> None:
    spec = [{1: _box(100), 2: _box(300)}, {1: _box(300), 2: _box(302)}]
    s = track_stats(_frames(spec))
    assert s.swaps == 0
    assert s.events.takeovers == [(1, 1, 2)]
    assert s.events.duplicates == [(1, 1, 2)]


def test_a_person_whose_track_restarts_with_a_new_id_is_one_break() -> None:
    # id 1 walks for 12 frames, is missed for 3, and comes back as id 5 where it was; id 2
    # far away ends as well, and id 7 is born elsewhere: neither is a break
    spec: list[dict[int, list[float]]] = []
    for t in range(12):
        spec.append({1: _box(100 + 2 * t), 2: _box(500)})
    spec += [{}, {}, {}]
    for t in range(5):
        spec.append({5: _box(130 + 2 * t), 7: _box(300, y=300)})
    s = track_stats(_frames(spec))
    assert s.events.breaks == [(15, 1, 5)]
    assert s.tracks == 4 and s.short_tracks == 2  # ids 5 and 7: 5 frames each
    assert track_lengths(_frames(spec)) == {1: 12, 2: 12, 5: 5, 7: 5}
    assert s.length_median == 8.5


def test_persons_per_frame_and_untracked() -> None:
    spec = [{1: _box(10), -1: _box(300)}, {1: _box(12)}, {}]
    frames = _frames(spec)
    s = track_stats(frames)
    assert s.frames == 3 and s.persons_max == 2 and s.untracked == 1
    assert s.persons_mean == pytest.approx(1.0) and s.persons_median == 1.0
    assert [sorted(f) for f in id_boxes(frames)] == [[1], [1], []]
    assert per_frame_counts(frames).tolist() == [2, 1, 0]
    empty = track_stats([])
    assert empty.tracks == 0 and math.isnan(empty.persons_mean)


# --- carried boxes and drift ---------------------------------------------------------------


def test_match_boxes_pairs_one_to_one_by_total_iou() -> None:
    a = np.array([_box(0), _box(100)])
    b = np.array([_box(110), _box(10), _box(400)])
    rows, cols, iou = match_boxes(a, b)
    assert rows.tolist() == [0, 1] and cols.tolist() == [1, 0]
    # 30 of 40 px overlap in x: 3000 / (4000 + 4000 - 3000)
    np.testing.assert_allclose(iou, [0.6, 0.6])
    assert match_boxes(a, b, min_iou=0.7)[0].tolist() == []
    assert match_boxes(a, np.zeros((0, 4)))[0].tolist() == []


def _run(label: str, frames: list[FrameResult]) -> ClipRun:
    return ClipRun(label, frames, real_joints=REAL, fps=10.0)


def test_compare_runs_counts_carried_iou_drift_and_lost_persons() -> None:
    # reference (stride 1): two people on 4 frames, joints at their box centres
    ref_boxes = [[_box(100), _box(300)] for _ in range(4)]
    reference = _run("stride 1", [
        FrameResult([_person(b, i + 1) for i, b in enumerate(bs)], t, SIZE, detector_ran=True,
                    boxes_from="detector") for t, bs in enumerate(ref_boxes)])  # fmt: skip
    detections = Detections([np.array(bs) for bs in ref_boxes], [np.ones(2)] * 4)

    # the run: frame 0 detected; frames 1-3 carried. Frame 1: both carried boxes 10 px to
    # the right (IoU 0.6), joints 3 px right of the reference's; frame 2: the first box
    # shifted, its joints with it (10 px), the second person lost; frame 3: the first box
    # right, the second carried onto empty ground (IoU 0 with every box)
    def p(box, tid, dx=0.0):
        b = np.asarray(box, float)
        return _person(b, tid, joints_2d=np.tile((b[:2] + b[2:]) / 2 + [dx, 0], (70, 1)))

    frames = [
        FrameResult([p(_box(100), 1), p(_box(300), 2)], 0, SIZE, detector_ran=True,
                    boxes_from="detector"),
        FrameResult([p(_box(110), 1, -7.0), p(_box(310), 2, -7.0)], 1, SIZE,
                    boxes_from="tracks"),
        FrameResult([p(_box(110), 1)], 2, SIZE, boxes_from="tracks"),
        FrameResult([p(_box(100), 1), p(_box(500), 2)], 3, SIZE, boxes_from="tracks"),
    ]  # fmt: skip
    run = _run("stride 4", frames)
    s = compare_runs(run, reference, detections)
    assert (s.frames, s.detector_frames, s.carried_frames, s.carried_boxes) == (4, 1, 3, 5)
    # carried IoUs: 0.6, 0.6 (frame 1), 0.6 (frame 2), 1.0 and 0.0 (frame 3, no detection)
    assert s.carried_unmatched == 1
    assert s.carried_iou_median == pytest.approx(0.6)
    assert s.carried_iou_p10 == pytest.approx(np.percentile([0.6, 0.6, 0.6, 1.0, 0.0], 10))
    # lost: frame 2 misses person 2, frame 3's person 2 overlaps nobody; extra: frame 3's
    assert (s.reference_persons, s.lost, s.extra) == (8, 2, 1)
    assert s.lost_share == pytest.approx(2 / 8)
    # drift over the real joints of paired persons: frame 0 (0 px twice), frame 1 (3 px
    # twice), frame 2 (10 px), frame 3 (0 px; the second person is unpaired)
    per_person = [0, 0, 3, 3, 10, 0]
    d = np.repeat(per_person, REAL.sum())
    assert s.drift_px_median == pytest.approx(np.median(d))
    assert s.drift_px_p90 == pytest.approx(np.percentile(d, 90))
    dc = np.repeat([3, 3, 10, 0], REAL.sum())
    assert s.drift_carried_px_median == pytest.approx(np.median(dc))
    assert s.drift_carried_px_p90 == pytest.approx(np.percentile(dc, 90))
    assert s.drift_rel_p90 == pytest.approx(np.percentile(d, 90) / 100.0)  # box height 100
    got = carried_ious(run, detections)
    assert [f for f, _ in got] == [1, 1, 2, 3, 3]
    assert [v for _, v in got] == pytest.approx([0.6, 0.6, 0.6, 1.0, 0.0])


def test_a_run_compared_with_itself_has_no_drift_and_loses_nobody() -> None:
    frames = _frames([{1: _box(100), 2: _box(300)}, {1: _box(104), 2: _box(296)}],
                     detector_ran=True, boxes_from="detector")  # fmt: skip
    run = _run("stride 1", frames)
    dets = Detections([np.array([_box(100), _box(300)])] * 2, [np.ones(2)] * 2)
    s = compare_runs(run, run, dets)
    assert (s.lost, s.extra, s.carried_boxes, s.detector_frames) == (0, 0, 0, 2)
    assert s.drift_px_p90 == 0.0 and math.isnan(s.carried_iou_median)


# --- live mode -----------------------------------------------------------------------------


def test_detector_runs_by_reason_and_group_shares() -> None:
    reasons = ["no-tracks", "", "", "new-motion", "", "keypoints-collapsed", "tracks-merged",
               "", "unconfirmed", "max-interval"]  # fmt: skip
    frames = [FrameResult([], i, SIZE, detector_ran=bool(r), detect_reason=r,
                          detection_frame=(max(i - 2, 0) if r else None))
              for i, r in enumerate(reasons)]  # fmt: skip
    runs = detector_runs(ClipRun("live", frames, requests={"no-tracks": 1, "new-motion": 3}))
    assert runs.runs == 6 and runs.share == pytest.approx(0.6)
    assert runs.by_reason["keypoints-collapsed"] == 1 and runs.by_reason["box-jump"] == 0
    assert set(runs.by_reason) == set(REASONS)
    g = runs.group_shares()
    assert g == pytest.approx({"no-tracks": 0.1, "new-motion": 0.1, "lost track": 0.2,
                               "unconfirmed": 0.1, "max-interval": 0.1})  # fmt: skip
    assert runs.latency_median == 2.0  # frame 0's latency is 0, the five others 2
    assert runs.requests == {"no-tracks": 1, "new-motion": 3}


def test_every_scheduler_reason_is_in_one_group() -> None:
    grouped = [r for rs in REASON_GROUPS.values() for r in rs]
    assert sorted(grouped) == sorted(REASONS)


# --- world ---------------------------------------------------------------------------------


def test_height_above_and_on_ground_with_a_tilted_plane() -> None:
    # camera 2 m above the ground, looking down 30 degrees: in the camera frame (Y down) the
    # up vector is (0, -cos 30, -sin 30)... rotated: up = R @ (0, -1, 0)
    a = np.radians(30)
    up = np.array([0.0, -np.cos(a), np.sin(a)])
    plane = np.r_[up, 2.0]
    # a point 0.5 m above the ground below the camera: the camera's foot plus 0.5 up
    foot = -2.0 * up
    p = foot + 0.5 * up
    assert height_above(plane, p) == pytest.approx(0.5)
    assert height_above(plane, foot) == pytest.approx(0.0)
    np.testing.assert_allclose(on_ground(plane, p), foot, atol=1e-12)
    assert height_above(plane, np.stack([p, foot])).tolist() == pytest.approx([0.5, 0.0])


def _world_run(speed: float, fps: float = 10.0, frames: int = 30) -> list[FrameResult]:
    """One walker moving ``speed`` m/s along X, 4 m in front of a level camera 1.5 m up
    (camera frame: Y down, so the ground is y = 1.5); the foot joints 2 cm above the
    ground, everything else 1 m above."""
    plane = np.array([0.0, -1.0, 0.0, 1.5])
    out = []
    for t in range(frames):
        x = speed * t / fps
        cam = np.tile([x, 0.5, 4.0], (70, 1))
        cam[list(FOOT_POINTS)] = [x, 1.48, 4.0]
        cam[FOOT_POINTS[0]] = [x, 1.45, 4.0]  # the left heel higher: the min counts
        known = t >= 5
        pw = (PersonWorld(1, [x, 0, -4], 0.0, speed, (True, False)),) if known else ()
        world = WorldInfo(known=known, plane=plane if known else None,
                          camera_height=1.5 + 0.01 * (t % 2) if known else None,
                          pitch_deg=0.0 if known else None, roll_deg=0.0 if known else None,
                          frozen=t >= 20, inliers=40 if known else 0, persons=pw,
                          reason="" if known else "too few feet")  # fmt: skip
        out.append(FrameResult([_person(_box(100), 1, joints_cam=cam)], t, SIZE,
                               timestamp=t / fps, world=world))  # fmt: skip
    return out


def test_world_stats_walking_speed_foot_height_and_camera_spread() -> None:
    results = _world_run(1.3)
    w = world_stats(results, 10.0, min_frames=20)
    assert (w.frames, w.known_frames, w.first_known, w.frozen_at, w.inliers) == (30, 25, 5, 20, 40)
    assert w.height.first == pytest.approx(1.51) and w.height.min == pytest.approx(1.5)
    assert w.height.max == pytest.approx(1.51) and w.height.std == pytest.approx(0.005, abs=3e-4)
    assert w.pitch.final == 0.0 and w.height_late.min == pytest.approx(1.5)
    [s] = w.speeds
    assert (s.track_id, s.frames) == (1, 25)
    assert s.median == pytest.approx(1.3) and s.net == pytest.approx(1.3)
    assert w.walking_share == 1.0
    assert w.foot_height_median == pytest.approx(0.02)  # the lowest foot joint, not the heel
    assert w.foot_within_10cm == 1.0
    cam = camera_series(results)
    assert cam["known"].sum() == 25 and np.isnan(cam["height"][:5]).all()
    slow = world_stats(_world_run(0.3), 10.0)
    assert slow.speeds[0].net == pytest.approx(0.3) and slow.walking_share == 0.0
    assert world_stats(results, 10.0, min_frames=26).speeds == []


def test_world_stats_without_a_known_frame_and_without_the_stage() -> None:
    unknown = [FrameResult([], i, SIZE, world=WorldInfo(reason="no feet yet")) for i in range(3)]
    w = world_stats(unknown, 10.0)
    assert w.known_frames == 0 and w.reason == "no feet yet" and math.isnan(w.height.first)
    assert tables.world_rows(w.as_dict(), 10.0)[0] == "World frame never known: no feet yet"
    with pytest.raises(ValueError, match="world=True"):
        world_stats([FrameResult([], 0, SIZE)], 10.0)
    assert Spread.of([3.0, 1.0, 2.0]) == Spread(3.0, 2.0, 1.0, 3.0, pytest.approx(0.8165, 1e-3))


# --- animation -----------------------------------------------------------------------------


def _step_motion(frames: int = 21, wide: int = 13) -> np.ndarray:
    """(T, P, 3) rig points walking along +X (Y up): the feet are 0.1 m apart along X on
    every frame but ``wide`` (0.6 m); frame 4 has them 0.9 m apart sideways (a glitch)."""
    from instanthmr.animation import rig

    names = rig.POINT_NAMES
    pts = np.zeros((frames, len(names), 3))
    pts[:, :, 0] = np.arange(frames)[:, None] * 0.13
    pts[:, names.index("Neck"), 1] = 0.5
    left, right = names.index("LeftFoot"), names.index("RightFoot")
    pts[:, left, 0] += 0.05
    pts[:, right, 0] -= 0.05
    pts[wide, left, 0] += 0.25
    pts[wide, right, 0] -= 0.25
    pts[4, left, 2] += 0.45
    pts[4, right, 2] -= 0.45
    pts[:, [left, right], 1] = -0.9
    return pts


def test_walking_frame_picks_the_widest_step_along_the_walk() -> None:
    pts = _step_motion()
    assert walking_frame(pts) == 13
    assert stride_lengths(pts)[13] == pytest.approx(0.6)
    assert stride_lengths(pts)[0] == pytest.approx(0.1)
    assert walking_frame(pts[:5]) == 2  # too short for the window: the middle frame


def test_only_tracks_keeps_the_chosen_people_and_their_world_records() -> None:
    # a run with the world stage on: each frame's world report names every tracked person
    frames = _world_run(1.3, frames=8)
    frames = [FrameResult([*r.persons, _person(_box(300), 2)], r.frame_index, SIZE,
                          world=r.world if not r.world.known else WorldInfo(
                              known=True, plane=r.world.plane, persons=(
                                  *r.world.persons,
                                  PersonWorld(2, [1.0, 0, -4], 0.0, 1.0, (True, True)))))
              for r in frames]  # fmt: skip
    kept = only_tracks(frames, [2])
    assert [[p.track_id for p in r.persons] for r in kept] == [[2]] * 8
    assert [[w.track_id for w in r.world.persons] for r in kept] == [[]] * 5 + [[2]] * 3
    assert only_tracks([FrameResult([_person(_box(0), 1)], 0, SIZE)], [1])[0].world is None


def test_export_walkers_reads_back_through_bvhio_and_pygltflib(tmp_path) -> None:
    from animation_synth import frames_from, mhr70_from_points, walker

    from instanthmr.animation import rig

    m = walker(30)
    cam = rig.camera_to_yup(mhr70_from_points(m.positions(), m.global_rotations()))
    other = cam + [1.0, 0, 0]
    frames = frames_from({3: cam, 8: other}, 30, fps=25.0)
    assert [len(f) for f in only_tracks(frames, [8])] == [1] * 30
    bvhs, glb = export_walkers(frames, tmp_path, [3, 8], name="w")
    assert len(bvhs) == 2 and glb.suffix == ".glb"
    back = read_bvh_back(bvhs[0])
    assert (back.joints, back.frames) == (len(rig.JOINT_NAMES), 30)
    assert back.frame_time == pytest.approx(1 / 25, abs=1e-6) and back.reader.startswith("bvhio")
    g = read_glb_back(glb)
    assert g.joints == 2 * len(rig.POINT_NAMES) and g.frames == 30  # two skins, every rig point
    assert g.frame_time == pytest.approx(1 / 25, abs=1e-5) and g.reader.startswith("pygltflib")
    with pytest.raises(ValueError, match="nothing exported"):
        export_walkers(frames, tmp_path / "none", [99])


# --- tables --------------------------------------------------------------------------------


def test_markdown_tables_carry_the_figures() -> None:
    s = track_stats(_frames([{1: _box(100), 2: _box(300)}, {1: _box(298), 2: _box(102)}]))
    report = {"video": "clip.avi", "frames": 2, "tracking": s.as_dict(),
              "live": [{"label": "live", "frames": 10, "runs": 4, "share": 0.4,
                        "latency_median": 1.0,
                        "group_shares": {g: 0.1 if g != "lost track" else 0.0
                                         for g in REASON_GROUPS}}]}  # fmt: skip
    md = tables.markdown(report)
    row = next(line for line in md.splitlines() if line.startswith("| stride 1 |"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[:4] == ["stride 1", "2.00, 2, 2", "0", "2"] and cells[6:8] == ["1", "2"]
    live = next(line for line in md.splitlines() if line.startswith("| live |"))
    assert "4/10 (40.0 %)" in live and "0.0 %" in live
