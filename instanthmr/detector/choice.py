"""Which detector a run uses: the one rule, decided here and nowhere else.

``detector_variant="auto"`` (the default everywhere) picks:

1. RF-DETR, when an RF-DETR file is given or its export is present
   (``models/rfdetr-nano.onnx`` relative to the working directory), or when the run is on a
   GPU provider (CUDA, TensorRT) and the ``rfdetr`` package is installed (the torch backend,
   which downloads its COCO checkpoint once);
2. otherwise the YOLOX-nano shipped inside the package: no torch, no download.

A named variant is used as named: ``yolox-nano`` (the embedded file, or a YOLOX file given as
``model_path``), ``yolox`` (a YOLOX file of any size, which must be given), or one of the
RF-DETR sizes ``nano`` ... ``large``. Every run names the detector it used and why
(:func:`describe_detector`): the log, the demo's first lines, the bench JSON and the
results files' metadata. See docs/pipeline.md, "Which detector runs".
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import onnxruntime as ort

from ..errors import OptionError
from ..runtime.io_binding import GPU_PROVIDERS
from ..runtime.precision import load_onnx
from ..runtime.session import providers_for
from .base import BACKENDS, VARIANTS, default_model_path, export_command, get_variant

AUTO = "auto"
YOLOX_VARIANTS: tuple[str, ...] = ("yolox-nano", "yolox")
DETECTOR_VARIANTS: tuple[str, ...] = (AUTO, *YOLOX_VARIANTS, *VARIANTS)
"""Every value of ``detector_variant`` / ``--detector-variant``."""
CHECKPOINT_SUFFIXES = (".pth", ".pt")


@dataclass(frozen=True)
class DetectorChoice:
    """What :func:`choose_detector` decided.

    Attributes:
        kind: ``yolox`` or ``rfdetr``.
        variant: ``yolox-nano`` / ``yolox``, or the RF-DETR variant (None: the file's own).
        path: the file to run; None for the embedded YOLOX-nano or rfdetr's own checkpoint.
        backend: ``onnx``, ``torch`` or ``auto`` (RF-DETR only; YOLOX is always ``onnx``).
        reason: one sentence saying why, for the log and the run's metadata.
    """

    kind: str
    variant: str | None
    path: Path | None
    backend: str
    reason: str


def is_yolox_file(path: str | os.PathLike[str]) -> bool:
    """True for a graph shaped like YOLOX: one image input and one rank-3 output (RF-DETR
    exports have two outputs). A file that is not ONNX raises ValueError saying so."""
    graph = load_onnx(path).graph
    weights = {t.name for t in graph.initializer}
    inputs = [i for i in graph.input if i.name not in weights]
    outputs = list(graph.output)
    return (
        len(inputs) == 1 and len(outputs) == 1 and len(outputs[0].type.tensor_type.shape.dim) == 3
    )


def gpu_provider(device: str) -> str | None:
    """The GPU execution provider ``device`` runs on in this onnxruntime build, else None."""
    first = providers_for(device)[0]
    name = first if isinstance(first, str) else first[0]
    return name if name in GPU_PROVIDERS and name in ort.get_available_providers() else None


def rfdetr_installed() -> bool:
    """Are the ``rfdetr`` package and torch importable? Nothing is imported."""
    return all(_importable(m) for m in ("rfdetr", "torch"))


def _importable(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):  # ValueError: blocked with sys.modules[name] = None
        return False


def choose_detector(
    variant: str | None = AUTO,
    backend: str = AUTO,
    model_path: str | os.PathLike[str] | None = None,
    device: str = AUTO,
    random_init: bool = False,
) -> DetectorChoice:
    """Apply the rule (module docstring) to the caller's options.

    Raises:
        ValueError: an unknown variant or backend, or options that cannot apply (a YOLOX
            variant with the torch backend, a checkpoint or ``random_init``; ``yolox``
            without a file).
    """
    name = AUTO if variant is None else str(variant).lower()
    backend = backend.lower() if isinstance(backend, str) else backend
    if backend not in BACKENDS:
        raise OptionError(f"unknown detector backend {backend!r}; choose one of {BACKENDS}")
    if name not in DETECTOR_VARIANTS:
        raise OptionError(
            f"unknown detector variant {variant!r}; choose one of {', '.join(DETECTOR_VARIANTS)}"
        )
    path = Path(model_path) if model_path is not None else None
    if name in YOLOX_VARIANTS:
        return _yolox(name, backend, path, random_init)
    if name != AUTO:
        return DetectorChoice("rfdetr", get_variant(name).name, path, backend,
                              f"asked for RF-DETR {name}")  # fmt: skip
    if path is not None:
        if not path.is_file():
            raise FileNotFoundError(
                f"detector model not found: {path}. Export RF-DETR with "
                f"`{export_command('nano', path)}`, or leave the detector file out to use "
                "the embedded YOLOX-nano"
            )
        if path.suffix.lower() not in CHECKPOINT_SUFFIXES and is_yolox_file(path):
            return _yolox("yolox", backend, path, random_init)
        return DetectorChoice("rfdetr", None, path, backend, f"RF-DETR file given: {path.name}")
    if random_init or backend == "torch":
        why = "random_init" if random_init else "backend torch"
        return DetectorChoice("rfdetr", "nano", None, backend, f"{why} asks for RF-DETR")
    export = default_model_path("nano")
    if export.is_file():
        return DetectorChoice("rfdetr", "nano", None, backend, f"RF-DETR export found at {export}")
    gpu = gpu_provider(device)
    if gpu is not None and backend == AUTO and rfdetr_installed():
        return DetectorChoice("rfdetr", "nano", None, "torch", f"{gpu} and rfdetr installed")
    why = f"no RF-DETR export at {export}, " + (
        "and rfdetr is not installed" if gpu is not None else "and no GPU provider"
    )
    return DetectorChoice("yolox", "yolox-nano", None, "onnx", why)


def _yolox(name: str, backend: str, path: Path | None, random_init: bool) -> DetectorChoice:
    if backend == "torch":
        raise OptionError("YOLOX runs on the onnx backend only; drop --detector-backend torch")
    if random_init:
        raise OptionError(
            "random_init builds a random RF-DETR; YOLOX-nano has trained weights already"
        )
    if path is not None and path.suffix.lower() in CHECKPOINT_SUFFIXES:
        raise OptionError(
            f"YOLOX runs an ONNX export, not the checkpoint {path}; export it with YOLOX's "
            "tools/export_onnx.py"
        )
    if path is None and name == "yolox":
        raise OptionError(
            "detector variant 'yolox' runs a YOLOX ONNX file: pass it as detector_model "
            "(--detector-model FILE), or use the embedded 'yolox-nano'"
        )
    if path is None:
        return DetectorChoice("yolox", "yolox-nano", None, "onnx",
                              "asked for the embedded YOLOX-nano")  # fmt: skip
    return DetectorChoice("yolox", "yolox", path, "onnx", f"YOLOX file given: {path.name}")


def describe_detector(detector: Any) -> dict[str, Any] | None:
    """What a run records about its detector (None without one): name, kind, variant,
    backend, provider, file name (never a path), embedded and random-init flags, score
    threshold, input size and why it was chosen. Works for any object with ``detect``."""
    if detector is None:
        return None
    path = getattr(detector, "model_path", None)
    return {
        "name": str(getattr(detector, "name", type(detector).__name__)),
        "kind": getattr(detector, "kind", None),
        "variant": getattr(detector, "variant", None),
        "backend": getattr(detector, "backend", None),
        "provider": getattr(detector, "provider", None),
        "file": None if path is None else Path(path).name,
        "embedded": bool(getattr(detector, "embedded", False)),
        "random_init": bool(getattr(detector, "random_init", False)),
        "confidence": getattr(detector, "confidence", None),
        "resolution": getattr(detector, "resolution", None),
        "reason": getattr(detector, "reason", "") or None,
    }
