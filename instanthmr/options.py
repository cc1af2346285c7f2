"""Pipeline options: one dataclass, the running-mode defaults, and the parts it builds.

:class:`PipelineOptions` is the one place where options are checked against each other and
mapped to the pipeline's parts (runtime, HMR model, detector, tracker, stride scheduler,
smoother, world stage). :class:`~instanthmr.pipeline.PosePipeline` takes it as
``options=`` or builds it from its keyword arguments; the demo, ``serve``, ``batch``,
``bench`` and ``eval`` commands all build one (``instanthmr.commands.options`` maps the
command-line flags).

Running-mode defaults (:func:`mode_defaults`), for the options a caller leaves unset:

========== ================ ================ =========== =====================================
mode       detector_stride  async_detector   smoothing   for
========== ================ ================ =========== =====================================
``images`` 1                off              off         stills and folders: frames unrelated
``video``  1                off              on          files: every frame, in order
``live``   30 (on need)     on (a thread)    on          cameras and streams: never wait
``serve``  30 (on need)     off              on          the browser app: its one inference
                                                         thread serves every session in turn
========== ================ ================ =========== =====================================
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from .errors import OptionError

LIVE_DETECTOR_STRIDE = 30
"""Camera/stream default: detect on need, and at least once a second at 30 FPS."""

MODES: tuple[str, ...] = ("images", "video", "live", "serve")
"""The running modes of :func:`mode_defaults`."""

PRECISIONS: tuple[str, ...] = ("auto", "fp32", "fp16", "int8")

_DETECTOR_OPTIONS = ("detector_variant", "detector_backend", "detector_model",
                     "det_confidence", "detector_threads")  # fmt: skip
"""Options that configure the detector the pipeline builds (``detector="auto"``) only."""


def mode_defaults(mode: str) -> dict[str, Any]:
    """The defaults of one running mode (see the module docstring).

    Returns:
        ``detector_stride``, ``async_detector`` and ``smoothing`` for ``mode``.
    """
    if mode not in MODES:
        raise OptionError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    on_need = mode in ("live", "serve")
    return {
        "detector_stride": LIVE_DETECTOR_STRIDE if on_need else 1,
        "async_detector": mode == "live",
        "smoothing": mode != "images",
    }


@dataclass(frozen=True)
class PipelineOptions:
    """Everything a :class:`~instanthmr.pipeline.PosePipeline` is built from.

    The checks run at construction: an option that cannot apply with the others is an
    error (for example ``target`` without tracking, or a detector option with your own
    detector), never silently dropped.

    Attributes:
        model: InstantHMR ONNX path, or None for the Hub release.
        device: ``auto``, ``cpu``, ``cuda``, ``tensorrt`` or ``coreml`` (both models).
        detector_variant: ``auto`` (RF-DETR where its export is present, or on a GPU where
            rfdetr is installed; else the embedded YOLOX-nano: see ``docs/pipeline.md``,
            "Which detector runs"), ``yolox-nano``, ``yolox`` (a YOLOX file given as
            ``detector_model``), or RF-DETR ``nano``, ``small``, ``medium``, ``base``, ``large``.
        detector_backend: ``onnx``, ``torch`` or ``auto`` (onnx when an export is found).
        det_confidence: person score threshold; None: the detector's own (RF-DETR 0.5,
            YOLOX 0.3).
        max_persons: most people per frame (highest-scoring / already tracked first).
        detector_stride: longest gap, in frames, between detector runs. 1 runs it on every
            frame; N > 1 carries each person's box from their own keypoints in between,
            and re-detects at once when a track looks lost (unless ``fixed_stride``).
        batch_persons: all persons of a frame in one model call (else one call each).
        tracking: keep track ids across frames (needed for ``detector_stride > 1``,
            ``target``, ``smoothing`` and your own ``tracker``/``smoother``).
        smoothing: One-Euro smoothing per track. None: off in :meth:`PosePipeline.predict`, on
            in ``predict_video``. True/False force it.
        detector_model: the detector file to use (an RF-DETR or YOLOX ONNX export).
        detector: ``"auto"`` builds the detector from the options above; None means the caller
            always brings boxes; or any object with ``detect(image) -> sv.Detections``.
            With anything but ``"auto"`` the detector options (variant, backend, model,
            confidence, threads) are an error: they would do nothing.
        target: follow one person: ``"largest"``, ``"center"`` or a track id.
        fixed_stride: run the detector exactly every ``detector_stride`` frames (no
            adaptive re-detect triggers; for benchmarks with random weights).
        threads: CPU intra-op threads; fallback: allow CPU if the GPU provider fails.
        async_detector: ``False`` (the detector runs in the frame loop), ``True`` (a
            background :class:`~instanthmr.detector.async_worker.DetectorWorker` detects on
            the newest requested frame; every frame is served from keypoint-carried boxes and
            the detections are merged into the tracker when they arrive, see
            ``docs/pipeline.md``) or ``"synchronous"`` (the same merge, deterministic: the
            boxes arrive exactly ``detector_latency`` frames later; for tests and
            benchmarks). Call the pipeline's ``close()`` (or use ``with``) to stop it.
        detector_latency: frames until the boxes arrive with ``async_detector=
            "synchronous"`` (default 1); not allowed with the other modes.
        detector_threads: CPU intra-op threads of the detector's own session (default:
            ``threads``, one shared runtime); only with ``detector="auto"``. With
            ``async_detector=True`` on CPU and neither ``threads`` nor ``detector_threads``
            given: RF-DETR and the HMR model split the cores (1 + 1 on 2 cores, measured
            best for that detector); the embedded YOLOX-nano gets one thread and the HMR
            model every core (:func:`~instanthmr.detector.async_worker.split_cores`;
            docs/performance.md, "Live mode").
        pad_batch: pad HMR batches to this size (see
            :class:`~instanthmr.hmr.model.HMRModel`).
        precision: ``auto``, ``fp32``, ``fp16`` or ``int8`` for both models, chosen per
            provider (see :func:`~instanthmr.runtime.precision.choose_file`; the choice is
            logged). The embedded YOLOX-nano ships as one fp32 file: with ``int8`` it runs
            fp32 (:class:`~instanthmr.detector.yolox.YoloxPersonDetector`).
        focal: the camera's focal length in pixels, for focal-aware model files (metadata
            ``cliff_focal``); None: 1.05 image diagonals. It is the focal of every result's
            camera. Refused for the published pixel-conditioned file (see
            :class:`~instanthmr.hmr.model.HMRModel`).
        tracker, scheduler, smoother: swap in your own configured parts (with your own
            scheduler, set ``detector_stride`` and ``fixed_stride`` on it).
        world: put people in a gravity-aligned world frame (``docs/world.md``): False (off),
            True (ground plane estimated online from people's still feet), a
            :class:`~instanthmr.world.WorldFrame` (known camera height and pitch, or loaded
            from a calibration file) or a configured :class:`~instanthmr.world.WorldTracker`.
    """

    model: str | os.PathLike[str] | None = None
    device: str = "auto"
    precision: str = "auto"
    fallback: bool = False
    threads: int | None = None
    detector: Any = "auto"
    detector_variant: str = "auto"
    detector_backend: str = "auto"
    detector_model: str | os.PathLike[str] | None = None
    det_confidence: float | None = None
    detector_stride: int = 1
    fixed_stride: bool = False
    async_detector: bool | str = False
    detector_latency: int | None = None
    detector_threads: int | None = None
    max_persons: int | None = None
    batch_persons: bool = True
    pad_batch: int | None = None
    tracking: bool = True
    target: str | int | None = None
    smoothing: bool | None = None
    tracker: Any = None
    scheduler: Any = None
    smoother: Any = None
    world: Any = False
    focal: float | None = None

    def __post_init__(self) -> None:
        stride = self.detector_stride
        if isinstance(stride, bool) or not isinstance(stride, int | np.integer) or stride < 1:
            raise OptionError(f"detector_stride must be an integer >= 1, got {stride!r}")
        if self.max_persons is not None and self.max_persons < 1:
            raise OptionError(f"max_persons must be None or >= 1, got {self.max_persons}")
        if isinstance(self.target, str) and self.target not in ("largest", "center"):
            raise OptionError(
                f"target must be 'largest', 'center' or a track id, got {self.target!r}"
            )
        if self.precision not in PRECISIONS:
            raise OptionError(
                f"precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}"
            )
        if self.det_confidence is not None and not 0.0 <= float(self.det_confidence) < 1.0:
            raise OptionError(f"det_confidence must be in [0, 1), got {self.det_confidence}")
        if self.scheduler is not None and (self.detector_stride != 1 or self.fixed_stride):
            raise OptionError(
                "detector_stride and fixed_stride configure the scheduler the pipeline builds; "
                "with your own scheduler= set them on it (StrideScheduler(N, fixed_stride=...))"
            )
        self._check_tracking()
        self._check_detector()
        from .detector.async_worker import async_mode

        async_mode(self.async_detector, self.detector_latency, self.detector, self.tracking)

    def _check_tracking(self) -> None:
        if self.tracking:
            return
        needs = {
            "detector_stride > 1": self.detector_stride > 1,
            "target": self.target is not None,
            "smoothing=True": self.smoothing is True,
            "tracker": self.tracker is not None,
            "smoother": self.smoother is not None,
        }
        bad = [name for name, given in needs.items() if given]
        if bad:
            raise OptionError(
                f"{', '.join(bad)} needs tracking=True (it works on tracked people: carried "
                "boxes, one followed person, per-track filters); drop it or set tracking=True"
            )

    def _check_detector(self) -> None:
        if isinstance(self.detector, str) and self.detector == "auto":
            return
        if isinstance(self.detector, str):
            raise OptionError(
                f"detector must be 'auto', None or an object with detect(image), "
                f"got {self.detector!r}"
            )
        defaults = PipelineOptions.__dataclass_fields__
        given = [n for n in _DETECTOR_OPTIONS if getattr(self, n) != defaults[n].default]
        if given:
            whose = "your own detector" if self.detector is not None else "detector=None"
            raise OptionError(
                f"{', '.join(given)} configure the detector the pipeline builds "
                f"(detector='auto'), not {whose}: configure your detector yourself, or drop them"
            )

    def replace(self, **changes: Any) -> PipelineOptions:
        """A copy with ``changes`` applied (checked again)."""
        return dataclasses.replace(self, **changes)

    @classmethod
    def for_mode(cls, mode: str, **options: Any) -> PipelineOptions:
        """Options with ``mode``'s defaults (:func:`mode_defaults`) for those given as None."""
        defaults = mode_defaults(mode)
        for name, value in defaults.items():
            if options.get(name) is None:
                options[name] = value
        return cls(**options)


@dataclass
class PipelineParts:
    """The parts :func:`build_parts` makes from a :class:`PipelineOptions`."""

    runtime: Any
    hmr: Any
    detector: Any
    tracker: Any
    scheduler: Any
    smoother: Any
    world: Any
    async_mode: str | None
    detector_latency: int


def build_parts(options: PipelineOptions) -> PipelineParts:
    """Load the models and make the tracking parts that ``options`` describe."""
    from .detector.async_worker import async_mode, split_cores
    from .hmr.model import HMRModel
    from .runtime.session import Runtime
    from .tracking.schedule import StrideScheduler
    from .tracking.smoothing import PoseSmoother
    from .tracking.tracker import Tracker

    o = options
    mode = async_mode(o.async_detector, o.detector_latency, o.detector, o.tracking)
    threads, detector_threads = o.threads, o.detector_threads
    auto_detector = isinstance(o.detector, str) and o.detector == "auto"
    choice = None
    if auto_detector:
        from .detector.choice import choose_detector

        choice = choose_detector(o.detector_variant, o.detector_backend, o.detector_model,
                                 o.device)  # fmt: skip
    if mode == "thread" and choice is not None and threads is None and detector_threads is None:
        threads, detector_threads = split_cores(o.device, light=choice.kind == "yolox")
    runtime = Runtime(o.device, threads=threads, fallback=o.fallback)
    hmr = HMRModel(o.model, runtime=runtime, pad_batch=o.pad_batch, precision=o.precision,
                   focal=o.focal)
    detector = o.detector
    if auto_detector:
        from . import detector as detector_module  # supervision is imported only when used

        det_runtime = (
            runtime
            if detector_threads is None
            else Runtime(o.device, threads=detector_threads, fallback=o.fallback)
        )
        detector = detector_module.create_detector(
            o.detector_variant, o.detector_backend, o.detector_model,
            confidence=o.det_confidence, runtime=det_runtime, precision=o.precision,
            choice=choice,
        )  # fmt: skip
    return PipelineParts(
        runtime=runtime,
        hmr=hmr,
        detector=detector,
        tracker=o.tracker or Tracker(max_tracks=o.max_persons),
        scheduler=o.scheduler or StrideScheduler(o.detector_stride, fixed_stride=o.fixed_stride),
        smoother=o.smoother or PoseSmoother(),
        world=world_stage(o.world),
        async_mode=mode,
        detector_latency=1 if o.detector_latency is None else int(o.detector_latency),
    )


def world_stage(world: Any) -> Any:
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
