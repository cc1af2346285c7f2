"""The ``torch`` detector backend: the ``rfdetr`` package's own ``predict``.

Needs the ``export`` extra (``pip install "instanthmr[export]"``: torch and rfdetr). Torch and
rfdetr are imported inside functions only, so importing this module costs nothing.

With default weights rfdetr downloads its COCO checkpoint on first use (to ``~/.roboflow``,
or ``$RF_HOME``). ``random_init=True`` builds the same network with random weights
(``pretrain_weights=None``): same compute, meaningless detections, for tests and timing.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import supervision as sv

from ..errors import DetectorUnavailableError, MissingDependencyError
from ..geometry import validate_image
from ..runtime.session import ProviderError
from .base import check_confidence, get_variant, person_detections

log = logging.getLogger(__name__)

INSTALL_HINT = (
    'install the export extra (`pip install "instanthmr[export]"`, which brings torch and '
    "rfdetr), or export an ONNX file once with `python tools/export_detector.py` and use the "
    "onnx backend"
)


def require_rfdetr() -> None:
    """Raise ImportError with the fix when torch or rfdetr is not installed."""
    missing = [m for m in ("torch", "rfdetr") if importlib.util.find_spec(m) is None]
    if missing:
        raise MissingDependencyError(
            f"the torch detector backend needs {' and '.join(missing)}, which "
            f"{'is' if len(missing) == 1 else 'are'} not installed; {INSTALL_HINT}"
        )


def torch_device(device: str) -> str:
    """Map an InstantHMR device name to a torch device (``cpu``, ``cuda`` or ``mps``)."""
    import torch

    name = device.lower()
    if name == "auto":
        if torch.cuda.is_available():
            return "cuda"
        mps = getattr(torch.backends, "mps", None)
        return "mps" if mps is not None and mps.is_available() else "cpu"
    if name == "cpu":
        return "cpu"
    if name in ("cuda", "tensorrt"):
        if not torch.cuda.is_available():
            raise ProviderError(
                f"device {device!r} asked for CUDA, but torch.cuda.is_available() is False; "
                "install a CUDA build of torch, or use device='cpu'"
            )
        return "cuda"
    if name == "coreml":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise ProviderError("device 'coreml' maps to torch 'mps', which is not available here")
        return "mps"
    raise ValueError(f"unknown device {device!r}; choose one of auto, cpu, cuda, tensorrt, coreml")


def build_rfdetr(
    variant: str,
    *,
    random_init: bool = False,
    checkpoint: str | os.PathLike[str] | None = None,
    device: str = "cpu",
) -> Any:
    """An ``rfdetr`` model object (``RFDETRNano`` ... ``RFDETRLarge``) for ``variant``.

    Args:
        variant: ``nano``, ``small``, ``medium``, ``base`` or ``large``.
        random_init: random weights (``pretrain_weights=None``); detections are meaningless.
            Note: for ``base`` (patch 14) rfdetr then loads DINOv2 backbone weights from the
            Hugging Face Hub, so it needs that to be reachable.
        checkpoint: a local ``.pth`` checkpoint for this variant (instead of the COCO one
            rfdetr downloads by default).
        device: a torch device string.
    """
    require_rfdetr()
    spec = get_variant(variant)
    if random_init and checkpoint is not None:
        raise ValueError("random_init=True and checkpoint are exclusive; pass one of them")
    kwargs: dict[str, Any] = {"device": device}
    if random_init:
        kwargs["pretrain_weights"] = None
    elif checkpoint is not None:
        path = Path(checkpoint)
        if not path.is_file():
            raise FileNotFoundError(f"RF-DETR checkpoint not found: {path}")
        kwargs["pretrain_weights"] = str(path.resolve())
    with warnings.catch_warnings():  # torch and rfdetr deprecation notes, not the user's
        warnings.simplefilter("ignore", FutureWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        cls = getattr(importlib.import_module("rfdetr"), spec.class_name)
    try:
        with warnings.catch_warnings():
            # rfdetr warns that a from-scratch model is less accurate: random_init asks for it.
            warnings.filterwarnings("ignore", message=".*pretrain_weights=None")
            return cls(**kwargs)
    except OSError as exc:
        what = (
            "DINOv2 backbone weights from the Hugging Face Hub"
            if random_init
            else "its COCO checkpoint"
        )
        err = DetectorUnavailableError(
            f"rfdetr cannot build {spec.class_name} here: it needs {what}, which could not be "
            f"downloaded ({_root_cause(exc)})"
        )
        err.fix = "pass a local checkpoint or an ONNX export with --detector-model"
        raise err from None


def _root_cause(exc: BaseException) -> str:
    """The innermost cause of a chained error (the refused connection, the failed name
    lookup), as ``Type: message`` on one line."""
    seen = {id(exc)}
    while (inner := exc.__cause__ or exc.__context__) is not None and id(inner) not in seen:
        seen.add(id(inner))
        exc = inner
    return f"{type(exc).__name__}: {' '.join(str(exc).split())[:200]}"


class TorchPersonDetector:
    """RF-DETR person detector through the ``rfdetr`` package (PyTorch).

    Args:
        variant: ``nano``, ``small``, ``medium``, ``base`` or ``large``.
        confidence: score threshold; kept persons have ``confidence > threshold``.
        device: ``auto``, ``cpu``, ``cuda`` (``tensorrt`` also means CUDA here) or
            ``coreml`` (torch ``mps``).
        random_init: random weights, meaningless detections (tests, timing).
        checkpoint: a local ``.pth`` checkpoint instead of rfdetr's COCO download.
        model: an rfdetr model object that is already built (then ``random_init`` and
            ``checkpoint`` only describe it).
        threads: torch intra-op threads (process-wide ``torch.set_num_threads``); None
            leaves torch's default.
        warmup: run one blank frame at construction, so the first real frame is not slow.
    """

    backend = "torch"
    kind = "rfdetr"
    reason = ""
    """Why this detector was chosen (set by :func:`~instanthmr.detector.create_detector`)."""

    def __init__(
        self,
        variant: str = "nano",
        *,
        confidence: float = 0.5,
        device: str = "auto",
        random_init: bool = False,
        checkpoint: str | os.PathLike[str] | None = None,
        model: Any = None,
        threads: int | None = None,
        warmup: bool = False,
    ) -> None:
        require_rfdetr()
        import torch

        spec = get_variant(variant)
        self.variant = spec.name
        self.confidence = check_confidence(confidence)
        self.random_init = bool(random_init)
        if threads is not None:
            torch.set_num_threads(int(threads))
        if model is None:
            self.device = torch_device(device)
            model = build_rfdetr(
                spec.name, random_init=random_init, checkpoint=checkpoint, device=self.device
            )
        else:
            self.device = str(model.model.device)
        self.model = model
        self.resolution = int(model.model_config.resolution)
        if self.resolution != spec.resolution:
            raise ValueError(
                f"the rfdetr model runs at {self.resolution}, but variant {spec.name!r} runs at "
                f"{spec.resolution}"
            )
        if self.random_init:
            log.warning(
                "!!! RF-DETR %s has RANDOM-INIT weights: its detections are meaningless. Use it "
                "for plumbing and speed tests only. !!!", spec.name,
            )  # fmt: skip
        if warmup:
            self.detect(np.zeros((self.resolution, self.resolution, 3), np.uint8))

    @property
    def name(self) -> str:
        """What the run names, e.g. ``RF-DETR nano (torch)``."""
        return f"RF-DETR {self.variant} (torch{', RANDOM-INIT' if self.random_init else ''})"

    @property
    def provider(self) -> str:
        """``torch-<device type>``, e.g. ``torch-cpu``."""
        return f"torch-{self.device.split(':')[0]}"

    def detect(self, image_rgb: np.ndarray) -> sv.Detections:
        """Persons in an RGB uint8 (H, W, 3) image; see :class:`~.base.PersonDetector`."""
        image = validate_image(image_rgb)
        dets = self.model.predict(image, threshold=self.confidence, include_source_image=False)
        if len(dets) == 0:
            return sv.Detections.empty()
        return person_detections(dets.xyxy, dets.confidence, dets.class_id, self.confidence)

    def __repr__(self) -> str:
        return (
            f"TorchPersonDetector(variant={self.variant!r}, provider={self.provider!r}, "
            f"confidence={self.confidence}, random_init={self.random_init})"
        )
