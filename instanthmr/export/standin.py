"""Build the stand-in HMR model (:mod:`instanthmr.hmr.standin`) from BlazePose's ONNX graph.

Input: ``pose_landmark_full`` of MediaPipe 0.10.14 (BlazePose GHUM 3D, Apache-2.0) as ONNX:
input ``input_1`` (1, 3, 256, 256) RGB in [0, 1]; outputs ``Identity`` (1, 195) = 39
landmarks x (x, y, z, visibility, presence) in pixels of the 256 input, ``Identity_1``
(1, 1) person presence, ``Identity_4`` (1, 117) = 39 world landmarks in metres (origin
between the hips, Y down). Needs ``onnx`` and ``onnxruntime`` only (no torch).

What :func:`build_standin` does:

1. keeps only the landmark, presence and world-landmark heads (the segmentation and
   heat-map heads are dropped), prefixes its tensor names with ``blazepose/``;
2. makes the batch axis dynamic: the graph's reshapes already use -1; its five 2x
   upsamplings read a fixed (1, C, H, W) size, replaced by scales (1, 1, 2, 2);
3. wraps it: ``image`` (N, 3, 224, 224, ImageNet-normalised) -> undo the normalisation ->
   bilinear resize to 256 -> BlazePose -> the 70 MHR70 joints as one fixed linear map of
   the 33 landmarks (:data:`~instanthmr.export.standin_joints.JOINTS`), in 2D
   (crop-normalised [-1, 1]) and 3D (metres, Y down, origin between the hips) ->
   ``cam_trans`` by closed-form least squares
   (:func:`instanthmr.hmr.standin.solve_cam_trans`) with the rays taken from
   ``cliff_cond`` under the 4:3 frame assumption; persons with presence below 0.5 get NaN
   joints and translation; ``mhr_params`` and ``shape_params`` are zeros;
4. stores the weights as float16 (with a Cast to float32 in the graph: every computation
   stays float32) when ``fp16`` is set, and writes the metadata (model kind, real and
   approximated joints and how each is made, the source file's SHA-256, the licence);
5. checks the file with ``onnx.checker`` and onnxruntime: a batch of 3 equals three single
   runs, and the fp16-weight graph agrees with the float32 one (:data:`FP16_TOLERANCE_PX`
   pixels of the 224 crop, :data:`FP16_TOLERANCE_M` metres).
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from ..geometry import CROP_SCALE, IMAGENET_MEAN, IMAGENET_STD
from ..hmr import standin as hs
from ..runtime.contract import CONTRACT_VERSION, CROP_SIZE, META_CONTRACT_VERSION, META_SOURCE_HASH
from ..skeleton import JOINT_NAMES, NUM_JOINTS
from .standin_joints import JOINTS, NUM_LANDMARKS, REAL_JOINTS, joint_matrix

BLAZEPOSE_SIZE = 256
PREFIX = "blazepose/"
SOURCE_OUTPUTS = ("Identity", "Identity_1", "Identity_4")
SOURCE_INPUT = "input_1"
FP16_TOLERANCE_PX = 0.5
"""fp16-weight vs float32 build: largest 2D joint difference, pixels of the 224 crop."""
FP16_TOLERANCE_M = 0.01
"""fp16-weight vs float32 build: largest 3D joint or translation difference, metres."""
LICENCE = (
    "BlazePose GHUM 3D landmark model (pose_landmark_full) from MediaPipe 0.10.14, "
    "Copyright The MediaPipe Authors, Apache License 2.0; wrapped for InstantHMR's contract"
)

# ----------------------------------------------------------------------------- the graph
class _Graph:
    """Nodes and initialisers of the wrapper graph, with fresh tensor names."""

    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[TensorProto] = []
        self._n = 0

    def const(self, value: object, dtype: type = np.float32, name: str = "") -> str:
        self._n += 1
        name = name or f"c{self._n}"
        self.inits.append(numpy_helper.from_array(np.asarray(value, dtype), name))
        return name

    def op(self, op: str, *inputs: str, out: str = "", **attrs: object) -> str:
        self._n += 1
        out = out or f"t{self._n}_{op.lower()}"
        self.nodes.append(helper.make_node(op, list(inputs), [out], **attrs))
        return out


def _source_graph(source: onnx.ModelProto) -> onnx.GraphProto:
    """BlazePose's landmark, presence and world heads only, with a dynamic batch axis."""
    keep = onnx.utils.Extractor(source).extract_model([SOURCE_INPUT], list(SOURCE_OUTPUTS))
    g = keep.graph
    inits = {t.name: t for t in g.initializer}
    for node in g.node:
        if node.op_type != "Resize":
            continue
        sizes = numpy_helper.to_array(inits[node.input[3]]) if len(node.input) > 3 else None
        if sizes is None or sizes.shape != (4,):
            raise ValueError(f"unexpected Resize {node.name} in the BlazePose graph")
        name = f"{node.name}/scales"
        g.initializer.append(numpy_helper.from_array(np.array([1, 1, 2, 2], np.float32), name))
        del node.input[3]
        node.input[2] = name
    del g.value_info[:]
    return g


def _rename(g: onnx.GraphProto, image: str) -> None:
    """Prefix every tensor name; the graph's input becomes ``image``."""

    def new(name: str) -> str:
        if not name:
            return name
        return image if name == SOURCE_INPUT else PREFIX + name

    for t in g.initializer:
        t.name = new(t.name)
    for node in g.node:
        node.name = PREFIX + node.name
        node.input[:] = [new(i) for i in node.input]
        node.output[:] = [new(o) for o in node.output]


def _wrapper(gr: _Graph, aspect: tuple[int, int], gate: bool) -> list[str]:
    """Nodes before and after BlazePose; returns the five output names (contract order)."""
    # image -> RGB in [0, 1] at 256 x 256
    mean = gr.const(np.asarray(IMAGENET_MEAN).reshape(1, 3, 1, 1))
    std = gr.const(np.asarray(IMAGENET_STD).reshape(1, 3, 1, 1))
    rgb = gr.op("Add", gr.op("Mul", "image", std), mean)
    batch = gr.op("Slice", gr.op("Shape", "image"), gr.const([0], np.int64),
                  gr.const([1], np.int64))  # fmt: skip
    sizes = gr.op("Concat", batch, gr.const([3, BLAZEPOSE_SIZE, BLAZEPOSE_SIZE], np.int64), axis=0)
    empty = gr.const(np.zeros(0, np.float32))
    gr.op("Resize", rgb, empty, empty, sizes, out=f"{PREFIX}input", mode="linear",
          coordinate_transformation_mode="half_pixel")  # fmt: skip

    def landmarks(source: str, width: int, take: int) -> str:
        x = gr.op("Reshape", PREFIX + source, gr.const([-1, 39, width], np.int64))
        return gr.op("Slice", x, gr.const([0, 0], np.int64),
                     gr.const([NUM_LANDMARKS, take], np.int64), gr.const([1, 2], np.int64))

    mapping = gr.const(joint_matrix(), name="mhr70_from_blazepose")
    px = gr.op("MatMul", mapping, landmarks("Identity", 5, 2))  # (N, 70, 2) pixels of 256
    # to crop-normalised [-1, 1]: the contract's crop pixel u (0 = the first pixel's centre)
    # is x * 224 / 256 - 0.5 for BlazePose's x (0 = the left edge); n = u / 112 - 1.
    j2d = gr.op("Add", gr.op("Mul", px, gr.const(CROP_SIZE / BLAZEPOSE_SIZE / (CROP_SIZE / 2))),
                gr.const(-0.5 / (CROP_SIZE / 2) - 1.0))  # fmt: skip
    j3d = gr.op("MatMul", mapping, landmarks("Identity_4", 3, 3))  # (N, 70, 3) metres

    # rays of the 2D joints through the full-frame camera, for a W:H = aspect frame:
    # a = (x - W/2) / f = cx_norm W / (2 f) + n side / (2 f), side = 1.2 b_scale max(W, H)
    w, h = aspect
    f = float(np.hypot(w, h))
    centre = gr.const(np.array([w / (2 * f), h / (2 * f)]))
    half_side = gr.const(CROP_SCALE * max(w, h) / (2 * f))
    cond = "cliff_cond"
    c_xy = gr.op("Slice", cond, gr.const([0], np.int64), gr.const([2], np.int64),
                 gr.const([1], np.int64))  # fmt: skip
    scale = gr.op("Slice", cond, gr.const([2], np.int64), gr.const([3], np.int64),
                  gr.const([1], np.int64))  # fmt: skip
    offset = gr.op("Unsqueeze", gr.op("Mul", c_xy, centre), axes=[1])  # (N, 1, 2)
    size = gr.op("Unsqueeze", gr.op("Mul", scale, half_side), axes=[1])  # (N, 1, 1)
    rays = gr.op("Add", offset, gr.op("Mul", j2d, size))  # (N, 70, 2)

    weights = np.isin(np.array(JOINT_NAMES), REAL_JOINTS).astype(np.float32)
    wn = gr.const((weights / weights.sum()).reshape(1, NUM_JOINTS, 1))

    def mean(x: str) -> str:  # weighted mean over the joints: (N, 70, k) -> (N, 1, k)
        return gr.op("ReduceSum", gr.op("Mul", x, wn), axes=[1], keepdims=1)

    xy = gr.op("Slice", j3d, gr.const([0], np.int64), gr.const([2], np.int64),
               gr.const([2], np.int64))  # fmt: skip
    z = gr.op("Slice", j3d, gr.const([2], np.int64), gr.const([3], np.int64),
              gr.const([2], np.int64))  # fmt: skip
    cd = gr.op("Sub", gr.op("Mul", rays, z), xy)  # (N, 70, 2): aZ - X, bZ - Y
    m_ray, m_cd = mean(rays), mean(cd)
    d_ray = gr.op("Sub", rays, m_ray)
    cov = gr.op("ReduceSum", mean(gr.op("Mul", d_ray, gr.op("Sub", cd, m_cd))), axes=[2],
                keepdims=1)  # fmt: skip
    var = gr.op("ReduceSum", mean(gr.op("Mul", d_ray, d_ray)), axes=[2], keepdims=1)
    tz = gr.op("Neg", gr.op("Div", cov, var))  # (N, 1, 1)
    txy = gr.op("Add", m_cd, gr.op("Mul", m_ray, tz))  # (N, 1, 2)
    cam = gr.op("Reshape", gr.op("Concat", txy, tz, axis=2), gr.const([-1, 3], np.int64))

    if gate:  # nobody in the crop: NaN, never invented joints
        presence = gr.op("Reshape", PREFIX + "Identity_1", gr.const([-1], np.int64))
        absent = gr.op("Less", presence, gr.const(hs.PRESENCE_THRESHOLD))
        nan = gr.const(np.nan)
        a3 = gr.op("Unsqueeze", absent, axes=[1, 2])
        j2d = gr.op("Where", a3, nan, j2d)
        j3d = gr.op("Where", a3, nan, j3d)
        cam = gr.op("Where", gr.op("Unsqueeze", absent, axes=[1]), nan, cam)
    gr.op("Identity", cam, out="cam_trans")
    gr.op("Identity", j2d, out="joints_2d")
    gr.op("Identity", j3d, out="joints_3d")
    for name, width in (("mhr_params", 204), ("shape_params", 45)):
        shape = gr.op("Concat", batch, gr.const([width], np.int64), axis=0)
        gr.op("ConstantOfShape", shape, out=name, value=helper.make_tensor("zero", 1, [1], [0.0]))
    return ["mhr_params", "shape_params", "cam_trans", "joints_2d", "joints_3d"]


def _to_fp16_storage(g: onnx.GraphProto, min_size: int = 16) -> None:
    """Store BlazePose's float32 weights as float16, with a Cast back to float32 before use
    (the wrapper's own constants stay float32)."""
    casts = []
    for t in g.initializer:
        small = int(np.prod(t.dims)) < min_size
        if t.data_type != TensorProto.FLOAT or small or not t.name.startswith(PREFIX):
            continue
        arr = numpy_helper.to_array(t)
        name = t.name
        t.CopyFrom(numpy_helper.from_array(arr.astype(np.float16), f"{name}/fp16"))
        casts.append(helper.make_node("Cast", [f"{name}/fp16"], [name], to=TensorProto.FLOAT))
    nodes = list(g.node)
    del g.node[:]
    g.node.extend(casts + nodes)


def _metadata(source_sha: str, aspect: tuple[int, int]) -> dict[str, str]:
    return {
        hs.META_MODEL_KIND: hs.MODEL_KIND,
        META_CONTRACT_VERSION: CONTRACT_VERSION,
        META_SOURCE_HASH: source_sha,
        hs.META_REAL_JOINTS: json.dumps(list(REAL_JOINTS)),
        hs.META_JOINT_SOURCES: json.dumps({r.name: r.how for r in JOINTS}),
        hs.META_GRAPH_ASPECT: f"{aspect[0]}:{aspect[1]}",
        hs.META_PRESENCE_THRESHOLD: str(hs.PRESENCE_THRESHOLD),
        "licence": LICENCE,
        "not_instanthmr": "a stand-in: MediaPipe BlazePose GHUM 3D landmarks in the InstantHMR "
        "contract; mhr_params and shape_params are zeros",
    }


def build_graph(
    source: onnx.ModelProto,
    *,
    fp16: bool = True,
    gate: bool = True,
    aspect: tuple[int, int] = hs.GRAPH_ASPECT,
    source_sha: str = "",
) -> onnx.ModelProto:
    """The stand-in as an ONNX model (not yet checked: :func:`build_standin` checks it).

    ``gate=False`` leaves out the presence gate (joints even for empty crops): for checks.
    """
    g = _source_graph(source)
    _rename(g, f"{PREFIX}input")
    gr = _Graph()
    outputs = _wrapper(gr, aspect, gate)
    n = "N"
    graph = helper.make_graph(
        gr.nodes + list(g.node),
        "instanthmr_standin_blazepose",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, [n, 3, CROP_SIZE, CROP_SIZE]),
         helper.make_tensor_value_info("cliff_cond", TensorProto.FLOAT, [n, 3])],
        [helper.make_tensor_value_info(name, TensorProto.FLOAT, shape) for name, shape in
         zip(outputs, ([n, 204], [n, 45], [n, 3], [n, NUM_JOINTS, 2], [n, NUM_JOINTS, 3]),
             strict=True)],
        list(g.initializer) + gr.inits,
    )  # fmt: skip
    _topological_sort(graph)
    if fp16:
        _to_fp16_storage(graph)
    model = helper.make_model(
        graph, opset_imports=list(source.opset_import), producer_name="instanthmr-standin",
        doc_string="STAND-IN, NOT InstantHMR: " + LICENCE,
    )  # fmt: skip
    model.ir_version = source.ir_version
    for key, value in _metadata(source_sha, aspect).items():
        model.metadata_props.add(key=key, value=value)
    return model


def _topological_sort(graph: onnx.GraphProto) -> None:
    ready = {i.name for i in graph.input} | {t.name for t in graph.initializer} | {""}
    pending, ordered = list(graph.node), []
    while pending:
        done = [nd for nd in pending if all(i in ready for i in nd.input)]
        if not done:
            raise ValueError("the stand-in graph has a cycle or a dangling input")
        for nd in done:
            ordered.append(nd)
            ready.update(nd.output)
        pending = [nd for nd in pending if nd not in done]
    del graph.node[:]
    graph.node.extend(ordered)


# ----------------------------------------------------------------------------- checks
@dataclass
class BuildReport:
    """What :func:`build_standin` wrote and measured."""

    path: Path
    bytes: int
    source_sha256: str
    batch_max_diff: float
    fp16_max_px: float
    fp16_max_m: float


def _run(model: onnx.ModelProto, image: np.ndarray, cond: np.ndarray) -> dict[str, np.ndarray]:
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.log_severity_level = 3
    sess = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    return dict(zip(names, sess.run(names, {"image": image, "cliff_cond": cond}), strict=True))


def check_inputs(n: int = 3, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Deterministic check inputs: smooth random images (normalised) and CLIFF vectors."""
    rng = np.random.default_rng(seed)
    low = rng.uniform(0, 1, (n, 3, 14, 14)).astype(np.float32)
    img = np.kron(low, np.ones((1, 1, 16, 16), np.float32))
    img = (img - np.asarray(IMAGENET_MEAN).reshape(1, 3, 1, 1)) / np.asarray(
        IMAGENET_STD
    ).reshape(1, 3, 1, 1)
    cond = np.c_[rng.uniform(-0.8, 0.8, (n, 2)), rng.uniform(0.1, 0.6, (n, 1))]
    return img.astype(np.float32), cond.astype(np.float32)


def _diff(a: np.ndarray, b: np.ndarray) -> float:
    """Largest absolute difference; inf when either side is not finite (NaN never passes)."""
    d = np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64))
    return float(d.max()) if np.isfinite(d).all() else float("inf")


def verify(model: onnx.ModelProto, reference: onnx.ModelProto) -> tuple[float, float, float]:
    """(batch-vs-single max diff, fp16-vs-fp32 max px, max m) on ungated check inputs.

    ``model`` and ``reference`` must be ungated builds (``gate=False``) so random inputs
    give joints to compare. Raises ValueError past the tolerances.
    """
    img, cond = check_inputs()
    batched = _run(model, img, cond)
    singles = [_run(model, img[i : i + 1], cond[i : i + 1]) for i in range(len(img))]
    batch_diff = max(_diff(batched[k], np.concatenate([s[k] for s in singles])) for k in batched)
    ref = _run(reference, img, cond)
    px = _diff(batched["joints_2d"], ref["joints_2d"]) * CROP_SIZE / 2
    metres = max(_diff(batched[k], ref[k]) for k in ("joints_3d", "cam_trans"))
    if batch_diff > 1e-4 or px > FP16_TOLERANCE_PX or metres > FP16_TOLERANCE_M:
        raise ValueError(
            f"stand-in check failed: batch vs single {batch_diff:.2e} (limit 1e-4), "
            f"fp16 weights vs fp32 {px:.3f} px (limit {FP16_TOLERANCE_PX}) and {metres:.4f} m "
            f"(limit {FP16_TOLERANCE_M})"
        )
    return batch_diff, px, metres


def file_sha256(path: str | os.PathLike[str]) -> str:
    """Hex SHA-256 of a file."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def build_standin(
    source: str | os.PathLike[str], output: str | os.PathLike[str], *, fp16: bool = True
) -> BuildReport:
    """Build, check and write the stand-in model (atomically) from BlazePose's ONNX file."""
    src_path = Path(source)
    proto = onnx.load(os.fspath(src_path))
    names = {o.name for o in proto.graph.output}
    inputs = [(i.name, [d.dim_value for d in i.type.tensor_type.shape.dim])
              for i in proto.graph.input]  # fmt: skip
    expected = [(SOURCE_INPUT, [1, 3, BLAZEPOSE_SIZE, BLAZEPOSE_SIZE])]
    if inputs != expected or not set(SOURCE_OUTPUTS) <= names:
        raise ValueError(
            f"{src_path} is not BlazePose's landmark graph: expected input {SOURCE_INPUT} "
            f"(1, 3, 256, 256) and outputs {', '.join(SOURCE_OUTPUTS)}; found inputs {inputs} "
            f"and outputs {sorted(names)}"
        )
    sha = file_sha256(src_path)
    model = build_graph(proto, fp16=fp16, source_sha=sha)
    onnx.checker.check_model(model, full_check=True)
    ungated = build_graph(proto, fp16=fp16, gate=False, source_sha=sha)
    reference = build_graph(proto, fp16=False, gate=False, source_sha=sha)
    batch_diff, px, metres = verify(ungated, reference)
    out = Path(output)
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=out.name, suffix=".partial", dir=out.parent)
    os.close(fd)
    try:
        onnx.save(model, tmp)
        os.chmod(tmp, 0o644)  # mkstemp makes it owner-only; a package file is readable
        os.replace(tmp, out)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return BuildReport(out, out.stat().st_size, sha, batch_diff, px, metres)
