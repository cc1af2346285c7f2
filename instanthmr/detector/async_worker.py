"""The detector off the frame loop: a worker that detects on the newest frame it was given.

:class:`DetectorWorker` wraps any detector (an object with ``detect(image)``). The pipeline
:meth:`~DetectorWorker.submit` s a frame when its scheduler asks for the detector, serves
that frame and the following ones from keypoint-carried boxes, and merges the boxes when
:meth:`~DetectorWorker.poll` hands them back, a few frames later. Rules:

- **Newest frame wins.** One detection runs at a time. A frame submitted while one runs
  waits in a single slot; a newer submission replaces it (a live stream wants boxes for
  now, not for a queue of old frames).
- **In order.** Results come back in the order of their frames; a result for a frame
  later than the one being polled (a stream restarted without :meth:`reset`) or from
  before :meth:`reset` is dropped.
- **No exception lost.** An exception raised by the detector is re-raised, the same
  object with its original traceback, by the next :meth:`poll`. The worker stops then;
  build a new one to go on.
- **Clean shutdown.** :meth:`close` (or ``with``) stops the thread and waits for it; a
  detection still running is finished first (onnxruntime cannot be interrupted).

Modes:

- ``"thread"``: a background thread runs the detector. The result arrives when it is done,
  so how many frames later depends on the machine (the pipeline reports it per frame as
  ``frame_index - detection_frame``).
- ``"synchronous"``: no thread, deterministic, for tests and benchmarks. The detector runs
  on the caller's thread when a job starts, and its boxes are handed back by the poll of
  the frame exactly ``latency`` frames after the job started. A job starts at submit when
  no other is in flight, else at the poll that hands the previous one back.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import OptionError
from ..runtime.session import CPU, default_threads, providers_for

MODES: tuple[str, ...] = ("thread", "synchronous")


@dataclass
class DetectorJob:
    """One frame to detect on, with what the pipeline needs back when it is done.

    Attributes:
        frame_index: the frame the image belongs to.
        image: the frame (RGB); the worker holds its own copy while the job waits.
        reason: why the detector was asked for (a
            :data:`~instanthmr.tracking.schedule.REASONS` entry).
        context: the pipeline's note for the merge (the track boxes on that frame).
    """

    frame_index: int
    image: np.ndarray
    reason: str
    context: dict[int, np.ndarray] = field(default_factory=dict)


@dataclass
class DetectorResult:
    """A finished detection: the job's frame, reason and context, the detections, the time.

    Attributes:
        frame_index: the frame the detector saw.
        reason: why it was asked for.
        context: the pipeline's note from :meth:`DetectorWorker.submit`.
        detections: what ``detector.detect`` returned (``supervision.Detections`` or boxes).
        ms: milliseconds the detector took.
    """

    frame_index: int
    reason: str
    context: dict[int, np.ndarray]
    detections: Any
    ms: float


class DetectorWorker:
    """Runs ``detector.detect`` on the newest submitted frame, off the caller's frame loop.

    Args:
        detector: any object with ``detect(image_rgb)``; it must be safe to call from
            another thread (the project's detectors are).
        mode: ``"thread"`` (background thread) or ``"synchronous"`` (deterministic).
        latency: frames until a synchronous job's boxes are handed back (>= 1).
    """

    def __init__(self, detector: Any, mode: str = "thread", latency: int = 1) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        if isinstance(latency, bool) or int(latency) != latency or latency < 1:
            raise ValueError(f"latency must be an integer >= 1 frame, got {latency!r}")
        if not callable(getattr(detector, "detect", None)):
            raise TypeError(f"detector must have a detect(image) method, got {detector!r}")
        self.detector = detector
        self.mode = mode
        self.latency = int(latency)
        self.run_ms: list[float] = []
        """Milliseconds of every finished detection, in order."""
        self._cond = threading.Condition()
        self._pending: DetectorJob | None = None
        self._done: list[DetectorResult] = []
        self._error: BaseException | None = None
        self._busy = False
        self._closed = False
        self._generation = 0
        # synchronous mode: the job in flight, its outcome and the frame it is handed back
        self._flight: tuple[DetectorResult | None, BaseException | None, int, int] | None = None
        self._thread: threading.Thread | None = None
        if mode == "thread":
            self._thread = threading.Thread(
                target=self._loop, name="instanthmr-detector", daemon=True
            )
            self._thread.start()

    # -- the caller's side ------------------------------------------------------------

    @property
    def alive(self) -> bool:
        """Whether the background thread is running (always False in synchronous mode)."""
        return self._thread is not None and self._thread.is_alive()

    @property
    def busy(self) -> bool:
        """Whether a detection is running or waiting."""
        with self._cond:
            return self._busy or self._pending is not None or self._flight is not None

    def submit(
        self,
        frame_index: int,
        image: np.ndarray,
        reason: str = "",
        context: dict[int, np.ndarray] | None = None,
    ) -> None:
        """Ask for a detection on this frame (replaces a frame still waiting)."""
        self._check_open()
        with self._cond:
            gen = self._generation
        if self.mode == "synchronous" and self._flight is None:
            job = DetectorJob(int(frame_index), image, reason, dict(context or {}))
            self._start(job, int(frame_index), gen)
            return
        job = DetectorJob(int(frame_index), np.array(image, copy=True), reason,
                          dict(context or {}))  # fmt: skip
        with self._cond:
            self._pending = job
            self._cond.notify()

    def poll(self, frame_index: int) -> DetectorResult | None:
        """The newest finished detection for a frame up to ``frame_index``, or None.

        Raises the detector's exception (with its traceback) if the last run failed;
        the worker is closed then.
        """
        frame_index = int(frame_index)
        if self.mode == "synchronous":
            self._advance(frame_index)
        with self._cond:
            error, self._error = self._error, None
            done, self._done = self._done, []
        if error is not None:
            self.close()
            raise error
        usable = [r for r in done if r.frame_index <= frame_index]
        return usable[-1] if usable else None

    def wait(self, timeout: float | None = None) -> bool:
        """Block until no detection runs or waits (thread mode; True at once otherwise).

        For benchmarks and tests that want a known start; returns False on timeout.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while self._thread is not None and (self._busy or self._pending is not None):
                if self._closed or self._error is not None:
                    break
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                self._cond.wait(left)
        return True

    def reset(self) -> None:
        """Drop the waiting frame and every result not yet handed back (a new sequence)."""
        with self._cond:
            self._generation += 1
            self._pending = None
            self._done = []
            self._flight = None

    def close(self, timeout: float | None = None) -> None:
        """Stop the worker and wait for its thread (a running detection finishes first).

        Raises:
            TimeoutError: the thread did not stop within ``timeout`` seconds.
        """
        with self._cond:
            self._closed = True
            self._pending = None
            self._cond.notify_all()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
            if thread.is_alive():
                raise TimeoutError(
                    f"the detector worker did not stop within {timeout} s (a detection is "
                    "still running); call close() again to keep waiting"
                )

    def __enter__(self) -> DetectorWorker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("this DetectorWorker is closed; build a new one")

    # -- running a job ------------------------------------------------------------------

    def _run(self, job: DetectorJob) -> tuple[DetectorResult | None, BaseException | None]:
        t0 = time.perf_counter()
        try:
            detections = self.detector.detect(job.image)
        except BaseException as exc:  # handed to the caller by poll(), never swallowed
            return None, exc
        ms = (time.perf_counter() - t0) * 1e3
        self.run_ms.append(ms)
        return DetectorResult(job.frame_index, job.reason, job.context, detections, ms), None

    def _start(self, job: DetectorJob, now: int, generation: int) -> None:
        result, error = self._run(job)
        self._flight = (result, error, now + self.latency, generation)
        if error is not None:  # reported by the next poll, like the thread mode
            self._flight = (None, error, now + 1, generation)

    def _advance(self, frame_index: int) -> None:
        with self._cond:
            flight, gen = self._flight, self._generation
        if flight is not None:
            result, error, due, job_gen = flight
            if job_gen != gen:
                self._flight = None
            elif frame_index >= due:
                self._flight = None
                with self._cond:
                    if error is not None:
                        self._error = error
                    elif result is not None:
                        self._done.append(result)
        job = None
        with self._cond:
            if self._flight is None and self._pending is not None:
                job, self._pending = self._pending, None
        if job is not None and self._error is None:
            self._start(job, frame_index, gen)

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._closed and self._pending is None:
                    self._cond.wait()
                if self._closed:
                    return
                job, self._pending = self._pending, None
                gen = self._generation
                self._busy = True
            assert job is not None
            result, error = self._run(job)
            with self._cond:
                self._busy = False
                self._cond.notify_all()  # wake wait()
                if error is not None:
                    self._error = error
                    return  # the worker stops; poll() re-raises and closes it
                if result is not None and gen == self._generation:
                    self._done.append(result)


def split_cores(device: str, light: bool = False) -> tuple[int | None, int | None]:
    """HMR and detector threads for the threaded async detector, on CPU (elsewhere the
    defaults). A heavy detector (RF-DETR) and the HMR model split the cores (measured best
    on 2 cores); a ``light`` one (the embedded YOLOX-nano, about 1 GFLOP) gets one thread and
    the HMR model keeps every core: on 2 cores live mode ran at 9.8 FPS so, against 6.1 FPS
    with the cores split (docs/performance.md)."""
    if providers_for(device)[0] != CPU:
        return None, None
    if light:
        return None, 1
    cores = default_threads()
    detector = max(1, cores // 2)
    return max(1, cores - detector), detector


def async_mode(mode: bool | str, latency: int | None, detector: Any, tracking: bool) -> str | None:
    """Validate ``async_detector`` and ``detector_latency``: None, "thread" or "synchronous"."""
    if mode is False or mode is None:
        name = None
    elif mode is True or mode == "thread":
        name = "thread"
    elif mode == "synchronous":
        name = "synchronous"
    else:
        raise OptionError(f"async_detector must be False, True or 'synchronous', got {mode!r}")
    if latency is not None and name != "synchronous":
        raise OptionError("detector_latency sets the delay of async_detector='synchronous'; "
                         "the threaded worker's delay is whatever the detector takes")  # fmt: skip
    if latency is not None and (isinstance(latency, bool) or latency < 1):
        raise OptionError(f"detector_latency must be an integer >= 1 frame, got {latency!r}")
    if name is not None and detector is None:
        raise OptionError(
            "async_detector needs a detector (detector=None: the caller brings boxes)"
        )
    if name is not None and not tracking:
        raise OptionError("async_detector needs tracking=True: frames are served from "
                         "keypoint-carried tracks while the detector runs")  # fmt: skip
    return name
