"""Small ONNX graphs built with onnx.helper whose outputs are known functions of their inputs.

- :func:`build_oracle` honours the InstantHMR contract. It lives in the package
  (:mod:`instanthmr.evaluation.oracle`, so the ``instanthmr eval synthetic`` gate can use it)
  and is re-exported here: its 2D "keypoints" are the intensity centroid of the bright blob
  in the crop (in normalised crop coordinates) plus a fixed per-joint offset, so a test can
  draw a blob at a known full-frame position and check that the pipeline maps the keypoints
  back onto it. Its other outputs are linear in cliff_cond.
- :func:`build_io_model` declares arbitrary inputs/outputs (for contract-mismatch tests).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import onnx
from onnx import TensorProto, helper

from instanthmr.evaluation.oracle import (  # noqa: F401  (re-exported for the tests)
    BLOB_THRESHOLD,
    CAM_OFFSET,
    OPSET,
    N,
    _const,
    build_oracle,
    cliff_weights,
    joint_offsets,
    oracle_expected,
)


def corner_offsets(spread: float) -> np.ndarray:
    """(70, 2) offsets putting the body joints on the corners of a square of half-side
    ``spread`` (normalised crop units) around the blob; other joints on the blob. With
    spread = 1 / (1.2 * 1.15) a box carried from these joints keeps its size."""
    from instanthmr.skeleton import BODY_JOINTS

    out = np.zeros((70, 2), np.float32)
    corners = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]], np.float32) * spread
    for j, k in enumerate(BODY_JOINTS[:28]):  # 7 per corner: their mean is the blob
        out[k] = corners[j % 4]
    return out


def build_io_model(
    inputs: Sequence[tuple[str, Sequence[int | str], int]],
    outputs: Sequence[tuple[str, Sequence[int | str], int]],
) -> onnx.ModelProto:
    """A graph with the declared inputs and outputs; each output is zeros of its shape, with
    the batch size taken from the first input's first axis. Elem types are TensorProto ints."""
    first = inputs[0][0]
    nodes = [
        helper.make_node("Shape", [first], ["in_shape"]),
        helper.make_node("Slice", ["in_shape", "c0", "c1"], ["batch"]),
    ]
    inits = [_const("c0", np.array([0], np.int64)), _const("c1", np.array([1], np.int64))]
    for name, shape, elem in outputs:
        fixed = [int(d) for d in shape[1:]]
        inits.append(_const(f"{name}_dims", np.array(fixed, np.int64)))
        nodes += [
            helper.make_node("Concat", ["batch", f"{name}_dims"], [f"{name}_shape"], axis=0),
            helper.make_node(
                "ConstantOfShape", [f"{name}_shape"], [name],
                value=helper.make_tensor("v", elem, [1], [0]),
            ),
        ]  # fmt: skip
    graph = helper.make_graph(
        nodes,
        "io_model",
        [helper.make_tensor_value_info(n, e, list(s)) for n, s, e in inputs],
        [helper.make_tensor_value_info(n, e, list(s)) for n, s, e in outputs],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def contract_io() -> tuple[list, list]:
    """The contract's inputs and outputs in :func:`build_io_model` form."""
    f = TensorProto.FLOAT
    ins = [("image", [N, 3, 224, 224], f), ("cliff_cond", [N, 3], f)]
    outs = [
        ("mhr_params", [N, 204], f),
        ("shape_params", [N, 45], f),
        ("cam_trans", [N, 3], f),
        ("joints_2d", [N, 70, 2], f),
        ("joints_3d", [N, 70, 3], f),
    ]
    return ins, outs
