"""Markdown tables of a quality report (the dict ``tools/quality.py`` writes as JSON)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from .live import REASON_GROUPS


def _f(value: Any, digits: int = 2) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return "n/a" if not math.isfinite(value) else f"{value:.{digits}f}"
    return str(value)


def _table(head: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return lines + [""]


def tracking_rows(stats: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """One row per run of :meth:`~.tracks.TrackStats.as_dict` figures."""
    head = ["run", "persons/frame (mean, median, max)", "untracked", "tracks",
            f"tracks < {next(iter(stats.values()))['short']} frames", "median length",
            "swaps", "takeovers", "breaks", "duplicate frames"]  # fmt: skip
    rows = [[label, f"{_f(s['persons_mean'])}, {_f(s['persons_median'], 0)}, {s['persons_max']}",
             s["untracked"], s["tracks"], s["short_tracks"], _f(s["length_median"], 0),
             s["swaps"], s["takeovers"], s["breaks"], s["duplicates"]]
            for label, s in stats.items()]  # fmt: skip
    return _table(head, rows)


def carry_rows(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """One row per :meth:`~.carried.CarryStats.as_dict`."""
    head = ["run", "detector frames", "carried boxes", "carried IoU median", "IoU p10",
            "no detection", "drift px median", "drift px p90", "drift / box height p90",
            "lost person-frames", "extra"]  # fmt: skip
    out = []
    for r in rows:
        out.append([r["label"], f"{r['detector_frames']}/{r['frames']}", r["carried_boxes"],
                    _f(r["carried_iou_median"]), _f(r["carried_iou_p10"]),
                    r["carried_unmatched"], _f(r["drift_px_median"], 1),
                    _f(r["drift_px_p90"], 1), _f(r["drift_rel_p90"], 3),
                    f"{r['lost']} ({100 * r['lost_share']:.1f} %)", r["extra"]])  # fmt: skip
    return _table(head, out)


def live_rows(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """One row per :meth:`~.live.DetectorRuns.as_dict`: the share of frames by reason."""
    head = ["run", "frames with a detector run", *REASON_GROUPS, "median latency (frames)"]
    out = []
    for r in rows:
        g = r["group_shares"]
        out.append([r["label"], f"{r['runs']}/{r['frames']} ({100 * r['share']:.1f} %)",
                    *(f"{100 * g[k]:.1f} %" for k in REASON_GROUPS),
                    _f(r["latency_median"], 0)])  # fmt: skip
    return _table(head, out)


def world_rows(w: Mapping[str, Any], fps: float) -> list[str]:
    """The camera, speed and foot-height figures of :meth:`~.world.WorldStats.as_dict`."""
    if not w["known_frames"]:
        return [f"World frame never known: {w['reason']}", ""]

    def spread(s: Mapping[str, Any], late: Mapping[str, Any], d: int) -> list[str]:
        return [_f(s["first"], d), _f(s["final"], d), f"{_f(s['min'], d)}..{_f(s['max'], d)}",
                _f(s["std"], d + 1), f"{_f(late['min'], d)}..{_f(late['max'], d)}"]  # fmt: skip

    head = ["", "first known", "final", "min..max (known frames)", "std", "min..max (last half)"]
    lines = _table(head, [["camera height (m)", *spread(w["height"], w["height_late"], 2)],
                          ["pitch (deg)", *spread(w["pitch"], w["pitch_late"], 1)]])  # fmt: skip
    first, frozen = w["first_known"], w["frozen_at"]
    state = "never frozen" if frozen is None else f"frozen at frame {frozen}"
    roll = _f(w["roll"]["final"], 1)
    lines += [f"Known from frame {first} ({first / fps:.1f} s), {state}; {w['inliers']} "
              f"inliers at the end; roll {roll} deg.", ""]  # fmt: skip
    rows = [[s["track_id"], s["frames"], _f(s["median"]), _f(s["net"])] for s in w["speeds"]]
    lines += _table(["track", "frames", "median speed (m/s)", "net speed (m/s)"], rows)

    def cm(key: str) -> str:
        return _f(100 * w[key], 1)

    lines += [f"Tracks walking at 0.8-1.8 m/s (median speed): {_f(100 * w['walking_share'], 0)} "
              f"%. Lowest real foot joint above the final ground plane: median "
              f"{cm('foot_height_median')} cm, p10 {cm('foot_height_p10')} cm, p90 "
              f"{cm('foot_height_p90')} cm; within 10 cm: {_f(100 * w['foot_within_10cm'], 0)} %.",
              ""]  # fmt: skip
    return lines


def markdown(report: Mapping[str, Any]) -> str:
    """Every section present in ``report`` as Markdown."""
    lines = [f"Clip: {report['video']}, {report.get('frames', '?')} frames.", ""]
    header = report.get("header") or {}
    if header:
        det = header.get("detector") or {}
        lines += [f"Model: {header.get('model_kind')} ({header.get('model_file')}); detector "
                  f"{det.get('name')}.", ""]  # fmt: skip
    if "tracking" in report:
        runs = {"stride 1": report["tracking"], **report.get("stride_tracking", {})}
        for i, t in enumerate(report.get("live_tracking", [])):
            runs[report["live"][i]["label"]] = t
        lines += ["## Tracking", "", *tracking_rows(runs)]
    if "stride" in report:
        lines += ["## Carried boxes", "", *carry_rows(report["stride"])]
    if "live" in report:
        lines += ["## Live mode", "", *live_rows(report["live"])]
        if "live_carry" in report:
            lines += carry_rows(report["live_carry"])
    if "world" in report:
        lines += ["## World", "", *world_rows(report["world"], report.get("fps", 10.0))]
    if "animation" in report:
        a = report["animation"]
        lines += ["## Animation", "", *_table(
            ["file", "reader", "joints", "frames", "frame time (s)"],
            [[b["path"].rsplit("/", 1)[-1], b["reader"], b["joints"], b["frames"],
              _f(b["frame_time"], 4)] for b in a["read_back"]])]  # fmt: skip
    return "\n".join(lines)
