"""glTF 2.0 binary (``.glb``) skeleton animation, built with :mod:`pygltflib`: no mesh, no skin.

One file holds every motion (track) of an export in one scene, on one shared timeline:

- Per track, a group node ``track<ID>`` (``extras``: ``track_id``, ``frame``) whose child is
  the root joint. Each joint is a node ``track<ID>_<Joint>`` whose ``translation`` is its
  rest offset (metres); each end site is a leaf node ``track<ID>_<EndSite>``.
- One animation ``instanthmr`` with, per track: the root joint's ``translation`` and every
  joint's ``rotation`` (unit quaternions, x y z w, signs kept continuous), LINEAR, keyed at
  the track's frame times (seconds from the first exported frame); and the group node's
  ``scale``, STEP: 0 before the track appears and after it ends (and inside gaps when a
  motion's ``observed`` mask is used for visibility), 1 while it is on screen.

Axes are glTF's: Y up, metres, right-handed; a person facing the camera faces +Z.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pygltflib as gl
from scipy.spatial.transform import Rotation

from ..fileio import atomic_path
from .kinematics import Motion


def continuous_quaternions(rotations: np.ndarray) -> np.ndarray:
    """(T, 3, 3) rotation matrices -> (T, 4) x y z w quaternions with no sign flips in time."""
    q = Rotation.from_matrix(rotations).as_quat()
    dots = np.sum(q[1:] * q[:-1], axis=1)
    signs = np.cumprod(np.r_[1.0, np.where(dots < 0, -1.0, 1.0)])
    return q * signs[:, None]


class _Blob:
    """Accumulates float32 accessors into one binary buffer."""

    def __init__(self, doc: gl.GLTF2) -> None:
        self.doc = doc
        self.data = bytearray()

    def add(self, array: np.ndarray, kind: str, bounds: bool = False) -> int:
        arr = np.ascontiguousarray(array, dtype=np.float32)
        self.doc.bufferViews.append(
            gl.BufferView(buffer=0, byteOffset=len(self.data), byteLength=arr.nbytes)
        )
        self.data += arr.tobytes()
        flat = arr.reshape(len(arr), -1)
        acc = gl.Accessor(
            bufferView=len(self.doc.bufferViews) - 1, componentType=gl.FLOAT,
            count=len(arr), type=kind,
            min=flat.min(0).tolist() if bounds else None,
            max=flat.max(0).tolist() if bounds else None,
        )  # fmt: skip
        self.doc.accessors.append(acc)
        return len(self.doc.accessors) - 1


def _visibility(motion: Motion, times: np.ndarray, hide_gaps: bool) -> tuple[list, list]:
    visible = motion.observed if hide_gaps else np.ones(motion.num_frames, dtype=bool)
    keys_t, keys_v = ([0.0], [0.0]) if times[0] > 0 else ([], [])
    for i in range(motion.num_frames):
        if i == 0 or visible[i] != visible[i - 1]:
            keys_t.append(float(times[i]))
            keys_v.append(float(visible[i]))
    keys_t.append(float(times[-1] + motion.frame_time))
    keys_v.append(0.0)
    return keys_t, keys_v


def _motion_nodes(doc: gl.GLTF2, motion: Motion, prefix: str) -> tuple[int, list[int]]:
    """Append the group node and joint nodes of one motion; (group node, joint nodes)."""
    first = len(doc.nodes)
    group = gl.Node(name=prefix, extras={"track_id": motion.track_id, "frame": motion.frame})
    doc.nodes.append(group)
    joints = list(range(first + 1, first + 1 + len(motion.names)))
    q0 = continuous_quaternions(motion.rotations[:1, 0])[0]
    for j, name in enumerate(motion.names):
        trans = motion.root_positions[0] if j == 0 else motion.offsets[j]
        doc.nodes.append(
            gl.Node(name=f"{prefix}_{name}", translation=[float(x) for x in trans],
                    rotation=[float(x) for x in q0] if j == 0 else None)
        )  # fmt: skip
    for e, name in enumerate(motion.end_names):
        doc.nodes.append(
            gl.Node(name=f"{prefix}_{name}", translation=[float(x) for x in motion.end_offsets[e]])
        )
        doc.nodes[joints[motion.end_parents[e]]].children.append(len(doc.nodes) - 1)
    for j, p in enumerate(motion.parents):
        (group if p < 0 else doc.nodes[joints[p]]).children.append(joints[j])
    return first, joints


def glb_document(motions: list[Motion], hide_gaps: bool = False) -> gl.GLTF2:
    """The glTF document (binary blob attached) holding ``motions``; see the module docs."""
    if not motions:
        raise ValueError("no motion to write: the glTF needs at least one track")
    doc = gl.GLTF2(asset=gl.Asset(generator="instanthmr", version="2.0"))
    doc.scenes.append(gl.Scene(name="instanthmr", nodes=[]))
    doc.scene = 0
    blob = _Blob(doc)
    anim = gl.Animation(name="instanthmr", samplers=[], channels=[])

    def channel(node: int, path: str, times: int, values: int, interp: str = "LINEAR") -> None:
        anim.samplers.append(gl.AnimationSampler(input=times, output=values, interpolation=interp))
        anim.channels.append(
            gl.AnimationChannel(sampler=len(anim.samplers) - 1,
                                target=gl.AnimationChannelTarget(node=node, path=path))
        )  # fmt: skip

    for i, m in enumerate(motions):
        if not (np.all(np.isfinite(m.rotations)) and np.all(np.isfinite(m.root_positions))):
            raise ValueError(f"motion of track {m.track_id} holds non-finite values")
        prefix = f"track{m.track_id}" if m.track_id >= 0 else f"motion{i}"
        group, joints = _motion_nodes(doc, m, prefix)
        doc.scenes[0].nodes.append(group)
        times = m.start_time + np.arange(m.num_frames) * m.frame_time
        t_acc = blob.add(times, gl.SCALAR, bounds=True)
        channel(joints[0], "translation", t_acc, blob.add(m.root_positions, gl.VEC3))
        for j in range(len(m.names)):
            quats = continuous_quaternions(m.rotations[:, j])
            channel(joints[j], "rotation", t_acc, blob.add(quats, gl.VEC4))
        vis_t, vis_v = _visibility(m, times, hide_gaps)
        scale = np.repeat(np.asarray(vis_v)[:, None], 3, axis=1)
        channel(group, "scale", blob.add(np.asarray(vis_t), gl.SCALAR, bounds=True),
                blob.add(scale, gl.VEC3), interp=gl.ANIM_STEP)  # fmt: skip
    doc.animations.append(anim)
    doc.buffers.append(gl.Buffer(byteLength=len(blob.data)))
    doc.set_binary_blob(bytes(blob.data))
    return doc


def write_glb(path: str | Path, motions: list[Motion], hide_gaps: bool = False) -> Path:
    """Write ``motions`` to one ``.glb`` atomically (:mod:`instanthmr.fileio`)."""
    with atomic_path(path) as tmp:
        glb_document(motions, hide_gaps).save_binary(str(tmp))
    return Path(path)
