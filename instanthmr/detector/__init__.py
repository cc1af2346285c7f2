"""Person detectors: YOLOX (embedded, the default where RF-DETR cannot serve) and RF-DETR.

Use :func:`create_detector`. Every backend implements :class:`PersonDetector`:
``detect(image_rgb) -> supervision.Detections`` with person boxes in source pixels.

Which detector runs (``variant="auto"``, the default) is decided once, in
:func:`~instanthmr.detector.choice.choose_detector`: RF-DETR when its export is present
(``models/rfdetr-<variant>.onnx`` relative to the current working directory, written by
``python tools/export_detector.py --variant <variant>``) or given, or on a GPU provider
where rfdetr is installed; otherwise the YOLOX-nano shipped in the package
(:mod:`instanthmr.detector.yolox`).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from ..errors import DetectorUnavailableError, ModelFileError, OptionError
from ..runtime.session import Runtime
from .base import (
    BACKENDS,
    PERSON_CLASS_ID,
    RFDETR_CONFIDENCE,
    VARIANTS,
    DetectorContractError,
    PersonDetector,
    Variant,
    default_model_path,
    export_command,
    get_variant,
)
from .choice import (
    DETECTOR_VARIANTS,
    DetectorChoice,
    choose_detector,
    describe_detector,
)
from .onnx_backend import OnnxPersonDetector
from .unavailable import detector_unavailable, torch_backend_missing
from .yolox import YoloxContractError, YoloxPersonDetector, embedded_model_path

__all__ = [
    "BACKENDS",
    "DETECTOR_VARIANTS",
    "PERSON_CLASS_ID",
    "VARIANTS",
    "DetectorChoice",
    "DetectorContractError",
    "OnnxPersonDetector",
    "PersonDetector",
    "Variant",
    "YoloxContractError",
    "YoloxPersonDetector",
    "choose_detector",
    "create_detector",
    "default_model_path",
    "describe_detector",
    "embedded_model_path",
]

log = logging.getLogger(__name__)


def create_detector(
    variant: str | None = "auto",
    backend: str = "auto",
    model_path: str | os.PathLike[str] | None = None,
    device: str = "auto",
    confidence: float | None = None,
    runtime: Runtime | None = None,
    *,
    threads: int | None = None,
    fallback: bool = False,
    warmup: bool = True,
    random_init: bool = False,
    precision: str = "auto",
    choice: DetectorChoice | None = None,
) -> PersonDetector:
    """Build a person detector; the rule for ``auto`` is :func:`choose_detector`'s.

    Args:
        variant: ``auto`` (the rule), ``yolox-nano`` (the embedded YOLOX-nano, or the YOLOX
            file given as ``model_path``), ``yolox`` (a YOLOX file of any size, given as
            ``model_path``) or an RF-DETR size: ``nano`` (384 px), ``small`` (512),
            ``medium`` (576), ``base`` (560) or ``large`` (704), which picks the default
            file and the torch model. With an explicit ``model_path`` the file's own input
            size decides (a different RF-DETR ``variant`` is logged as a warning); ``None``
            is ``auto``.
        backend: ``onnx``, ``torch`` or ``auto``. RF-DETR: ``onnx`` when an exported file
            is found (``model_path``, else ``models/rfdetr-<variant>.onnx`` relative to the
            current working directory), otherwise ``torch`` (needs the ``export`` extra).
            YOLOX runs on ``onnx`` only.
        model_path: an ONNX export (RF-DETR or YOLOX), or an rfdetr ``.pth`` checkpoint
            (torch backend); a path that does not exist is an error.
        device: ``auto``, ``cpu``, ``cuda``, ``tensorrt`` or ``coreml``.
        confidence: person score threshold (kept: ``confidence > threshold``). None: the
            detector's own default, 0.5 for RF-DETR and 0.3 for YOLOX (its demo value:
            objectness x class scores run lower than RF-DETR's).
        runtime: a shared :class:`~instanthmr.runtime.session.Runtime` for the onnx backends
            (the pipeline passes its own so both models follow one device/provider choice).
        threads, fallback: passed to a new Runtime (onnx), or torch threads (torch).
        warmup: run one frame at construction, so the first real frame is not slow (YOLOX
            always runs one: the check of its output values is also its warm-up).
        random_init: torch backend (``auto`` picks it): random weights, meaningless
            detections. For the onnx backend, export a file with ``--random-init``.
        precision: onnx backends: ``auto``, ``fp32``, ``fp16`` or ``int8`` (see
            :func:`~instanthmr.runtime.precision.choose_file`).
        choice: what :func:`choose_detector` decided for these same options, when the
            caller already asked it (the pipeline does, to share the cores); None asks it.

    The detector's ``reason`` says why it was chosen; the choice is logged.

    Raises:
        ValueError: unknown variant or backend, options that cannot apply to the chosen
            detector, or a model file of the wrong kind for the backend (``.pth`` for onnx,
            ``.onnx`` for torch).
        FileNotFoundError: ``backend="onnx"`` with an RF-DETR variant and no file (the
            message has the export command), or an explicit ``model_path`` that does not
            exist.
        ImportError: the torch backend is needed but torch/rfdetr are not installed.
        DetectorContractError, YoloxContractError: the file is not what it was taken for.
    """
    dev = runtime.device if runtime is not None else device
    if choice is None:
        choice = choose_detector(variant, backend, model_path, dev, random_init)
    detector: PersonDetector
    if choice.kind == "yolox":
        detector = YoloxPersonDetector(
            choice.path, confidence=confidence, runtime=runtime, device=dev,
            threads=threads, fallback=fallback, precision=precision,
        )  # fmt: skip
    else:
        detector = _create_rfdetr(
            choice.variant, choice.backend, model_path, dev,
            RFDETR_CONFIDENCE if confidence is None else confidence, runtime,
            threads=threads, fallback=fallback, warmup=warmup, random_init=random_init,
            precision=precision,
        )  # fmt: skip
    detector.reason = choice.reason  # type: ignore[misc]
    log.info("detector: %s on %s (%s)", detector.name, detector.provider, choice.reason)  # type: ignore[attr-defined]
    return detector


def _create_rfdetr(
    variant: str | None,
    backend: str,
    model_path: str | os.PathLike[str] | None,
    device: str,
    confidence: float,
    runtime: Runtime | None,
    *,
    threads: int | None,
    fallback: bool,
    warmup: bool,
    random_init: bool,
    precision: str,
) -> PersonDetector:
    """RF-DETR, ONNX or torch (the arguments of :func:`create_detector`)."""
    spec = get_variant(variant or "nano")
    path = Path(model_path) if model_path is not None else default_model_path(spec.name)
    if model_path is not None and not path.is_file():
        raise FileNotFoundError(
            f"detector model not found: {path}. Export it with `{export_command(spec.name, path)}`"
        )
    checkpoint = path if model_path is not None and path.suffix.lower() in (".pth", ".pt") else None
    if backend == "onnx" and (checkpoint is not None or random_init):
        raise ModelFileError(
            "the onnx backend runs an exported .onnx file: export the checkpoint or the "
            f"random-init model first (`{export_command(spec.name)} [--checkpoint X | "
            "--random-init]`), or use backend='torch'"
        )
    if backend == "torch" and model_path is not None and checkpoint is None:
        raise ModelFileError(
            f"the torch backend takes an rfdetr .pth checkpoint, not {path}; use "
            "backend='onnx' for an exported file"
        )
    if backend == "auto" and (checkpoint is not None or random_init):
        backend = "torch"
    if backend == "onnx" and not path.is_file():
        raise FileNotFoundError(
            f"no RF-DETR ONNX file for variant {spec.name!r} at {path} (looked relative to "
            f"{Path.cwd()}). Export it once with `{export_command(spec.name)}` (needs the "
            "export extra), or pass model_path=..."
        )
    if backend == "onnx" or (backend == "auto" and path.is_file()):
        detector = OnnxPersonDetector(
            path,
            variant=None if model_path is not None else spec.name,
            confidence=confidence,
            runtime=runtime,
            device=device,
            threads=threads,
            fallback=fallback,
            warmup=warmup,
            precision=precision,
        )
        if variant is not None and detector.variant != spec.name:
            log.warning(
                "detector file %s is RF-DETR %s (%d px), not the requested %r; using the file",
                path, detector.variant, detector.resolution, spec.name,
            )  # fmt: skip
        return detector
    if precision not in ("auto", "fp32"):
        raise OptionError(
            f"precision={precision!r} applies to the onnx backend; the torch backend runs fp32 "
            f"(export the detector with `{export_command(spec.name)}` to use it)"
        )
    from .torch_backend import TorchPersonDetector, require_rfdetr

    try:
        require_rfdetr()
    except ImportError as exc:
        if backend == "torch":
            raise
        raise torch_backend_missing(spec.name, path, str(exc)) from exc
    if backend == "auto":
        log.info("no detector ONNX file at %s; using the torch backend (rfdetr)", path)
    try:
        return TorchPersonDetector(
            spec.name,
            confidence=confidence,
            device=device,
            random_init=random_init,
            checkpoint=checkpoint,
            threads=threads,
            warmup=warmup,
        )
    except DetectorUnavailableError as exc:
        if backend == "torch" or checkpoint is not None or random_init:
            raise
        raise detector_unavailable(spec.name, path, str(exc)) from None
