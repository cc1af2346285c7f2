"""Which file a provider runs for a precision, and fp16 -> fp32 conversion for the CPU.

:func:`choose_file` maps ``precision`` (``auto``, ``fp32``, ``fp16``, ``int8``) and the
provider to a file: ``auto`` takes the int8 sibling (``<stem>.int8.onnx``, made by
``instanthmr quantize``) only on a provider where its stored report measured it faster and
its parity is within tolerance (:mod:`instanthmr.runtime.parity`); otherwise fp16 weights become
fp32 on the CPU provider and stay fp16 on GPU providers. ``int8`` refuses a quantised file
whose report is missing, stale or out of tolerance, naming the file and the error.

The released InstantHMR file has fp16 weights with float32 inputs and outputs. On the CPU
provider fp16 runs slower than fp32 because onnxruntime inserts casts around every op, so
such a model is converted to fp32 once and the result is cached next to the source file,
keyed by the source's SHA-256 (``<stem>.fp32-<hash16>.onnx``). Where that folder is not
writable, or is inside the Hugging Face Hub cache or the installed package (the shipped
stand-in), it goes to ``$XDG_CACHE_HOME/instanthmr``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, numpy_helper

from ..errors import ModelFileError
from ..fileio import atomic_path, file_sha256
from .parity import ParityError, check_int8, int8_path, is_quantized, report_of, speed_ratio

log = logging.getLogger(__name__)

_FP16 = TensorProto.FLOAT16
_FP32 = TensorProto.FLOAT
PRECISIONS: tuple[str, ...] = ("auto", "fp32", "fp16", "int8")
_CPU = "CPUExecutionProvider"
_TENSORRT = "TensorrtExecutionProvider"


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
        raise ModelFileError(
            f"{path} is not a readable ONNX model ({size} bytes): {problem}. The file may be "
            "truncated or empty (an interrupted download or export) or not an ONNX file; "
            "delete it and download or export it again."
        ) from cause
    return model


def check_model_file(value: str | os.PathLike[str] | None, flag: str) -> None:
    """Fail fast on a model file given by the user (``flag`` names the option in errors).

    Nothing to check for None, the released model's name or an ``hf://`` address. A path
    that does not exist raises FileNotFoundError; an ``.onnx`` file that is empty, truncated
    or not ONNX raises :class:`~instanthmr.errors.ModelFileError` (see :func:`load_onnx`).
    """
    if value is None or str(value).lower() == "instanthmr" or str(value).startswith("hf://"):
        return
    path = Path(value).expanduser()
    if not path.exists():
        raise FileNotFoundError(f"{flag} {value}: file not found")
    if path.is_file() and path.suffix.lower() == ".onnx":
        try:
            load_onnx(path)
        except ModelFileError as exc:
            raise ModelFileError(f"{flag} {exc}") from None


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


def save_model_atomic(
    model: onnx.ModelProto, dest: Path, *, mode_of: str | os.PathLike[str] | None = None
) -> None:
    """Write ``model`` to ``dest`` through a temporary file and a rename (never a half file);
    ``mode_of``: the source file whose permissions the copy keeps."""
    with atomic_path(dest, mode_of=mode_of) as tmp:
        onnx.save(model, str(tmp))


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
    package = Path(__file__).resolve().parents[1]
    if any(part.startswith("models--") for part in src.parts) or package in src.resolve().parents:
        candidates = candidates[1:]  # never write into the Hub's cache or the package itself
    for cached in candidates:
        if cached.is_file():
            return cached
    converted = convert_fp16_to_fp32(model)
    for cached in candidates:
        try:
            cached.parent.mkdir(parents=True, exist_ok=True)
            save_model_atomic(converted, cached, mode_of=src)  # readable as the source is
        except OSError as exc:
            log.info("cannot write fp32 cache at %s (%s); trying the next location", cached, exc)
            continue
        log.info("converted fp16 model %s to fp32 for the CPU provider: %s", src, cached)
        return cached
    raise OSError(f"could not write an fp32 copy of {src} to any of {candidates}")


@dataclass(frozen=True)
class FileChoice:
    """Which file a provider runs for a requested precision, and why (logged at load)."""

    path: Path
    precision: str  # fp32, fp16 or int8: what actually runs
    reason: str


def choose_file(source: Path, precision: str, provider: str) -> FileChoice:
    """The file ``provider`` runs for ``precision`` (see the module docstring).

    Raises:
        ParityError: ``int8`` with a quantised file whose report is missing, stale or
            out of tolerance.
        FileNotFoundError: ``int8`` and no quantised file (names the command to make it).
        ValueError: a precision this file cannot give (fp16 from fp32 weights off
            TensorRT; fp32/fp16 from an int8 file).
    """
    proto = load_onnx(source)
    fp16 = has_fp16_weights(proto)
    quantized = is_quantized(proto)
    report = report_of(proto) if quantized else None
    del proto
    if quantized:
        if precision in ("fp32", "fp16"):
            raise ModelFileError(
                f"{source} is an int8 model; for --precision {precision} pass its fp32/fp16 "
                "source file instead"
            )
        checked = check_int8(source, report)  # refuses a missing or failed report
        return FileChoice(source, "int8", _speed_note(checked, provider))
    if precision == "int8":
        candidate = int8_path(source)
        if not candidate.is_file():
            raise FileNotFoundError(
                f"--precision int8: no quantised file for {source} (looked for {candidate}). "
                f"Make it with `instanthmr quantize --model {source}`"
            )
        quant = load_onnx(candidate)
        checked = check_int8(candidate, report_of(quant), file_sha256(source))
        return FileChoice(candidate, "int8", _speed_note(checked, provider))
    if precision == "auto":
        picked = _auto_int8(source, provider)
        if picked is not None:
            return picked
    if precision == "fp16":
        if fp16 or provider == _TENSORRT:
            how = "fp16 weights as exported" if fp16 else "TensorRT fp16 engine"
            return FileChoice(source, "fp16", f"asked for fp16: {how}")
        raise ModelFileError(
            f"--precision fp16: {source} has fp32 weights and {provider} does not convert "
            "them; export an fp16 file (`tools/export_onnx.py --fp16`) or use tensorrt"
        )
    if fp16 and (precision == "fp32" or provider == _CPU):
        why = "asked for fp32" if precision == "fp32" else f"fp16 runs slower on {provider}"
        return FileChoice(ensure_fp32(source), "fp32", f"{why}: converted fp16 -> fp32")
    return FileChoice(source, "fp16" if fp16 else "fp32", "the file as exported")


def _auto_int8(source: Path, provider: str) -> FileChoice | None:
    """The int8 sibling for ``auto`` when it measured faster on ``provider``, else None."""
    candidate = int8_path(source)
    if provider != _CPU or not candidate.is_file():
        return None
    try:
        report = check_int8(candidate, report_of(load_onnx(candidate)), file_sha256(source))
    except ParityError as exc:
        log.warning("not using %s: %s", candidate.name, exc)
        return None
    ratio = speed_ratio(report, provider)
    if ratio is None or ratio >= 1.0:
        log.info("not using %s: it did not measure faster on %s (int8/fp32 = %s)",
                 candidate.name, provider, ratio)  # fmt: skip
        return None
    return FileChoice(candidate, "int8", _speed_note(report, provider))


def _speed_note(report: Mapping[str, Any], provider: str) -> str:
    ratio = speed_ratio(report, provider)
    if ratio is None:
        return f"int8 file with a parity report in tolerance; speed on {provider} not measured"
    return f"int8 measured {ratio:.2f}x the fp32 time on {provider} when it was made"
