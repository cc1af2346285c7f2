"""Export the InstantHMR network to ONNX in the release format (extra ``export``).

``export_hmr_onnx`` builds one of the project's named architectures
(:mod:`instanthmr.export.architectures`; ``released``, the published file's network, by
default), loads a checkpoint or draws a seeded random init, fuses the RepViT branches,
exports with opset 17 (inputs ``image``, ``cliff_cond``; the five contract outputs; dynamic
batch axis ``N``), stamps the metadata (contract version, source hash, random-init flag,
architecture name, parameter count, GFLOP per person, ``image_size`` and, for a
focal-aware export, ``cliff_focal``), and checks the file with ``onnx.checker`` and a
PyTorch-vs-onnxruntime parity run before it replaces anything at ``output``.

Parity is measured per output as the *relative error*
``max|torch - ort| / max(max|torch|, 1e-6)`` on random inputs (batch 2): fp32 files must stay
below 1e-4; fp16 files (fp16 weights, float32 I/O, like the release) below 2e-2. fp16 keeps
11 significant bits (unit round-off 4.9e-4); rounding every weight and the fp16 arithmetic
through ~40 layers gives about 1e-3 on this network, so 2e-2 leaves 20x headroom while a
broken graph (wrong op, wrong cast, swapped outputs) shows errors of order 1.

The verification runs its own onnxruntime CPU session on purpose: the project's ``Runtime``
converts fp16 weights to fp32 on CPU, which would hide a broken fp16 graph.
"""

from __future__ import annotations

import copy
import os
import time
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from instanthmr.export.architectures import DEFAULT_ARCHITECTURE
from instanthmr.fileio import atomic_write_bytes, file_sha256
from instanthmr.runtime.contract import (
    BATCH,
    CONTRACT_VERSION,
    HMR_INPUTS,
    HMR_OUTPUTS,
    META_ARCHITECTURE,
    META_CLIFF_FOCAL,
    META_CONTRACT_VERSION,
    META_GFLOP,
    META_IMAGE_SIZE,
    META_PARAMS,
    META_RANDOM_INIT,
    META_SOURCE_HASH,
)

from ..errors import UserError

FP32_TOLERANCE = 1e-4
FP16_TOLERANCE = 2e-2
MIN_OPSET = 17  # LayerNormalization is a single ONNX op from opset 17
MAX_OPSET = 20  # the TorchScript exporter's highest opset
PARITY_BATCH = 2
_EPS = 1e-6
_LIST_LIMIT = 20


class CheckpointError(UserError, ValueError):
    """A checkpoint does not fit the project's InstantHMR definition."""


class ParityError(RuntimeError):
    """The exported graph disagrees with the PyTorch model beyond the tolerance."""


@dataclass(frozen=True)
class ExportReport:
    """What an export wrote and how well it matched PyTorch.

    ``max_rel_error`` holds the relative error per output of the written file against
    PyTorch fp32; ``fp32_max_rel_error`` the same for the fp32 graph (equal to
    ``max_rel_error`` when ``fp16`` is False). Both are empty when ``check=False``.
    """

    path: Path
    params: int
    gflop: float
    fp16: bool
    architecture: str
    image_size: int
    cliff_focal: bool
    random_init: bool
    source_hash: str
    opset: int
    tolerance: float
    max_rel_error: dict[str, float] = field(default_factory=dict)
    fp32_max_rel_error: dict[str, float] = field(default_factory=dict)
    size_bytes: int = 0
    seconds: float = 0.0

    def summary(self) -> str:
        """A few human-readable lines: source, size, compute, parity."""
        kind = "fp16 weights, float32 I/O" if self.fp16 else "fp32"
        cliff = "focal-aware CLIFF (cliff_focal)" if self.cliff_focal else "pixel CLIFF"
        lines = [
            f"wrote {self.path} ({self.size_bytes / 1e6:.1f} MB, {kind}, opset {self.opset}) "
            f"in {self.seconds:.1f} s",
            f"architecture: {self.architecture} ({cliff})",
            f"source: {self.source_hash}",
            f"params: {self.params / 1e6:.2f} M, {self.gflop:.2f} GFLOP per person at "
            f"{self.image_size} px",
        ]
        if self.fp16 and self.fp32_max_rel_error:
            lines.append("parity fp32 graph vs PyTorch: " + _fmt(self.fp32_max_rel_error))
        if self.max_rel_error:
            lines.append(
                f"parity written file vs PyTorch (tolerance {self.tolerance:g}): "
                + _fmt(self.max_rel_error)
            )
        else:
            lines.append("parity: not checked (check=False)")
        return "\n".join(lines)


def _fmt(errors: Mapping[str, float]) -> str:
    return ", ".join(f"{k} {v:.2e}" for k, v in errors.items())


def relative_errors(reference: Mapping[str, Any], actual: Mapping[str, Any]) -> dict[str, float]:
    """``max|ref - act| / max(max|ref|, 1e-6)`` per output name (arrays as numpy)."""
    import numpy as np

    out = {}
    for name, ref in reference.items():
        ref = np.asarray(ref, dtype=np.float64)
        act = np.asarray(actual[name], dtype=np.float64)
        if ref.shape != act.shape:
            raise ParityError(f"output {name!r}: shape {act.shape} != PyTorch {ref.shape}")
        out[name] = float(np.abs(ref - act).max() / max(float(np.abs(ref).max()), _EPS))
    return out


def load_checkpoint(model: Any, checkpoint: Path) -> None:
    """Strictly load ``checkpoint`` into the un-fused ``model`` (or a fused one, see below).

    Accepts a raw state_dict or one nested under ``"state_dict"`` or ``"model"``; a
    ``"module."`` prefix (DataParallel) is stripped. A state_dict saved from an already
    re-parameterised model is accepted too: the model is fused first. Raises
    :class:`CheckpointError` listing missing, unexpected and wrongly shaped keys.
    """
    import torch

    from instanthmr.export.model import reparameterize

    try:
        obj = torch.load(checkpoint, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types here (pickle, zip, weights-only)
        raise CheckpointError(
            f"cannot read checkpoint {checkpoint}: {exc}\n"
            "Expected a file written by torch.save(model.state_dict(), path)."
        ) from exc
    for key in ("state_dict", "model"):
        if isinstance(obj, Mapping) and isinstance(obj.get(key), Mapping):
            obj = obj[key]
            break
    if not isinstance(obj, Mapping) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items()
    ):
        raise CheckpointError(
            f"checkpoint {checkpoint} holds no state_dict (a mapping of names to tensors, "
            "raw or under 'state_dict'/'model')"
        )
    state = dict(obj)
    if state and all(k.startswith("module.") for k in state):
        state = {k[len("module."):]: v for k, v in state.items()}
    expected = model.state_dict()
    if set(state) != set(expected):
        fused = reparameterize(copy.deepcopy(model)).state_dict()
        if set(state) == set(fused):
            reparameterize(model)
            expected = fused
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    shapes = sorted(
        f"{k}: checkpoint {tuple(state[k].shape)}, model {tuple(expected[k].shape)}"
        for k in set(state) & set(expected)
        if state[k].shape != expected[k].shape
    )
    problems = []
    for title, items in (("missing keys", missing), ("unexpected keys", unexpected),
                         ("shape mismatches", shapes)):
        if items:
            shown = "\n".join(f"    {i}" for i in items[:_LIST_LIMIT])
            extra = len(items) - _LIST_LIMIT
            more = f"\n    ... and {extra} more" if extra > 0 else ""
            problems.append(f"  {len(items)} {title}:\n{shown}{more}")
    if problems:
        raise CheckpointError(
            f"checkpoint {checkpoint} does not fit the InstantHMR architecture "
            f"{model.arch.name!r} (instanthmr/export/nets.py):\n" + "\n".join(problems)
            + "\nUse a state_dict of this architecture (the released instanthmr.pth is "
            "'released'), or pick the architecture it was trained as (--arch)."
        )
    model.load_state_dict(state, strict=True)


def _torch_outputs(model: Any, feeds: Mapping[str, Any]) -> dict[str, Any]:
    import torch

    with torch.no_grad():
        outs = model(*(torch.from_numpy(feeds[s.name]) for s in HMR_INPUTS))
    return {spec.name: t.numpy() for spec, t in zip(HMR_OUTPUTS, outs, strict=True)}


def _ort_outputs(model_bytes: bytes, feeds: Mapping[str, Any]) -> dict[str, Any]:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    session = ort.InferenceSession(model_bytes, opts, providers=["CPUExecutionProvider"])
    names = [spec.name for spec in HMR_OUTPUTS]
    return dict(zip(names, session.run(names, dict(feeds)), strict=True))


def _check(kind: str, errors: Mapping[str, float], tolerance: float) -> None:
    bad = {k: v for k, v in errors.items() if not v < tolerance}  # NaN fails too
    if bad:
        raise ParityError(
            f"{kind} ONNX graph disagrees with PyTorch beyond relative error {tolerance:g}: "
            f"{_fmt(bad)} (all: {_fmt(errors)})"
        )


def _export_fp32(model: Any, opset: int) -> bytes:
    """TorchScript exporter: it writes opset 17 directly; the dynamo exporter in torch 2.14
    starts at opset 18 and its down-conversion to 17 fails on this graph."""
    import io

    import torch

    from instanthmr.export.model import example_inputs

    buffer = io.BytesIO()
    names = [s.name for s in HMR_INPUTS] + [s.name for s in HMR_OUTPUTS]
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
        torch.onnx.export(
            model,
            example_inputs(PARITY_BATCH, image_size=model.arch.image_size),
            buffer,
            input_names=[s.name for s in HMR_INPUTS],
            output_names=[s.name for s in HMR_OUTPUTS],
            opset_version=opset,
            dynamic_axes={name: {0: BATCH} for name in names},
            do_constant_folding=True,
            dynamo=False,
        )
    return buffer.getvalue()


def _to_fp16(model_proto: Any) -> Any:
    """fp16 weights and compute, float32 graph inputs/outputs (Casts at the boundary)."""
    from onnxruntime.transformers.float16 import convert_float_to_float16
    from onnxruntime.transformers.onnx_model import OnnxModel

    converted = OnnxModel(convert_float_to_float16(model_proto, keep_io_types=True))
    # The converter appends the boundary Casts at the end of the node list; onnxruntime
    # accepts that, but the ONNX checker (and other tools) need topological order.
    converted.topological_sort(is_deterministic=True)
    return converted.model


def export_hmr_onnx(
    output: str | os.PathLike[str],
    *,
    checkpoint: str | os.PathLike[str] | None = None,
    random_init: bool = False,
    fp16: bool = False,
    opset: int = 17,
    seed: int = 0,
    check: bool = True,
    verbose: bool = False,
    arch: str = DEFAULT_ARCHITECTURE,
    image_size: int | None = None,
    cliff_focal: bool = False,
) -> ExportReport:
    """Export InstantHMR to ``output`` and return an :class:`ExportReport`.

    Exactly one of ``checkpoint`` (a ``.pth`` state_dict) and ``random_init=True`` (seeded
    by ``seed``; real shapes and compute, meaningless poses) must be given. ``arch`` names
    the architecture (``released``, the default and the published file's network;
    ``card``; ``hgnetv2-b0``), ``image_size`` the crop size (default the architecture's
    224; written as metadata ``image_size``), ``cliff_focal`` marks a network trained on
    the focal-aware CLIFF vector (metadata ``cliff_focal``; the graph is the same). ``fp16``
    writes fp16 weights with float32 I/O. ``check`` runs the onnxruntime parity check (inputs
    drawn with ``seed``) and raises :class:`ParityError` beyond tolerance. The file is
    written to a temporary name beside ``output`` and renamed only when everything passed,
    so an existing file is never replaced by a failed export. ``verbose`` prints progress.
    """
    import onnx

    from instanthmr.export.model import (
        build_model,
        count_flops,
        count_params,
        example_inputs,
        is_reparameterized,
        reparameterize,
    )

    start = time.perf_counter()
    say = print if verbose else (lambda *_: None)
    if (checkpoint is None) == (not random_init):
        raise ValueError(
            "give exactly one of checkpoint=PATH (a trained .pth) or random_init=True "
            "(meaningless poses, for tests and timing)"
        )
    if not isinstance(opset, int) or not MIN_OPSET <= opset <= MAX_OPSET:
        raise ValueError(f"opset must be an int in [{MIN_OPSET}, {MAX_OPSET}], got {opset!r}")
    output = Path(output)
    if output.is_dir():
        raise ValueError(f"output {output} is a directory; give a file path such as model.onnx")

    model = build_model(seed, arch, image_size)
    size = model.arch.image_size
    if checkpoint is not None:
        ckpt = Path(checkpoint)
        if not ckpt.is_file():
            raise FileNotFoundError(f"checkpoint {ckpt} not found")
        source_hash = file_sha256(ckpt)
        load_checkpoint(model, ckpt)
        say(f"loaded {ckpt} (sha256 {source_hash[:12]}...)")
    else:
        source_hash = f"random-init:seed={seed}"
        say(f"random init, seed {seed}: poses from this model are meaningless")
    model.eval()
    if not is_reparameterized(model):
        reparameterize(model)
    params, gflop = count_params(model), count_flops(model)

    proto = onnx.load_from_string(_export_fp32(model, opset))
    fp32_errors: dict[str, float] = {}
    errors: dict[str, float] = {}
    image, cliff = example_inputs(PARITY_BATCH, seed=seed + 1, image_size=size)
    feeds = {"image": image.numpy(), "cliff_cond": cliff.numpy()}
    reference = _torch_outputs(model, feeds) if check else {}
    if check:
        fp32_errors = relative_errors(reference, _ort_outputs(proto.SerializeToString(), feeds))
        _check("fp32", fp32_errors, FP32_TOLERANCE)
        errors = fp32_errors
    if fp16:
        proto = _to_fp16(proto)
    props = {
        META_CONTRACT_VERSION: CONTRACT_VERSION,
        META_SOURCE_HASH: source_hash,
        META_RANDOM_INIT: "true" if checkpoint is None else "false",
        META_ARCHITECTURE: model.arch.name,
        META_PARAMS: str(params),
        META_GFLOP: f"{gflop:.3f}",
        META_IMAGE_SIZE: str(size),
    }
    if cliff_focal:
        props[META_CLIFF_FOCAL] = "true"
    onnx.helper.set_model_props(proto, props)
    onnx.checker.check_model(proto, full_check=True)
    data = proto.SerializeToString()
    if fp16 and check:
        errors = relative_errors(reference, _ort_outputs(data, feeds))
        _check("fp16", errors, FP16_TOLERANCE)
    atomic_write_bytes(output, data)
    report = ExportReport(
        path=output,
        params=params,
        gflop=gflop,
        fp16=fp16,
        architecture=model.arch.name,
        image_size=size,
        cliff_focal=bool(cliff_focal),
        random_init=checkpoint is None,
        source_hash=source_hash,
        opset=opset,
        tolerance=FP16_TOLERANCE if fp16 else FP32_TOLERANCE,
        max_rel_error=errors,
        fp32_max_rel_error=fp32_errors,
        size_bytes=output.stat().st_size,
        seconds=time.perf_counter() - start,
    )
    say(report.summary())
    return report
