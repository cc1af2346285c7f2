"""BVH (Biovision Hierarchy) writing, and a small reader used to check what was written.

A file holds one :class:`~.kinematics.Motion`: ``HIERARCHY`` with one ``JOINT`` per joint
(``OFFSET`` in metres, ``CHANNELS``: the root has ``Xposition Yposition Zposition`` then its
three rotations, the others three rotations in the joint's own Euler order) and an
``End Site`` per end site (a leaf joint without one gets a zero ``End Site``); ``MOTION``
with ``Frames``, ``Frame Time`` in seconds and one line of values per frame, angles in
degrees. BVH rotation channels are intrinsic: ``Zrotation Xrotation Yrotation`` means
R = Rz·Rx·Ry. Files are written to ``<name>.partial`` and renamed into place.

A file made with a model that is not InstantHMR (the stand-in, a random-init export) says
so in a comment on its first line, after ``HIERARCHY``: ``HIERARCHY  # Made by InstantHMR
with the ...``. Blender, bvhio and :func:`read_bvh` read that line as ``HIERARCHY`` (BVH has
no comment syntax; a line of its own before ``ROOT`` stops bvhio, one after the frames stops
Blender).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.spatial.transform import Rotation

from ..fileio import atomic_write_text
from .kinematics import Motion

_POSITION = ("Xposition", "Yposition", "Zposition")


def _name(text: str) -> str:
    return re.sub(r"\s+", "_", text.strip()) or "joint"


def _vec(v: np.ndarray) -> str:
    return " ".join(f"{x:.6f}" for x in v)


def bvh_text(motion: Motion, comment: str | None = None) -> str:
    """The BVH file for ``motion`` as a string (raises ValueError on non-finite values);
    ``comment`` (one line) goes after ``HIERARCHY`` on the first line."""
    euler = motion.euler_degrees()
    if not (np.all(np.isfinite(euler)) and np.all(np.isfinite(motion.root_positions))):
        raise ValueError(f"motion of track {motion.track_id} holds non-finite values")
    children = _group(motion.parents)
    ends = _group(motion.end_parents)
    if any(len(v) > 1 for v in ends.values()):
        raise ValueError("BVH allows one End Site per joint; this motion has more")
    if comment and ("\n" in comment or "\r" in comment):
        raise ValueError("a BVH comment must be one line")
    lines = ["HIERARCHY" + (f"  # {comment}" if comment else "")]

    def joint(j: int, depth: int) -> None:
        pad = "  " * depth
        kind = "ROOT" if j == 0 else "JOINT"
        rot = [f"{axis}rotation" for axis in motion.euler_orders[j].upper()]
        chans = (list(_POSITION) if j == 0 else []) + rot
        lines.extend([f"{pad}{kind} {_name(motion.names[j])}", f"{pad}{{"])
        lines.append(f"{pad}  OFFSET {_vec(motion.offsets[j])}")
        lines.append(f"{pad}  CHANNELS {len(chans)} {' '.join(chans)}")
        for c in children.get(j, []):
            joint(c, depth + 1)
        mine = ends.get(j, [])
        if mine or not children.get(j):  # a leaf without an end site gets a zero one
            off = motion.end_offsets[mine[0]] if mine else np.zeros(3)
            lines.extend(
                [f"{pad}  End Site", f"{pad}  {{", f"{pad}    OFFSET {_vec(off)}", f"{pad}  }}"]
            )
        lines.append(f"{pad}}}")

    joint(0, 0)
    lines += ["MOTION", f"Frames: {motion.num_frames}", f"Frame Time: {motion.frame_time:.8f}"]
    values = np.concatenate([motion.root_positions, euler.reshape(motion.num_frames, -1)], axis=1)
    fmt = ["%.6f"] * 3 + ["%.4f"] * (values.shape[1] - 3)
    body = "\n".join(" ".join(f % v for f, v in zip(fmt, row, strict=True)) for row in values)
    return "\n".join(lines) + "\n" + body + ("\n" if len(values) else "")


def write_bvh(path: str | Path, motion: Motion, comment: str | None = None) -> Path:
    """Write ``motion`` to ``path`` atomically (:mod:`instanthmr.fileio`)."""
    return atomic_write_text(path, bvh_text(motion, comment))


def _group(parents: tuple[int, ...]) -> dict[int, list[int]]:
    out: dict[int, list[int]] = {}
    for i, p in enumerate(parents):
        out.setdefault(p, []).append(i)
    return out


@dataclass
class BvhFile:
    """What :func:`read_bvh` found: the skeleton, channels and the frame values."""

    names: list[str]
    parents: list[int]
    offsets: np.ndarray  # (J, 3)
    channels: list[list[str]]
    end_parents: list[int]
    end_offsets: np.ndarray  # (E, 3)
    frame_time: float
    values: np.ndarray  # (T, total channels)

    def positions(self) -> np.ndarray:
        """(T, J + E, 3) joint then end-site positions by forward kinematics."""
        t = len(self.values)
        col = 0
        glob: list[np.ndarray] = []
        pos = np.zeros((t, len(self.names) + len(self.end_parents), 3))
        for j, chans in enumerate(self.channels):
            v = self.values[:, col : col + len(chans)]
            col += len(chans)
            local_pos = np.broadcast_to(self.offsets[j], (t, 3)).copy()
            order, angles = "", []
            for k, c in enumerate(chans):
                if c in _POSITION:
                    local_pos[:, _POSITION.index(c)] = v[:, k]
                else:
                    order += c[0].upper()
                    angles.append(v[:, k])
            rot = (
                Rotation.from_euler(order, np.stack(angles, 1), degrees=True).as_matrix()
                if order
                else np.broadcast_to(np.eye(3), (t, 3, 3))
            )
            p = self.parents[j]
            if p < 0:
                pos[:, j], g = local_pos, rot
            else:
                pos[:, j] = pos[:, p] + np.einsum("tab,tb->ta", glob[p], local_pos)
                g = glob[p] @ rot
            glob.append(g)
        for e, p in enumerate(self.end_parents):
            pos[:, len(self.names) + e] = pos[:, p] + glob[p] @ self.end_offsets[e]
        return pos


def bvh_comment(path: str | Path) -> str | None:
    """The comment on a BVH file's first line (what :func:`write_bvh` wrote), or None."""
    with open(path, encoding="utf-8") as fh:
        first = fh.readline()
    return first.split("#", 1)[1].strip() if "#" in first else None


def read_bvh(path: str | Path) -> BvhFile:
    """Parse a BVH file (any channel order; one End Site per joint); SyntaxError when malformed.
    Text after ``#`` on a line is a comment (see the module docs); :func:`bvh_comment` reads it."""
    text = Path(path).read_text(encoding="utf-8")
    tokens = " ".join(line.split("#", 1)[0] for line in text.splitlines()).split()
    pos = 0

    def take(expected: str | None = None) -> str:
        nonlocal pos
        if pos >= len(tokens):
            raise SyntaxError(f"{path}: file ends early (expected {expected or 'more'})")
        tok = tokens[pos]
        pos += 1
        if expected is not None and tok != expected:
            raise SyntaxError(f"{path}: expected {expected!r}, found {tok!r}")
        return tok

    def floats(n: int) -> list[float]:
        return [float(take()) for _ in range(n)]

    f = BvhFile([], [], np.zeros((0, 3)), [], [], np.zeros((0, 3)), 0.0, np.zeros((0, 0)))
    offsets: list[list[float]] = []
    ends: list[list[float]] = []

    def joint(parent: int) -> None:
        f.names.append(take())
        f.parents.append(parent)
        me = len(f.names) - 1
        take("{")
        take("OFFSET")
        offsets.append(floats(3))
        take("CHANNELS")
        f.channels.append([take() for _ in range(int(take()))])
        while (tok := take()) != "}":
            if tok == "JOINT":
                joint(me)
            elif tok == "End":
                take("Site")
                take("{")
                take("OFFSET")
                ends.append(floats(3))
                f.end_parents.append(me)
                take("}")
            else:
                raise SyntaxError(f"{path}: unexpected {tok!r} in joint {f.names[me]}")

    take("HIERARCHY")
    take("ROOT")
    joint(-1)
    take("MOTION")
    take("Frames:")
    frames = int(take())
    take("Frame")
    take("Time:")
    f.frame_time = float(take())
    width = sum(len(c) for c in f.channels)
    rest = np.array(tokens[pos:], dtype=np.float64)
    if rest.size != frames * width:
        raise SyntaxError(f"{path}: {rest.size} motion values, expected {frames} x {width}")
    f.values = rest.reshape(frames, width)
    f.offsets = np.array(offsets, dtype=np.float64).reshape(-1, 3)
    f.end_offsets = np.array(ends, dtype=np.float64).reshape(-1, 3)
    return f
