"""Int8 parity: how far a quantised model is from its fp32 source, and the report stored in it.

``instanthmr quantize`` (:mod:`instanthmr.runtime.quantize`) writes a JSON report into the quantised
file's ONNX metadata under :data:`META_INT8_REPORT`. It holds the parity measured against the
fp32 source on the same real-footage inputs, the tolerances it was judged by, and the speed
of both files on the machine that made it. :func:`check_int8` reads it back when a model is
loaded with ``precision="int8"`` and refuses a file whose report is missing or out of
tolerance, naming the file and the measured error.

Metrics:

- HMR: per-joint Euclidean error of ``joints_2d`` in pixels of the 224x224 crop (normalised
  crop coordinates span 2 units over 224 px, so 1 unit = 112 px) and of ``joints_3d`` in
  millimetres; max and 99th percentile over all persons and joints.
- Detector: for the confident top-k fp32 detections of each frame (by person score), the
  IoU of the best-matching int8 detection among the int8 top-k (greedy one-to-one by IoU),
  and the rank-wise difference of the top-k person scores. Matching by box, not by query
  index: the two-stage RF-DETR picks its queries by a top-k over encoder scores, so a small
  change reorders them. See :func:`detector_parity` for what happens without confident
  detections (random-init weights).

With random-init weights (the test and benchmark exports) the value ranges differ from the
trained ones, so figures measured on them are a plumbing check, not an accuracy claim; the
report says ``random_init`` and the quantize command prints so.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import supervision as sv

from ..errors import UserError
from .contract import CROP_SIZE

META_INT8_REPORT = "instanthmr_int8_report"
REPORT_VERSION = 1
KINDS = ("hmr", "detector")

#: Limits an int8 file must meet to be used. Chosen so that the error stays well below the
#: scale of what the outputs are used for: a few pixels on the 224 crop (about 1-2 % of a
#: person's height) and a few centimetres in 3D; for the detector, boxes that still overlap
#: their fp32 counterparts and scores that do not cross a threshold by accident.
TOLERANCES: dict[str, dict[str, float]] = {
    "hmr": {
        "joints_2d_px_p99": 4.0,
        "joints_2d_px_max": 8.0,
        "joints_3d_mm_p99": 40.0,
        "joints_3d_mm_max": 80.0,
    },
    "detector": {
        "box_iou_mean": 0.8,
        "box_iou_min": 0.5,
        "score_diff_max": 0.1,
    },
}
_LOWER_IS_BETTER = {"joints_2d_px_p99", "joints_2d_px_max", "joints_3d_mm_p99",
                    "joints_3d_mm_max", "score_diff_max"}  # fmt: skip
_UNITS = {"px": " px", "mm": " mm"}
QUANT_OPS = frozenset({"QuantizeLinear", "DequantizeLinear", "DynamicQuantizeLinear",
                       "QLinearConv", "QLinearMatMul", "MatMulInteger", "ConvInteger",
                       "DynamicQuantizeMatMul", "MatMulIntegerToFloat", "QGemm"})  # fmt: skip


class ParityError(UserError, ValueError):
    """An int8 model file has no parity report, a stale one, or one out of tolerance."""


def is_quantized(model: onnx.ModelProto) -> bool:
    """True when the graph holds quantisation nodes (QDQ or integer operators)."""
    return any(n.op_type in QUANT_OPS for n in model.graph.node)


def int8_path(source: str | os.PathLike[str]) -> Path:
    """Where ``instanthmr quantize`` writes the int8 version of ``source`` by default."""
    src = Path(source)
    return src.with_name(f"{src.stem}.int8.onnx")


def _pctl(values: np.ndarray, q: float) -> float:
    return float(np.percentile(values, q)) if values.size else 0.0


def hmr_parity(
    ref: Mapping[str, np.ndarray], test: Mapping[str, np.ndarray], crop: int = CROP_SIZE
) -> dict[str, float]:
    """Joint errors of ``test`` against ``ref`` (HMR output dicts on the same inputs);
    2D errors in pixels of the model's ``crop``-pixel square crop."""
    px_per_unit = crop / 2.0
    e2 = np.linalg.norm((test["joints_2d"] - ref["joints_2d"]) * px_per_unit, axis=-1).ravel()
    e3 = np.linalg.norm((test["joints_3d"] - ref["joints_3d"]) * 1000.0, axis=-1).ravel()
    cam = np.linalg.norm((test["cam_trans"] - ref["cam_trans"]) * 1000.0, axis=-1).ravel()
    return {
        "joints_2d_px_max": float(e2.max(initial=0.0)),
        "joints_2d_px_p99": _pctl(e2, 99),
        "joints_3d_mm_max": float(e3.max(initial=0.0)),
        "joints_3d_mm_p99": _pctl(e3, 99),
        "cam_trans_mm_max": float(cam.max(initial=0.0)),
        "persons": len(ref["joints_2d"]),
    }


def _cxcywh_to_xyxy(b: np.ndarray) -> np.ndarray:
    cx, cy, w, h = (b[..., i] for i in range(4))
    w, h = np.maximum(w, 0), np.maximum(h, 0)
    return np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=-1)


def _person_scores(logits: np.ndarray) -> np.ndarray:
    from ..detector.base import PERSON_CLASS_ID

    x = np.clip(logits[..., PERSON_CLASS_ID].astype(np.float64), -88, 88)
    return 1.0 / (1.0 + np.exp(-x))


def detector_parity(
    ref: list[tuple[np.ndarray, np.ndarray]],
    test: list[tuple[np.ndarray, np.ndarray]],
    top_k: int = 10,
    min_score: float = 0.3,
) -> dict[str, float | int | None]:
    """Box IoU and score difference of the top person detections, frame by frame.

    ``ref`` and ``test`` hold one raw ``(dets, labels)`` pair per frame (the rfdetr
    export's outputs: (1, Q, 4) normalised cxcywh and (1, Q, C) logits).

    - ``score_diff_max``: largest difference between the k-th best fp32 and the k-th best
      int8 person score, for k = 1..top_k (independent of which query holds them).
    - ``box_iou_*``: each fp32 detection among the top_k that scores at least ``min_score``
      is matched to the int8 top_k detection of highest IoU (greedy, one-to-one); the
      matched person scores give ``matched_score_diff_max``. When no fp32 detection reaches
      ``min_score`` (random-init weights score every query about equally, so which anchors
      win is a tie-break), the box metrics are None and ``compared`` is 0.
    """
    ious: list[float] = []
    matched: list[float] = []
    ranked: list[float] = []
    for (rb, rl), (tb, tl) in zip(ref, test, strict=True):
        rs, ts = _person_scores(rl[0]), _person_scores(tl[0])
        r_top = np.argsort(-rs, kind="stable")[:top_k]
        t_top = np.argsort(-ts, kind="stable")[:top_k]
        ranked.extend(np.abs(rs[r_top] - ts[t_top]).tolist())
        r_top = r_top[rs[r_top] >= min_score]
        if not len(r_top):
            continue
        iou = sv.box_iou_batch(_cxcywh_to_xyxy(rb[0, r_top]), _cxcywh_to_xyxy(tb[0, t_top]))
        free = np.ones(len(t_top), dtype=bool)
        for i in range(len(r_top)):  # greedy one-to-one, best fp32 detection first
            j = int(np.argmax(np.where(free, iou[i], -1.0)))
            free[j] = False
            ious.append(float(iou[i, j]))
            matched.append(abs(float(rs[r_top[i]] - ts[t_top[j]])))
    iou_arr = np.asarray(ious)
    return {
        "box_iou_mean": float(iou_arr.mean()) if iou_arr.size else None,
        "box_iou_min": float(iou_arr.min()) if iou_arr.size else None,
        "matched_score_diff_max": float(max(matched)) if matched else None,
        "score_diff_max": float(max(ranked, default=0.0)),
        "compared": int(iou_arr.size),
        "frames": len(ref),
        "top_k": int(top_k),
        "min_score": float(min_score),
    }


def violations(kind: str, metrics: Mapping[str, float]) -> list[str]:
    """Human-readable list of the metrics outside :data:`TOLERANCES` (empty: all within)."""
    if kind not in TOLERANCES:
        raise ValueError(f"unknown model kind {kind!r}; choose one of {', '.join(KINDS)}")
    out = []
    for key, limit in TOLERANCES[kind].items():
        value = metrics.get(key)
        unit = next((u for k, u in _UNITS.items() if f"_{k}_" in key), "")
        if value is None and key.startswith("box_iou") and metrics.get("compared") == 0:
            continue  # no confident fp32 detection to compare boxes on (see detector_parity)
        if value is None or not np.isfinite(value):
            out.append(f"{key} was not measured")
        elif key in _LOWER_IS_BETTER and value > limit:
            out.append(f"{key} = {value:.3g}{unit} (limit {limit:g}{unit})")
        elif key not in _LOWER_IS_BETTER and value < limit:
            out.append(f"{key} = {value:.3g} (must be at least {limit:g})")
    return out


def read_report(path: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The int8 report stored in an ONNX file's metadata, or None when it has none."""
    model = onnx.load(os.fspath(path), load_external_data=False)
    return report_of(model)


def report_of(model: onnx.ModelProto) -> dict[str, Any] | None:
    """The int8 report in a loaded model's metadata, or None."""
    raw = next((p.value for p in model.metadata_props if p.key == META_INT8_REPORT), None)
    if raw is None:
        return None
    try:
        report = json.loads(raw)
    except json.JSONDecodeError:
        return {"unreadable": raw[:200]}
    return report if isinstance(report, dict) else {"unreadable": raw[:200]}


def set_report(model: onnx.ModelProto, report: Mapping[str, Any]) -> None:
    """Store ``report`` (JSON) in the model's metadata, replacing an older one."""
    keep = [p for p in model.metadata_props if p.key != META_INT8_REPORT]
    del model.metadata_props[:]
    model.metadata_props.extend(keep)
    entry = model.metadata_props.add()
    entry.key = META_INT8_REPORT
    entry.value = json.dumps(dict(report), sort_keys=True)


def check_int8(
    path: str | os.PathLike[str],
    report: Mapping[str, Any] | None,
    source_sha256: str | None = None,
) -> Mapping[str, Any]:
    """Return the report of int8 file ``path`` if it may be used; else raise :class:`ParityError`.

    Refused: no report; an unreadable one; parity out of :data:`TOLERANCES` (the message
    names each measured error and its limit); or, when ``source_sha256`` is given, a report
    measured against another fp32 file (the int8 file is stale).
    """
    fix = f"make it again with `instanthmr quantize --model <the fp32/fp16 source of {path}>`"
    if report is None:
        raise ParityError(f"int8 model {path} has no parity report in its metadata; {fix}")
    kind = report.get("kind")
    parity = report.get("parity")
    if kind not in KINDS or not isinstance(parity, dict):
        raise ParityError(f"int8 model {path} has an unreadable parity report; {fix}")
    bad = violations(kind, parity)
    if bad:
        raise ParityError(
            f"int8 model {path} is out of tolerance against its fp32 source: "
            + "; ".join(bad) + f". Use --precision fp32, or {fix} with more calibration frames"
        )  # fmt: skip
    recorded = report.get("source", {}).get("sha256")
    if source_sha256 is not None and recorded != source_sha256:
        raise ParityError(
            f"int8 model {path} was measured against another source file "
            f"(sha256 {str(recorded)[:12]}..., this one is {source_sha256[:12]}...); {fix}"
        )
    return report


def speed_ratio(report: Mapping[str, Any], provider: str) -> float | None:
    """int8 ms / fp32 ms measured for ``provider`` when the file was made, or None."""
    entry = report.get("speed", {}).get(provider)
    if not isinstance(entry, dict):
        return None
    ratio = entry.get("ratio")
    return float(ratio) if isinstance(ratio, (int, float)) else None
