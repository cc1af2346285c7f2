"""Int8 quantisation of the HMR model and the RF-DETR export, with measured parity and speed.

Only ``onnxruntime.quantization`` and ``onnx`` are used (no torch), so this runs on the
released weights on any machine: ``instanthmr quantize --model instanthmr.onnx``.

The recipe, and the pitfalls it works around (``docs/performance.md``, "Int8"):

1. An fp16 file is converted to fp32 first (:func:`instanthmr.runtime.precision.ensure_fp32`).
2. The graph is saved once through onnxruntime's optimiser (``extended`` level, with the
   fusions whose contrib ops the quantiser cannot quantise turned off): weights become plain
   initializers (``quantize_dynamic`` otherwise fails with "Expected ... to be an
   initializer") and Gelu / LayerNorm are fused, so they do not end up as a dozen
   float ops between QuantizeLinear/DequantizeLinear pairs that block the fusion later.
3. onnxruntime's quantisation pre-processing (symbolic shape inference) fails on this graph,
   so it is skipped: ONNX shape inference runs, and the outputs of the fused contrib ops,
   which it cannot type, are declared float so the calibrator records their ranges.
4. Static QDQ: uint8 activations, int8 per-channel weights, only Conv / MatMul / Gemm
   quantised, MinMax ranges from calibration frames of real footage (``vtest.avi`` beside
   the checkout, or the embedded sample clip). ``dynamic`` (weights only) is available and
   ``auto`` keeps whichever is faster among those within tolerance. For the HMR model the
   output heads stay in float (:func:`output_heads`: the weight layers between the last
   residual join of the decoder and the outputs; a few percent of the compute): quantised,
   the released network's 70 per-query 3D heads missed the 3D tolerance (joints_3d p99
   50.8 mm against 40 on random weights; 13.5 mm with the heads in float).
5. Parity against the fp32 file on held-out frames (:mod:`instanthmr.runtime.parity`) and the speed
   of both on this machine, measured interleaved, are written into the int8 file's metadata.
"""

from __future__ import annotations

import datetime as _dt
import logging
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper
from onnxruntime.quantization import (
    CalibrationDataReader,
    QuantFormat,
    QuantType,
    quantize_dynamic,
    quantize_static,
)

from ..errors import ModelFileError, OptionError
from ..geometry import (
    cliff_vectors,
    crop_images,
    default_focal,
    focal_cliff_vectors,
    normalize_crops,
    square_crops,
)
from ..sources.base import SourceError
from . import parity as P  # noqa: N812
from .contract import (
    CROP_SIZE,
    META_IMAGE_SIZE,
    META_RANDOM_INIT,
    cliff_focal_flag,
    parse_image_size,
)
from .precision import (
    ensure_fp32,
    file_sha256,
    has_fp16_weights,
    load_onnx,
    save_model_atomic,
)
from .session import CPU, ModelSession, Runtime

log = logging.getLogger(__name__)

METHODS = ("auto", "static", "dynamic")
QUANT_OPS = ["Conv", "MatMul", "Gemm"]
#: onnxruntime fusions that produce contrib ops the quantiser leaves in float (FusedConv,
#: FusedGemm, FusedMatMul...): turned off when the graph is saved for quantisation.
KEEP_UNFUSED = [
    "ConvActivationFusion", "ConvAddActivationFusion", "GemmActivationFusion",
    "MatMulActivationFusion", "MatMulAddFusion", "MatMulScaleFusion",
    "MatmulTransposeFusion", "AttentionFusion", "SkipLayerNormFusion", "BiasGeluFusion",
    "FastGeluFusion", "QuickGeluFusion", "BiasSoftmaxFusion", "EmbedLayerNormFusion",
]  # fmt: skip


@dataclass
class QuantizeResult:
    """The int8 file written and its report (also stored in the file's metadata)."""

    path: Path
    report: dict[str, Any]

    @property
    def within_tolerance(self) -> bool:
        """True when the parity met :data:`instanthmr.runtime.parity.TOLERANCES`."""
        return bool(self.report["within_tolerance"])


def default_video() -> Path:
    """Footage for calibration when none is given: the embedded sample clip (pass
    ``video=`` footage like the user's own for the best ranges)."""
    from ..sources.files import sample_video_path

    return sample_video_path()


def read_frames(video: str | os.PathLike[str], count: int) -> list[np.ndarray]:
    """``count`` RGB frames spread evenly over a video."""
    import cv2

    cap = cv2.VideoCapture(os.fspath(video))
    total = int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) or count
    cap.release()
    wanted = set(np.linspace(0, max(total - 1, 0), count).round().astype(int).tolist())
    from ..sources.files import open_source

    frames = []
    with open_source(video=video) as src:
        for i, frame in enumerate(src):
            if i in wanted:
                frames.append(frame.image)
            if len(frames) == len(wanted):
                break
    if len(frames) < count:
        raise SourceError(f"{video} gave {len(frames)} frames; {count} are needed")
    return frames


def person_boxes(size: tuple[int, int], n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` upright person-shaped xyxy boxes (height 30-90 % of the frame) inside a frame."""
    w_img, h_img = size
    h = rng.uniform(0.3, 0.9, n) * h_img
    w = h * rng.uniform(0.3, 0.6, n)
    cx = rng.uniform(w / 2, w_img - w / 2)
    cy = rng.uniform(h / 2, h_img - h / 2)
    return np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)


def hmr_samples(
    frames: list[np.ndarray], seed: int, crop: int = CROP_SIZE, cliff_focal: bool = False
) -> list[dict[str, np.ndarray]]:
    """One batch-1 HMR input per frame: a person-shaped crop of real footage (``crop`` px
    square) + its CLIFF vector (focal-aware at the default focal with ``cliff_focal``)."""
    rng = np.random.default_rng(seed)
    out = []
    for image in frames:
        size = (image.shape[1], image.shape[0])
        box = person_boxes(size, 1, rng)
        pixels = normalize_crops(crop_images(image, square_crops(box), crop))
        cliff = (focal_cliff_vectors(box, size, default_focal(size, True)) if cliff_focal
                 else cliff_vectors(box, size))  # fmt: skip
        out.append({"image": pixels, "cliff_cond": cliff.astype(np.float32)})
    return out


def detector_samples(frames: list[np.ndarray], resolution: int) -> list[dict[str, np.ndarray]]:
    """One detector input per frame, pre-processed like :class:`OnnxPersonDetector`."""
    from ..detector.base import INPUT_NAME
    from ..detector.decode import preprocess

    return [{INPUT_NAME: preprocess(f, resolution)} for f in frames]


def model_kind(model: onnx.ModelProto) -> tuple[str, int]:
    """``("hmr", S)`` (S: the crop size, from the image input or metadata ``image_size``) or
    ``("detector", R)`` from the graph inputs."""
    names = {i.name: i for i in model.graph.input}
    if {"image", "cliff_cond"} <= set(names):
        dims = names["image"].type.tensor_type.shape.dim
        meta = {p.key: p.value for p in model.metadata_props}
        if len(dims) == 4 and dims[2].dim_value > 0:
            return "hmr", int(dims[2].dim_value)
        return "hmr", parse_image_size(meta.get(META_IMAGE_SIZE, "")) or CROP_SIZE
    if "input" in names:
        dims = names["input"].type.tensor_type.shape.dim
        if len(dims) == 4 and dims[2].dim_value > 0:
            return "detector", int(dims[2].dim_value)
    raise ModelFileError(
        f"not an InstantHMR or RF-DETR export (inputs {sorted(names)}); expected image + "
        "cliff_cond (HMR) or a fixed (1, 3, R, R) 'input' (RF-DETR)"
    )


def _declare_contrib_outputs(model: onnx.ModelProto) -> onnx.ModelProto:
    """ONNX shape inference, plus a float type for contrib-op outputs it cannot infer."""
    model = onnx.shape_inference.infer_shapes(model)
    g = model.graph
    known = {v.name for v in (*g.value_info, *g.input, *g.output)} | {t.name for t in g.initializer}
    for node in g.node:
        if node.domain != "com.microsoft":
            continue
        for name in node.output:
            if name and name not in known:
                g.value_info.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, None))
                known.add(name)
    return onnx.shape_inference.infer_shapes(model)


def prepare_graph(runtime: Runtime, fp32_path: Path, work: Path) -> Path:
    """The fp32 graph saved once through onnxruntime's optimiser and typed (steps 2-3)."""
    optimised = runtime.save_optimized(
        fp32_path, work / "optimised.onnx", level="extended", disabled_optimizers=KEEP_UNFUSED
    )
    typed = _declare_contrib_outputs(onnx.load(os.fspath(optimised)))
    out = work / "prepared.onnx"
    onnx.save(typed, os.fspath(out))
    return out


class _Reader(CalibrationDataReader):
    """A calibration data reader over a list of feeds."""

    def __init__(self, feeds: list[dict[str, np.ndarray]]) -> None:
        self._feeds = feeds
        self._it: Iterator[dict[str, np.ndarray]] = iter(feeds)

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._it, None)

    def rewind(self) -> None:
        self._it = iter(self._feeds)


def output_heads(model: onnx.ModelProto) -> list[str]:
    """Names of the weight layers (Conv / MatMul / Gemm with a constant input) on the paths
    from the graph outputs back to the nearest residual join (an Add of two computed
    tensors): the output heads, which the HMR recipe keeps in float. A graph without a body
    before its heads (no residual join: every weight layer is a head) gives []: keeping all
    of it in float would leave nothing to quantise."""
    g = model.graph
    consts = {t.name for t in g.initializer}
    consts |= {o for n in g.node if n.op_type == "Constant" for o in n.output}
    producer = {o: n for n in g.node for o in n.output}
    found: list[str] = []
    seen: set[int] = set()
    stack = [o.name for o in g.output]
    while stack:
        node = producer.get(stack.pop())
        if node is None or id(node) in seen:
            continue
        seen.add(id(node))
        live = [i for i in node.input if i and i not in consts]
        if node.op_type in ("Add", "Sum") and len(live) > 1:
            continue  # a residual join: the heads end here
        if node.op_type in QUANT_OPS and len(live) < len([i for i in node.input if i]):
            found.append(node.name)
        stack.extend(live)
    weights = [n for n in g.node if n.op_type in QUANT_OPS
               and any(i in consts for i in n.input)]  # fmt: skip
    return found if len(found) < len(weights) else []


def _quantize(
    prepared: Path, out: Path, method: str, calib: list[dict[str, np.ndarray]],
    exclude: list[str],
) -> None:  # fmt: skip
    if method == "dynamic":
        # per-channel MatMul weights are refused by onnxruntime's DynamicQuantizeMatMul
        quantize_dynamic(prepared, out, op_types_to_quantize=["MatMul", "Gemm", "Conv"],
                         per_channel=False, weight_type=QuantType.QInt8,
                         nodes_to_exclude=exclude)  # fmt: skip
        return
    quantize_static(
        prepared, out, _Reader(calib), quant_format=QuantFormat.QDQ, op_types_to_quantize=QUANT_OPS,
        per_channel=True, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
        nodes_to_exclude=exclude,
    )  # fmt: skip


def _run_all(model: ModelSession, feeds: list[dict[str, np.ndarray]]) -> list[dict[str, Any]]:
    return [model.run(f) for f in feeds]


def measure_parity(
    kind: str, ref: ModelSession, test: ModelSession, feeds: list[dict[str, np.ndarray]]
) -> dict[str, Any]:
    """Parity metrics of ``test`` against ``ref`` on the same inputs."""
    a, b = _run_all(ref, feeds), _run_all(test, feeds)
    if kind == "hmr":
        cat = {k: np.concatenate([o[k] for o in a]) for k in a[0]}
        cat_b = {k: np.concatenate([o[k] for o in b]) for k in b[0]}
        return P.hmr_parity(cat, cat_b, crop=int(feeds[0]["image"].shape[-1]))
    from ..detector.base import BOXES_NAME, LOGITS_NAME

    pairs = [(o[BOXES_NAME], o[LOGITS_NAME]) for o in a]
    pairs_b = [(o[BOXES_NAME], o[LOGITS_NAME]) for o in b]
    return P.detector_parity(pairs, pairs_b)


def measure_speed(
    ref: ModelSession, test: ModelSession, feeds: dict[str, np.ndarray], rounds: int
) -> dict[str, Any]:
    """Median ms per call of both sessions, interleaved (ABAB...) after a warm-up each."""
    times: dict[str, list[float]] = {"fp32": [], "int8": []}
    for model in (ref, test):
        model.run(feeds)
    for _ in range(rounds):
        for key, model in (("fp32", ref), ("int8", test)):
            model.run(feeds)  # the other session's spinning threads settle first
            t0 = time.perf_counter()
            model.run(feeds)
            times[key].append((time.perf_counter() - t0) * 1e3)
    fp32, int8 = float(np.median(times["fp32"])), float(np.median(times["int8"]))
    from ..evaluation.speed import load_average, machine_info

    return {
        "fp32_ms": fp32, "int8_ms": int8, "ratio": int8 / fp32 if fp32 > 0 else None,
        "rounds": rounds, "cpu": machine_info()["cpu"], "load_average": load_average(),
    }  # fmt: skip


def quantize_model(
    source: str | os.PathLike[str],
    output: str | os.PathLike[str] | None = None,
    *,
    method: str = "static",
    video: str | os.PathLike[str] | None = None,
    calibration_frames: int = 8,
    eval_frames: int = 4,
    speed_rounds: int = 10,
    seed: int = 0,
    runtime: Runtime | None = None,
    echo: Callable[[str], None] = log.info,
) -> QuantizeResult:
    """Quantise an InstantHMR or RF-DETR ONNX file to int8 and store its parity report.

    Args:
        source: any contract-valid InstantHMR file (fp32 or fp16 weights, e.g. the release)
            or an RF-DETR export from ``tools/export_detector.py``.
        output: the int8 file (default ``<stem>.int8.onnx`` beside the source, where
            ``--precision auto|int8`` looks for it). Written atomically.
        method: ``static`` (QDQ, calibrated), ``dynamic`` (weights only) or ``auto`` (both;
            keeps the faster one among those within tolerance).
        video: calibration and evaluation footage (default :func:`default_video`).
        calibration_frames, eval_frames: frames for calibration and, disjoint from them,
            for the parity measurement.
        speed_rounds: interleaved fp32/int8 timing rounds (0: no speed measured).
        seed: seed of the person-shaped HMR crop boxes.
        runtime: a CPU :class:`Runtime` (default: a new one).
        echo: where progress lines go.
    """
    if method not in METHODS:
        raise OptionError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    if calibration_frames < 1 or eval_frames < 1:
        raise OptionError("calibration_frames and eval_frames must be >= 1")
    src = Path(source)
    if not src.is_file():
        raise FileNotFoundError(f"model file not found: {src}")
    proto = load_onnx(src)
    if P.is_quantized(proto):
        raise ModelFileError(f"{src} is already quantised; pass its fp32 or fp16 source")
    kind, resolution = model_kind(proto)
    source_meta = {p.key: p.value for p in proto.metadata_props}
    focal = cliff_focal_flag(source_meta)
    weights = "fp16" if has_fp16_weights(proto) else "fp32"
    del proto
    runtime = runtime or Runtime("cpu")
    out = Path(output) if output is not None else P.int8_path(src)
    clip = Path(video) if video is not None else default_video()
    frames = read_frames(clip, calibration_frames + eval_frames)
    odd = list(range(1, len(frames), 2))[:eval_frames]  # held-out frames interleave
    odd += [i for i in range(len(frames) - 1, -1, -1) if i not in odd][: eval_frames - len(odd)]
    held = [f for i, f in enumerate(frames) if i in odd]
    calib_frames = [f for i, f in enumerate(frames) if i not in odd]
    if kind == "hmr":
        calib = hmr_samples(calib_frames, seed, resolution, focal)
        evals = hmr_samples(held, seed + 1, resolution, focal)
    else:
        calib = detector_samples(calib_frames, resolution)
        evals = detector_samples(held, resolution)
    fp32_path = ensure_fp32(src)
    ref = runtime.load(fp32_path, precision="keep")
    echo(f"quantising {src.name} ({kind}, {weights} weights) with {len(calib)} calibration "
         f"frames from {clip.name}; parity on {len(evals)} other frames")  # fmt: skip
    methods = ["static", "dynamic"] if method == "auto" else [method]
    candidates = []
    with tempfile.TemporaryDirectory(prefix="instanthmr-quant-") as tmp:
        work = Path(tmp)
        prepared = prepare_graph(runtime, fp32_path, work)
        exclude = output_heads(onnx.load(os.fspath(prepared))) if kind == "hmr" else []
        failed: dict[str, str] = {}
        for m in methods:
            t0 = time.perf_counter()
            q_path = work / f"{m}.onnx"
            try:
                _quantize(prepared, q_path, m, calib, exclude)
                took = time.perf_counter() - t0
                test = runtime.load(q_path, precision="keep")
                par = measure_parity(kind, ref, test, evals)
            except Exception as exc:  # onnxruntime's quantiser and kernels raise many types
                if len(methods) == 1:
                    raise
                failed[m] = f"{type(exc).__name__}: {str(exc)[:300]}"
                echo(f"  {m}: failed ({failed[m][:160]})")
                continue
            bad = P.violations(kind, par)
            speed = measure_speed(ref, test, evals[0], speed_rounds) if speed_rounds else None
            ratio = f"{speed['ratio']:.2f}x fp32" if speed else "speed not measured"
            verdict = "OUT OF TOLERANCE: " + "; ".join(bad) if bad else "parity within tolerance"
            echo(f"  {m}: quantised in {took:.1f} s, {ratio}; {verdict}")
            candidates.append((m, q_path, par, bad, speed, took))
        if not candidates:  # auto: both methods failed; say why for each
            reasons = "; ".join(f"{k}: {v}" for k, v in failed.items())
            raise ModelFileError(f"cannot quantise {src.name}: every method failed ({reasons})")
        ok = [c for c in candidates if not c[3]] or candidates
        best = min(ok, key=lambda c: c[4]["ratio"] if c[4] else 0.0)
        m, q_path, par, bad, speed, took = best
        report = {
            "version": P.REPORT_VERSION, "kind": kind, "method": m,
            "recipe": {"format": "QDQ" if m == "static" else "dynamic",
                       "ops": QUANT_OPS, "activations": "uint8", "weights": "int8 per-channel",
                       "float_nodes": exclude},
            "source": {"name": src.name, "sha256": file_sha256(src), "weights": weights},
            "random_init": source_meta.get(META_RANDOM_INIT, "").lower() == "true"
            or source_meta.get("random_init", "").lower() == "true",
            "calibration": {"video": clip.name, "frames": len(calib), "eval_frames": len(evals)},
            "parity": par, "tolerance": P.TOLERANCES[kind], "within_tolerance": not bad,
            "violations": bad, "speed": {CPU: speed} if speed else {},
            "quantize_seconds": round(took, 1),
            "tried": {**{c[0]: {"violations": c[3], "ratio": c[4]["ratio"] if c[4] else None}
                         for c in candidates}, **{k: {"error": v} for k, v in failed.items()}},
            "onnxruntime": _ort_version(),
            "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        }  # fmt: skip
        model = onnx.load(os.fspath(q_path))
        keep = {p.key: p.value for p in model.metadata_props}
        keep.update(source_meta)
        helper.set_model_props(model, keep)
        P.set_report(model, report)
        save_model_atomic(model, out, mode_of=src)  # the source's permissions
    if report["random_init"]:
        echo("NOTE: random-init weights have other value ranges than trained ones: these parity "
             "figures are a plumbing check, not an accuracy claim.")  # fmt: skip
    echo(f"wrote {out} ({m}); parity: " + ", ".join(f"{k} {v:.3g}" for k, v in par.items()
                                                     if isinstance(v, float)))  # fmt: skip
    return QuantizeResult(out, report)


def _ort_version() -> str:
    import onnxruntime

    return onnxruntime.__version__
