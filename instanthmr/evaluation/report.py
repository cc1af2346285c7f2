"""Evaluation reports: JSON (per sequence and overall) and a Markdown table.

A report names the model file, its SHA-256 and its ``random_init`` flag, and the options of
the run. A random-init model's report carries :data:`RANDOM_INIT_BANNER` in both forms.
Files are written atomically (temporary file, then rename).
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ..fileio import atomic_write_text, file_sha256

UNITS: dict[str, str] = {
    "mpjpe": "mm", "pa_mpjpe": "mm", "pve": "mm", "accel_error": "mm/frame^2",
    "w_mpjpe": "mm", "wa_mpjpe": "mm", "rte": "%", "jitter": "10 m/s^3", "foot_sliding": "mm",
    "AP": "%", "AP50": "%", "AP75": "%", "APm": "%", "APl": "%",
    "AR": "%", "AR50": "%", "AR75": "%", "ARm": "%", "ARl": "%",
    "precision": "%", "recall": "%", "f1": "%",
}  # fmt: skip
METRIC_ORDER = tuple(UNITS)
RANDOM_INIT_BANNER = (
    "RANDOM-INIT MODEL: these numbers are meaningless. The model (or detector) file records "
    "random weights (an export for plumbing and speed tests); the metrics below measure "
    "noise, not the method. Evaluate the released weights for accuracy."
)


def summarise(scored: Mapping[str, Any]) -> dict[str, Any]:
    """Means of one :func:`~instanthmr.evaluation.runner.score_sequence` result."""
    metrics = {k: float(np.mean(v)) for k, v in scored["values"].items() if len(v)}
    out = {k: v for k, v in scored.items() if k != "values"}
    out["metrics"] = _ordered(metrics)
    return out


def overall(scored: list[Mapping[str, Any]]) -> dict[str, Any]:
    """Pooled over sequences: per-frame values concatenated, then averaged (as WHAM and
    GVHMR do), counts summed, detection rates recomputed from the summed counts."""
    pooled: dict[str, list[np.ndarray]] = {}
    skipped: dict[str, str] = {}
    counts = {"tp": 0, "fp": 0, "fn": 0}
    totals = {"frames": 0, "persons": 0, "valid_person_frames": 0, "matched_person_frames": 0}
    for s in scored:
        for k, v in s["values"].items():
            pooled.setdefault(k, []).append(v)
        skipped.update(s.get("skipped", {}))
        for k in totals:
            totals[k] += int(s.get(k, 0))
        for k in counts:
            counts[k] += int(s.get("detection", {}).get(k, 0))
    metrics = {k: float(np.mean(np.concatenate(v))) for k, v in pooled.items()}
    metrics = {k: v for k, v in metrics.items() if math.isfinite(v)}
    tp, fp, fn = counts["tp"], counts["fp"], counts["fn"]
    det = {**counts,
           "precision": 100 * tp / (tp + fp) if tp + fp else float("nan"),
           "recall": 100 * tp / (tp + fn) if tp + fn else float("nan"),
           "f1": 100 * 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else float("nan")}  # fmt: skip
    for k in metrics:
        skipped.pop(k, None)
    return {**totals, "metrics": _ordered(metrics), "detection": det, "skipped": skipped}


def _ordered(metrics: Mapping[str, float]) -> dict[str, float]:
    known = [k for k in METRIC_ORDER if k in metrics]
    return {k: metrics[k] for k in known + sorted(set(metrics) - set(known))}


def model_entry(
    path: str | os.PathLike[str] | None,
    random_init: bool,
    detector: Any = None,
    model_kind: str = "instanthmr",
) -> dict[str, Any]:
    """The model's path, SHA-256, random-init flag and kind (:mod:`instanthmr.hmr.kinds`);
    with a ``detector`` object, its name, variant, backend, file and random-init flag too."""
    entry: dict[str, Any] = {"path": None if path is None else str(path),
                             "sha256": None if path is None else file_sha256(path),
                             "random_init": bool(random_init),
                             "model_kind": model_kind}  # fmt: skip
    if detector is not None:
        det_path = getattr(detector, "model_path", None)
        entry["detector"] = {
            "name": str(getattr(detector, "name", type(detector).__name__)),
            "variant": getattr(detector, "variant", None),
            "backend": getattr(detector, "backend", None),
            "path": None if det_path is None else str(det_path),
            "random_init": bool(getattr(detector, "random_init", False)),
        }
    return entry


def build_report(
    dataset: str,
    sequences: Mapping[str, Mapping[str, Any]],
    overall_entry: Mapping[str, Any],
    model: Mapping[str, Any],
    options: Mapping[str, Any],
) -> dict[str, Any]:
    """The JSON report: dataset, time, model, banner, options, per sequence, overall."""
    return {
        "dataset": dataset,
        "created_utc": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "model": dict(model),
        "banner": _banner(model),
        "options": dict(options),
        "units": {k: v for k, v in UNITS.items()},
        "sequences": {k: dict(v) for k, v in sequences.items()},
        "overall": dict(overall_entry),
    }


def _banner(model: Mapping[str, Any]) -> str | None:
    """The random-init banner, else the notice of a model that is not InstantHMR."""
    if _random(model):
        return RANDOM_INIT_BANNER
    from ..hmr.kinds import header_kind

    return header_kind(model).notice


def _random(model: Mapping[str, Any]) -> bool:
    return bool(model.get("random_init") or (model.get("detector") or {}).get("random_init"))


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return "n/a" if not math.isfinite(v) else f"{v:.2f}"
    return str(v)


def markdown(report: Mapping[str, Any]) -> str:
    """A Markdown rendering: banner, model, one row per sequence and an overall row."""
    lines = []
    if report.get("banner"):
        lines += [f"> **{report['banner']}**", ""]
    m = report["model"]
    lines += [
        f"# Evaluation: {report['dataset']}",
        "",
        f"Model: `{m.get('path')}` (sha256 `{(m.get('sha256') or '')[:16]}`, "
        f"random_init={m.get('random_init')}, model_kind={m.get('model_kind', 'instanthmr')})."
        f" Created {report['created_utc']}.",
        "",
    ]
    rows = {**report["sequences"], "**overall**": report["overall"]}
    names = [k for k in METRIC_ORDER if any(k in r.get("metrics", {}) for r in rows.values())]
    names += sorted({k for r in rows.values() for k in r.get("metrics", {})} - set(names))
    head = ["sequence", "frames", "persons", *[f"{k} ({UNITS.get(k, '')})" for k in names]]
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, r in rows.items():
        cells = [name, _fmt(r.get("frames", "")), _fmt(r.get("persons", ""))]
        cells += [_fmt(r.get("metrics", {}).get(k, float("nan"))) for k in names]
        lines.append("| " + " | ".join(cells) + " |")
    det = report["overall"].get("detection")
    if det and (det.get("tp", 0) + det.get("fp", 0) + det.get("fn", 0)):
        lines += [
            "",
            f"Detection (IoU >= {report['options'].get('iou', 0.5)}): precision "
            f"{_fmt(det['precision'])}%, recall {_fmt(det['recall'])}%, F1 "
            f"{_fmt(det['f1'])}% (TP {det['tp']}, FP {det['fp']}, FN {det['fn']}).",
        ]
    skipped = report["overall"].get("skipped", {})
    if skipped:
        lines += ["", "Not computed:"] + [f"- {k}: {v}" for k, v in skipped.items()]
    return "\n".join(lines) + "\n"


def _jsonable(x: Any) -> Any:
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, np.generic):
        x = x.item()
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, Path):
        return str(x)
    return x


def write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically (a temporary file in the same folder, renamed)."""
    atomic_write_text(path, text)


def write_report(
    report: Mapping[str, Any],
    json_path: str | os.PathLike[str],
    markdown_path: str | os.PathLike[str] | None = None,
) -> None:
    """Write the JSON report (NaN becomes null) and, when asked, its Markdown table."""
    write_text(Path(json_path), json.dumps(_jsonable(report), indent=2) + "\n")
    if markdown_path is not None:
        write_text(Path(markdown_path), markdown(report))
