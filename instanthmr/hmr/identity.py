"""What a model file is: architecture, size, compute, precision, and whether it is the
published file (the banner of the demo, the bench and the doctor print this).

Our exports record the architecture, parameter count and GFLOP per person in their
metadata (``instanthmr_architecture``, ``instanthmr_params``, ``instanthmr_gflop``). The
published ``instanthmr.onnx`` has no custom metadata; it is recognised by its sha256 (the
pinned one in :mod:`instanthmr.hmr.weights`) and described by our definition of the
``released`` architecture. Any other file without metadata is "unknown", with its weight
count read from the graph.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import onnx

from ..runtime.contract import META_ARCHITECTURE, META_GFLOP, META_PARAMS
from ..runtime.parity import is_quantized
from ..runtime.precision import file_sha256, has_fp16_weights, load_onnx
from .pinned import RELEASED

#: Our definition of the released network, measured by instanthmr.export (fused weights,
#: torch's flop counter at 224 px): what the published file is described as.
RELEASED_PARAMS = 39_962_081
RELEASED_GFLOP = 13.45


@dataclass(frozen=True)
class ModelFacts:
    """One model file, described.

    Attributes:
        architecture: the registry name (``released``, ``card``, ...) or ``unknown``.
        params: parameters (from the metadata, else the weights in the graph).
        gflop: GFLOP per person (metadata, or our definition for the published file), or None.
        precision: how the file stores its numbers: ``fp32``, ``fp16 weights, float32 I/O``,
            ``float16 I/O`` or ``int8``.
        sha256: the file's hash.
        pinned: True when it is the published file (size and sha256 pinned).
        source: where ``architecture`` came from: ``metadata``, ``pinned hash`` or ``none``.
    """

    architecture: str
    params: int | None
    gflop: float | None
    precision: str
    sha256: str
    pinned: bool
    source: str

    def line(self) -> str:
        """One line for banners: ``architecture released, 39.96 M params, ...``."""
        params = f"{self.params / 1e6:.2f} M params" if self.params else "? params"
        gflop = f"{self.gflop:.2f} GFLOP/person" if self.gflop else "GFLOP unknown"
        pin = ("the pinned published file" if self.pinned
               else f"not the published file (sha256 {self.sha256[:12]}...)")  # fmt: skip
        return f"architecture {self.architecture}, {params}, {gflop}, {self.precision}; {pin}"

    def as_dict(self) -> dict[str, object]:
        """JSON-ready form."""
        return asdict(self)


def file_precision(model: onnx.ModelProto) -> str:
    """How a graph stores its numbers (see :class:`ModelFacts`)."""
    if is_quantized(model):
        return "int8"
    io = [*model.graph.input, *model.graph.output]
    if any(v.type.tensor_type.elem_type == onnx.TensorProto.FLOAT16 for v in io):
        return "float16 I/O"
    return "fp16 weights, float32 I/O" if has_fp16_weights(model) else "fp32"


def weight_count(model: onnx.ModelProto) -> int:
    """Elements in the graph's floating-point initializers (about the parameter count)."""
    floats = {onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16, onnx.TensorProto.INT8,
              onnx.TensorProto.UINT8}  # fmt: skip
    return int(sum(np.prod(t.dims, dtype=np.int64) for t in model.graph.initializer
                   if t.data_type in floats))  # fmt: skip


def model_facts(
    path: str | os.PathLike[str], metadata: Mapping[str, str] | None = None
) -> ModelFacts:
    """Describe the model file at ``path`` (``metadata``: its custom metadata, if read)."""
    path = Path(path)
    proto = load_onnx(path)
    meta = dict(metadata) if metadata is not None else {p.key: p.value for p in
                                                         proto.metadata_props}  # fmt: skip
    digest = file_sha256(path)
    pinned = path.stat().st_size == RELEASED.size and digest == RELEASED.sha256
    precision = file_precision(proto)
    if meta.get(META_ARCHITECTURE):
        params = _int(meta.get(META_PARAMS)) or weight_count(proto)
        return ModelFacts(meta[META_ARCHITECTURE], params, _float(meta.get(META_GFLOP)),
                          precision, digest, pinned, "metadata")  # fmt: skip
    if pinned:
        return ModelFacts("released", RELEASED_PARAMS, RELEASED_GFLOP, precision, digest, True,
                          "pinned hash")  # fmt: skip
    return ModelFacts("unknown", weight_count(proto), None, precision, digest, False, "none")


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value else None
    except ValueError:
        return None


def _float(value: str | None) -> float | None:
    try:
        return float(value) if value else None
    except ValueError:
        return None
