"""The ``yolox`` detector: a YOLOX ONNX graph on onnxruntime, numpy pre/post-processing.

YOLOX-nano (Megvii, Apache-2.0; ``assets/yolox_nano.onnx``, notice beside it) ships inside
the package: it is the detector wherever RF-DETR cannot serve (see
:func:`instanthmr.detector.choice.choose_detector`). Any other YOLOX size exported with
YOLOX's own ``tools/export_onnx.py`` (without ``--decode_in_inference``) runs too: the input
size is read from the file.

The session comes from :class:`~instanthmr.runtime.session.Runtime`, as for RF-DETR. At
construction the file's input and output layout is checked, then the graph runs once on a
blank frame (this is also its warm-up) and the values are checked: a graph that decodes its
own boxes, or whose scores are not probabilities, is refused with what was found.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import supervision as sv

from ..geometry import image_size_of, validate_image
from ..runtime.io_binding import GPU_PROVIDERS, BoundRunner
from ..runtime.session import ModelSession, Runtime, SessionBacked
from .base import DetectorContractError, check_confidence
from .yolox_decode import (
    NMS_IOU,
    NUM_CLASSES,
    PAD_VALUE,
    STRIDES,
    decode,
    decoded_in_graph,
    letterbox,
    row_count,
)

log = logging.getLogger(__name__)

EMBEDDED_FILE = "yolox_nano.onnx"
EMBEDDED_SHA256 = "d39bee73564e338080378b0ad567fbb40e818b55bbfaf971de82a0267ed16b8a"
DEFAULT_CONFIDENCE = 0.3
"""YOLOX's own demo threshold (its scores are objectness x class, lower than RF-DETR's)."""
EXPORT_HINT = (
    "export YOLOX with its own tools/export_onnx.py, without --decode_in_inference (the "
    "default), or use the embedded YOLOX-nano (--detector-variant yolox-nano)"
)


def embedded_model_path() -> Path:
    """The YOLOX-nano file shipped in the package (``instanthmr/assets``)."""
    from ..sources.files import asset_path

    return asset_path(EMBEDDED_FILE, "the embedded YOLOX-nano detector",
                      "pip install --force-reinstall instanthmr")  # fmt: skip


class YoloxContractError(DetectorContractError):
    """A file given as YOLOX does not have YOLOX's layout; ``differences`` says what was found."""

    def __init__(self, model: str, differences: list[str]) -> None:
        super().__init__(model, differences, kind="a YOLOX", fix=f"Fix: {EXPORT_HINT}.")


def _shape(arg: object) -> str:
    dims = getattr(arg, "shape", [])
    return "(" + ", ".join(str(d) if isinstance(d, int) else "N" for d in dims) + ")"


def check_layout(model: ModelSession, source: str) -> tuple[str, str, tuple[int, int]]:
    """``(input name, output name, (H, W))`` of a YOLOX graph, from its declared I/O.

    Raises:
        YoloxContractError: every difference from one (1, 3, H, W) float image input with
            H and W fixed multiples of 32, and one (1, A, 85) float output with A the
            anchors of strides 8, 16 and 32.
    """
    inputs, outputs = model.session.get_inputs(), model.session.get_outputs()
    diffs: list[str] = []
    size: tuple[int, int] = (0, 0)
    if len(inputs) != 1:
        found = ", ".join(f"{i.name!r} {_shape(i)}" for i in inputs)
        diffs.append(f"found {len(inputs)} inputs ({found}); YOLOX has one image input")
    else:
        dims = list(inputs[0].shape)
        fixed = len(dims) == 4 and all(isinstance(d, int) for d in dims[2:])
        if not fixed or dims[1] != 3:
            diffs.append(
                f"input {inputs[0].name!r} is {_shape(inputs[0])}; expected (1, 3, H, W) "
                "with a fixed height and width"
            )
        elif dims[2] % 32 or dims[3] % 32:
            diffs.append(
                f"input size {dims[2]}x{dims[3]} is not a multiple of 32 (the largest stride)"
            )
        else:
            size = (int(dims[2]), int(dims[3]))
        if inputs[0].type != "tensor(float)":
            diffs.append(f"input {inputs[0].name!r} is {inputs[0].type}; expected tensor(float)")
    if len(outputs) != 1:
        found = ", ".join(f"{o.name!r} {_shape(o)}" for o in outputs)
        diffs.append(
            f"found {len(outputs)} outputs ({found}); YOLOX has one (1, anchors, 85) output"
        )
    else:
        diffs += _output_differences(outputs[0], size)
    if diffs:
        raise YoloxContractError(source, diffs)
    return inputs[0].name, outputs[0].name, size


def _output_differences(out: object, size: tuple[int, int]) -> list[str]:
    dims = list(getattr(out, "shape", []))
    name = getattr(out, "name", "?")
    if len(dims) != 3:
        return [
            f"output {name!r} is {_shape(out)}, rank {len(dims)}; expected (1, anchors, "
            f"{5 + NUM_CLASSES}) raw rows (a graph with NMS or decoding built in is not "
            "YOLOX's raw export)"
        ]
    diffs = []
    cols, rows = dims[2], dims[1]
    if isinstance(cols, int) and cols != 5 + NUM_CLASSES:
        diffs.append(
            f"output {name!r} has {cols} columns = 4 box + objectness + {cols - 5} classes; "
            f"expected {5 + NUM_CLASSES} (the {NUM_CLASSES} COCO classes, person first)"
        )
    if isinstance(rows, int) and size != (0, 0) and rows != row_count(*size):
        diffs.append(
            f"output {name!r} has {rows} rows; a {size[0]}x{size[1]} input has "
            f"{row_count(*size)} anchors at strides {', '.join(map(str, STRIDES))}"
        )
    if getattr(out, "type", "tensor(float)") != "tensor(float)":
        diffs.append(f"output {name!r} is {getattr(out, 'type', '?')}; expected tensor(float)")
    return diffs


def check_values(raw: np.ndarray, size: tuple[int, int], source: str) -> None:
    """Refuse an output that is not YOLOX's raw layout, judged from one run's values."""
    diffs = []
    expected = (1, row_count(*size), 5 + NUM_CLASSES)
    if raw.shape != expected:
        diffs.append(f"the output is {raw.shape} when run; expected {expected}")
    else:
        scores = raw[0, :, 4:]
        low, high = float(np.nanmin(scores)), float(np.nanmax(scores))
        if not (0.0 <= low and high <= 1.0):
            diffs.append(
                f"objectness and class scores range over [{low:.3g}, {high:.3g}]; YOLOX's "
                "export ends with their sigmoid, so they are in [0, 1]"
            )
        corr = decoded_in_graph(raw[0], size)
        if corr is not None and corr > 0.9:
            diffs.append(
                f"the boxes are already decoded: their centres follow the anchor grid "
                f"(correlation {corr:.2f}); the detector decodes raw offsets itself"
            )
    if diffs:
        raise YoloxContractError(source, diffs)


class YoloxPersonDetector(SessionBacked):
    """YOLOX person detector on onnxruntime (numpy letterbox, decoding and NMS; no torch).

    Args:
        model_path: a YOLOX ONNX file; None runs the embedded YOLOX-nano.
        confidence: person score threshold (``objectness x class``); kept persons have
            ``confidence > threshold``. None: :data:`DEFAULT_CONFIDENCE`.
        runtime: a shared :class:`~instanthmr.runtime.session.Runtime`; None builds one.
        device, threads, fallback: see :class:`~instanthmr.runtime.session.Runtime`.
        precision: ``auto``, ``fp32``, ``fp16`` or ``int8`` (see
            :func:`~instanthmr.runtime.precision.choose_file`). The embedded YOLOX-nano
            ships as one fp32 file: with ``int8`` it runs fp32 (logged), so that a
            pipeline's ``--precision int8`` applies to the HMR model; a file of your own
            without its int8 sibling is refused, naming the command that makes it.
        nms_iou: IoU threshold of the NMS between person boxes.

    Construction runs the graph once on a blank frame: the check of its output values and
    its warm-up.

    Raises:
        FileNotFoundError: no file at ``model_path``.
        YoloxContractError: the file is not a raw YOLOX export (says what was found).
    """

    backend = "onnx"
    kind = "yolox"
    reason = ""
    """Why this detector was chosen (set by :func:`~instanthmr.detector.create_detector`)."""

    def __init__(
        self,
        model_path: str | os.PathLike[str] | None = None,
        *,
        confidence: float | None = None,
        runtime: Runtime | None = None,
        device: str = "auto",
        threads: int | None = None,
        fallback: bool = False,
        precision: str = "auto",
        nms_iou: float = NMS_IOU,
    ) -> None:
        self.confidence = check_confidence(DEFAULT_CONFIDENCE if confidence is None else confidence)
        if not 0.0 < nms_iou <= 1.0:
            raise ValueError(f"nms_iou must be in (0, 1], got {nms_iou}")
        self.nms_iou = float(nms_iou)
        self.embedded = model_path is None
        path = embedded_model_path() if model_path is None else Path(model_path)
        self.model_path = path
        self.runtime = runtime if runtime is not None else Runtime(device, threads, fallback)
        if self.embedded and precision == "int8":
            log.info("the embedded YOLOX-nano ships as one fp32 file and runs fp32; "
                     "int8 applies to the HMR model")  # fmt: skip
            precision = "auto"
        # runs every Nth frame: no spinning threads left to slow the HMR call (see onnx_backend)
        self.model_session = self.runtime.load(path, precision=precision, spin=False)
        self.input_name, self.output_name, self.input_size = check_layout(
            self.model_session, str(path)
        )
        self._runner = (
            BoundRunner(self.model_session, [self.output_name],
                        device_id=self.runtime.device_id)
            if self.provider in GPU_PROVIDERS else None
        )  # fmt: skip
        blank = np.full((1, 3, *self.input_size), PAD_VALUE, dtype=np.float32)
        check_values(self.infer(blank), self.input_size, str(path))

    @property
    def variant(self) -> str:
        """``yolox-nano`` for the embedded file, else ``yolox``."""
        return "yolox-nano" if self.embedded else "yolox"

    @property
    def resolution(self) -> int:
        """The longer side of the graph's input (YOLOX inputs are usually square)."""
        return max(self.input_size)

    @property
    def name(self) -> str:
        """What the run names: ``YOLOX-nano (embedded)`` or ``YOLOX (file, HxW)``."""
        if self.embedded:
            return "YOLOX-nano (embedded)"
        h, w = self.input_size
        return f"YOLOX ({self.model_path.name}, {h}x{w})"

    def preprocess(self, image_rgb: np.ndarray) -> tuple[np.ndarray, float]:
        """The (1, 3, H, W) float32 BGR input for an RGB uint8 image, and the scale."""
        return letterbox(validate_image(image_rgb), self.input_size)

    def infer(self, batch: np.ndarray) -> np.ndarray:
        """The raw (1, anchors, 85) output for a preprocessed input."""
        feeds = {self.input_name: batch}
        if self._runner is not None:
            return self._runner.run(feeds)[self.output_name]
        return self.model_session.run(feeds, [self.output_name])[self.output_name]

    def detect(self, image_rgb: np.ndarray) -> sv.Detections:
        """Persons in an RGB uint8 (H, W, 3) image; see :class:`~.base.PersonDetector`."""
        image = validate_image(image_rgb)
        batch, ratio = letterbox(image, self.input_size)
        return decode(self.infer(batch), self.input_size, ratio, image_size_of(image),
                      self.confidence, self.nms_iou)  # fmt: skip

    def __repr__(self) -> str:
        return (
            f"YoloxPersonDetector(name={self.name!r}, provider={self.provider!r}, "
            f"confidence={self.confidence})"
        )
