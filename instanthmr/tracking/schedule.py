"""Detector stride: when to run the person detector, and boxes for the frames in between.

The detector costs several times the HMR model (about 6x on the project's CPU machine), so
the pipeline runs it only every ``detector_stride`` frames. On the frames in between, each
tracked person's box is rebuilt from the 2D keypoints HMR predicted for that person on the
previous frame (:func:`boxes_from_keypoints`). :class:`StrideScheduler` decides, frame by
frame, whether the detector must run, and says why:

==================== ============================================================
reason               fires when
==================== ============================================================
``"no-tracks"``      no person was seen on the previous frame (nothing to carry)
``"stride"``         ``fixed_stride=True``: the detector has not run for
                     ``detector_stride`` frames (or never)
``"max-interval"``   the same under the default policy: ``detector_stride`` is the longest
                     gap between runs when nothing else asks for the detector
``"box-left-frame"`` less than ``min_visible_fraction`` of a carried box's area lies
                     inside the image (the person is leaving the frame)
``"keypoints-        the keypoint span is below ``min_span_ratio`` times the previous
collapsed"``         box's size or below ``min_span_px`` pixels, or a keypoint is not
                     finite, or the model gave no finite output for a carried person on
                     the last frame (``lost=True``; the person was left out): HMR lost them
``"box-jump"``       a carried box's centre is more than ``max_center_jump`` box sizes
                     from the previous box's centre, or its size changed by more than a
                     factor ``max_scale_change`` (implausible in one frame)
``"tracks-merged"``  two carried people's joints lie on top of each other: one track's
                     model output has moved onto the other person (a crop holding two
                     people), so the box of one of them is wrong
``"new-motion"``     the frame changed outside every tracked box since the last detector
                     run (:class:`~instanthmr.tracking.scene_change.MotionCheck`): someone may have
                     entered. Needs the frame (``image=``), at most every
                     ``min_motion_gap`` frames, and only while more people can be tracked
``"unconfirmed"``    a tentative track (one detection so far) waits for the second
                     detection that confirms it (``unconfirmed=True``), ``min_motion_gap``
                     frames after the last run
==================== ============================================================

Detect on need: by default the detector runs when nobody is tracked, when a track looks
lost, when the frame may hold someone new, and otherwise every ``detector_stride`` frames
(then the *maximum* interval). The six last triggers are skipped with ``fixed_stride=True``
(for benchmarks that need an exact schedule). ``"no-tracks"`` always applies: with nobody
to carry, only the detector can find people. Box "size" is the longer side, the quantity
the HMR crop is built from.
"""

from __future__ import annotations

import numpy as np

from ..skeleton import BODY_JOINTS as BODY_JOINTS  # re-exported: instanthmr.stride.BODY_JOINTS
from ..skeleton import NUM_JOINTS, JointSelection, select_joints
from .scene_change import MotionCheck

REASONS: tuple[str, ...] = (
    "no-tracks",
    "stride",
    "max-interval",
    "box-left-frame",
    "keypoints-collapsed",
    "box-jump",
    "tracks-merged",
    "new-motion",
    "unconfirmed",
)
"""Every reason :meth:`StrideScheduler.should_detect` can give for running the detector."""

DEFAULT_EXPAND = 1.15
"""Default growth of the keypoint span into a box. The body joints stop at the eyes/ears,
the wrists and the heels/toes; a detector box also holds the top of the head (about 7% of
a standing person's height above the eyes), the hands and some clothing. Scaling the span
by 1.15 about its centre (7.5% of the span added on each side) brings it close to a
detector box, so the HMR crop (which adds its own 1.2x square margin) sees the person at
the scale it was trained on."""

DEFAULT_MIN_ASPECT = 0.4
"""Narrowest carried box, as width over height. A person seen from the side has a narrow
joint span (shoulders and hips one behind the other), while a detector box also holds the
swinging arms and legs: YOLOX-nano's pedestrian boxes are 0.39 as wide as tall on OpenCV's
vtest.avi (median), and carried boxes were 0.85 as wide as those on the embedded sample
(median, 0.53 at the 10th percentile). Widening carried boxes to at least 0.4 of their
height raised their IoU with the detector's from 0.69 to 0.74 (median) on vtest.avi at
strides 2-8, and from 0.63 to 0.73 on the sample (``docs/quality.md``). The HMR crop does
not change (it is a square on the box's centre and longer side); the box a user sees, the
tracker's IoU and the scheduler's edge checks do."""


def _check_keypoints(keypoints: object) -> np.ndarray:
    kp = np.asarray(keypoints, dtype=np.float64)
    if kp.ndim != 3 or kp.shape[1:] != (NUM_JOINTS, 2):
        raise ValueError(f"keypoints must have shape (N, {NUM_JOINTS}, 2), got {kp.shape}")
    return kp


def _check_boxes(boxes: object, n: int | None = None) -> np.ndarray:
    b = np.asarray(boxes, dtype=np.float64)
    if b.size == 0:
        b = b.reshape(0, 4)
    if b.ndim != 2 or b.shape[1] != 4:
        raise ValueError(f"boxes must have shape (N, 4) as x1, y1, x2, y2; got {b.shape}")
    if n is not None and len(b) != n:
        raise ValueError(f"got {len(b)} boxes for {n} sets of keypoints; pass one box per person")
    return b


def _image_wh(image_size: tuple[int, int]) -> tuple[float, float]:
    if len(image_size) != 2 or min(image_size) <= 0:
        raise ValueError(f"image_size must be (width, height) > 0, got {image_size}")
    return float(image_size[0]), float(image_size[1])


def keypoint_spans(keypoints: np.ndarray, joints: JointSelection = "body") -> np.ndarray:
    """(N, 4) tight ``x1, y1, x2, y2`` box around each person's chosen joints (no expansion).

    Non-finite joints are ignored; a person with no finite joint gets NaNs.
    """
    kp = _check_keypoints(keypoints)[:, select_joints(joints)]
    finite = np.isfinite(kp)
    lo = np.where(finite, kp, np.inf).min(axis=1)
    hi = np.where(finite, kp, -np.inf).max(axis=1)
    span = np.concatenate([lo, hi], axis=1)
    return np.where(np.isfinite(span), span, np.nan)


def boxes_from_keypoints(
    keypoints: np.ndarray,
    image_size: tuple[int, int],
    *,
    expand: float = DEFAULT_EXPAND,
    joints: JointSelection = "body",
    clip: bool = True,
    min_size: float = 8.0,
    min_aspect: float = DEFAULT_MIN_ASPECT,
) -> np.ndarray:
    """Boxes for the next frame from each person's previous-frame 2D keypoints.

    The box is the span of the chosen joints, scaled by ``expand`` about its centre, and
    widened about its centre to at least ``min_aspect`` times its height. With
    ``clip=True`` it is then clipped to the image (as detector boxes are) and grown back
    to at least ``min_size`` pixels a side, kept inside the image, so the result is always
    a valid box even when the keypoints have left the frame (the re-detect triggers are
    what catches that case).

    Args:
        keypoints: (N, 70, 2) joints in full-frame pixels.
        image_size: ``(width, height)`` of the frame.
        expand: factor applied to the span's width and height (see :data:`DEFAULT_EXPAND`).
        joints: which joints count (see :func:`~instanthmr.skeleton.select_joints`).
        clip: clip to the image and enforce ``min_size``.
        min_size: smallest side in pixels after clipping.
        min_aspect: narrowest width, as a fraction of the height (see
            :data:`DEFAULT_MIN_ASPECT`); 0 keeps the span's own width.

    Returns:
        (N, 4) float64 boxes ``x1, y1, x2, y2``; (0, 4) for N = 0.
    """
    if not (np.isfinite(expand) and expand > 0):
        raise ValueError(f"expand must be a positive factor, got {expand}")
    if not (np.isfinite(min_aspect) and 0 <= min_aspect <= 1):
        raise ValueError(f"min_aspect must be a width/height ratio in [0, 1], got {min_aspect}")
    w, h = _image_wh(image_size)
    span = keypoint_spans(keypoints, joints)
    if not np.all(np.isfinite(span)):
        raise ValueError("a person has no finite keypoints; run the detector for that frame")
    centre = (span[:, :2] + span[:, 2:]) / 2
    half = (span[:, 2:] - span[:, :2]) * expand / 2
    half[:, 0] = np.maximum(half[:, 0], min_aspect * half[:, 1])
    boxes = np.concatenate([centre - half, centre + half], axis=1)
    if not clip:
        return boxes
    limits = np.array([w, h])
    side = np.minimum(min_size, limits)
    lo = np.clip(boxes[:, :2], 0, limits)
    hi = np.clip(boxes[:, 2:], 0, limits)
    small = (hi - lo) < side
    mid = np.clip((lo + hi) / 2, side / 2, limits - side / 2)
    lo = np.where(small, mid - side / 2, lo)
    hi = np.where(small, mid + side / 2, hi)
    return np.concatenate([lo, hi], axis=1)


def visible_fraction(boxes: np.ndarray, image_size: tuple[int, int]) -> np.ndarray:
    """(N,) fraction of each box's area that lies inside the image (0 for empty boxes)."""
    b = _check_boxes(boxes)
    w, h = _image_wh(image_size)
    area = (b[:, 2] - b[:, 0]).clip(0) * (b[:, 3] - b[:, 1]).clip(0)
    iw = (np.minimum(b[:, 2], w) - np.maximum(b[:, 0], 0)).clip(0)
    ih = (np.minimum(b[:, 3], h) - np.maximum(b[:, 1], 0)).clip(0)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(area > 0, iw * ih / area, 0.0)


class StrideScheduler:
    """Decides per frame whether the person detector runs (see the module docstring).

    Call :meth:`should_detect` once per frame, in frame order. A ``True`` answer is taken
    to mean the detector runs on that frame: the stride counter restarts there. Frame
    indices may skip (dropped camera frames); the gap is measured in frame indices. An index
    that goes backwards (a new sequence without :meth:`reset`) restarts the schedule.

    Args:
        detector_stride: longest gap, in frames, between detector runs (1 = every frame).
            Under the default policy this is the maximum interval: the triggers and the
            new-motion check run the detector sooner when needed.
        fixed_stride: ignore the re-detect triggers and the motion check and run exactly
            every ``detector_stride`` frames (``"no-tracks"`` still applies).
        expand: the expansion used to build carried boxes (as in
            :func:`boxes_from_keypoints`); the pipeline should use the same value.
        joints: which joints build the boxes (see :func:`~instanthmr.skeleton.select_joints`).
        min_visible_fraction: ``"box-left-frame"`` when less than this fraction of a
            carried box (before clipping) is inside the image. Default 0.5: mostly outside.
        min_span_ratio: ``"keypoints-collapsed"`` when the longer side of the keypoint span
            is below this fraction of the previous box's longer side. Default 0.3: a real
            person's span changes far less than 3x between frames.
        min_span_px: ``"keypoints-collapsed"`` also below this many pixels. Default 4.
        max_center_jump: ``"box-jump"`` when the carried box's centre lies more than this
            many previous-box sizes from the previous box's centre. Default 0.5: half a
            body height in one frame is about 25 m/s at 30 FPS, 4 m/s at 5 FPS.
        max_scale_change: ``"box-jump"`` when the longer side grows or shrinks by more than
            this factor. Default 1.5.
        max_merge_distance: ``"tracks-merged"`` when the mean distance between two carried
            people's body joints is below this fraction of the larger one's previous box.
            Default 0.1: two people's joints, even one walking right behind the other, lie
            further apart; two tracks on one body lie within a few pixels.
        motion: the ``"new-motion"`` check: True (a default
            :class:`~instanthmr.tracking.scene_change.MotionCheck`), False (off) or a
            configured one.
            It runs only when :meth:`should_detect` is given the frame.
        min_motion_gap: ``"new-motion"`` fires at most once in this many frames (bounds
            the cost when something keeps moving outside the tracked people). Default 5.
    """

    def __init__(
        self,
        detector_stride: int = 1,
        *,
        fixed_stride: bool = False,
        expand: float = DEFAULT_EXPAND,
        joints: JointSelection = "body",
        min_visible_fraction: float = 0.5,
        min_span_ratio: float = 0.3,
        min_span_px: float = 4.0,
        max_center_jump: float = 0.5,
        max_scale_change: float = 1.5,
        max_merge_distance: float = 0.1,
        motion: MotionCheck | bool = True,
        min_motion_gap: int = 5,
    ) -> None:
        if isinstance(detector_stride, bool) or int(detector_stride) != detector_stride:
            raise TypeError(f"detector_stride must be an integer >= 1, got {detector_stride!r}")
        if detector_stride < 1:
            raise ValueError(f"detector_stride must be >= 1 (1 = every frame): {detector_stride}")
        if max_scale_change <= 1:
            raise ValueError(f"max_scale_change must be > 1, got {max_scale_change}")
        if min_motion_gap < 1:
            raise ValueError(f"min_motion_gap must be >= 1 frame, got {min_motion_gap}")
        self.detector_stride = int(detector_stride)
        self.fixed_stride = bool(fixed_stride)
        self.expand = float(expand)
        self.joints = select_joints(joints)
        self.min_visible_fraction = float(min_visible_fraction)
        self.min_span_ratio = float(min_span_ratio)
        self.min_span_px = float(min_span_px)
        self.max_center_jump = float(max_center_jump)
        self.max_scale_change = float(max_scale_change)
        self.max_merge_distance = float(max_merge_distance)
        if isinstance(motion, bool):
            motion = MotionCheck() if motion else None
        self.motion: MotionCheck | None = motion
        self.min_motion_gap = int(min_motion_gap)
        self.last_detection: int | None = None
        self.counts: dict[str, int] = dict.fromkeys(REASONS, 0)

    def reset(self) -> None:
        """Forget the schedule, the motion reference and the counts (for a new sequence)."""
        self.last_detection = None
        self.counts = dict.fromkeys(REASONS, 0)
        if self.motion is not None:
            self.motion.reset()

    def _motion_matters(self) -> bool:
        return not self.fixed_stride and self.detector_stride > 1

    def note_detections(self, frame_index: int, boxes: np.ndarray) -> None:
        """Tell the scheduler which boxes the detector found on ``frame_index``.

        When that frame is the motion check's reference, the boxes are masked on it, so a
        newly found person who walks away from where they were found does not look like
        new motion. Detections of older frames (an asynchronous detector) are ignored.
        """
        if self.motion is not None and self.last_detection == int(frame_index):
            self.motion.add_boxes(_check_boxes(boxes))

    def triggers(
        self, prev_boxes: np.ndarray, prev_keypoints: np.ndarray, image_size: tuple[int, int]
    ) -> list[str | None]:
        """The re-detect reason for each carried person, or None where none fires.

        Args:
            prev_boxes: (N, 4) the boxes each person was cropped with on the previous frame.
            prev_keypoints: (N, 70, 2) the 2D joints HMR returned for them on that frame.
            image_size: ``(width, height)``.

        Returns:
            One entry per person: ``"keypoints-collapsed"`` (non-finite or tiny
            span), ``"box-left-frame"``, ``"keypoints-collapsed"`` (span small against
            the previous box), ``"box-jump"``, ``"tracks-merged"`` (its joints lie on an
            earlier person's; checked in that order) or None. Ignores ``fixed_stride``.
        """
        kp = _check_keypoints(prev_keypoints)
        prev = _check_boxes(prev_boxes, len(kp))
        _image_wh(image_size)
        span = keypoint_spans(kp, self.joints)
        finite = np.all(np.isfinite(kp[:, self.joints]), axis=(1, 2))
        span = np.where(np.isfinite(span), span, 0.0)
        centre = (span[:, :2] + span[:, 2:]) / 2
        half = (span[:, 2:] - span[:, :2]) * self.expand / 2
        carried = np.concatenate([centre - half, centre + half], axis=1)
        visible = visible_fraction(carried, image_size)
        span_size = (span[:, 2:] - span[:, :2]).max(axis=1)
        prev_size = np.maximum((prev[:, 2:] - prev[:, :2]).max(axis=1), 1e-6)
        carried_size = np.maximum(span_size * self.expand, 1e-6)
        jump = np.linalg.norm(centre - (prev[:, :2] + prev[:, 2:]) / 2, axis=1) / prev_size
        ratio = carried_size / prev_size
        scale = np.maximum(ratio, 1 / ratio)
        reasons: list[str | None] = []
        for i in range(len(kp)):
            if not finite[i] or span_size[i] < self.min_span_px:
                reasons.append("keypoints-collapsed")
            elif visible[i] < self.min_visible_fraction:
                reasons.append("box-left-frame")
            elif span_size[i] < self.min_span_ratio * prev_size[i]:
                reasons.append("keypoints-collapsed")
            elif jump[i] > self.max_center_jump or scale[i] > self.max_scale_change:
                reasons.append("box-jump")
            elif self._repeats_earlier(kp, prev_size, i):
                reasons.append("tracks-merged")
            else:
                reasons.append(None)
        return reasons

    def _repeats_earlier(self, kp: np.ndarray, size: np.ndarray, i: int) -> bool:
        """Whether person ``i``'s body joints lie on an earlier person's (mean distance
        under ``max_merge_distance`` times the larger previous box)."""
        if i == 0:
            return False
        joints = kp[:, self.joints]
        d = np.linalg.norm(joints[:i] - joints[i], axis=2)
        finite = np.isfinite(d)
        count = finite.sum(axis=1)
        dist = np.where(count > 0, np.where(finite, d, 0).sum(axis=1) / np.maximum(count, 1),
                        np.inf)  # fmt: skip
        scale = np.maximum(size[:i], size[i])
        return bool(np.any(dist < self.max_merge_distance * scale))

    def should_detect(
        self,
        frame_index: int,
        prev_boxes: np.ndarray | None = None,
        prev_keypoints: np.ndarray | None = None,
        image_size: tuple[int, int] | None = None,
        *,
        image: np.ndarray | None = None,
        accept_new: bool = True,
        unconfirmed: bool = False,
        lost: bool = False,
    ) -> tuple[bool, str]:
        """Whether the detector runs on this frame, and why.

        Args:
            frame_index: index of the frame in its sequence.
            prev_boxes: (N, 4) boxes of the people seen on the previous frame (the
                tracker's :meth:`~instanthmr.tracking.tracker.Tracker.active_tracks`); None or empty
                when there are none.
            prev_keypoints: (N, 70, 2) their 2D joints from that frame.
            image_size: ``(width, height)``; needed when there are people to carry.
            image: this frame (RGB); enables the ``"new-motion"`` check and becomes its
                reference when the detector runs.
            accept_new: False when no new person could be tracked (the person cap is
                reached): the ``"new-motion"`` check is skipped.
            unconfirmed: a tracked person is still tentative (``"unconfirmed"``).
            lost: the model gave no finite output for a person carried into the previous
                frame, who was left out (``"keypoints-collapsed"``): without a detection
                nobody would carry them any more.

        Returns:
            ``(True, reason)`` with a reason from :data:`REASONS`, or ``(False, "carry")``.
            Every ``True`` answer is counted in :attr:`counts`.
        """
        n = 0 if prev_boxes is None else len(_check_boxes(prev_boxes))
        reason: str | None = None
        if n == 0:
            reason = "no-tracks"
        elif (
            self.last_detection is None
            or frame_index < self.last_detection
            or frame_index - self.last_detection >= self.detector_stride
        ):
            reason = "stride" if self.fixed_stride else "max-interval"
        elif not self.fixed_stride:
            if prev_keypoints is None or image_size is None:
                raise ValueError("prev_keypoints and image_size are needed to carry people")
            fired = [r for r in self.triggers(prev_boxes, prev_keypoints, image_size) if r]
            if lost:
                fired.append("keypoints-collapsed")
            reason = fired[0] if fired else None
            if (
                reason is None
                and image is not None
                and accept_new
                and self.motion is not None
                and frame_index - self.last_detection >= self.min_motion_gap
            ):
                carried = boxes_from_keypoints(prev_keypoints, image_size, expand=self.expand,
                                               joints=self.joints)  # fmt: skip
                tracked = np.concatenate([_check_boxes(prev_boxes), carried])
                reason = "new-motion" if self.motion.fires(image, tracked) else None
            if (
                reason is None
                and unconfirmed
                and frame_index - self.last_detection >= self.min_motion_gap
            ):
                reason = "unconfirmed"
        if reason is None:
            return False, "carry"
        self.last_detection = int(frame_index)
        self.counts[reason] += 1
        if self.motion is not None and image is not None and self._motion_matters():
            self.motion.set_reference(image, None if n == 0 else prev_boxes)
        return True, reason
