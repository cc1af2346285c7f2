"""Detector stride schedule, re-detect triggers and keypoint-driven boxes (pure numpy)."""

from __future__ import annotations

import numpy as np
import pytest

from instanthmr.skeleton import BODY_JOINTS, select_joints
from instanthmr.tracking.schedule import (
    DEFAULT_EXPAND,
    REASONS,
    StrideScheduler,
    boxes_from_keypoints,
    visible_fraction,
)

IMAGE = (640, 480)
BOX = np.array([[200.0, 100.0, 300.0, 400.0]])  # 100 x 300 px person
SHOULDER = (np.arange(70) == 5)[:, None]  # mask of the left shoulder, a body joint


def keypoints_for(box: np.ndarray) -> np.ndarray:
    """(N, 70, 2) joints whose body-joint span, expanded by the default, is ``box``."""
    rng = np.random.default_rng(0)
    out = []
    for x1, y1, x2, y2 in np.asarray(box, dtype=float).reshape(-1, 4):
        c = np.array([(x1 + x2) / 2, (y1 + y2) / 2])
        half = np.array([x2 - x1, y2 - y1]) / 2 / DEFAULT_EXPAND
        kp = c + rng.uniform(-0.9, 0.9, (70, 2)) * half
        kp[BODY_JOINTS[0]] = c - half  # pin the span exactly
        kp[BODY_JOINTS[1]] = c + half
        out.append(kp)
    return np.stack(out) if out else np.zeros((0, 70, 2))


def detection_frames(stride: int, n: int = 20, **kw: object) -> list[int]:
    sched = StrideScheduler(stride, **kw)
    kp = keypoints_for(BOX)
    return [i for i in range(n) if sched.should_detect(i, BOX, kp, IMAGE)[0]]


@pytest.mark.parametrize(
    ("stride", "frames"),
    [
        (1, list(range(20))),
        (3, [0, 3, 6, 9, 12, 15, 18]),
        (8, [0, 8, 16]),
    ],
)
def test_stride_schedule_exact_frames(stride: int, frames: list[int]) -> None:
    assert detection_frames(stride) == frames
    assert detection_frames(stride, fixed_stride=True) == frames


def test_first_frame_reason_and_no_tracks() -> None:
    sched = StrideScheduler(4, fixed_stride=True)
    assert sched.should_detect(0, np.zeros((0, 4))) == (True, "no-tracks")
    assert sched.should_detect(1, None) == (True, "no-tracks")
    # someone seen now; the detector ran on frame 1, so frames 2-4 carry
    kp = keypoints_for(BOX)
    assert [sched.should_detect(i, BOX, kp, IMAGE) for i in (2, 3, 4, 5)] == [
        (False, "carry"),
        (False, "carry"),
        (False, "carry"),
        (True, "stride"),
    ]
    assert sched.counts["no-tracks"] == 2 and sched.counts["stride"] == 1


def test_never_detected_with_tracks_is_max_interval_or_stride() -> None:
    sched = StrideScheduler(5)
    assert sched.should_detect(7, BOX, keypoints_for(BOX), IMAGE) == (True, "max-interval")
    sched = StrideScheduler(5, fixed_stride=True)
    assert sched.should_detect(7, BOX, keypoints_for(BOX), IMAGE) == (True, "stride")


def test_frame_index_going_back_restarts() -> None:
    sched = StrideScheduler(5)
    kp = keypoints_for(BOX)
    assert sched.should_detect(10, BOX, kp, IMAGE)[0]
    assert not sched.should_detect(11, BOX, kp, IMAGE)[0]
    assert sched.should_detect(0, BOX, kp, IMAGE) == (True, "max-interval")
    sched.reset()
    assert sched.last_detection is None and sum(sched.counts.values()) == 0


def _trigger(kp: np.ndarray, fixed: bool = False) -> tuple[bool, str]:
    sched = StrideScheduler(10, fixed_stride=fixed)
    first = "stride" if fixed else "max-interval"
    assert sched.should_detect(0, BOX, keypoints_for(BOX), IMAGE) == (True, first)
    return sched.should_detect(1, BOX, kp, IMAGE)


def test_no_trigger_for_a_steady_person() -> None:
    assert _trigger(keypoints_for(BOX)) == (False, "carry")
    # a plausible one-frame move: 0.3 box sizes and 1.3x scale stay under the thresholds
    moved = keypoints_for(BOX + np.array([90.0, 0, 90, 0]))
    assert _trigger(moved) == (False, "carry")
    c = np.array([250.0, 250.0])
    assert _trigger((keypoints_for(BOX) - c) * 1.3 + c) == (False, "carry")


@pytest.mark.parametrize(
    ("name", "make", "reason"),
    [
        ("left-right", lambda kp: kp + [400.0, 0.0], "box-left-frame"),
        ("left-top", lambda kp: kp - [0.0, 320.0], "box-left-frame"),
        ("point", lambda kp: np.zeros_like(kp) + 250.0, "keypoints-collapsed"),
        ("shrunk", lambda kp: (kp - 250.0) * 0.2 + 250.0, "keypoints-collapsed"),
        ("nan", lambda kp: np.where(SHOULDER, np.nan, kp), "keypoints-collapsed"),
        ("moved", lambda kp: kp - [0.0, 170.0], "box-jump"),
        ("grown", lambda kp: (kp - 250.0) * 1.7 + 250.0, "box-jump"),
        ("halved", lambda kp: (kp - 250.0) * 0.6 + 250.0, "box-jump"),
    ],
)
def test_each_trigger_fires_and_fixed_stride_ignores_it(name: str, make, reason: str) -> None:
    kp = make(keypoints_for(BOX))
    assert _trigger(kp) == (True, reason), name
    assert _trigger(kp, fixed=True) == (False, "carry"), name


def test_trigger_restarts_the_stride_counter() -> None:
    sched = StrideScheduler(3)
    good, bad = keypoints_for(BOX), keypoints_for(BOX) + [400.0, 0.0]
    got = [sched.should_detect(i, BOX, bad if i == 1 else good, IMAGE) for i in range(8)]
    assert [i for i, (d, _) in enumerate(got) if d] == [0, 1, 4, 7]
    assert got[1][1] == "box-left-frame" and sched.counts["box-left-frame"] == 1


def test_one_bad_track_among_good_ones_triggers() -> None:
    boxes = np.concatenate([BOX, BOX + [250.0, 0, 250, 0]])
    kp = keypoints_for(boxes)
    sched = StrideScheduler(10)
    sched.should_detect(0, boxes, kp, IMAGE)
    assert not sched.should_detect(1, boxes, kp, IMAGE)[0]
    kp[1] += [0.0, 200.0]
    assert sched.triggers(boxes, kp, IMAGE) == [None, "box-jump"]
    assert sched.should_detect(2, boxes, kp, IMAGE) == (True, "box-jump")
    assert set(sched.counts) == set(REASONS)


def test_scheduler_argument_checks() -> None:
    with pytest.raises(ValueError, match="detector_stride"):
        StrideScheduler(0)
    with pytest.raises(TypeError, match="detector_stride"):
        StrideScheduler(2.5)  # type: ignore[arg-type]
    sched = StrideScheduler(2)
    sched.should_detect(0, BOX, keypoints_for(BOX), IMAGE)
    with pytest.raises(ValueError, match="prev_keypoints"):
        sched.should_detect(1, BOX, None, IMAGE)


def test_boxes_from_keypoints_known_joints() -> None:
    kp = np.full((1, 70, 2), 150.0)
    body = BODY_JOINTS
    kp[0, body[0]] = [100.0, 50.0]
    kp[0, body[1]] = [200.0, 350.0]
    fingers = np.setdiff1d(np.arange(70), body)
    kp[0, fingers] = [600.0, 460.0]  # stray hand joints far away
    box = boxes_from_keypoints(kp, IMAGE, expand=1.2, min_aspect=0)
    np.testing.assert_allclose(box, [[90.0, 20.0, 210.0, 380.0]])
    np.testing.assert_allclose(
        boxes_from_keypoints(kp, IMAGE, expand=1.0, min_aspect=0), [[100, 50, 200, 350]]
    )
    # a span 100 wide and 300 tall (a walker seen from the side) is widened about its centre
    # to 0.4 of its height: 120 wide, the height and the centre unchanged
    np.testing.assert_allclose(boxes_from_keypoints(kp, IMAGE, expand=1.0), [[90, 50, 210, 350]])
    np.testing.assert_allclose(
        boxes_from_keypoints(kp, IMAGE, expand=1.0, min_aspect=0.2), [[100, 50, 200, 350]]
    )
    with pytest.raises(ValueError, match="min_aspect"):
        boxes_from_keypoints(kp, IMAGE, min_aspect=1.5)
    # all 70 joints: the stray finger joints stretch the box (then it is clipped)
    np.testing.assert_allclose(
        boxes_from_keypoints(kp, IMAGE, expand=1.0, joints="all"), [[100, 50, 600, 460]]
    )
    assert boxes_from_keypoints(kp, IMAGE).dtype == np.float64


def test_boxes_from_keypoints_clipping_and_edges() -> None:
    kp = keypoints_for(np.array([[-50.0, 100.0, 100.0, 520.0]]))
    np.testing.assert_allclose(
        boxes_from_keypoints(kp, IMAGE, min_aspect=0), [[0, 100, 100, 480]], atol=1e-9
    )
    np.testing.assert_allclose(
        boxes_from_keypoints(kp, IMAGE, clip=False, min_aspect=0),
        [[-50, 100, 100, 520]],
        atol=1e-9,
    )
    # widened to 0.4 x 420 = 168 about its centre (x = 25) before clipping
    np.testing.assert_allclose(boxes_from_keypoints(kp, IMAGE), [[0, 100, 109, 480]], atol=1e-9)
    gone = keypoints_for(BOX) + [2000.0, 0.0]
    box = boxes_from_keypoints(gone, IMAGE, min_size=8)[0]
    assert box[2] - box[0] == pytest.approx(8) and box[2] <= IMAGE[0] and box[0] >= 0
    assert boxes_from_keypoints(np.zeros((0, 70, 2)), IMAGE).shape == (0, 4)
    with_nan = keypoints_for(BOX)
    with_nan[0, 30] = np.nan  # a finger joint; ignored
    np.testing.assert_allclose(boxes_from_keypoints(with_nan, IMAGE, min_aspect=0), BOX, atol=1e-9)


def test_boxes_from_keypoints_bad_input() -> None:
    with pytest.raises(ValueError, match=r"\(N, 70, 2\)"):
        boxes_from_keypoints(np.zeros((70, 2)), IMAGE)
    with pytest.raises(ValueError, match="image_size"):
        boxes_from_keypoints(keypoints_for(BOX), (0, 480))
    with pytest.raises(ValueError, match="expand"):
        boxes_from_keypoints(keypoints_for(BOX), IMAGE, expand=0)
    with pytest.raises(ValueError, match="no finite"):
        boxes_from_keypoints(np.full((1, 70, 2), np.nan), IMAGE)


def test_select_joints_and_visible_fraction() -> None:
    assert len(select_joints("all")) == 70 and len(select_joints("body")) == 30
    assert 41 in BODY_JOINTS and 62 in BODY_JOINTS and 21 not in BODY_JOINTS
    np.testing.assert_array_equal(select_joints([5, 6]), [5, 6])
    with pytest.raises(ValueError):
        select_joints("hands")
    with pytest.raises(ValueError):
        select_joints([70])
    frac = visible_fraction(np.array([[0, 0, 10, 10], [-10, 0, 10, 10], [700, 0, 710, 10]]), IMAGE)
    np.testing.assert_allclose(frac, [1.0, 0.5, 0.0])


def test_two_tracks_on_one_body_trigger_tracks_merged() -> None:
    # vtest.avi (the embedded sample, frame 20): two pedestrians walking side by side, each
    # about 60 px tall. The crop of the right one also holds the left one, the model's
    # joints for it slid onto the left one, and both tracks were carried on one body while
    # the right one was lost (for 23 frames in live mode). Their joints, a pixel apart,
    # must ask for the detector.
    VTEST = (768, 576)  # noqa: N806
    boxes = np.array([[611.0, 115, 633, 179], [634, 117, 658, 177]])
    left = keypoints_for(boxes[:1])
    merged = np.concatenate([left, left + [1.0, -0.5]])
    sched = StrideScheduler(30)
    sched.should_detect(0, boxes, merged, VTEST)
    assert sched.triggers(boxes, merged, VTEST) == [None, "tracks-merged"]
    assert sched.should_detect(1, boxes, merged, VTEST) == (True, "tracks-merged")
    assert sched.counts["tracks-merged"] == 1
    # the same two walkers with their own joints; and one walking right behind the other
    # (15 % smaller, a fifth of a body height higher in the image): no trigger
    own = keypoints_for(boxes)
    c = left[0].mean(axis=0)
    behind = (left - c) * 0.85 + c + [0.0, -12.8]
    for kp in (own, np.concatenate([left, behind])):
        assert sched.triggers(boxes, kp, VTEST) == [None, None]
    assert not StrideScheduler(30, max_merge_distance=0.0).triggers(boxes, merged, VTEST)[1]
