"""PosePipeline: the only orchestrator. Plan boxes -> crop -> HMR -> track -> smooth -> world.

The options and the parts they build live in :mod:`instanthmr.options`; where each
person's box comes from in :mod:`instanthmr.tracking.carry`. See ``docs/pipeline.md`` for
the per-frame flow, the stride and re-detect rule, the tracker and the smoothing defaults.
"""

from __future__ import annotations

import copy
import os
import threading
import time
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np

from .errors import OptionError
from .geometry import image_size_of, validate_image
from .hmr.model import finite_rows
from .options import PipelineOptions, build_parts
from .results import FrameResult, PersonResult, StageTimings
from .skeleton import NUM_JOINTS
from .tracking.carry import BoxPlanner, FrameBoxes
from .tracking.target import select_target

DEFAULT_FPS = 30.0  # stands in for timestamps when a frame has none


def _ms(t0: float) -> float:
    return (time.perf_counter() - t0) * 1e3


def _is_default(value: Any, default: Any) -> bool:
    plain = (str, int, float, bool, type(None))
    return value is default or (isinstance(value, plain) and type(value) is type(default)
                                and value == default)  # fmt: skip


class ConcurrentUseError(RuntimeError):
    """One pipeline was used by two threads at once; use one pipeline per thread/stream."""


class PosePipeline:
    """Everyone in a frame, in 3D, with stable ids on video.

    Args:
        options: a :class:`~instanthmr.options.PipelineOptions`; give either it or keyword
            arguments (its fields, documented there), not both.

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
        detector_variant: str = "auto",
        detector_backend: str = "auto",
        det_confidence: float | None = None,
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
        tracker: Any = None,
        scheduler: Any = None,
        smoother: Any = None,
        world: Any = False,
        precision: str = "auto",
        focal: float | None = None,
        *,
        options: PipelineOptions | None = None,
    ) -> None:
        given = {k: v for k, v in locals().items() if k not in ("self", "options", "__class__")}
        if options is None:
            options = PipelineOptions(**given)
        else:
            fields = PipelineOptions.__dataclass_fields__
            extra = [k for k, v in given.items() if not _is_default(v, fields[k].default)]
            if extra:
                raise OptionError(
                    f"PosePipeline got options= and also {', '.join(extra)}: give one or the "
                    f"other (options.replace({extra[0]}=...) changes a field)"
                )
        self.options = options
        parts = build_parts(options)
        self.runtime = parts.runtime
        self.hmr = parts.hmr
        self.detector = parts.detector
        self.tracker = parts.tracker
        self.scheduler = parts.scheduler
        self.smoother = parts.smoother
        self.world = parts.world
        self.planner = BoxPlanner(
            parts.detector, parts.tracker, parts.scheduler, max_persons=options.max_persons,
            tracking=options.tracking, async_mode=parts.async_mode,
            detector_latency=parts.detector_latency,
        )  # fmt: skip
        self._frame = 0
        self._busy = threading.Lock()

    @property
    def async_mode(self) -> str | None:
        """None, ``"thread"`` or ``"synchronous"``: how the async detector runs."""
        return self.planner.async_mode

    @property
    def detector_worker(self) -> Any:
        """The async detector's :class:`~instanthmr.detector.async_worker.DetectorWorker`;
        None without ``async_detector``, before the first frame and after :meth:`close`."""
        return self.planner.worker

    def describe(self) -> dict[str, Any]:
        """What this pipeline runs, as results files, recordings and benchmarks record it:
        the HMR model (:func:`~instanthmr.hmr.kinds.run_header`: ``model_kind``,
        ``model_file``, ``model_notice``) and ``detector``
        (:func:`~instanthmr.detector.choice.describe_detector`; None without one)."""
        from .detector.choice import describe_detector
        from .hmr.kinds import run_header

        return {**run_header(self.hmr), "detector": describe_detector(self.detector)}

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
        twin.planner = BoxPlanner(  # a fork gets its own async worker (on first use)
            self.detector, twin.tracker, twin.scheduler, max_persons=self.options.max_persons,
            tracking=self.options.tracking, async_mode=self.planner.async_mode,
            detector_latency=self.planner.detector_latency,
        )  # fmt: skip
        twin._busy = threading.Lock()
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
        self.planner.reset()

    def close(self) -> None:
        """Stop the async detector's worker thread, if any (waits for a running detection).

        The pipeline stays usable: a later :meth:`predict` starts a new worker.
        """
        self.planner.close()

    def __enter__(self) -> PosePipeline:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

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

        plan = self.planner.plan(image, size, index, boxes)
        t.detect = plan.detect_ms
        boxes_from = plan.source if len(plan) else ""

        t0 = time.perf_counter()
        batch = self.hmr.prepare(image, plan.boxes)
        t.crop = _ms(t0)

        t0 = time.perf_counter()
        outputs = self.hmr.infer(batch.image, batch.cliff_cond, batched=self.options.batch_persons)
        persons = self.hmr.postprocess(batch, outputs, plan.scores)
        ok = finite_rows(outputs)  # postprocess leaves out persons with NaN outputs
        self.planner.dropped(plan, ok)  # a carried person left out: detect on the next frame
        if not ok.all():
            plan = plan.keep(ok)
        t.hmr = _ms(t0)

        t0 = time.perf_counter()
        persons, raw = self._track(persons, plan, size, index, timestamp, smooth)
        ts = timestamp if timestamp is not None else index / DEFAULT_FPS
        # The world stage measures the ground on the unsmoothed persons (docs/world.md).
        persons, world = self.world.update(persons, ts, raw) if self.world else (persons, None)
        t.track = _ms(t0)
        t.total = _ms(t_start)
        return FrameResult(
            persons=persons, frame_index=index, image_size=size, timings=t,
            detector_ran=plan.source == "detector", timestamp=timestamp,
            boxes_from=boxes_from, detect_reason=plan.reason,
            world=world, detection_frame=plan.detection_frame,
        )  # fmt: skip

    def _track(
        self,
        persons: list[PersonResult],
        plan: FrameBoxes,
        size: tuple[int, int],
        index: int,
        timestamp: float | None,
        smooth: bool | None,
    ) -> tuple[list[PersonResult], list[PersonResult]]:
        """The persons tracked (and smoothed, when on), and the same persons unsmoothed."""
        if not self.options.tracking:
            return persons, persons
        kps = (np.stack([p.joints_2d for p in persons]) if persons
               else np.zeros((0, NUM_JOINTS, 2)))  # fmt: skip
        ids = self.tracker.update(plan.boxes, plan.scores, kps,
                                  detected=plan.track_keys is None,
                                  track_keys=plan.track_keys)  # fmt: skip
        persons = [p.replace(track_id=int(i)) for p, i in zip(persons, ids, strict=True)]
        for gone in self.tracker.removed_ids:
            self.smoother.forget(gone)
        raw = persons
        use_smoothing = self.options.smoothing if smooth is None else smooth
        if use_smoothing:
            ts = timestamp if timestamp is not None else index / DEFAULT_FPS
            persons = self.smoother.smooth_all(persons, ts)
        if self.options.target is not None:
            pick = select_target(plan.boxes, ids, self.options.target, size) if persons else None
            persons = [] if pick is None else [persons[pick]]
            raw = [] if pick is None else [raw[pick]]
        return persons, raw

    def predict_video(self, frames: Iterable[Any]) -> Iterator[FrameResult]:
        """FrameResults for a sequence of frames, smoothed unless ``smoothing=False``.

        ``frames`` yields RGB arrays, or objects with ``.image`` and optionally ``.index``
        and ``.timestamp`` (such as :class:`instanthmr.sources.files.Frame`).
        """
        smooth = self.options.smoothing is not False
        for i, frame in enumerate(frames):
            if isinstance(frame, np.ndarray):
                image, index, ts = frame, i, None
            else:
                image = frame.image
                index = getattr(frame, "index", i)
                ts = getattr(frame, "timestamp", None)
            yield self.predict(image, frame_index=index, timestamp=ts, smooth=smooth)
