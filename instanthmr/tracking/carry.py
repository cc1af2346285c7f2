"""Where each person's box comes from on a frame: the caller, the detector, or their track.

:class:`BoxPlanner` decides it once per frame and returns a :class:`FrameBoxes`:

- ``caller``: boxes given to ``predict(boxes=...)``; the detector is skipped;
- ``detector``: the detector ran on this frame (or, with the async detector, its boxes of
  an earlier frame arrived and were merged into the tracks);
- ``tracks``: no detection: each tracked person's box is carried from their own 2D
  keypoints of the last frame (:func:`~instanthmr.tracking.schedule.boxes_from_keypoints`,
  over the scheduler's ``joints``).

The person cap (``max_persons``) is applied to every fresh set of boxes. The async
detector's worker thread is owned here and stopped by :meth:`BoxPlanner.close`.
"""

from __future__ import annotations

import time
import weakref
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..detector.boxes import boxes_and_scores
from ..skeleton import NUM_JOINTS
from .schedule import StrideScheduler, boxes_from_keypoints
from .tracker import Track, Tracker

SOURCES: tuple[str, ...] = ("caller", "detector", "tracks")
"""Where a frame's boxes came from (:attr:`FrameBoxes.source`)."""


@dataclass(frozen=True)
class FrameBoxes:
    """One frame's boxes and where they came from.

    Attributes:
        boxes: (N, 4) float64 ``x1, y1, x2, y2`` in frame pixels.
        scores: (N,) float64 detector scores (carried boxes keep their track's last).
        track_keys: the tracker's keys of carried tracks, one per box, or None when the
            boxes are fresh (the tracker matches them to tracks itself).
        source: ``caller``, ``detector`` or ``tracks`` (:data:`SOURCES`).
        reason: why the detector ran (a :data:`~instanthmr.tracking.schedule.REASONS`
            entry), else ``""``.
        detect_ms: time spent getting the boxes (detector run, or the async merge).
        detection_frame: the frame the detector saw, None when no detection is used.
    """

    boxes: np.ndarray
    scores: np.ndarray
    track_keys: list[int] | None = None
    source: str = "caller"
    reason: str = ""
    detect_ms: float = 0.0
    detection_frame: int | None = field(default=None)

    def __post_init__(self) -> None:
        b = np.asarray(self.boxes, dtype=np.float64)
        if b.size == 0:
            b = b.reshape(0, 4)
        if b.ndim != 2 or b.shape[1] != 4:
            raise ValueError(f"boxes must have shape (N, 4), got {b.shape}")
        s = np.asarray(self.scores, dtype=np.float64).reshape(-1)
        if len(s) != len(b):
            raise ValueError(f"scores must have shape ({len(b)},), got {s.shape}")
        if self.track_keys is not None and len(self.track_keys) != len(b):
            raise ValueError(
                f"track_keys must have {len(b)} entries (one per box), got {len(self.track_keys)}"
            )
        if self.source not in SOURCES:
            raise ValueError(f"source must be one of {', '.join(SOURCES)}, got {self.source!r}")
        object.__setattr__(self, "boxes", b)
        object.__setattr__(self, "scores", s)

    def __len__(self) -> int:
        return len(self.boxes)

    def keep(self, mask: np.ndarray) -> FrameBoxes:
        """The boxes where ``mask`` is True (e.g. the persons with finite model outputs)."""
        mask = np.asarray(mask, dtype=bool)
        keys = self.track_keys
        if keys is not None:
            keys = [k for k, good in zip(keys, mask, strict=True) if good]
        return FrameBoxes(self.boxes[mask], self.scores[mask], keys, self.source,
                          self.reason, self.detect_ms, self.detection_frame)  # fmt: skip


def _ms(t0: float) -> float:
    return (time.perf_counter() - t0) * 1e3


def _last_seen(active: list[Track]) -> tuple[np.ndarray, np.ndarray]:
    """The boxes and 2D joints (NaN where unknown) of the tracks seen on the last frame."""
    boxes = np.array([t.box for t in active]).reshape(-1, 4)
    kps = np.array(
        [t.keypoints if t.keypoints is not None else np.full((NUM_JOINTS, 2), np.nan)
         for t in active]
    ).reshape(-1, NUM_JOINTS, 2)  # fmt: skip
    return boxes, kps


def _unconfirmed(active: list[Track]) -> bool:
    return any(not t.confirmed for t in active)


class BoxPlanner:
    """Plans each frame's boxes (see the module docstring).

    Args:
        detector: an object with ``detect(image) -> supervision.Detections``, or None
            when the caller always brings boxes.
        tracker: the pipeline's :class:`~instanthmr.tracking.tracker.Tracker`.
        scheduler: the pipeline's :class:`~instanthmr.tracking.schedule.StrideScheduler`;
            its ``expand`` and ``joints`` build the carried boxes.
        max_persons: most people per frame (None: no cap).
        tracking: False: every frame is detected (nothing to carry).
        async_mode: None, ``"thread"`` or ``"synchronous"`` (see
            :class:`~instanthmr.detector.async_worker.DetectorWorker`).
        detector_latency: frames until the boxes arrive in ``"synchronous"`` mode.
    """

    def __init__(
        self,
        detector: Any,
        tracker: Tracker,
        scheduler: StrideScheduler,
        *,
        max_persons: int | None = None,
        tracking: bool = True,
        async_mode: str | None = None,
        detector_latency: int = 1,
    ) -> None:
        self.detector = detector
        self.tracker = tracker
        self.scheduler = scheduler
        self.max_persons = max_persons
        self.tracking = tracking
        self.async_mode = async_mode
        self.detector_latency = detector_latency
        self.worker: Any = None  # the async DetectorWorker, started on first use
        self._closer: Any = None  # its weakref.finalize: closes it if the planner is dropped
        self._from_keypoints: set[int] = set()  # keys of this frame's boxes carried from joints
        self._lost = False  # the model dropped a person carried into the last frame

    def dropped(self, plan: FrameBoxes, kept: np.ndarray) -> None:
        """Tell the planner which of ``plan``'s persons have a finite model output.

        When the model gave nothing finite for a person whose box was carried from their
        own keypoints, the person is left out of the frame, and so is no longer carried: the
        next frame then asks for the detector (``"keypoints-collapsed"``) to find them again.
        """
        keys = plan.track_keys
        if keys is None:
            return
        gone = [k for k, ok in zip(keys, np.asarray(kept, bool), strict=True) if not ok]
        self._lost = self._lost or any(k in self._from_keypoints for k in gone)

    def plan(
        self, image: np.ndarray, size: tuple[int, int], frame_index: int, boxes: Any = None
    ) -> FrameBoxes:
        """This frame's boxes: the caller's, the detector's or carried from the tracks."""
        if boxes is not None:
            b, s = boxes_and_scores(boxes)
            keep = self._cap(b, s)
            return FrameBoxes(b[keep], s[keep], source="caller")
        if self.detector is None:
            raise ValueError(
                "this pipeline has no detector (detector=None): pass boxes=... to predict()"
            )
        lost, self._lost = self._lost, False
        self._from_keypoints = set()
        if self.async_mode is not None:
            return self._plan_async(image, size, frame_index, lost)
        active = self.tracker.active_tracks() if self.tracking else []
        prev_boxes, prev_kps = _last_seen(active)
        detect, reason = self.scheduler.should_detect(
            frame_index, prev_boxes, prev_kps, size, image=image,
            accept_new=self._room(active), unconfirmed=_unconfirmed(active), lost=lost,
        )  # fmt: skip
        if not detect:
            scores = np.array([t.score for t in active], dtype=np.float64)
            keys = [t.key for t in active]
            self._from_keypoints = set(keys)
            return FrameBoxes(self._carry(prev_kps, size), scores, keys,
                              source="tracks")  # fmt: skip
        t0 = time.perf_counter()
        b, s = boxes_and_scores(self.detector.detect(image))
        detect_ms = _ms(t0)
        keep = self._cap(b, s)
        self.scheduler.note_detections(frame_index, b[keep])
        return FrameBoxes(b[keep], s[keep], None, "detector", reason, detect_ms, frame_index)

    def _carry(self, keypoints: np.ndarray, size: tuple[int, int]) -> np.ndarray:
        return boxes_from_keypoints(
            keypoints, size, expand=self.scheduler.expand, joints=self.scheduler.joints
        )

    def _cap(self, boxes: np.ndarray, scores: np.ndarray) -> np.ndarray:
        if self.max_persons is None or len(boxes) <= self.max_persons:
            return np.arange(len(boxes))
        if self.tracking:
            return np.asarray(self.tracker.select(boxes, scores, self.max_persons))
        return np.argsort(-scores, kind="stable")[: self.max_persons]

    def _room(self, active: list[Track]) -> bool:
        return self.max_persons is None or len(active) < self.max_persons

    def _start_worker(self) -> Any:
        from ..detector.async_worker import DetectorWorker

        mode = "thread" if self.async_mode == "thread" else "synchronous"
        worker = DetectorWorker(self.detector, mode=mode, latency=self.detector_latency)
        self._closer = weakref.finalize(self, worker.close)  # none outlives a dropped planner
        self.worker = worker
        return worker

    def _plan_async(
        self, image: np.ndarray, size: tuple[int, int], frame_index: int, lost: bool
    ) -> FrameBoxes:
        """Merge the detections that arrived, carry every track, ask for a detection."""
        worker = self.worker or self._start_worker()
        t0 = time.perf_counter()
        try:
            done = worker.poll(frame_index)
        except BaseException:
            self.close()  # it stopped; the next frame starts a new one
            raise
        if done is not None:  # boxes of an earlier frame: match them to the carried tracks
            b, s = boxes_and_scores(done.detections)
            keep = self._cap(b, s)
            self.tracker.merge_late(b[keep], s[keep], done.context)
            self.scheduler.note_detections(done.frame_index, b[keep])
        active = self.tracker.active_tracks()
        # tracks born from the detection just merged have no keypoints yet: nothing to
        # check; their detector box is used as it is
        seen = [t for t in active if t.keypoints is not None]
        detect, reason = False, ""
        if seen or not active:
            prev_boxes, prev_kps = _last_seen(seen)
            detect, reason = self.scheduler.should_detect(
                frame_index, prev_boxes, prev_kps, size, image=image,
                accept_new=self._room(active), unconfirmed=_unconfirmed(active), lost=lost,
            )  # fmt: skip
        usable = [t for t in active if t.keypoints is None or np.isfinite(t.keypoints).all()]
        carried = np.zeros((len(usable), 4))
        with_kps = [i for i, t in enumerate(usable) if t.keypoints is not None]
        if with_kps:
            carried[with_kps] = self._carry(np.stack([usable[i].keypoints for i in with_kps]), size)
        for i, t in enumerate(usable):
            if t.keypoints is None:
                carried[i] = t.box
        scores = np.array([t.score for t in usable], dtype=np.float64)
        keys = [t.key for t in usable]
        self._from_keypoints = {t.key for t in usable if t.keypoints is not None}
        if detect:
            worker.submit(frame_index, image, reason, dict(zip(keys, carried, strict=True)))
        merge_ms = _ms(t0)
        if done is None:
            return FrameBoxes(carried, scores, keys, "tracks", "", merge_ms)
        return FrameBoxes(carried, scores, keys, "detector", done.reason, merge_ms,
                          done.frame_index)  # fmt: skip

    def reset(self) -> None:
        """Forget the async worker's pending job (tracks and schedule are reset by their owner)."""
        self._lost = False
        self._from_keypoints = set()
        if self.worker is not None:
            self.worker.reset()

    def close(self) -> None:
        """Stop the async detector's worker thread, if any (waits for a running detection)."""
        closer, self.worker, self._closer = self._closer, None, None
        if closer is not None:
            closer()  # worker.close(), once
