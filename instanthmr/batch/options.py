"""What a batch computes (:class:`BatchOptions`), its hash, and the pipeline it builds.

The options hash decides whether a video done by an earlier run is still done: it covers
everything that changes the results (the models' contents, detector and tracking settings,
smoothing, frame selection, export formats, the results format version) and nothing that
only changes where or how fast they are computed (device, fallback, engine, workers,
threads, Ray address).
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib
import json
import os
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from ..errors import UserError

FORMATS: tuple[str, ...] = ("npz", "jsonl", "csv")
"""Result formats a batch can write per video (in addition to the summary JSONL)."""


class BatchConfigError(UserError, ValueError):
    """The batch cannot start: bad options, a missing model, an unusable output folder."""


@dataclass(frozen=True)
class BatchOptions:
    """The pipeline and output options of a batch (the demo's pipeline flags, plus formats).

    Attributes:
        model: InstantHMR ONNX path or Hub name; None for the released model.
        device, fallback: where the models run (not part of the options hash).
        precision: ``auto``, ``fp32``, ``fp16`` or ``int8``, as for
            :class:`~instanthmr.PosePipeline` (part of the hash: int8 changes the numbers).
        detector_variant, detector_backend, detector_model, det_confidence, max_persons,
            detector_stride, batch_persons, target: as for :class:`~instanthmr.PosePipeline`.
        detector_factory: ``"module:callable"``; the callable, given no arguments, returns
            an object with ``detect(image_rgb) -> supervision.Detections`` used instead of
            the built-in detector (the module must be importable by every worker).
        smooth: One-Euro smoothing; None means on for videos (one-frame images are never
            smoothed).
        max_frames: process at most this many frames per video.
        frame_skip: skip this many source frames after each processed one.
        formats: result files per video, any of :data:`FORMATS`.
        focal: camera focal in pixels for focal-aware model files, as for
            :class:`~instanthmr.PosePipeline` (in the hash when set).
    """

    model: str | None = None
    device: str = "auto"
    fallback: bool = False
    precision: str = "auto"
    detector_variant: str = "auto"
    detector_backend: str = "auto"
    detector_model: str | None = None
    detector_factory: str | None = None
    det_confidence: float | None = None
    max_persons: int | None = None
    detector_stride: int = 1
    batch_persons: bool = True
    smooth: bool | None = None
    target: str | int | None = None
    max_frames: int | None = None
    frame_skip: int = 0
    formats: tuple[str, ...] = ("npz",)
    focal: float | None = None

    def __post_init__(self) -> None:
        formats = tuple(dict.fromkeys(f.lower().lstrip(".") for f in self.formats))
        object.__setattr__(self, "formats", formats)
        bad = [f for f in formats if f not in FORMATS]
        if bad or not formats:
            raise BatchConfigError(
                f"formats must be one or more of {', '.join(FORMATS)}, got {list(self.formats)}"
            )
        if self.max_frames is not None and self.max_frames < 1:
            raise BatchConfigError(f"max_frames must be >= 1, got {self.max_frames}")
        if self.frame_skip < 0:
            raise BatchConfigError(f"frame_skip must be >= 0, got {self.frame_skip}")
        if self.detector_factory is not None and ":" not in self.detector_factory:
            raise BatchConfigError(
                f"detector_factory must look like 'module:callable', got {self.detector_factory!r}"
            )

    def check(self) -> None:
        """Fail fast, before any video: model files exist and are readable ONNX (when
        ``.onnx``), the detector factory imports."""
        from ..runtime.precision import check_model_file

        for name in ("model", "detector_model"):
            value = getattr(self, name)
            if _is_local(value) and not os.path.exists(value):
                raise BatchConfigError(f"{name} file not found: {value}")
            check_model_file(value, "--" + name.replace("_", "-"))
        if self.detector_factory is not None:
            load_factory(self.detector_factory)

    def options_hash(self) -> str:
        """16 hex digits identifying what this batch computes (see the module docstring)."""
        from .. import __version__
        from ..sinks.formats_common import VERSION

        fields = dataclasses.asdict(self)
        for name in ("device", "fallback"):
            fields.pop(name)
        if fields["focal"] is None:  # hashes of batches from before the option stay valid
            fields.pop("focal")
        for name in ("model", "detector_model"):
            fields[name] = _identity(fields[name])
        fields["instanthmr"] = __version__
        fields["results_format"] = VERSION
        text = json.dumps(fields, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def _is_local(value: str | None) -> bool:
    """A local path, not the released model (None, ``instanthmr``) or an ``hf://`` address."""
    from ..hmr.weights import DEFAULT_MODEL_NAME

    return not (value is None or value.startswith("hf://") or value.lower() == DEFAULT_MODEL_NAME)


def _identity(value: str | None) -> str | None:
    """A model's identity: the SHA-256 of its file (so copies match), else its name (pin
    Hub models with ``hf://owner/repo@revision/file``: a moving branch keeps its name)."""
    from ..hmr.weights import DEFAULT_FILENAME

    if value is not None and os.path.isdir(value):
        value = os.path.join(value, DEFAULT_FILENAME)
    if value is None or not os.path.isfile(value):
        return value
    st = os.stat(value)
    return _file_sha256(os.path.abspath(value), st.st_size, st.st_mtime_ns)


@lru_cache(maxsize=8)
def _file_sha256(path: str, size: int, mtime_ns: int) -> str:
    from ..fileio import file_sha256

    return f"sha256:{file_sha256(path)}"


def load_factory(spec: str) -> Any:
    """The callable named by ``"module:callable"`` (dots allowed after the colon)."""
    module_name, _, attr = spec.partition(":")
    try:
        obj: Any = importlib.import_module(module_name)
        for part in attr.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as exc:
        raise BatchConfigError(
            f"cannot load the detector factory {spec!r}: {exc}. It must be "
            "'module:callable' with the module importable (on PYTHONPATH) by every worker"
        ) from exc
    if not callable(obj):
        raise BatchConfigError(f"the detector factory {spec!r} is not callable")
    return obj


def pipeline_options(options: BatchOptions, threads: int | None) -> Any:
    """The :class:`~instanthmr.options.PipelineOptions` of a batch, ``threads`` per worker.

    Smoothing is decided per input (``smooth``: on for videos), at each ``predict`` call.
    """
    from ..options import PipelineOptions

    detector: Any = "auto"
    if options.detector_factory is not None:
        detector = load_factory(options.detector_factory)()
    return PipelineOptions.for_mode(
        "video",
        model=options.model,
        device=options.device,
        fallback=options.fallback,
        precision=options.precision,
        detector_variant=options.detector_variant,
        detector_backend=options.detector_backend,
        detector_model=options.detector_model,
        detector=detector,
        det_confidence=options.det_confidence,
        max_persons=options.max_persons,
        detector_stride=options.detector_stride,
        batch_persons=options.batch_persons,
        target=options.target,
        threads=threads,
        focal=options.focal,
    )


def build_pipeline(options: BatchOptions, threads: int | None) -> Any:
    """A :class:`~instanthmr.PosePipeline` for these options with ``threads`` CPU threads."""
    from ..pipeline import PosePipeline

    return PosePipeline(options=pipeline_options(options, threads))
