"""The person-detector interface, the RF-DETR variants and the detector's model contract.

Both backends (``onnx`` and ``torch``) implement :class:`PersonDetector`. Facts about the
``rfdetr`` package (1.11) that the rest of the detector relies on live here:

- five variants, each a square input resolution (read from ``rfdetr.config``);
- the exported ONNX graph: input ``input`` (1, 3, R, R), outputs ``dets`` (1, 300, 4,
  normalised cx, cy, w, h) and ``labels`` (1, 300, 91, class logits over COCO category ids);
- COCO category id 1 is ``person``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np
import supervision as sv

from ..errors import OptionError
from ..runtime.contract import BATCH, ContractError, TensorSpec

PERSON_CLASS_ID = 1
"""COCO category id of ``person``: the logit slot the detector keeps."""
RFDETR_CONFIDENCE = 0.5
"""RF-DETR's default person score threshold."""
NUM_QUERIES = 300
"""Object queries of every RF-DETR detection variant (``num_queries``)."""
NUM_LOGITS = 91
"""Class-logit slots of the COCO checkpoints (category ids 0..90)."""
NUM_SELECT = 300
"""Queries ranked by person score before thresholding (rfdetr's ``num_select``; see decode)."""

INPUT_NAME = "input"
BOXES_NAME = "dets"
LOGITS_NAME = "labels"

BACKENDS: tuple[str, ...] = ("auto", "onnx", "torch")
DEFAULT_MODEL_DIR = Path("models")

# Provenance keys written by instanthmr.export.detector_export into the ONNX metadata.
# The random-init flag uses the shared key instanthmr.runtime.contract.META_RANDOM_INIT.
META_DETECTOR_VARIANT = "instanthmr_detector_variant"
META_DETECTOR_RESOLUTION = "instanthmr_detector_resolution"
META_DETECTOR_SOURCE = "instanthmr_detector_source"


@dataclass(frozen=True)
class Variant:
    """One RF-DETR detection variant: its name, ``rfdetr`` class and square input size."""

    name: str
    class_name: str
    resolution: int


VARIANTS: dict[str, Variant] = {
    v.name: v
    for v in (
        Variant("nano", "RFDETRNano", 384),
        Variant("small", "RFDETRSmall", 512),
        Variant("medium", "RFDETRMedium", 576),
        Variant("base", "RFDETRBase", 560),
        Variant("large", "RFDETRLarge", 704),
    )
}


def get_variant(name: str) -> Variant:
    """The :class:`Variant` called ``name`` (case-insensitive); ValueError lists the choices."""
    if not isinstance(name, str) or name.lower() not in VARIANTS:
        raise OptionError(f"unknown RF-DETR variant {name!r}; choose one of {', '.join(VARIANTS)}")
    return VARIANTS[name.lower()]


def variant_for_resolution(resolution: int) -> Variant | None:
    """The variant whose default input size is ``resolution`` (all five differ), else None."""
    for v in VARIANTS.values():
        if v.resolution == resolution:
            return v
    return None


def default_model_path(variant: str) -> Path:
    """Where ``create_detector`` looks for an exported file: ``models/rfdetr-<variant>.onnx``.

    The path is relative to the current working directory.
    """
    return DEFAULT_MODEL_DIR / f"rfdetr-{get_variant(variant).name}.onnx"


def export_command(variant: str, output: str | Path | None = None) -> str:
    """The shell command that writes the ONNX file for ``variant``."""
    out = output if output is not None else default_model_path(variant)
    return f"python tools/export_detector.py --variant {variant} --output {out}"


def detector_specs(
    resolution: int, batch: int | str = 1
) -> tuple[tuple[TensorSpec, ...], tuple[TensorSpec, ...]]:
    """Expected inputs and outputs of an RF-DETR detection export at ``resolution``.

    ``batch`` is 1 for rfdetr's default export, or :data:`~instanthmr.runtime.contract.BATCH` for a
    graph exported with a dynamic batch axis (the detector still feeds one image).
    """
    inputs = (TensorSpec(INPUT_NAME, (batch, 3, resolution, resolution)),)
    outputs = (
        TensorSpec(BOXES_NAME, (batch, NUM_QUERIES, 4)),
        TensorSpec(LOGITS_NAME, (batch, NUM_QUERIES, NUM_LOGITS)),
    )
    return inputs, outputs


def batch_axis_of(shape: Sequence[int | str | None]) -> int | str:
    """1 for a fixed batch axis, :data:`~instanthmr.runtime.contract.BATCH` for a symbolic one."""
    return BATCH if shape and not isinstance(shape[0], int) else 1


class DetectorContractError(ContractError):
    """An ONNX file is not the detection export it was taken for (RF-DETR unless ``kind``
    says otherwise); ``differences`` lists every mismatch, ``fix`` ends the message."""

    def __init__(
        self,
        model: str,
        differences: Sequence[str],
        variant: str = "nano",
        *,
        kind: str = "an RF-DETR",
        fix: str | None = None,
    ) -> None:
        self.model = model
        self.differences = list(differences)
        lines = "\n".join(f"  - {d}" for d in self.differences)
        ValueError.__init__(
            self,
            f"{model} is not {kind} detection export that the person detector can run "
            f"({len(self.differences)} difference(s)):\n{lines}\n"
            + (fix or f"Export one with `{export_command(variant, model)}`."),
        )


@runtime_checkable
class PersonDetector(Protocol):
    """What every detector backend offers.

    Attributes:
        variant: RF-DETR variant name (``nano`` ... ``large``).
        backend: ``"onnx"`` or ``"torch"``.
        provider: what runs it, e.g. ``"CPUExecutionProvider"`` or ``"torch-cpu"``.
        confidence: score threshold; kept detections have ``confidence > threshold``
            (rfdetr's own rule), so every returned confidence is at least the threshold.
        resolution: the square network input size in pixels.
        random_init: True when the weights are random (detections are meaningless).
    """

    variant: str
    backend: str
    provider: str
    confidence: float
    resolution: int
    random_init: bool

    def detect(self, image_rgb: np.ndarray) -> sv.Detections:
        """Persons in an RGB ``uint8`` (H, W, 3) image.

        Returns ``xyxy`` boxes in source-image pixels, ``confidence`` and ``class_id``
        (always :data:`PERSON_CLASS_ID`), sorted by descending confidence. A frame with
        nobody gives ``sv.Detections.empty()``.
        """
        ...


def person_detections(
    xyxy: np.ndarray, confidence: np.ndarray, class_id: np.ndarray, threshold: float
) -> sv.Detections:
    """Keep the persons scoring above ``threshold``, sorted by descending confidence.

    Shared by both backends so they return the same fields and dtypes: ``xyxy`` float32
    (N, 4), ``confidence`` float32 (N,), ``class_id`` int64 (N,), no extra data. Nothing
    kept gives ``sv.Detections.empty()``.
    """
    confidence = np.asarray(confidence, dtype=np.float32).reshape(-1)
    class_id = np.asarray(class_id).reshape(-1)
    keep = (class_id == PERSON_CLASS_ID) & (confidence > threshold)
    if not keep.any():
        return sv.Detections.empty()
    idx = np.flatnonzero(keep)
    idx = idx[np.argsort(-confidence[idx], kind="stable")]
    return sv.Detections(
        xyxy=np.asarray(xyxy, dtype=np.float32).reshape(-1, 4)[idx],
        confidence=confidence[idx],
        class_id=np.full(idx.size, PERSON_CLASS_ID, dtype=np.int64),
    )


def check_confidence(confidence: float) -> float:
    """Validate a score threshold in [0, 1)."""
    value = float(confidence)
    if not 0.0 <= value < 1.0:
        raise OptionError(
            f"confidence must be in [0, 1), got {confidence!r}; 0.5 is the usual person threshold"
        )
    return value
