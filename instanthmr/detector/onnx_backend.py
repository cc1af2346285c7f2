"""The ``onnx`` detector backend: an rfdetr ONNX export run by onnxruntime, no torch.

The session comes from :class:`instanthmr.runtime.session.Runtime` (the one owner of onnxruntime
sessions, so device, provider checks and fp16 handling follow the same rules as the HMR
model). Pre- and post-processing are the numpy mirrors in :mod:`instanthmr.detector.decode`.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import supervision as sv

from ..geometry import image_size_of, validate_image
from ..runtime.contract import ContractError, check_io
from ..runtime.io_binding import GPU_PROVIDERS, BoundRunner
from ..runtime.session import ModelSession, Runtime, SessionBacked
from .base import (
    BOXES_NAME,
    INPUT_NAME,
    LOGITS_NAME,
    META_DETECTOR_VARIANT,
    NUM_SELECT,
    VARIANTS,
    DetectorContractError,
    batch_axis_of,
    check_confidence,
    detector_specs,
    get_variant,
    variant_for_resolution,
)
from .decode import decode, preprocess

log = logging.getLogger(__name__)


def _validate_session(model: ModelSession, source: str, variant: str | None) -> tuple[int, str]:
    """Check an rfdetr export's I/O; return ``(resolution, variant name)``.

    The resolution is read from the input shape. Every problem (wrong names, shapes,
    dtypes, a resolution that does not match the named variant) is collected into one
    :class:`DetectorContractError`.
    """
    session = model.session
    inputs, outputs = session.get_inputs(), session.get_outputs()
    diffs: list[str] = []
    named = get_variant(variant) if variant is not None else None
    by_name = {i.name: i for i in inputs}
    arg = by_name.get(INPUT_NAME)
    shape = list(arg.shape) if arg is not None else []
    resolution: int | None = None
    if len(shape) == 4 and isinstance(shape[2], int) and shape[2] == shape[3]:
        resolution = shape[2]
    if resolution is None:
        recorded = VARIANTS.get(model.metadata.get(META_DETECTOR_VARIANT, ""))
        resolution = (named or recorded or VARIANTS["nano"]).resolution
        if arg is not None:
            diffs.append(
                f"input {INPUT_NAME!r} has shape {tuple(shape)}; expected a fixed square "
                f"(1, 3, R, R) image input"
            )
    if named is not None and resolution != named.resolution:
        diffs.append(
            f"input resolution is {resolution}, but variant {named.name!r} runs at "
            f"{named.resolution}; pass variant=None to take the file's own resolution"
        )
    expected_in, expected_out = detector_specs(resolution, batch_axis_of(shape))
    try:
        check_io(source, inputs, outputs, expected_in, expected_out)
    except ContractError as exc:
        diffs.extend(exc.differences)
    guess = named or variant_for_resolution(resolution)
    name = guess.name if guess is not None else f"custom-{resolution}"
    if diffs:
        raise DetectorContractError(source, diffs, variant=guess.name if guess else "nano")
    return resolution, name


class OnnxPersonDetector(SessionBacked):
    """RF-DETR person detector on onnxruntime (numpy pre/post-processing, no torch).

    Args:
        model_path: an ONNX file written by ``tools/export_detector.py`` (rfdetr's export).
        variant: expected variant; None takes it from the file's input resolution. A file
            whose resolution does not match a named variant is refused.
        confidence: score threshold; kept persons have ``confidence > threshold``.
        runtime: a shared :class:`~instanthmr.runtime.session.Runtime`; None builds one from
            ``device``, ``threads`` and ``fallback``.
        device, threads, fallback: see :class:`~instanthmr.runtime.session.Runtime`.
        warmup: run one frame at construction so the first real frame is not slow.
        num_select: queries ranked by person score before thresholding (default all 300).
        precision: ``auto``, ``fp32``, ``fp16`` or ``int8``: which file runs (an int8
            ``<stem>.int8.onnx`` from ``instanthmr quantize`` where it measured faster; see
            :func:`~instanthmr.runtime.precision.choose_file`).

    Raises:
        FileNotFoundError: no file at ``model_path``.
        DetectorContractError: the file is not an rfdetr detection export (lists every
            difference).
    """

    backend = "onnx"
    kind = "rfdetr"
    embedded = False
    reason = ""
    """Why this detector was chosen (set by :func:`~instanthmr.detector.create_detector`)."""

    def __init__(
        self,
        model_path: str | os.PathLike[str],
        *,
        variant: str | None = None,
        confidence: float = 0.5,
        runtime: Runtime | None = None,
        device: str = "auto",
        threads: int | None = None,
        fallback: bool = False,
        warmup: bool = True,
        num_select: int = NUM_SELECT,
        precision: str = "auto",
    ) -> None:
        self.confidence = check_confidence(confidence)
        if num_select < 1:
            raise ValueError(f"num_select must be >= 1, got {num_select}")
        self.num_select = int(num_select)
        self.runtime = runtime if runtime is not None else Runtime(device, threads, fallback)
        path = Path(model_path)
        # the detector runs every Nth frame: no spinning threads left to slow the HMR call
        self.model_session = self.runtime.load(path, precision=precision, spin=False)
        self.resolution, self.variant = _validate_session(self.model_session, str(path), variant)
        self.model_path = path
        # on a GPU: input/output buffers allocated once on the device (see binding.py)
        self._runner = (
            BoundRunner(self.model_session, [BOXES_NAME, LOGITS_NAME],
                        device_id=self.runtime.device_id)
            if self.provider in GPU_PROVIDERS else None
        )  # fmt: skip
        if warmup:
            self.runtime.warmup(self._runner or self.model_session, self._warmup_feeds, [1])

    def _warmup_feeds(self, batch: int) -> dict[str, np.ndarray]:
        r = self.resolution
        return {INPUT_NAME: np.zeros((batch, 3, r, r), dtype=np.float32)}

    @property
    def name(self) -> str:
        """What the run names, e.g. ``RF-DETR nano (onnx, rfdetr-nano.onnx)``."""
        random = ", RANDOM-INIT" if self.random_init else ""
        return f"RF-DETR {self.variant} (onnx, {self.model_path.name}{random})"

    def preprocess(self, image_rgb: np.ndarray) -> np.ndarray:
        """The (1, 3, R, R) float32 network input for an RGB uint8 image."""
        return preprocess(validate_image(image_rgb), self.resolution)

    def infer(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Raw ``(dets, labels)`` for a preprocessed input."""
        if self._runner is not None:
            out = self._runner.run({INPUT_NAME: batch})
        else:
            out = self.model_session.run({INPUT_NAME: batch}, [BOXES_NAME, LOGITS_NAME])
        return out[BOXES_NAME], out[LOGITS_NAME]

    def detect(self, image_rgb: np.ndarray) -> sv.Detections:
        """Persons in an RGB uint8 (H, W, 3) image; see :class:`~.base.PersonDetector`."""
        image = validate_image(image_rgb)
        boxes, logits = self.infer(preprocess(image, self.resolution))
        return decode(boxes, logits, image_size_of(image), self.confidence, self.num_select)

    def __repr__(self) -> str:
        return (
            f"OnnxPersonDetector(variant={self.variant!r}, resolution={self.resolution}, "
            f"provider={self.provider!r}, confidence={self.confidence}, "
            f"model={str(self.model_path)!r})"
        )
