"""Checks a ``.glb`` against the glTF 2.0 rules that matter for a skinned animation.

:func:`check_gltf` runs :func:`pygltflib.validator.validate` (component types, min/max
lengths, primitive modes, buffer views, channel fields) and then the rules of the glTF 2.0
specification that the Khronos validator reports for files like ours and pygltflib does
not check: accessors inside their buffer views and aligned; ``min``/``max`` present on
``POSITION`` and animation inputs and equal to the data; strictly increasing key times;
as many outputs as inputs; unit rotation quaternions; one inverse bind matrix per skin
joint, affine; joint indices inside the skin and weights summing to 1; every node with one
parent at most. It returns the problems found, one line each (empty: the file passed).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pygltflib as gl
from pygltflib import validator

_WIDTH = {"SCALAR": 1, "VEC2": 2, "VEC3": 3, "VEC4": 4, "MAT4": 16}
_DTYPE = {gl.FLOAT: np.float32, gl.UNSIGNED_BYTE: np.uint8, gl.UNSIGNED_SHORT: np.uint16,
          gl.UNSIGNED_INT: np.uint32}  # fmt: skip
UNIT_TOLERANCE = 5e-4
"""How far from 1 a rotation quaternion's or a vertex's weights' norm/sum may be."""


def accessor_data(doc: gl.GLTF2, index: int) -> np.ndarray:
    """The values of accessor ``index`` as an (N, width) array (tightly packed views only)."""
    acc = doc.accessors[index]
    view = doc.bufferViews[acc.bufferView]
    width = _WIDTH[acc.type]
    dtype = np.dtype(_DTYPE[acc.componentType])
    start = (view.byteOffset or 0) + (acc.byteOffset or 0)
    data = np.frombuffer(doc.binary_blob(), dtype=dtype, count=acc.count * width, offset=start)
    return data.reshape(acc.count, width)


def _accessors(doc: gl.GLTF2, problems: list[str]) -> bool:
    """Append accessor problems; False when an accessor cannot be read at all."""
    sound = True
    blob_len = len(doc.binary_blob() or b"")
    for i, acc in enumerate(doc.accessors):
        view = doc.bufferViews[acc.bufferView]
        size = np.dtype(_DTYPE[acc.componentType]).itemsize
        need = (acc.byteOffset or 0) + acc.count * _WIDTH[acc.type] * size
        if need > view.byteLength or (view.byteOffset or 0) + view.byteLength > blob_len:
            problems.append(f"accessor {i} reads past its buffer view or the buffer")
            sound = False
            continue
        if ((view.byteOffset or 0) + (acc.byteOffset or 0)) % size:
            problems.append(f"accessor {i} is not aligned to its component size")
        if acc.min and acc.max:
            data = accessor_data(doc, i)
            if not (np.allclose(data.min(0), acc.min, rtol=0, atol=1e-6)
                    and np.allclose(data.max(0), acc.max, rtol=0, atol=1e-6)):  # fmt: skip
                problems.append(f"accessor {i}: min/max differ from the data")
    return sound


def _animations(doc: gl.GLTF2, problems: list[str]) -> None:
    for a, anim in enumerate(doc.animations):
        for c, ch in enumerate(anim.channels):
            s = anim.samplers[ch.sampler]
            name = f"animation {a} channel {c} ({ch.target.path})"
            if ch.target.node is None or ch.target.node >= len(doc.nodes):
                problems.append(f"{name}: target node missing")
            inp = doc.accessors[s.input]
            if not (inp.min and inp.max):
                problems.append(f"{name}: input accessor lacks min/max")
            times = accessor_data(doc, s.input)[:, 0]
            if np.any(np.diff(times) <= 0) or times[0] < 0:
                problems.append(f"{name}: key times are not strictly increasing from >= 0")
            out = accessor_data(doc, s.output)
            if len(out) != len(times):
                problems.append(f"{name}: {len(out)} outputs for {len(times)} key times")
            want = 4 if ch.target.path == "rotation" else 3
            if out.shape[1] != want:
                problems.append(f"{name}: output width {out.shape[1]}, expected {want}")
            elif want == 4 and np.any(np.abs(np.linalg.norm(out, axis=1) - 1) > UNIT_TOLERANCE):
                problems.append(f"{name}: rotation quaternions are not unit length")
            if not np.all(np.isfinite(out)):
                problems.append(f"{name}: non-finite output values")


def _skins(doc: gl.GLTF2, problems: list[str]) -> None:
    skinned = {n.skin: i for i, n in enumerate(doc.nodes) if n.skin is not None}
    for s, skin in enumerate(doc.skins):
        if s not in skinned:
            problems.append(f"skin {s} is used by no node")
        ibm = accessor_data(doc, skin.inverseBindMatrices).reshape(-1, 4, 4)
        if len(ibm) != len(skin.joints):
            problems.append(
                f"skin {s}: {len(ibm)} inverse bind matrices, {len(skin.joints)} joints"
            )
        elif not np.allclose(ibm[:, :3, 3], 0) or not np.allclose(ibm[:, 3, 3], 1):  # columns
            problems.append(f"skin {s}: inverse bind matrices are not affine")
    for node_index, node in enumerate(doc.nodes):
        if node.skin is None:
            continue
        if node.mesh is None:
            problems.append(f"node {node_index} has a skin but no mesh")
            continue
        joints = len(doc.skins[node.skin].joints)
        for prim in doc.meshes[node.mesh].primitives:
            attrs = prim.attributes
            names = ("POSITION", "NORMAL", "JOINTS_0", "WEIGHTS_0")
            counts = {doc.accessors[getattr(attrs, k)].count
                      for k in names if getattr(attrs, k) is not None}  # fmt: skip
            if len(counts) != 1:
                problems.append(f"mesh {node.mesh}: attributes have different counts {counts}")
            if not doc.accessors[attrs.POSITION].min:
                problems.append(f"mesh {node.mesh}: POSITION lacks min/max")
            if attrs.JOINTS_0 is None or attrs.WEIGHTS_0 is None:
                problems.append(f"mesh {node.mesh}: a skinned mesh needs JOINTS_0 and WEIGHTS_0")
                continue
            if accessor_data(doc, attrs.JOINTS_0).max() >= joints:
                problems.append(f"mesh {node.mesh}: joint index outside the skin")
            weights = accessor_data(doc, attrs.WEIGHTS_0)
            if np.any(weights < 0) or np.any(np.abs(weights.sum(1) - 1) > UNIT_TOLERANCE):
                problems.append(f"mesh {node.mesh}: weights are negative or do not sum to 1")
            if prim.indices is not None:
                if accessor_data(doc, prim.indices).max() >= counts.pop():
                    problems.append(f"mesh {node.mesh}: index past the last vertex")


def check_gltf(doc: gl.GLTF2) -> list[str]:
    """Problems with ``doc`` (see the module docs), one line each; empty when it passes."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "provisional function" notice
        problems = [f"pygltflib: {e}" for e in validator.validate(doc, warning=True)]
    readable = not problems  # pygltflib found nothing wrong with the types
    parents: dict[int, int] = {}
    for i, node in enumerate(doc.nodes):
        for c in node.children or []:
            if c in parents:
                problems.append(f"node {c} has two parents ({parents[c]} and {i})")
            parents[c] = i
    if _accessors(doc, problems) and readable:  # the rest reads accessor data
        _animations(doc, problems)
        _skins(doc, problems)
    return problems


def check_glb(path: str | Path) -> list[str]:
    """:func:`check_gltf` of the ``.glb`` at ``path``."""
    return check_gltf(gl.GLTF2().load(str(path)))
