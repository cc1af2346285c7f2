"""Detect on need: the new-motion check and the scheduler's need-based triggers.

Synthetic scenes: a static textured background with sensor noise, "people" drawn as red
blobs; the HMR model is the analytic oracle and the detector the real connected-components
:class:`~async_helpers.BlobFinder`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from async_helpers import STEADY_SPREAD, BlobFinder, add_noise, blobs, textured_background
from onnx_builders import build_oracle, corner_offsets

from instanthmr.pipeline import PosePipeline
from instanthmr.tracking.scene_change import MotionCheck
from instanthmr.tracking.schedule import StrideScheduler

SIZE = (320, 240)
STANDING = (240.0, 120.0)
ENTER_AT = 30  # the frame on which the newcomer starts to walk in from the left edge


@pytest.fixture(scope="module")
def oracle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("oracle") / "oracle-steady.onnx"
    onnx.save(build_oracle(offsets=corner_offsets(STEADY_SPREAD)), path)
    return path


def scene(i: int, rng: np.random.Generator, bg: np.ndarray) -> np.ndarray:
    """One person standing still; from ENTER_AT a second walks in from the left, 4 px/frame."""
    people = [STANDING]
    if i >= ENTER_AT:
        people.append((-20.0 + 4 * (i - ENTER_AT), 140.0))
    return add_noise(blobs(SIZE, people, sigma=8, background=bg, index=i), rng)


def test_motion_check_ignores_noise_and_tracked_boxes_and_sees_a_newcomer() -> None:
    bg = textured_background(SIZE)
    rng = np.random.default_rng(0)
    check = MotionCheck()
    assert check.change(bg) == 0.0 and not check.has_reference
    check.set_reference(add_noise(bg, rng))
    assert max(check.change(add_noise(bg, rng)) for _ in range(30)) == 0.0
    person = np.array([[120.0, 60, 180, 200]])
    img = add_noise(bg, rng)
    img[60:200, 120:180] = (30, 200, 90)  # someone appears there
    assert check.change(img) > 0.05 and check.fires(img)
    assert check.change(img, person) == 0.0  # ... but it is a tracked person's box
    check.set_reference(bg, person)  # or a box on the reference frame
    assert check.change(img) == 0.0
    small = img[::2, ::2]
    assert check.change(small) == 1.0  # another frame size: everything changed
    with pytest.raises(ValueError, match="min_area"):
        MotionCheck(min_area=0)


def test_scheduler_new_motion_respects_gap_cap_and_fixed_stride() -> None:
    bg = textured_background(SIZE)
    box = np.array([[200.0, 60, 280, 180]])
    kp = np.zeros((1, 70, 2))
    kp[0, :, 0], kp[0, :, 1] = np.linspace(210, 270, 70), np.linspace(70, 170, 70)
    moved = bg.copy()
    moved[100:200, 20:80] = 255  # a change far from the tracked person
    sched = StrideScheduler(100, min_motion_gap=5)
    assert sched.should_detect(0, box, kp, SIZE, image=bg) == (True, "max-interval")
    got = [sched.should_detect(i, box, kp, SIZE, image=moved)[1] for i in range(1, 7)]
    assert got == ["carry"] * 4 + ["new-motion", "carry"]  # not before the gap; then re-based
    assert sched.should_detect(12, box, kp, SIZE, image=bg, accept_new=False) == (False, "carry")
    assert sched.should_detect(13, box, kp, SIZE, image=bg) == (True, "new-motion")
    fixed = StrideScheduler(100, fixed_stride=True)
    fixed.should_detect(0, box, kp, SIZE, image=bg)
    assert fixed.should_detect(9, box, kp, SIZE, image=moved) == (False, "carry")
    off = StrideScheduler(100, motion=False)
    off.should_detect(0, box, kp, SIZE, image=bg)
    assert off.should_detect(9, box, kp, SIZE, image=moved) == (False, "carry")
    assert sched.should_detect(20, box, kp, SIZE, image=bg, unconfirmed=True) == (
        True,
        "unconfirmed",
    )


@pytest.mark.parametrize("mode", [False, "synchronous"])
def test_person_entering_a_static_scene_is_found_within_a_few_frames(
    oracle: Path, mode: bool | str
) -> None:
    """Max interval 1000 frames: only the need triggers can find the newcomer."""
    det = BlobFinder()
    extra = {"async_detector": mode, "detector_latency": 2} if mode else {}
    pipe = PosePipeline(oracle, device="cpu", detector=det, detector_stride=1000,
                        smoothing=False, **extra)  # fmt: skip
    bg, rng = textured_background(SIZE), np.random.default_rng(1)
    results = [pipe.predict(scene(i, rng, bg)) for i in range(ENTER_AT + 20)]
    lag = 2 if mode else 0
    start = [r.frame_index for r in results if r.detector_ran]
    assert start[0] == lag
    # a static scene with sensor noise: nothing asks for the detector once someone is
    # tracked (async: frame 1, asked while nobody was tracked yet, arrives on frame 4)
    early = [(r.frame_index, r.detect_reason) for r in results[:ENTER_AT] if r.detector_ran]
    assert early == ([(2, "no-tracks"), (4, "no-tracks")] if mode else [(0, "no-tracks")])
    assert all(len(r) == 1 for r in results[lag:ENTER_AT])
    found = next(r for r in results[ENTER_AT:] if r.detector_ran)
    assert found.detect_reason == "new-motion"
    # the blob (sigma 8) shows from about frame ENTER_AT + 1; the check needs a quarter of
    # it inside: found within 6 frames of the detector seeing the frame, plus the latency
    assert (
        found.detection_frame - ENTER_AT <= 6 and found.frame_index - found.detection_frame == lag
    )
    after = results[found.frame_index :]
    assert all(len(r) == 2 for r in after)
    confirm = next(r for r in after[1:] if r.detector_ran)  # the tentative track is confirmed
    assert confirm.detect_reason == "unconfirmed"
    assert sorted(results[-1].track_ids.tolist()) == [1, 2]
    assert sum(r.detector_ran for r in results) == (4 if mode else 3)
