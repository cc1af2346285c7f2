"""glTF 2.0 binary (``.glb``) export: per track a skinned armature with a body, animated.

Built with :mod:`pygltflib`. One file holds every motion (track) of an export in one scene,
on one shared timeline. Per track:

- a group node ``track<ID>`` (``extras``: ``track_id``, ``frame``, ``rig``) whose child is
  the root joint;
- the skeleton: one node per joint, named after the rig convention (``Hips`` or
  ``mixamorig:Hips`` ...), ``translation`` = its rest offset (metres), and one leaf node per
  end site; in the rest pose every rotation is identity (a T-pose, feet on ``y = 0``);
- a skin ``track<ID>`` whose joints are the joint nodes then the end-site nodes, with
  ``inverseBindMatrices`` = the inverse of each joint's rest transform in the track's space;
- a mesh ``track<ID>_body`` on the scene-root node ``track<ID>_body`` (skinning ignores a
  skinned node's own transform, so it sits at the root as the spec advises): one box per
  bone (:mod:`.body`), each vertex bound to one joint with weight 1. The group's scale
  still hides it: it scales the joints that deform it.

One animation ``instanthmr`` holds, per track, the root joint's ``translation`` and every
joint's ``rotation`` (unit quaternions x y z w, signs kept continuous), LINEAR, keyed at the
track's frame times (seconds from the first exported frame), and the group node's
``scale``, STEP: 0 before the track appears and after it ends (and inside gaps when
``hide_gaps``), 1 while it is on screen.

Axes are glTF's: Y up, metres, right-handed; a person facing the camera faces +Z.

A file made with a model that is not InstantHMR (the stand-in, a random-init export) says
so in its ``asset``: ``generator`` ``instanthmr (STAND-IN model, NOT InstantHMR)`` and
``extras`` ``{"model_kind", "model_file", "model_notice"}``; glTF has no comments.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pygltflib as gl
from scipy.spatial.transform import Rotation

from ..fileio import atomic_path
from ..hmr.kinds import file_note, header_kind
from .body import body_mesh, rest_positions
from .kinematics import Motion

_PALETTE = ((0.80, 0.55, 0.35), (0.35, 0.60, 0.85), (0.45, 0.75, 0.40), (0.85, 0.45, 0.60),
            (0.70, 0.65, 0.30), (0.55, 0.45, 0.85))  # fmt: skip
_KIND = {1: gl.SCALAR, 3: gl.VEC3, 4: gl.VEC4, 16: gl.MAT4}
_COMPONENT = {np.dtype(np.float32): gl.FLOAT, np.dtype(np.uint8): gl.UNSIGNED_BYTE,
              np.dtype(np.uint16): gl.UNSIGNED_SHORT}  # fmt: skip


def continuous_quaternions(rotations: np.ndarray) -> np.ndarray:
    """(T, 3, 3) rotation matrices -> (T, 4) x y z w quaternions with no sign flips in time."""
    q = Rotation.from_matrix(rotations).as_quat()
    dots = np.sum(q[1:] * q[:-1], axis=1)
    signs = np.cumprod(np.r_[1.0, np.where(dots < 0, -1.0, 1.0)])
    return q * signs[:, None]


class _Blob:
    """Accumulates accessors into one binary buffer (each view 4-byte aligned)."""

    def __init__(self, doc: gl.GLTF2) -> None:
        self.doc = doc
        self.data = bytearray()

    def add(self, array: np.ndarray, bounds: bool = True, target: int | None = None) -> int:
        """Append ``array`` ((N,) or (N, k), float32/uint8/uint16) as one accessor."""
        arr = np.ascontiguousarray(array)
        if arr.dtype == np.float64:
            arr = arr.astype(np.float32)
        self.data += b"\0" * (-len(self.data) % 4)
        self.doc.bufferViews.append(
            gl.BufferView(buffer=0, byteOffset=len(self.data), byteLength=arr.nbytes,
                          target=target)
        )  # fmt: skip
        self.data += arr.tobytes()
        flat = arr.reshape(len(arr), -1)
        as_num = float if arr.dtype == np.float32 else int
        acc = gl.Accessor(
            bufferView=len(self.doc.bufferViews) - 1, componentType=_COMPONENT[arr.dtype],
            count=len(arr), type=_KIND[flat.shape[1]],
            min=[as_num(x) for x in flat.min(0)] if bounds else None,
            max=[as_num(x) for x in flat.max(0)] if bounds else None,
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


def _floats(v: np.ndarray) -> list[float]:
    return [float(x) for x in v]


def _skeleton(doc: gl.GLTF2, motion: Motion, group: int) -> tuple[list[int], np.ndarray]:
    """Append joint and end-site nodes under ``group``; (skin joint nodes, bind positions)."""
    rest = rest_positions(motion)
    rest[:, 1] -= rest[:, 1].min()  # the rest pose stands on y = 0
    nj = len(motion.names)
    nodes = list(range(len(doc.nodes), len(doc.nodes) + nj + len(motion.end_names)))
    for j, name in enumerate(motion.names):
        trans = rest[0] if j == 0 else motion.offsets[j]
        doc.nodes.append(gl.Node(name=name, translation=_floats(trans)))
    for e, name in enumerate(motion.end_names):
        doc.nodes.append(gl.Node(name=name, translation=_floats(motion.end_offsets[e])))
        doc.nodes[nodes[motion.end_parents[e]]].children.append(nodes[nj + e])
    for j, p in enumerate(motion.parents):
        doc.nodes[group if p < 0 else nodes[p]].children.append(nodes[j])
    return nodes, rest


def _add_track(doc: gl.GLTF2, blob: _Blob, motion: Motion, prefix: str, rig: str) -> list[int]:
    """Append one track's nodes, skin, mesh; returns (group, joint nodes...)."""
    group = len(doc.nodes)
    doc.nodes.append(gl.Node(
        name=prefix, extras={"track_id": motion.track_id, "frame": motion.frame, "rig": rig}
    ))  # fmt: skip
    doc.scenes[0].nodes.append(group)
    nodes, rest = _skeleton(doc, motion, group)
    ibm = np.tile(np.eye(4, dtype=np.float32), (len(nodes), 1, 1))
    ibm[:, :3, 3] = -rest
    ibm_acc = blob.add(np.swapaxes(ibm, 1, 2).reshape(len(nodes), 16), bounds=False)  # columns
    doc.skins.append(gl.Skin(name=prefix, joints=nodes, skeleton=nodes[0],
                             inverseBindMatrices=ibm_acc))  # fmt: skip
    body = body_mesh(motion, rest)
    color = _PALETTE[len(doc.materials) % len(_PALETTE)]
    doc.materials.append(gl.Material(
        name=f"{prefix}_body", pbrMetallicRoughness=gl.PbrMetallicRoughness(
            baseColorFactor=[*color, 1.0], metallicFactor=0.0, roughnessFactor=0.8),
    ))  # fmt: skip
    attrs = gl.Attributes(
        POSITION=blob.add(body.positions, target=gl.ARRAY_BUFFER),
        NORMAL=blob.add(body.normals, target=gl.ARRAY_BUFFER),
        JOINTS_0=blob.add(body.joints, bounds=False, target=gl.ARRAY_BUFFER),
        WEIGHTS_0=blob.add(body.weights, bounds=False, target=gl.ARRAY_BUFFER),
    )
    prim = gl.Primitive(attributes=attrs, material=len(doc.materials) - 1,
                        indices=blob.add(body.indices, bounds=False,
                                         target=gl.ELEMENT_ARRAY_BUFFER))  # fmt: skip
    doc.meshes.append(gl.Mesh(name=f"{prefix}_body", primitives=[prim]))
    doc.nodes.append(gl.Node(name=f"{prefix}_body", mesh=len(doc.meshes) - 1,
                             skin=len(doc.skins) - 1))  # fmt: skip
    doc.scenes[0].nodes.append(len(doc.nodes) - 1)  # a root: skinning ignores its parents
    return [group, *nodes[: len(motion.names)]]


def _asset(run: dict[str, Any] | None) -> gl.Asset:
    """The ``asset``: generator, and the model's label for anything but InstantHMR."""
    note = file_note(run)
    if note is None:
        return gl.Asset(generator="instanthmr", version="2.0")
    tag = header_kind(run).tag
    return gl.Asset(generator=f"instanthmr ({tag} model, NOT InstantHMR)", version="2.0",
                    extras={**(run or {}), "note": note})  # fmt: skip


def glb_document(
    motions: list[Motion],
    hide_gaps: bool = False,
    rig: str = "plain",
    run: dict[str, Any] | None = None,
) -> gl.GLTF2:
    """The glTF document (binary blob attached) holding ``motions``; see the module docs.

    ``rig`` only labels the groups (``extras.rig``): name the motions' joints first
    (:func:`.rigs.apply_rig`). ``run`` names the model
    (:func:`instanthmr.hmr.kinds.run_header`).
    """
    if not motions:
        raise ValueError("no motion to write: the glTF needs at least one track")
    doc = gl.GLTF2(asset=_asset(run))
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
        group, *joints = _add_track(doc, blob, m, prefix, rig)
        times = m.start_time + np.arange(m.num_frames) * m.frame_time
        t_acc = blob.add(times)
        channel(joints[0], "translation", t_acc, blob.add(m.root_positions))
        for j in range(len(m.names)):
            quats = continuous_quaternions(m.rotations[:, j])
            quats /= np.linalg.norm(quats, axis=1, keepdims=True)
            channel(joints[j], "rotation", t_acc, blob.add(quats))
        vis_t, vis_v = _visibility(m, times, hide_gaps)
        scale = np.repeat(np.asarray(vis_v)[:, None], 3, axis=1)
        channel(group, "scale", blob.add(np.asarray(vis_t)), blob.add(scale),
                interp=gl.ANIM_STEP)  # fmt: skip
    doc.animations.append(anim)
    doc.buffers.append(gl.Buffer(byteLength=len(blob.data)))
    doc.set_binary_blob(bytes(blob.data))
    return doc


def write_glb(
    path: str | Path,
    motions: list[Motion],
    hide_gaps: bool = False,
    rig: str = "plain",
    run: dict[str, Any] | None = None,
) -> Path:
    """Write ``motions`` to one ``.glb`` atomically (:mod:`instanthmr.fileio`)."""
    with atomic_path(path) as tmp:
        glb_document(motions, hide_gaps, rig, run).save_binary(str(tmp))
    return Path(path)
