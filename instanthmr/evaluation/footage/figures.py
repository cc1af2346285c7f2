"""The pictures of ``docs/quality.md`` (matplotlib, Agg; imported only by the tool).

Every picture says in its title that the model is the stand-in (BlazePose, not
InstantHMR).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ...animation import rig
from .carried import carried_ious
from .runs import ClipRun, Detections, iter_clip
from .tracks import id_boxes
from .world import WorldStats, camera_series

MODEL = "YOLOX-nano + stand-in (BlazePose, NOT InstantHMR)"


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    _plt().close(fig)
    return path


def scene_figure(video: Path, run: ClipRun, frame: int, path: Path) -> Path:
    """One frame of the clip with the run's skeletons, boxes and ids drawn on it."""
    from ...sinks.video import draw_results

    image = next(f.image for f in iter_clip(video, frame + 1) if f.index == frame)
    drawn = draw_results(image, run.results[frame])
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7.68, 5.76 + 0.4))
    ax.imshow(drawn)
    ax.set_axis_off()
    ax.set_title(f"{run.label}, frame {frame}: {MODEL}", fontsize=9)
    return _save(fig, path)


def tracks_figure(run: ClipRun, path: Path, detections: Detections | None = None) -> Path:
    """Persons per frame (and detections) over time, and each id's frames as a bar."""
    plt = _plt()
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(9, 6), sharex=True,
                                      gridspec_kw={"height_ratios": [1, 2.5]})  # fmt: skip
    counts = [len(r.persons) for r in run.results]
    top.step(range(len(counts)), counts, where="mid", label="persons (pipeline)", lw=1)
    if detections is not None:
        top.step(range(len(detections)), detections.counts, where="mid", lw=1, alpha=0.7,
                 label="detector on every frame")  # fmt: skip
    top.set_ylabel("persons")
    top.legend(fontsize=8, loc="upper left")
    frames = id_boxes(run.results)
    ids = sorted({i for f in frames for i in f})
    for row, tid in enumerate(ids):
        seen = np.array([tid in f for f in frames])
        starts = np.flatnonzero(seen & ~np.r_[False, seen[:-1]])
        ends = np.flatnonzero(seen & ~np.r_[seen[1:], False])
        spans = [(a, b - a + 1) for a, b in zip(starts, ends, strict=True)]
        short = seen.sum() < 10
        bottom.broken_barh(spans, (row - 0.4, 0.8), color="tab:red" if short else "tab:blue")
    bottom.set_ylabel("track id (red: < 10 frames)")
    bottom.set_yticks(range(len(ids)), [str(i) for i in ids], fontsize=6)
    bottom.set_xlabel("frame")
    top.set_title(f"{run.label}: {MODEL}", fontsize=9)
    return _save(fig, path)


def carried_figure(runs: Mapping[str, ClipRun], detections: Detections, path: Path) -> Path:
    """Cumulative distribution of the carried boxes' IoU with the detector's, per run."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.5, 4))
    for label, run in runs.items():
        v = np.sort([iou for _, iou in carried_ious(run, detections)])
        if len(v):
            ax.plot(v, np.arange(1, len(v) + 1) / len(v), label=f"{label} ({len(v)} boxes)")
    ax.set_xlabel("IoU of a carried box with the detector's box on that frame")
    ax.set_ylabel("share of carried boxes at or below")
    ax.set_xlim(0, 1)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(f"Carried boxes: {MODEL}", fontsize=9)
    return _save(fig, path)


def live_figure(runs: Sequence[ClipRun], path: Path) -> Path:
    """Which frames the detector ran on, coloured by reason, one row per run."""
    from .live import REASON_GROUPS

    plt = _plt()
    colors = dict(zip(REASON_GROUPS, ["tab:gray", "tab:orange", "tab:red", "tab:purple",
                                      "tab:blue"], strict=True))  # fmt: skip
    group_of = {r: g for g, rs in REASON_GROUPS.items() for r in rs}
    fig, ax = plt.subplots(figsize=(9, 1.2 + 0.6 * len(runs)))
    for row, run in enumerate(runs):
        for r in run.results:
            if r.detector_ran:
                g = group_of.get(r.detect_reason, "max-interval")
                ax.plot([r.frame_index] * 2, [row - 0.35, row + 0.35], color=colors[g], lw=1)
    for g, c in colors.items():
        ax.plot([], [], color=c, label=g)
    ax.set_yticks(range(len(runs)), [r.label for r in runs], fontsize=8)
    ax.set_xlabel("frame")
    ax.legend(fontsize=7, ncol=5, loc="upper center", bbox_to_anchor=(0.5, -0.35))
    ax.set_title(f"Live mode, detector runs by reason: {MODEL}", fontsize=9)
    return _save(fig, path)


def world_figure(run: ClipRun, stats: WorldStats, path: Path) -> Path:
    """Camera height and pitch over the clip, walking speeds per track."""
    plt = _plt()
    cam = camera_series(run.results)
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.6))
    t = np.arange(len(run.results))
    axes[0].plot(t, cam["height"], color="tab:blue")
    axes[0].set_ylabel("camera height (m)")
    axes[0].set_xlabel("frame")
    axes[1].plot(t, cam["pitch"], color="tab:green")
    axes[1].set_ylabel("pitch (deg, down)")
    axes[1].set_xlabel("frame")
    ids = [s.track_id for s in stats.speeds]
    axes[2].bar(range(len(ids)), [s.median for s in stats.speeds], color="tab:orange",
                label="median speed")  # fmt: skip
    axes[2].plot(range(len(ids)), [s.net for s in stats.speeds], "k_", ms=12,
                 label="net speed")  # fmt: skip
    axes[2].axhspan(0.8, 1.8, color="tab:green", alpha=0.15, label="walking 0.8-1.8 m/s")
    axes[2].set_xticks(range(len(ids)), [str(i) for i in ids], fontsize=6)
    axes[2].set_xlabel("track id")
    axes[2].set_ylabel("m/s")
    axes[2].legend(fontsize=7)
    for ax in axes:
        ax.grid(alpha=0.3)
    fig.suptitle(f"World frame (online estimate): {MODEL}", fontsize=9)
    return _save(fig, path)


def skeleton_figure(points: np.ndarray, frame: int, fps: float, path: Path) -> Path:
    """The rig of one frame of a BVH (its (T, P, 3) points, Y up), seen from the walker's
    side (along the hip line) and from the front."""
    plt = _plt()
    pts = np.asarray(points, float)[frame]
    across = pts[rig.POINT_NAMES.index("LeftUpLeg")] - pts[rig.POINT_NAMES.index("RightUpLeg")]
    across[1] = 0.0
    across /= max(np.linalg.norm(across), 1e-9)
    forward = np.cross(across, [0.0, 1.0, 0.0])  # the way the hips face, on the ground
    views = [(pts @ forward, "side: forward (m)"), (pts @ across, "front: left (m)")]
    fig, axes = plt.subplots(1, 2, figsize=(7, 4.6))
    left = {i for i, n in enumerate(rig.POINT_NAMES) if n.startswith("Left")}
    for ax, (x, name) in zip(axes, views, strict=True):
        for child, parent in enumerate(rig.POINT_PARENTS):
            if parent < 0:
                continue
            color = "tab:red" if child in left else "tab:blue"
            ax.plot(x[[parent, child]], pts[[parent, child], 1], color=color, lw=2)
        ax.scatter(x, pts[:, 1], s=8, color="k", zorder=3)
        ax.set_aspect("equal")
        ax.set_xlabel(name, fontsize=8)
        ax.set_ylabel("up (m)", fontsize=8)
        ax.grid(alpha=0.3)
    fig.suptitle(f"BVH read back, frame {frame} ({frame / fps:.1f} s); red = left side\n"
                 f"{MODEL}", fontsize=9)  # fmt: skip
    return _save(fig, path)
