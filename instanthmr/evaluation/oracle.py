"""The analytic oracle InstantHMR model: an ONNX graph whose outputs are known functions of
its inputs, for tests and the ``instanthmr eval synthetic`` regression gate.

It honours the model contract (names, shapes, dtypes, dynamic batch). Its 2D "keypoints" are
the intensity centroid of the bright blob in the red channel of the crop (in normalised crop
coordinates) plus a fixed per-joint offset, so a caller can draw a blob at a known
full-frame position and check that the pipeline maps the keypoints back onto it. Its other
outputs are linear in ``cliff_cond``: ``cam_trans = cliff_cond + (0, 0, 5)`` and
``joints_3d = cliff_cond @ W`` (fixed seeded weights), so they check the CLIFF vector.
It is not a pose model: its numbers measure geometry, never accuracy.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

N = "N"
OPSET = 17
BLOB_THRESHOLD = 0.2  # intensity (0..1) below which pixels do not count


def joint_offsets() -> np.ndarray:
    """(70, 2) per-joint offsets in normalised crop units added to the blob centroid."""
    k = np.arange(70, dtype=np.float32)
    return np.stack([(k - 35) * 0.002, (34 - k) * 0.001], axis=1).astype(np.float32)


def cliff_weights() -> dict[str, np.ndarray]:
    """The (3, D) matrices mapping cliff_cond to mhr_params, shape_params and joints_3d."""
    rng = np.random.default_rng(7)
    return {
        "mhr_params": rng.normal(size=(3, 204)).astype(np.float32),
        "shape_params": rng.normal(size=(3, 45)).astype(np.float32),
        "joints_3d": rng.normal(size=(3, 210)).astype(np.float32) * 0.1,
    }


CAM_OFFSET = np.array([0.0, 0.0, 5.0], dtype=np.float32)


def _const(name: str, arr: np.ndarray) -> onnx.TensorProto:
    return numpy_helper.from_array(np.asarray(arr), name)


def build_oracle(size: int = 224, offsets: np.ndarray | None = None) -> onnx.ModelProto:
    """The analytic oracle model (fp32, opset 17, dynamic batch). ``offsets`` (70, 2)
    replaces :func:`joint_offsets`."""
    offsets = joint_offsets() if offsets is None else np.asarray(offsets, np.float32)
    grid = (2.0 * np.arange(size, dtype=np.float32) / size - 1.0).astype(np.float32)
    w = cliff_weights()
    inits = [
        _const("c_slice_start", np.array([0], np.int64)),
        _const("c_slice_end", np.array([1], np.int64)),
        _const("c_axis1", np.array([1], np.int64)),
        _const("c_std", np.array(0.229, np.float32)),
        _const("c_mean", np.array(0.485, np.float32)),
        _const("c_thr", np.array(BLOB_THRESHOLD, np.float32)),
        _const("c_gx", grid.reshape(1, 1, 1, size)),
        _const("c_gy", grid.reshape(1, 1, size, 1)),
        _const("c_axes23", np.array([2, 3], np.int64)),
        _const("c_shape_n12", np.array([-1, 1, 2], np.int64)),
        _const("c_offsets", offsets[None]),
        _const("c_cam", CAM_OFFSET),
        _const("w_mhr", w["mhr_params"]),
        _const("w_shape", w["shape_params"]),
        _const("w_j3d", w["joints_3d"]),
        _const("c_shape_j3d", np.array([-1, 70, 3], np.int64)),
    ]
    nodes = [
        helper.make_node("Slice", ["image", "c_slice_start", "c_slice_end", "c_axis1"], ["r"]),
        helper.make_node("Mul", ["r", "c_std"], ["r_s"]),
        helper.make_node("Add", ["r_s", "c_mean"], ["v"]),
        helper.make_node("Sub", ["v", "c_thr"], ["v_t"]),
        helper.make_node("Relu", ["v_t"], ["wgt"]),
        helper.make_node("ReduceSum", ["wgt", "c_axes23"], ["sw"], keepdims=0),
        helper.make_node("Mul", ["wgt", "c_gx"], ["wx"]),
        helper.make_node("Mul", ["wgt", "c_gy"], ["wy"]),
        helper.make_node("ReduceSum", ["wx", "c_axes23"], ["swx"], keepdims=0),
        helper.make_node("ReduceSum", ["wy", "c_axes23"], ["swy"], keepdims=0),
        helper.make_node("Div", ["swx", "sw"], ["cx"]),
        helper.make_node("Div", ["swy", "sw"], ["cy"]),
        helper.make_node("Concat", ["cx", "cy"], ["cxy"], axis=1),
        helper.make_node("Reshape", ["cxy", "c_shape_n12"], ["cxy3"]),
        helper.make_node("Add", ["cxy3", "c_offsets"], ["joints_2d"]),
        helper.make_node("Add", ["cliff_cond", "c_cam"], ["cam_trans"]),
        helper.make_node("MatMul", ["cliff_cond", "w_mhr"], ["mhr_params"]),
        helper.make_node("MatMul", ["cliff_cond", "w_shape"], ["shape_params"]),
        helper.make_node("MatMul", ["cliff_cond", "w_j3d"], ["j3d_flat"]),
        helper.make_node("Reshape", ["j3d_flat", "c_shape_j3d"], ["joints_3d"]),
    ]
    f = TensorProto.FLOAT
    graph = helper.make_graph(
        nodes,
        "instanthmr_oracle",
        [
            helper.make_tensor_value_info("image", f, [N, 3, size, size]),
            helper.make_tensor_value_info("cliff_cond", f, [N, 3]),
        ],
        [
            helper.make_tensor_value_info("mhr_params", f, [N, 204]),
            helper.make_tensor_value_info("shape_params", f, [N, 45]),
            helper.make_tensor_value_info("cam_trans", f, [N, 3]),
            helper.make_tensor_value_info("joints_2d", f, [N, 70, 2]),
            helper.make_tensor_value_info("joints_3d", f, [N, 70, 3]),
        ],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def oracle_expected(cliff: np.ndarray) -> dict[str, np.ndarray]:
    """The oracle's non-image outputs for (N, 3) cliff vectors."""
    w = cliff_weights()
    return {
        "cam_trans": cliff + CAM_OFFSET,
        "mhr_params": cliff @ w["mhr_params"],
        "shape_params": cliff @ w["shape_params"],
        "joints_3d": (cliff @ w["joints_3d"]).reshape(-1, 70, 3),
    }
