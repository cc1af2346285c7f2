"""Tracker: ids on synthetic sequences with known identities, confirmation, drops, caps."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from instanthmr.tracking.schedule import StrideScheduler, boxes_from_keypoints
from instanthmr.tracking.tracker import Tracker, match_cost, select_target

IMAGE = (1280, 720)
_TEMPLATE = np.random.default_rng(7).uniform(-0.5, 0.5, (70, 2)) * [0.4, 1.0]
_OTHER_POSE = np.random.default_rng(8).uniform(-0.5, 0.5, (70, 2)) * [0.4, 1.0]


def person(
    cx: float, cy: float, h: float, pose: np.ndarray = _TEMPLATE
) -> tuple[np.ndarray, np.ndarray]:
    """Box (4,) and keypoints (70, 2) of a synthetic person of height h centred at cx, cy."""
    kp = np.array([cx, cy]) + pose * h
    box = np.array([cx - 0.22 * h, cy - 0.55 * h, cx + 0.22 * h, cy + 0.55 * h])
    return box, kp


def frame(people: list[tuple[float, float, float]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    if not people:
        return np.zeros((0, 4)), np.zeros(0), np.zeros((0, 70, 2))
    boxes, kps = zip(*(person(*p) for p in people), strict=True)
    return np.stack(boxes), np.full(len(people), 0.9), np.stack(kps)


def run_sequence(
    tracker: Tracker, seq: list[dict[str, tuple[float, float, float]]], shuffle: bool = False
) -> dict[str, list[int]]:
    """Feed frames of {identity: (cx, cy, h)}; return the ids each identity received."""
    rng = np.random.default_rng(0)
    got: dict[str, list[int]] = {}
    for people in seq:
        names = list(people)
        if shuffle:
            names = [names[i] for i in rng.permutation(len(names))]
        boxes, scores, kps = frame([people[n] for n in names])
        ids = tracker.update(boxes, scores, kps)
        assert ids.dtype == np.int64 and ids.shape == (len(names),)
        for n, i in zip(names, ids, strict=True):
            got.setdefault(n, []).append(int(i))
    return got


def id_switches(got: dict[str, list[int]]) -> int:
    """Changes of id within each identity (ignoring -1) plus ids shared between identities."""
    switches = 0
    owners: dict[int, str] = {}
    for name, ids in got.items():
        seen = [i for i in ids if i >= 0]
        switches += sum(a != b for a, b in itertools.pairwise(seen))
        for i in set(seen):
            switches += owners.setdefault(i, name) != name
    return switches


def crossing(n: int = 60, near_far: bool = False) -> list[dict[str, tuple[float, float, float]]]:
    seq = []
    for k in range(n):
        x = 200 + 880 * k / (n - 1)
        if near_far:  # a big near person and a small far one pass through each other
            seq.append({"a": (x, 400, 500), "b": (1280 - x, 300, 250)})
        else:  # side by side at different heights in the image, boxes brushing
            seq.append({"a": (x, 200, 300), "b": (1280 - x, 480, 300)})
    return seq


@pytest.mark.parametrize("near_far", [False, True])
@pytest.mark.parametrize("shuffle", [False, True])
def test_two_people_crossing_no_id_switch(near_far: bool, shuffle: bool) -> None:
    got = run_sequence(Tracker(), crossing(near_far=near_far), shuffle=shuffle)
    assert id_switches(got) == 0
    assert got["a"][0] >= 1 and got["b"][0] >= 1 and got["a"][0] != got["b"][0]


def test_id_switch_counter_catches_a_swap() -> None:
    assert id_switches({"a": [1, 1, 2], "b": [2, 2, 1]}) == 4


def test_iou_only_tracker_swaps_overlapping_people_keypoints_do_not() -> None:
    # Two people in different poses, one just behind the other, swaying in opposite
    # directions: each one's new box overlaps the other's old box more than its own old
    # box. Box overlap alone swaps them every frame; the keypoint term keeps them apart.
    def sequence_ids(tracker: Tracker, use_keypoints: bool) -> dict[str, list[int]]:
        got: dict[str, list[int]] = {"a": [], "b": []}
        for k in range(20):
            s = 15.0 * (-1) ** k
            a_box, a_kp = person(600 + s, 400, 500)
            b_box, b_kp = person(600 - s, 400, 450, pose=_OTHER_POSE)
            kps = np.stack([a_kp, b_kp]) if use_keypoints else None
            ids = tracker.update(np.stack([a_box, b_box]), [0.9, 0.9], kps)
            got["a"].append(int(ids[0]))
            got["b"].append(int(ids[1]))
        return got

    assert id_switches(sequence_ids(Tracker(), use_keypoints=True)) == 0
    assert id_switches(sequence_ids(Tracker(), use_keypoints=False)) > 0
    assert id_switches(sequence_ids(Tracker(iou_weight=1.0), use_keypoints=True)) > 0


def test_person_leaves_and_returns() -> None:
    here = {"a": (300, 360, 300)}
    # back at the same place within max_misses: old id
    t = Tracker(max_misses=10)
    got = run_sequence(t, [here] * 5 + [{}] * 6 + [here] * 3)
    assert got["a"] == [1] * 8
    # back after more than max_misses frames: dropped, so a new id (confirmed after 2 hits)
    t = Tracker(max_misses=10)
    got = run_sequence(t, [here] * 5 + [{}] * 11 + [here] * 3)
    assert got["a"] == [1] * 5 + [-1, 2, 2]
    # back within max_misses but on the other side of the frame: no re-identification
    t = Tracker(max_misses=10)
    got = run_sequence(t, [here] * 5 + [{}] * 3 + [{"a": (1000, 360, 300)}] * 3)
    assert got["a"] == [1] * 5 + [-1, 2, 2]


def test_people_enter_and_leave() -> None:
    seq: list[dict[str, tuple[float, float, float]]] = []
    for k in range(40):
        people = {}
        if k < 30:
            people["a"] = (200 + 5 * k, 360, 300)
        if 10 <= k:
            people["b"] = (1000 - 5 * k, 360, 300)
        if 20 <= k < 25:
            people["c"] = (640, 200, 150)
        seq.append(people)
    t = Tracker()
    got = run_sequence(t, seq)
    assert id_switches(got) == 0
    assert got["a"] == [1] * 30  # present on the first frame: confirmed at once
    assert got["b"] == [-1] + [2] * 29  # confirmed on its second detection
    assert got["c"] == [-1] + [3] * 4
    assert {tr.track_id for tr in t.active_tracks()} == {2}


def test_empty_frames() -> None:
    t = Tracker()
    for _ in range(2):
        ids = t.update(np.zeros((0, 4)), np.zeros(0), np.zeros((0, 70, 2)))
        assert isinstance(ids, np.ndarray) and ids.dtype == np.int64 and ids.shape == (0,)
    assert t.update([], []).shape == (0,)
    assert t.active_tracks() == [] and t.tracks == []


def test_confirmation_after_k_hits() -> None:
    t = Tracker(min_hits=3)
    t.update(np.zeros((0, 4)), np.zeros(0))  # an empty first frame: no first-frame rule
    boxes, scores, kps = frame([(400, 360, 300)])
    assert [int(t.update(boxes, scores, kps)[0]) for _ in range(4)] == [-1, -1, 1, 1]
    assert t.tracks[0].hits == 4 and t.tracks[0].confirmed


def test_min_hits_one_and_single_image_get_ids_at_once() -> None:
    boxes, scores, kps = frame([(400, 360, 300), (900, 360, 300)])
    np.testing.assert_array_equal(Tracker(min_hits=5).update(boxes, scores, kps), [1, 2])
    t = Tracker(min_hits=1)
    t.update(np.zeros((0, 4)), np.zeros(0))
    np.testing.assert_array_equal(t.update(boxes, scores, kps), [1, 2])


def test_deletion_after_m_misses() -> None:
    t = Tracker(max_misses=3)
    boxes, scores, kps = frame([(400, 360, 300)])
    assert t.update(boxes, scores, kps)[0] == 1
    for m in (1, 2, 3):
        t.update(np.zeros((0, 4)), np.zeros(0))
        assert len(t.tracks) == 1 and t.tracks[0].misses == m and t.removed_ids == []
        assert t.active_tracks() == []
    t.update(np.zeros((0, 4)), np.zeros(0))
    assert t.tracks == [] and t.removed_ids == [1]


def test_tentative_track_dropped_at_first_miss() -> None:
    t = Tracker(min_hits=2)
    t.update(np.zeros((0, 4)), np.zeros(0))
    boxes, scores, kps = frame([(400, 360, 300)])
    assert t.update(boxes, scores, kps)[0] == -1
    t.update(np.zeros((0, 4)), np.zeros(0))
    assert t.tracks == [] and t.removed_ids == []  # tentative: no id to report
    assert t.update(boxes, scores, kps)[0] == -1  # starts over


def test_max_tracks_keeps_highest_scores() -> None:
    boxes, _, kps = frame([(150, 360, 200), (450, 360, 200), (750, 360, 200), (1050, 360, 200)])
    scores = np.array([0.6, 0.9, 0.7, 0.8])
    t = Tracker(max_tracks=2)
    np.testing.assert_array_equal(t.select(boxes, scores, 2), [1, 3])
    np.testing.assert_array_equal(t.select(boxes, scores, None), [1, 3, 2, 0])
    ids = t.update(boxes, scores, kps)
    np.testing.assert_array_equal(ids, [-1, 1, -1, 2])
    assert len(t.tracks) == 2


def test_select_prefers_the_tracked_person_over_a_newcomer() -> None:
    t = Tracker(max_tracks=1)
    a_box, a_kp = person(400, 360, 300)
    b_box, b_kp = person(1000, 360, 300)
    assert t.update(a_box[None], [0.7], a_kp[None])[0] == 1
    boxes, kps = np.stack([b_box, a_box]), np.stack([b_kp, a_kp])
    scores = np.array([0.95, 0.7])
    np.testing.assert_array_equal(t.select(boxes, scores, 1), [1])
    np.testing.assert_array_equal(t.update(boxes, scores, kps), [-1, 1])
    assert Tracker().select(boxes, scores, 1).tolist() == [0]  # fresh tracker: score decides


def test_carried_frames_keep_ids_and_add_no_hits() -> None:
    """The pipeline's loop: detect every 4th frame, carry boxes from keypoints in between."""
    t = Tracker(min_hits=2)
    sched = StrideScheduler(4)
    t.update(np.zeros((0, 4)), np.zeros(0))  # so the first-frame rule does not apply
    got = []
    for k in range(1, 13):
        people = [(300 + 6 * k, 360, 300), (900 - 6 * k, 360, 300)]
        _, scores, kps = frame(people)
        active = t.active_tracks()
        prev_boxes = np.array([a.box for a in active]).reshape(-1, 4)
        prev_kps = np.array([a.keypoints for a in active]).reshape(-1, 70, 2)
        detect, _ = sched.should_detect(k, prev_boxes, prev_kps, IMAGE)
        if detect:
            boxes, _, _ = frame(people)
            got.append(t.update(boxes, scores, kps, detected=True).tolist())
        else:
            carried = boxes_from_keypoints(prev_kps, IMAGE)
            keys = [a.key for a in active]
            kp_now = kps[[0 if a.box[0] < 640 else 1 for a in active]]  # HMR on each crop
            got.append(
                t.update(
                    carried, [a.score for a in active], kp_now, detected=False, track_keys=keys
                ).tolist()
            )
    # detections on frames 1, 5, 9: tentative until the second detection on frame 5
    assert got[:4] == [[-1, -1]] * 4
    assert got[4:] == [[1, 2]] * 8
    assert sorted(tr.hits for tr in t.tracks) == [3, 3]


def test_carried_boxes_never_start_tracks() -> None:
    t = Tracker()
    boxes, scores, kps = frame([(400, 360, 300)])
    np.testing.assert_array_equal(t.update(boxes, scores, kps, detected=False), [-1])
    assert t.tracks == []


def test_gating_rejects_a_far_box() -> None:
    t = Tracker(max_misses=5)
    b1, s1, k1 = frame([(200, 360, 300)])
    b2, s2, k2 = frame([(1000, 360, 300)])
    t.update(b1, s1, k1)
    assert t.update(b2, s2, k2)[0] == -1  # not matched to track 1 though it is the only one
    assert {tr.track_id for tr in t.tracks} == {1, -1}


def test_update_argument_checks() -> None:
    t = Tracker()
    boxes, scores, kps = frame([(400, 360, 300)])
    with pytest.raises(ValueError, match="keypoints"):
        t.update(boxes, scores, kps[:, :10])
    with pytest.raises(ValueError, match="scores"):
        t.update(boxes, [0.5, 0.5], kps)
    with pytest.raises(ValueError, match="boxes"):
        t.update(np.zeros((1, 3)), [0.5])
    t.update(boxes, scores, kps)
    with pytest.raises(ValueError, match="track_keys"):
        t.update(boxes, scores, kps, detected=False, track_keys=[99])
    with pytest.raises(ValueError):
        Tracker(min_hits=0)


def test_cost_helpers() -> None:
    a = np.array([[0, 0, 10, 10], [20, 20, 30, 30]], dtype=float)
    b = np.array([[5, 0, 15, 10]], dtype=float)
    # IoU 1/3 and 0 against b; no keypoints: the distance term uses box centres
    np.testing.assert_allclose(match_cost(a, None, b, None, iou_weight=1.0), [[2 / 3], [1.0]])
    assert match_cost(a, None, np.zeros((0, 4)), None).shape == (2, 0)
    c = match_cost(a, None, a, None)
    assert c.shape == (2, 2) and c[0, 0] == 0 and c[1, 1] == 0 and c[0, 1] > 0.5


def test_select_target_modes() -> None:
    boxes = np.array([[0, 0, 100, 300], [600, 300, 680, 500], [900, 0, 1280, 720]], dtype=float)
    ids = np.array([4, 7, 9])
    assert select_target(boxes, ids, "largest", IMAGE) == 2
    assert select_target(boxes, ids, "center", IMAGE) == 1
    assert select_target(boxes, ids, 4, IMAGE) == 0
    assert select_target(boxes, ids, np.int64(9), IMAGE) == 2
    assert select_target(boxes, ids, 5, IMAGE) is None
    assert select_target(np.zeros((0, 4)), np.zeros(0), "largest", IMAGE) is None
    assert select_target(np.zeros((0, 4)), np.zeros(0), "center", IMAGE) is None
    with pytest.raises(ValueError, match="target"):
        select_target(boxes, ids, "biggest", IMAGE)
    with pytest.raises(TypeError, match="target"):
        select_target(boxes, ids, True, IMAGE)


def _at(box: list[float]) -> tuple[np.ndarray, np.ndarray]:
    """A box and keypoints of a person filling it."""
    b = np.array(box, dtype=float)
    centre, h = (b[:2] + b[2:]) / 2, b[3] - b[1]
    return b, centre + _TEMPLATE * h


def test_a_second_box_on_a_tracked_person_does_not_take_their_id() -> None:
    # vtest.avi (the embedded sample, frames 62-65, YOLOX-nano): a walker tracked as id 1;
    # on one frame the detector also puts a second, offset box on them (IoU 0.43 with the
    # first), which starts a tentative track; on the next frame their one box lies closer
    # to that tentative track's box than to their own track's. Confirmed tracks match
    # first, so the walker keeps id 1 and the tentative track is dropped.
    tracker = Tracker()
    walk = [[[189, 161, 221, 230]], [[183, 162, 209, 229]],
            [[185, 162, 207, 228], [173, 159, 200, 227]], [[170, 162, 200, 228]]]  # fmt: skip
    ids = []
    for boxes in walk:
        b, kp = zip(*(_at(x) for x in boxes), strict=True)
        ids.append(tracker.update(np.stack(b), np.full(len(b), 0.8), np.stack(kp)).tolist())
    assert ids == [[1], [1], [1, -1], [1]]
    assert [t.track_id for t in tracker.tracks] == [1]


def test_late_detection_puts_a_track_carried_onto_another_person_back_on_its_own() -> None:
    # vtest.avi (the embedded sample, frame 20): two pedestrians side by side, 60 px tall.
    # The right one's model output slid onto the left one, and their track was carried
    # there. The async detector's boxes show both people again: the right one's track
    # must take its detection's box (moved by its motion since the detection's frame) and
    # drop the wrong keypoints, so the next crop is made on the right person.
    left, kp_left = _at([611, 115, 633, 179])
    right, kp_right = _at([635, 118, 660, 175])
    t = Tracker()
    t.update(np.stack([left, right]), np.array([0.8, 0.8]), np.stack([kp_left, kp_right]))
    k1, k2 = (tr.key for tr in t.active_tracks())
    then = {k1: left, k2: left + [1.0, 0, 1, 0]}  # both carried on the left walker
    kps = np.stack([kp_left, kp_left + [2.0, 0]])
    t.update(np.stack([left, left + [2.0, 0, 2, 0]]), np.array([0.8, 0.8]), kps,
             detected=False, track_keys=[k1, k2])  # fmt: skip
    assert t.merge_late(np.stack([left, right]), np.array([0.8, 0.8]), then) == []
    by_key = {tr.key: tr for tr in t.tracks}
    np.testing.assert_allclose(by_key[k2].box, right + [1.0, 0, 1, 0])  # its motion since: +1
    assert by_key[k2].keypoints is None and by_key[k2].hits == 2
    # the left walker's track agreed with its detection: it keeps its carried box and joints
    np.testing.assert_allclose(by_key[k1].box, left)
    assert by_key[k1].keypoints is not None


def test_late_detection_brings_back_a_person_the_model_lost_for_a_frame_with_their_id() -> None:
    # vtest.avi (the embedded sample, live mode): a far walker, 35 px tall, whose crop the
    # stand-in finds nobody in on one carried frame; they are left out (a miss) and the
    # detector is asked again. Its boxes arrive late (merge_late): the walker must come back
    # with the old id, not as a new tentative track that needs two more detections.
    walker, kp = _at([30, 110, 48, 144])
    other, kp_other = _at([400, 200, 440, 300])
    t = Tracker()
    t.update(np.stack([walker, other]), np.array([0.8, 0.8]), np.stack([kp, kp_other]))
    k_walker, k_other = (tr.key for tr in t.active_tracks())
    # the next frame: the walker's model output was not finite, only the other is carried
    t.update(other[None], np.array([0.8]), kp_other[None], detected=False, track_keys=[k_other])
    assert [tr.key for tr in t.active_tracks()] == [k_other]
    moved = walker + [1.0, 0, 1, 0]
    stranger = np.array([600.0, 100, 620, 140])
    born = t.merge_late(np.stack([other, moved, stranger]), np.array([0.8, 0.7, 0.6]),
                        {k_other: other})  # fmt: skip
    by_key = {tr.key: tr for tr in t.tracks}
    assert len(born) == 1 and by_key[born[0]].box[0] == 600  # only the stranger is new
    back = by_key[k_walker]
    assert back.track_id == 1 and back.misses == 0 and back.keypoints is None
    np.testing.assert_allclose(back.box, moved)
    assert sorted(tr.key for tr in t.active_tracks()) == sorted([k_walker, k_other, born[0]])
