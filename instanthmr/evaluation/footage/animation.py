"""BVH and glTF of real walkers: written by the product's exporters, read back by others.

:func:`export_walkers` writes the chosen tracks of a run with
:class:`~instanthmr.animation.exporter.BvhExporter` (one file per track) and
:class:`~instanthmr.animation.exporter.GlbExporter` (one file). :func:`read_bvh_back` and
:func:`read_glb_back` read them with bvhio and pygltflib (not the project's own reader) and
say what they found. :func:`walking_frame` picks the frame of a motion with the widest step,
the one to render.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ...animation import rig
from ...animation.exporter import BvhExporter, GlbExporter
from ...results import FrameResult

FEET = (rig.POINT_NAMES.index("LeftFoot"), rig.POINT_NAMES.index("RightFoot"))


@dataclass
class ReadBack:
    """What a reader found in one exported file."""

    path: str
    reader: str
    joints: int
    frames: int
    frame_time: float
    comment: str = ""


def only_tracks(results: Iterable[FrameResult], track_ids: Sequence[int]) -> list[FrameResult]:
    """The frames with only the persons of ``track_ids`` (every frame kept, for the timeline);
    their world records too."""
    keep = set(int(t) for t in track_ids)
    out = []
    for r in results:
        world = r.world
        if world is not None:
            world = dataclasses.replace(
                world, persons=tuple(w for w in world.persons if w.track_id in keep)
            )
        persons = [p for p in r.persons if p.track_id in keep]
        out.append(dataclasses.replace(r, persons=persons, world=world))
    return out


def export_walkers(
    results: Sequence[FrameResult],
    folder: str | Path,
    track_ids: Sequence[int],
    *,
    run: Mapping[str, Any] | None = None,
    name: str = "walkers",
) -> tuple[list[Path], Path]:
    """Write ``track_ids`` of a run as BVH (one per track) and as one ``.glb``.

    Returns:
        ``(bvh_paths, glb_path)``.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    frames = only_tracks(results, track_ids)
    with BvhExporter(folder / f"{name}.bvh", run=run) as bvh:
        for f in frames:
            bvh.write(f)
    with GlbExporter(folder / f"{name}.glb", run=run) as glb:
        for f in frames:
            glb.write(f)
    if not glb.written:
        raise ValueError(f"no frame holds the tracks {list(track_ids)}: nothing exported")
    return list(bvh.written), glb.written[0]


def read_bvh_back(path: str | Path) -> ReadBack:
    """Read a BVH with bvhio: joints, frames, frame time and the file's comment line."""
    import bvhio

    bvh = bvhio.readAsBvh(str(path))
    joints = len(bvhio.readAsHierarchy(str(path)).layout())
    first = Path(path).read_text().splitlines()[0]
    comment = first.split("#", 1)[1].strip() if "#" in first else ""
    return ReadBack(str(path), f"bvhio {_version('bvhio')}", joints, int(bvh.FrameCount),
                    float(bvh.FrameTime), comment)  # fmt: skip


def read_glb_back(path: str | Path) -> ReadBack:
    """Read a ``.glb`` with pygltflib: joints of its skins, keyframes of its first
    animation, their spacing and ``asset.generator``."""
    import pygltflib

    doc = pygltflib.GLTF2().load(str(path))
    joints = sum(len(s.joints) for s in doc.skins)
    frames, step = 0, float("nan")
    if doc.animations:
        acc = doc.accessors[doc.animations[0].samplers[0].input]
        frames = int(acc.count)
        if acc.max and acc.min and frames > 1:
            step = (float(acc.max[0]) - float(acc.min[0])) / (frames - 1)
    return ReadBack(str(path), f"pygltflib {_version('pygltflib')}", joints, frames, step,
                    doc.asset.generator or "")  # fmt: skip


def _version(package: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:
        return "?"


def walking_frame(positions: np.ndarray, window: int = 3) -> int:
    """The frame of a motion's (T, P, 3) rig points that best shows a walking step.

    The walking direction is the hips' displacement over ``window`` frames either side,
    taken across the body's up axis (hips to neck); the chosen frame has the feet furthest
    apart along it and closest across it (a single-frame estimate with the feet spread
    sideways is a glitch, not a step).
    """
    pts = np.asarray(positions, float)
    if len(pts) <= 2 * window:
        return len(pts) // 2
    hips, neck = pts[:, 0], pts[:, rig.POINT_NAMES.index("Neck")]
    up = neck - hips
    up /= np.maximum(np.linalg.norm(up, axis=1, keepdims=True), 1e-9)
    vel = np.zeros_like(hips)
    vel[window:-window] = hips[2 * window :] - hips[: -2 * window]
    vel -= np.sum(vel * up, axis=1, keepdims=True) * up
    fwd = vel / np.maximum(np.linalg.norm(vel, axis=1, keepdims=True), 1e-9)
    side = np.cross(up, fwd)
    sep = pts[:, FEET[0]] - pts[:, FEET[1]]
    score = np.abs(np.sum(sep * fwd, axis=1)) - 2 * np.abs(np.sum(sep * side, axis=1))
    score[:window] = score[-window:] = -np.inf
    return int(np.argmax(score))


def stride_lengths(positions: np.ndarray) -> np.ndarray:
    """(T,) distance between the two ankles of a motion's (T, P, 3) rig points, metres."""
    pts = np.asarray(positions, float)
    return np.linalg.norm(pts[:, FEET[0]] - pts[:, FEET[1]], axis=1)
