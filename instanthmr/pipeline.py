"""PosePipeline: the only orchestrator. Detect (or carry) -> crop -> HMR -> track -> smooth.

See ``docs/pipeline.md`` for the per-frame flow, the stride and re-detect rule, the tracker
and the smoothing defaults.
"""

from __future__ import annotations

import copy
import os
import threading
import time
import weakref
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np

from .detector.boxes import boxes_and_scores
from .geometry import image_size_of, validate_image
from .hmr.model import HMRModel, finite_rows
from .results import FrameResult, PersonResult, StageTimings
from .runtime.session import Runtime
from .skeleton import NUM_JOINTS
from .tracking.schedule import StrideScheduler, boxes_from_keypoints
from .tracking.smoothing import PoseSmoother
from .tracking.tracker import Tracker, select_target

DEFAULT_FPS = 30.0  # stands in for timestamps when a frame has none


def _ms(t0: float) -> float:
    return (time.perf_counter() - t0) * 1e3


class ConcurrentUseError(RuntimeError):
    """One pipeline was used by two threads at once; use one pipeline per thread/stream."""


def _world_stage(world: Any) -> Any:
    """The world stage for the ``world=`` option (None when off); see ``docs/world.md``."""
    if world is False or world is None:
        return None
    from .world import WorldFrame, WorldTracker

    if world is True:
        return WorldTracker()
    if isinstance(world, WorldFrame):
        return WorldTracker(world)
    if isinstance(world, WorldTracker):
        return world
    raise TypeError(f"world must be a bool, a WorldFrame or a WorldTracker, got {world!r}")


def _prev(active: list[Any]) -> tuple[np.ndarray, np.ndarray]:
    """The boxes and 2D joints (NaN where unknown) of the tracks seen on the last frame."""
    boxes = np.array([t.box for t in active]).reshape(-1, 4)
    kps = np.array(
        [t.keypoints if t.keypoints is not None else np.full((NUM_JOINTS, 2), np.nan)
         for t in active]
    ).reshape(-1, NUM_JOINTS, 2)  # fmt: skip
    return boxes, kps


def _unconfirmed(active: list[Any]) -> bool:
    return any(not t.confirmed for t in active)


class PosePipeline:
    """Everyone in a frame, in 3D, with stable ids on video.

    Args:
        model: InstantHMR ONNX path, or None for the Hub release.
        device: ``auto``, ``cpu``, ``cuda``, ``tensorrt`` or ``coreml`` (both models).
        detector_variant: RF-DETR ``nano``, ``small``, ``medium``, ``base`` or ``large``.
        detector_backend: ``onnx``, ``torch`` or ``auto`` (onnx when an export is found).
        det_confidence: person score threshold.
        max_persons: most people per frame (highest-scoring / already tracked first).
        detector_stride: longest gap, in frames, between detector runs. 1 runs it on every
            frame; N > 1 carries each person's box from their own keypoints in between,
            and re-detects at once when a track looks lost (unless ``fixed_stride``).
        batch_persons: all persons of a frame in one model call (else one call each).
        tracking: keep track ids across frames (needed for ``detector_stride > 1``).
        smoothing: One-Euro smoothing per track. None: off in :meth:`predict`, on in
            :meth:`predict_video`. True/False force it.
        detector_model: the RF-DETR ONNX export to use.
        detector: ``"auto"`` builds RF-DETR from the options above; None means the caller
            always brings boxes; or any object with ``detect(image) -> sv.Detections``.
        target: follow one person: ``"largest"``, ``"center"`` or a track id.
        fixed_stride: run the detector exactly every ``detector_stride`` frames (no
            adaptive re-detect triggers; for benchmarks with random weights).
        threads: CPU intra-op threads; fallback: allow CPU if the GPU provider fails.
        async_detector: ``False`` (the detector runs in the frame loop), ``True`` (a
            background :class:`~instanthmr.detector.async_worker.DetectorWorker` detects on the
            newest requested frame; every frame is served from keypoint-carried boxes and
            the detections are merged into the tracker when they arrive, see
            ``docs/pipeline.md``) or ``"synchronous"`` (the same merge, deterministic: the
            boxes arrive exactly ``detector_latency`` frames later; for tests and
            benchmarks). Call :meth:`close` (or use ``with``) to stop the worker.
        detector_latency: frames until the boxes arrive with ``async_detector=
            "synchronous"`` (default 1); not allowed with the other modes.
        detector_threads: CPU intra-op threads of the detector's own session (default:
            ``threads``, one shared runtime); only with ``detector="auto"``. With
            ``async_detector=True`` on CPU and neither ``threads`` nor ``detector_threads``
            given, the two sessions split the cores instead (1 + 1 on 2 cores: the best
            FPS and the smoothest frames measured, docs/performance.md, "Live mode").
        pad_batch: pad HMR batches to this size (see :class:`~instanthmr.hmr.model.HMRModel`).
        precision: ``auto``, ``fp32``, ``fp16`` or ``int8`` for both models, chosen per
            provider (see :func:`~instanthmr.runtime.precision.choose_file`; the choice is logged).
        focal: the camera's focal length in pixels, for focal-aware model files (metadata
            ``cliff_focal``); None: 1.05 image diagonals. It is the focal of every result's
            camera. Refused for the published pixel-conditioned file (see
            :class:`~instanthmr.hmr.model.HMRModel`).
        tracker, scheduler, smoother: swap in your own configured parts.
        world: put people in a gravity-aligned world frame (``docs/world.md``): False (off),
            True (ground plane estimated online from people's still feet), a
            :class:`~instanthmr.world.WorldFrame` (known camera height and pitch, or loaded
            from a calibration file) or a configured :class:`~instanthmr.world.WorldTracker`.

    Threads and streams: a pipeline holds one stream's state (tracks, stride schedule,
    smoothing filters, frame counter), so it serves **one stream at a time**. A call to
    :meth:`predict` while another thread is inside :meth:`predict` of the same pipeline
    raises :class:`ConcurrentUseError` at once (it never mixes two streams' tracks). For
    several streams, :meth:`fork` gives each its own state while sharing the loaded models:
    onnxruntime sessions may be run from several threads, and the model wrappers keep no
    per-call state outside their own lock. See ``docs/pipeline.md``, "Threads and streams".
    """

    def __init__(
        self,
        model: str | os.PathLike[str] | None = None,
        device: str = "auto",
        detector_variant: str = "nano",
        detector_backend: str = "auto",
        det_confidence: float = 0.5,
        max_persons: int | None = None,
        detector_stride: int = 1,
        batch_persons: bool = True,
        tracking: bool = True,
        smoothing: bool | None = None,
        detector_model: str | os.PathLike[str] | None = None,
        detector: Any = "auto",
        target: str | int | None = None,
        fixed_stride: bool = False,
        threads: int | None = None,
        fallback: bool = False,
        async_detector: bool | str = False,
        detector_latency: int | None = None,
        detector_threads: int | None = None,
        pad_batch: int | None = None,
        tracker: Tracker | None = None,
        scheduler: StrideScheduler | None = None,
        smoother: PoseSmoother | None = None,
        world: Any = False,
        precision: str = "auto",
        focal: float | None = None,
    ) -> None:
        if detector_stride < 1:
            raise ValueError(f"detector_stride must be >= 1, got {detector_stride}")
        if detector_stride > 1 and not tracking:
            raise ValueError(
                "detector_stride > 1 needs tracking=True: frames without detection carry "
                "each tracked person's box from their keypoints"
            )
        if max_persons is not None and max_persons < 1:
            raise ValueError(f"max_persons must be None or >= 1, got {max_persons}")
        if isinstance(target, str) and target not in ("largest", "center"):
            raise ValueError(f"target must be 'largest', 'center' or a track id, got {target!r}")
        from .detector.async_worker import async_mode, split_cores  # threads only when asked

        self.async_mode = async_mode(async_detector, detector_latency, detector, tracking)
        self.detector_latency = 1 if detector_latency is None else int(detector_latency)
        if detector_threads is not None and not (isinstance(detector, str) and detector == "auto"):
            raise ValueError("detector_threads sets the threads of the RF-DETR session built "
                             "by the pipeline (detector='auto'); configure your own detector "
                             "yourself")  # fmt: skip
        auto_detector = isinstance(detector, str) and detector == "auto"
        unset = threads is None and detector_threads is None
        if self.async_mode == "thread" and auto_detector and unset:
            threads, detector_threads = split_cores(device)
        self.runtime = Runtime(device, threads=threads, fallback=fallback)
        self.hmr = HMRModel(model, runtime=self.runtime, pad_batch=pad_batch, precision=precision,
                            focal=focal)  # fmt: skip
        if isinstance(detector, str) and detector == "auto":
            from .detector import create_detector  # supervision is imported only when used

            det_runtime = (
                self.runtime
                if detector_threads is None
                else Runtime(device, threads=detector_threads, fallback=fallback)
            )
            detector = create_detector(
                detector_variant, detector_backend, detector_model,
                confidence=det_confidence, runtime=det_runtime, precision=precision,
            )  # fmt: skip
        self.detector = detector
        self.max_persons = max_persons
        self.batch_persons = batch_persons
        self.tracking = tracking
        self.smoothing = smoothing
        self.target = target
        self.tracker = tracker or Tracker(max_tracks=max_persons)
        self.scheduler = scheduler or StrideScheduler(detector_stride, fixed_stride=fixed_stride)
        self.smoother = smoother or PoseSmoother()
        self.world = _world_stage(world)
        self._frame = 0
        self._busy = threading.Lock()
        self._worker: Any = None  # the async DetectorWorker, started on first use
        self._closer: Any = None  # its weakref.finalize: closes it if the pipeline is dropped

    def fork(self) -> PosePipeline:
        """A pipeline for another stream: the same models and options, fresh state.

        The runtime, HMR model and detector are shared (loaded once); the tracker, stride
        scheduler and smoother are copies of this pipeline's, configured alike and reset.
        Use one fork per thread, camera, browser tab or video.
        """
        twin = copy.copy(self)
        twin.tracker = copy.deepcopy(self.tracker)
        twin.scheduler = copy.deepcopy(self.scheduler)
        twin.smoother = copy.deepcopy(self.smoother)
        twin.world = copy.deepcopy(self.world)
        twin._busy = threading.Lock()
        twin._worker = twin._closer = None  # a fork gets its own worker (on first use)
        twin.reset()
        return twin

    def reset(self) -> None:
        """Forget tracks, the stride schedule, filter state and the frame counter."""
        self.tracker.reset()
        self.scheduler.reset()
        self.smoother.reset()
        if self.world is not None:
            self.world.reset()
        self._frame = 0
        if self._worker is not None:
            self._worker.reset()

    def close(self) -> None:
        """Stop the async detector's worker thread, if any (waits for a running detection).

        The pipeline stays usable: a later :meth:`predict` starts a new worker.
        """
        closer, self._worker, self._closer = self._closer, None, None
        if closer is not None:
            closer()  # worker.close(), once

    @property
    def detector_worker(self) -> Any:
        """The async detector's :class:`~instanthmr.detector.async_worker.DetectorWorker`; None
        without ``async_detector``, before the first frame and after :meth:`close`."""
        return self._worker

    def __enter__(self) -> PosePipeline:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _start_worker(self) -> Any:
        from .detector.async_worker import DetectorWorker

        mode = "thread" if self.async_mode == "thread" else "synchronous"
        worker = DetectorWorker(self.detector, mode=mode, latency=self.detector_latency)
        self._closer = weakref.finalize(self, worker.close)  # none outlives a dropped pipeline
        self._worker = worker
        return worker

    def _cap(self, boxes: np.ndarray, scores: np.ndarray) -> np.ndarray:
        if self.max_persons is None or len(boxes) <= self.max_persons:
            return np.arange(len(boxes))
        if self.tracking:
            return np.asarray(self.tracker.select(boxes, scores, self.max_persons))
        return np.argsort(-scores, kind="stable")[: self.max_persons]

    def _boxes(
        self, image: np.ndarray, size: tuple[int, int], frame_index: int, boxes: Any
    ) -> tuple[np.ndarray, np.ndarray, list[int] | None, str, str, float, int | None]:
        """This frame's boxes, scores, carried track keys, source, reason, detect ms and
        the frame the detector saw (None when no detection is used)."""
        if boxes is not None:
            b, s = boxes_and_scores(boxes)
            keep = self._cap(b, s)
            return b[keep], s[keep], None, "caller", "", 0.0, None
        if self.detector is None:
            raise ValueError(
                "this pipeline has no detector (detector=None): pass boxes=... to predict()"
            )
        if self.async_mode is not None:
            return self._boxes_async(image, size, frame_index)
        active = self.tracker.active_tracks() if self.tracking else []
        prev_boxes, prev_kps = _prev(active)
        detect, reason = self.scheduler.should_detect(
            frame_index, prev_boxes, prev_kps, size, image=image,
            accept_new=self._room(active), unconfirmed=_unconfirmed(active),
        )  # fmt: skip
        if not detect:
            carried = boxes_from_keypoints(prev_kps, size, expand=self.scheduler.expand)
            scores = np.array([t.score for t in active], dtype=np.float64)
            return carried, scores, [t.key for t in active], "tracks", "", 0.0, None
        t0 = time.perf_counter()
        b, s = boxes_and_scores(self.detector.detect(image))
        detect_ms = _ms(t0)
        keep = self._cap(b, s)
        self.scheduler.note_detections(frame_index, b[keep])
        return b[keep], s[keep], None, "detector", reason, detect_ms, frame_index

    def _room(self, active: list[Any]) -> bool:
        return self.max_persons is None or len(active) < self.max_persons

    def _boxes_async(
        self, image: np.ndarray, size: tuple[int, int], frame_index: int
    ) -> tuple[np.ndarray, np.ndarray, list[int] | None, str, str, float, int | None]:
        """Merge the detections that arrived, carry every track, ask for a detection."""
        worker = self._worker or self._start_worker()
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
            prev_boxes, prev_kps = _prev(seen)
            detect, reason = self.scheduler.should_detect(
                frame_index, prev_boxes, prev_kps, size, image=image,
                accept_new=self._room(active), unconfirmed=_unconfirmed(active),
            )  # fmt: skip
        usable = [t for t in active if t.keypoints is None or np.isfinite(t.keypoints).all()]
        carried = np.zeros((len(usable), 4))
        with_kps = [i for i, t in enumerate(usable) if t.keypoints is not None]
        if with_kps:
            kps = np.stack([usable[i].keypoints for i in with_kps])
            carried[with_kps] = boxes_from_keypoints(kps, size, expand=self.scheduler.expand)
        for i, t in enumerate(usable):
            if t.keypoints is None:
                carried[i] = t.box
        scores = np.array([t.score for t in usable], dtype=np.float64)
        keys = [t.key for t in usable]
        if detect:
            worker.submit(frame_index, image, reason, dict(zip(keys, carried, strict=True)))
        merge_ms = _ms(t0)
        if done is None:
            return carried, scores, keys, "tracks", "", merge_ms, None
        return carried, scores, keys, "detector", done.reason, merge_ms, done.frame_index

    def predict(
        self,
        image_rgb: np.ndarray,
        boxes: Any = None,
        *,
        frame_index: int | None = None,
        timestamp: float | None = None,
        smooth: bool | None = None,
    ) -> FrameResult:
        """Everyone in one RGB uint8 (H, W, 3) frame; an empty FrameResult when nobody.

        Args:
            image_rgb: the frame.
            boxes: bring your own detections, an (N, 4) xyxy array or a
                ``supervision.Detections``; the detector is then skipped.
            frame_index: index in the sequence (default: an internal counter).
            timestamp: seconds since the start (default: ``frame_index / 30``); drives the
                smoothing filters.
            smooth: override the pipeline's ``smoothing`` for this call.
        """
        if not self._busy.acquire(blocking=False):
            raise ConcurrentUseError(
                "PosePipeline.predict() was called from two threads at once. A pipeline "
                "holds one stream's tracks and filters: use one pipeline per thread/stream "
                "(pipeline.fork() makes another that shares the loaded models)"
            )
        try:
            return self._predict(image_rgb, boxes, frame_index, timestamp, smooth)
        finally:
            self._busy.release()

    def _predict(
        self,
        image_rgb: np.ndarray,
        boxes: Any,
        frame_index: int | None,
        timestamp: float | None,
        smooth: bool | None,
    ) -> FrameResult:
        t_start = time.perf_counter()
        image = validate_image(image_rgb)
        size = image_size_of(image)
        index = self._frame if frame_index is None else int(frame_index)
        self._frame = index + 1
        t = StageTimings()

        b, scores, keys, source, reason, t.detect, det_frame = self._boxes(
            image, size, index, boxes
        )

        boxes_from = source if len(b) else ""
        t0 = time.perf_counter()
        batch = self.hmr.prepare(image, b)
        t.crop = _ms(t0)

        t0 = time.perf_counter()
        outputs = self.hmr.infer(batch.image, batch.cliff_cond, batched=self.batch_persons)
        persons = self.hmr.postprocess(batch, outputs, scores)
        ok = finite_rows(outputs)  # postprocess leaves out persons with NaN outputs
        if not ok.all():
            b, scores = b[ok], scores[ok]
            keys = None if keys is None else [k for k, good in zip(keys, ok, strict=True) if good]
        t.hmr = _ms(t0)

        t0 = time.perf_counter()
        persons = self._track(persons, b, scores, keys, source, size, index, timestamp, smooth)
        ts = timestamp if timestamp is not None else index / DEFAULT_FPS
        persons, world = self.world.update(persons, ts) if self.world else (persons, None)
        t.track = _ms(t0)
        t.total = _ms(t_start)
        return FrameResult(
            persons=persons, frame_index=index, image_size=size, timings=t,
            detector_ran=source == "detector", timestamp=timestamp,
            boxes_from=boxes_from, detect_reason=reason, world=world,
            detection_frame=det_frame,
        )  # fmt: skip

    def _track(
        self,
        persons: list[PersonResult],
        boxes: np.ndarray,
        scores: np.ndarray,
        keys: list[int] | None,
        source: str,
        size: tuple[int, int],
        index: int,
        timestamp: float | None,
        smooth: bool | None,
    ) -> list[PersonResult]:
        if not self.tracking:
            return persons
        kps = (np.stack([p.joints_2d for p in persons]) if persons
               else np.zeros((0, NUM_JOINTS, 2)))  # fmt: skip
        ids = self.tracker.update(boxes, scores, kps, detected=keys is None,
                                  track_keys=keys)  # fmt: skip
        persons = [p.replace(track_id=int(i)) for p, i in zip(persons, ids, strict=True)]
        for gone in self.tracker.removed_ids:
            self.smoother.forget(gone)
        use_smoothing = self.smoothing if smooth is None else smooth
        if use_smoothing:
            ts = timestamp if timestamp is not None else index / DEFAULT_FPS
            persons = self.smoother.smooth_all(persons, ts)
        if self.target is not None:
            pick = select_target(boxes, ids, self.target, size) if persons else None
            persons = [] if pick is None else [persons[pick]]
        return persons

    def predict_video(self, frames: Iterable[Any]) -> Iterator[FrameResult]:
        """FrameResults for a sequence of frames, smoothed unless ``smoothing=False``.

        ``frames`` yields RGB arrays, or objects with ``.image`` and optionally ``.index``
        and ``.timestamp`` (such as :class:`instanthmr.sources.files.Frame`).
        """
        smooth = self.smoothing is not False
        for i, frame in enumerate(frames):
            if isinstance(frame, np.ndarray):
                image, index, ts = frame, i, None
            else:
                image = frame.image
                index = getattr(frame, "index", i)
                ts = getattr(frame, "timestamp", None)
            yield self.predict(image, frame_index=index, timestamp=ts, smooth=smooth)
