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


def yolox_rows(size: tuple[int, int] = (64, 64), classes: int = 80) -> np.ndarray:
    """(A, 5 + classes) raw YOLOX rows for an input of ``size``: every anchor empty
    (objectness and scores 0, zero offsets). Fill some in and pass them to
    :func:`build_yolox`."""
    from instanthmr.detector.yolox_decode import row_count

    return np.zeros((row_count(*size), 5 + classes), np.float32)


def build_yolox(rows: np.ndarray, size: tuple[int, int] = (64, 64)) -> onnx.ModelProto:
    """A graph with YOLOX's interface (input ``images`` (1, 3, H, W), output ``output``
    (1, A, C)) whose output is ``rows`` whatever the image (plus 0 x its mean, so the image
    is really read). With :func:`yolox_rows` and a few rows filled in, the detections are
    known exactly; other ``rows`` shapes make wrong layouts."""
    height, width = size
    f = TensorProto.FLOAT
    nodes = [
        helper.make_node("ReduceMean", ["images"], ["mean"], keepdims=0),
        helper.make_node("Mul", ["mean", "zero"], ["nothing"]),
        helper.make_node("Add", ["rows", "nothing"], ["output"]),
    ]
    inits = [_const("rows", rows[None].astype(np.float32)),
             _const("zero", np.zeros((), np.float32))]  # fmt: skip
    graph = helper.make_graph(
        nodes, "yolox_like",
        [helper.make_tensor_value_info("images", f, [1, 3, height, width])],
        [helper.make_tensor_value_info("output", f, [1, *rows.shape])],
        inits,
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def yolox_with_decoding(model: onnx.ModelProto, size: tuple[int, int]) -> onnx.ModelProto:
    """``model`` (a raw YOLOX graph) with YOLOX's box decoding appended, as an export with
    ``--decode_in_inference`` has it: xy = (xy + grid) x stride, wh = exp(wh) x stride."""
    from instanthmr.detector.yolox_decode import anchor_grid

    grid, stride = anchor_grid(*size)
    out = model.graph.output[0].name
    g = model.graph
    g.initializer.extend([
        _const("dec_grid", grid[None]), _const("dec_stride", stride[None]),
        _const("dec_s0", np.array([0], np.int64)), _const("dec_s2", np.array([2], np.int64)),
        _const("dec_s4", np.array([4], np.int64)), _const("dec_end", np.array([10**6], np.int64)),
        _const("dec_axis", np.array([2], np.int64)),
    ])  # fmt: skip
    for node in g.node:
        node.output[:] = ["raw_rows" if o == out else o for o in node.output]
    g.node.extend([
        helper.make_node("Slice", ["raw_rows", "dec_s0", "dec_s2", "dec_axis"], ["dec_xy"]),
        helper.make_node("Slice", ["raw_rows", "dec_s2", "dec_s4", "dec_axis"], ["dec_wh"]),
        helper.make_node("Slice", ["raw_rows", "dec_s4", "dec_end", "dec_axis"], ["dec_rest"]),
        helper.make_node("Add", ["dec_xy", "dec_grid"], ["dec_xy1"]),
        helper.make_node("Mul", ["dec_xy1", "dec_stride"], ["dec_xy2"]),
        helper.make_node("Exp", ["dec_wh"], ["dec_wh1"]),
        helper.make_node("Mul", ["dec_wh1", "dec_stride"], ["dec_wh2"]),
        helper.make_node("Concat", ["dec_xy2", "dec_wh2", "dec_rest"], [out], axis=2),
    ])  # fmt: skip
    onnx.checker.check_model(model)
    return model
