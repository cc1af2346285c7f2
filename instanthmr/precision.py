"""fp16 -> fp32 conversion of model files, for the CPU execution provider.

The released InstantHMR file has fp16 weights with float32 inputs and outputs. On the CPU
provider fp16 runs slower than fp32 because onnxruntime inserts casts around every op, so
such a model is converted to fp32 once and the result is cached next to the source file,
keyed by the source's SHA-256 (``<stem>.fp32-<hash16>.onnx``). Where that folder is not
writable, or is inside the Hugging Face Hub cache, it goes to ``$XDG_CACHE_HOME/instanthmr``.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, numpy_helper

log = logging.getLogger(__name__)

_FP16 = TensorProto.FLOAT16
_FP32 = TensorProto.FLOAT


def file_sha256(path: str | os.PathLike[str], chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def load_onnx(path: str | os.PathLike[str]) -> onnx.ModelProto:
    """Load an ONNX file, turning a parse failure, an empty file or a file without a graph
    into one message about a bad, truncated or empty file."""
    cause: Exception | None = None
    try:
        model = onnx.load(os.fspath(path))
        problem = "" if model.HasField("graph") else "it holds no graph"
    except Exception as exc:  # onnx raises DecodeError and several others for bad files
        cause, problem = exc, str(exc)
    if problem:
        size = Path(path).stat().st_size
        problem = "the file is empty" if size == 0 else problem
        raise ValueError(
            f"{path} is not a readable ONNX model ({size} bytes): {problem}. The file may be "
            "truncated or empty (an interrupted download or export) or not an ONNX file; "
            "delete it and download or export it again."
        ) from cause
    return model


def has_fp16_weights(model: onnx.ModelProto) -> bool:
    """True when any initializer of the main graph is float16."""
    return any(t.data_type == _FP16 for t in model.graph.initializer)


def _tensor_to_fp32(t: TensorProto) -> None:
    arr = numpy_helper.to_array(t).astype(np.float32)
    t.CopyFrom(numpy_helper.from_array(arr, t.name))


def _convert_graph(graph: onnx.GraphProto) -> int:
    changed = 0
    for t in graph.initializer:
        if t.data_type == _FP16:
            _tensor_to_fp32(t)
            changed += 1
    for vi in list(graph.value_info) + list(graph.input) + list(graph.output):
        tt = vi.type.tensor_type
        if tt.elem_type == _FP16:
            tt.elem_type = _FP32
            changed += 1
    for node in graph.node:
        for attr in node.attribute:
            if node.op_type == "Cast" and attr.name == "to" and attr.i == _FP16:
                attr.i = _FP32
                changed += 1
            elif attr.type == onnx.AttributeProto.TENSOR and attr.t.data_type == _FP16:
                _tensor_to_fp32(attr.t)
                changed += 1
            elif attr.type == onnx.AttributeProto.GRAPH:
                changed += _convert_graph(attr.g)
            elif attr.type == onnx.AttributeProto.GRAPHS:
                changed += sum(_convert_graph(g) for g in attr.graphs)
    return changed


def _topological_order(graph: onnx.GraphProto) -> None:
    """Sort nodes so every input is produced before use (fp16 converters append their
    casts at the end of the node list, which onnx.checker rejects)."""
    ready = {i.name for i in graph.input} | {t.name for t in graph.initializer} | {""}
    pending = list(graph.node)
    ordered: list[onnx.NodeProto] = []
    while pending:
        rest = [n for n in pending if not all(i in ready for i in n.input)]
        done = [n for n in pending if all(i in ready for i in n.input)]
        if not done:  # a cycle or an input from an outer scope: keep the original order
            ordered += rest
            break
        for n in done:
            ready.update(n.output)
        ordered += done
        pending = rest
    del graph.node[:]
    graph.node.extend(ordered)


def _drop_noop_casts(model: onnx.ModelProto) -> int:
    """Turn float -> float Casts (what the fp16 casts become) into Identity nodes, which
    onnxruntime removes before fusing; left as Casts they cost about 5 ms per person on
    the CPU machine (docs/performance.md). Returns how many were changed."""
    inferred = onnx.shape_inference.infer_shapes(model)
    g = inferred.graph
    types = {v.name: v.type.tensor_type.elem_type for v in [*g.value_info, *g.input, *g.output]}
    types.update({t.name: t.data_type for t in model.graph.initializer})
    changed = 0
    for node in model.graph.node:
        if node.op_type != "Cast" or types.get(node.input[0]) != _FP32:
            continue
        if any(a.name == "to" and a.i == _FP32 for a in node.attribute):
            node.op_type = "Identity"
            del node.attribute[:]
            changed += 1
    return changed


def convert_fp16_to_fp32(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy of ``model`` with every float16 weight, constant, cast and type made float32."""
    out = onnx.ModelProto()
    out.CopyFrom(model)
    _convert_graph(out.graph)
    _topological_order(out.graph)
    _drop_noop_casts(out)
    onnx.checker.check_model(out)
    return out


def _atomic_save(model: onnx.ModelProto, dest: Path) -> None:
    fd, tmp = tempfile.mkstemp(prefix=dest.name + ".", suffix=".tmp", dir=dest.parent)
    os.close(fd)
    try:
        onnx.save(model, tmp)
        os.replace(tmp, dest)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _user_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(Path.home(), ".cache")
    return Path(base) / "instanthmr"


def fp32_cache_path(source: str | os.PathLike[str], digest: str | None = None) -> Path:
    """Where the fp32 copy of ``source`` is cached: beside it, named by the source hash."""
    src = Path(source)
    digest = digest or file_sha256(src)
    return src.with_name(f"{src.stem}.fp32-{digest[:16]}.onnx")


def ensure_fp32(source: str | os.PathLike[str]) -> Path:
    """Path to an fp32 version of ``source``: the source itself if it has no fp16 weights,
    else a cached conversion (made once, reused while the source's hash is unchanged)."""
    src = Path(source)
    model = load_onnx(src)
    if not has_fp16_weights(model):
        return src
    digest = file_sha256(src)
    beside = fp32_cache_path(src, digest)
    candidates = [beside, _user_cache_dir() / beside.name]
    if any(part.startswith("models--") for part in src.parts):
        candidates = candidates[1:]  # never write into the Hugging Face Hub's own cache
    for cached in candidates:
        if cached.is_file():
            return cached
    converted = convert_fp16_to_fp32(model)
    for cached in candidates:
        try:
            cached.parent.mkdir(parents=True, exist_ok=True)
            _atomic_save(converted, cached)
        except OSError as exc:
            log.info("cannot write fp32 cache at %s (%s); trying the next location", cached, exc)
            continue
        log.info("converted fp16 model %s to fp32 for the CPU provider: %s", src, cached)
        return cached
    raise OSError(f"could not write an fp32 copy of {src} to any of {candidates}")
