"""PipelineOptions: its checks, the running-mode defaults, and the parts it builds."""

from __future__ import annotations

import inspect

import numpy as np
import pytest
import supervision as sv

from instanthmr.options import LIVE_DETECTOR_STRIDE, PipelineOptions, mode_defaults
from instanthmr.pipeline import PosePipeline
from instanthmr.skeleton import NUM_JOINTS
from instanthmr.tracking.carry import BoxPlanner, FrameBoxes
from instanthmr.tracking.schedule import StrideScheduler
from instanthmr.tracking.tracker import Tracker


class _NoDetector:
    def detect(self, image: np.ndarray) -> sv.Detections:
        raise AssertionError("the detector must not run on a carried frame")


def test_pipeline_keywords_are_the_options_fields_with_the_same_defaults() -> None:
    params = inspect.signature(PosePipeline.__init__).parameters
    keywords = {n: p.default for n, p in params.items() if n not in ("self", "options")}
    fields = {n: f.default for n, f in PipelineOptions.__dataclass_fields__.items()}
    assert keywords == fields


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"tracking": False, "target": "largest"}, "target needs tracking=True"),
        ({"tracking": False, "smoothing": True}, "smoothing=True needs tracking=True"),
        ({"tracking": False, "detector_stride": 4}, "detector_stride > 1"),
        ({"tracking": False, "tracker": Tracker()}, "tracker needs tracking=True"),
        ({"detector": None, "detector_variant": "small"}, "detector_variant configure"),
        ({"detector": _NoDetector(), "det_confidence": 0.3}, "not your own detector"),
        ({"detector": _NoDetector(), "detector_threads": 1}, "detector_threads"),
        ({"detector": "rfdetr"}, "detector must be 'auto', None or an object"),
        ({"scheduler": StrideScheduler(2), "detector_stride": 3}, "with your own scheduler="),
        ({"detector_stride": 0}, "detector_stride must be an integer >= 1"),
        ({"detector_stride": 1.5}, "detector_stride must be an integer >= 1"),
        ({"max_persons": 0}, "max_persons"),
        ({"target": "tallest"}, "target must be"),
        ({"precision": "int4"}, "precision must be one of"),
        ({"det_confidence": 1.0}, "det_confidence must be in"),
        ({"async_detector": True, "detector": None}, "async_detector needs a detector"),
        ({"detector_latency": 2}, "detector_latency sets the delay"),
    ],
)
def test_options_that_cannot_apply_are_errors(options: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        PipelineOptions(**options)


def test_options_that_can_apply_are_accepted() -> None:
    own = _NoDetector()
    assert PipelineOptions(detector=own).detector is own
    assert PipelineOptions(tracking=False, smoothing=False).smoothing is False
    assert PipelineOptions(detector=None, det_confidence=None).detector is None  # the default
    assert PipelineOptions(async_detector="synchronous", detector_latency=3).detector_latency == 3


def test_running_mode_defaults_fill_only_what_is_unset() -> None:
    assert mode_defaults("live") == {
        "detector_stride": LIVE_DETECTOR_STRIDE, "async_detector": True, "smoothing": True,
    }  # fmt: skip
    assert mode_defaults("images")["smoothing"] is False
    assert mode_defaults("serve")["async_detector"] is False
    live = PipelineOptions.for_mode("live", detector_stride=None, smoothing=False)
    assert (live.detector_stride, live.async_detector, live.smoothing) == (30, True, False)
    assert PipelineOptions.for_mode("video", detector_stride=5).detector_stride == 5
    with pytest.raises(ValueError, match="mode must be one of"):
        mode_defaults("webcam")
    assert PipelineOptions().replace(max_persons=3).max_persons == 3
    with pytest.raises(ValueError, match="max_persons"):
        PipelineOptions().replace(max_persons=-1)


def test_options_and_keywords_together_are_an_error() -> None:
    with pytest.raises(ValueError, match="got options= and also max_persons, target"):
        PosePipeline(options=PipelineOptions(), max_persons=2, target="largest")


def test_frame_boxes_validate_their_shapes() -> None:
    with pytest.raises(ValueError, match=r"boxes must have shape \(N, 4\)"):
        FrameBoxes(np.zeros((2, 3)), np.zeros(2))
    with pytest.raises(ValueError, match=r"scores must have shape \(2,\)"):
        FrameBoxes(np.zeros((2, 4)), np.zeros(3))
    with pytest.raises(ValueError, match="track_keys must have 2 entries"):
        FrameBoxes(np.zeros((2, 4)), np.zeros(2), track_keys=[1])
    with pytest.raises(ValueError, match="source must be one of"):
        FrameBoxes(np.zeros((0, 4)), np.zeros(0), source="magic")
    empty = FrameBoxes(np.zeros(0), np.zeros(0))
    assert empty.boxes.shape == (0, 4) and len(empty) == 0
    kept = FrameBoxes(np.arange(8.0).reshape(2, 4), np.ones(2), [7, 9], "tracks").keep(
        np.array([False, True])
    )
    assert kept.track_keys == [9] and kept.boxes.tolist() == [[4, 5, 6, 7]]


@pytest.mark.parametrize("joints", ["body", [0, 13, 14]])
def test_carried_boxes_follow_the_schedulers_joint_selection(joints: object) -> None:
    """Body joints span x 100..300; joints 0 (nose), 13 and 14 (ankles) only x 180..220, which
    the carried box widens about its centre to 0.4 of its 350 px height: 130..270."""
    kps = np.full((1, NUM_JOINTS, 2), 200.0)
    kps[0, :, 0] = np.linspace(100, 300, NUM_JOINTS)
    kps[0, [0, 13, 14], 0] = [180.0, 200.0, 220.0]
    kps[0, :, 1] = np.linspace(50, 400, NUM_JOINTS)
    kps[0, [0, 13, 14], 1] = [50.0, 400.0, 400.0]
    tracker = Tracker(min_hits=1)
    tracker.update(np.array([[100.0, 50, 300, 400]]), np.array([0.9]), kps)
    scheduler = StrideScheduler(8, joints=joints, expand=1.0, motion=False)
    scheduler.should_detect(0)  # the detector "ran" on frame 0
    planner = BoxPlanner(_NoDetector(), tracker, scheduler)
    image = np.zeros((480, 640, 3), np.uint8)
    plan = planner.plan(image, (640, 480), 1)
    assert plan.source == "tracks" and plan.track_keys is not None
    x1, _, x2, _ = plan.boxes[0]
    body = isinstance(joints, str)
    # body joints: the finger joints' extremes (x 100 and 300) are left out, so the span is
    # a little narrower; the three chosen joints give 180..220, widened to 0.4 x 350 px
    assert (x2 - x1 > 150) if body else (x1, x2) == (130.0, 270.0)
