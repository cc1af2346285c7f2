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
    from instanthmr.tracking.schedule import BODY_JOINTS

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


# ----------------------------------------------------------------- variants of a model file
def _copy(model: onnx.ModelProto) -> onnx.ModelProto:
    out = onnx.ModelProto()
    out.CopyFrom(model)
    return out


def _finish(model: onnx.ModelProto) -> onnx.ModelProto:
    onnx.checker.check_model(model)
    return model


def with_float16_io(model: onnx.ModelProto) -> onnx.ModelProto:
    """The same graph with float16 inputs and outputs (Casts at the boundary, fp32 inside)."""
    out = _copy(model)
    g = out.graph
    casts_in, casts_out = [], []
    for value in g.input:
        inner = f"{value.name}__f32"
        for node in g.node:
            node.input[:] = [inner if i == value.name else i for i in node.input]
        casts_in.append(helper.make_node("Cast", [value.name], [inner], to=TensorProto.FLOAT))
        value.type.tensor_type.elem_type = TensorProto.FLOAT16
    for value in g.output:
        inner = f"{value.name}__f32"
        for node in g.node:
            node.output[:] = [inner if o == value.name else o for o in node.output]
        casts_out.append(helper.make_node("Cast", [inner], [value.name], to=TensorProto.FLOAT16))
        value.type.tensor_type.elem_type = TensorProto.FLOAT16
    nodes = [*casts_in, *g.node, *casts_out]
    del g.node[:]
    g.node.extend(nodes)
    return _finish(out)


def with_fixed_batch(model: onnx.ModelProto, batch: int) -> onnx.ModelProto:
    """The same graph with axis 0 of every input and output fixed to ``batch``."""
    out = _copy(model)
    for value in [*out.graph.input, *out.graph.output]:
        dim = value.type.tensor_type.shape.dim[0]
        dim.Clear()
        dim.dim_value = batch
    return _finish(out)


def with_output_names(model: onnx.ModelProto, names: dict[str, str]) -> onnx.ModelProto:
    """The same graph with outputs renamed (``{old: new}``)."""
    out = _copy(model)
    for node in out.graph.node:
        node.output[:] = [names.get(o, o) for o in node.output]
    for value in out.graph.output:
        value.name = names.get(value.name, value.name)
    return _finish(out)


def without_output(model: onnx.ModelProto, name: str) -> onnx.ModelProto:
    """The same graph without one of its outputs (the MHR-only layout drops joints_3d)."""
    out = _copy(model)
    kept = [v for v in out.graph.output if v.name != name]
    del out.graph.output[:]
    out.graph.output.extend(kept)
    return _finish(out)


def with_metadata(model: onnx.ModelProto, **props: str) -> onnx.ModelProto:
    """The same graph with these custom metadata entries."""
    out = _copy(model)
    helper.set_model_props(out, {**{p.key: p.value for p in out.metadata_props}, **props})
    return out
