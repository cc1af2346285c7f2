"""Rig naming conventions, the skinned glTF (skin, bind matrices, body) and its rule checks."""

from __future__ import annotations

import numpy as np
import pygltflib
import pytest
from animation_synth import walker

from instanthmr.animation import rig
from instanthmr.animation.body import body_mesh, half_thickness
from instanthmr.animation.bvh import read_bvh, write_bvh
from instanthmr.animation.gltf import glb_document, write_glb
from instanthmr.animation.gltf_check import accessor_data, check_glb, check_gltf
from instanthmr.animation.rigs import apply_rig, end_names, joint_names, mapping_rows
from instanthmr.sinks.exporters import open_exporter


def test_rig_names_follow_each_convention() -> None:
    mixamo, vrm, unity = (joint_names(c) for c in ("mixamo", "vrm", "unity"))
    assert mixamo["Hips"] == "mixamorig:Hips" and mixamo["LeftForeArm"] == "mixamorig:LeftForeArm"
    assert vrm["Spine2"] == "upperChest" and vrm["LeftArm"] == "leftUpperArm"
    assert vrm["RightUpLeg"] == "rightUpperLeg" and vrm["LeftForeArm"] == "leftLowerArm"
    assert unity["Spine1"] == "Chest" and unity["RightHand"] == "RightHand"
    assert end_names("mixamo")["HeadEnd"] == "mixamorig:HeadTop_End"
    assert end_names("vrm")["LeftToe"] == "leftFoot_end"
    rows = mapping_rows()
    assert len(rows) == 25 and all(len(set(r[1:])) == 3 for r in rows)  # distinct per rig
    for convention in ("plain", "mixamo", "vrm", "unity"):  # names unique within a rig
        names = [*joint_names(convention).values(), *end_names(convention).values()]
        assert len(set(names)) == 25
    with pytest.raises(ValueError, match="unknown rig 'smpl'; use one of plain, mixamo"):
        joint_names("smpl")


def test_apply_rig_keeps_every_point_and_moves_the_collars_to_the_spine() -> None:
    m = walker(30)
    for convention in ("mixamo", "vrm", "unity"):
        out = apply_rig(m, convention)
        np.testing.assert_allclose(out.positions(), m.positions(), atol=1e-12)
        np.testing.assert_allclose(out.global_rotations(), m.global_rotations(), atol=1e-12)
        for side in ("Left", "Right"):
            collar = rig.JOINT_NAMES.index(f"{side}Shoulder")
            assert out.parents[collar] == rig.JOINT_NAMES.index("Spine2")
    assert apply_rig(m, "plain") is m
    with pytest.raises(ValueError, match="plain 20-joint rig"):
        apply_rig(apply_rig(m, "vrm"), "mixamo")


def test_bvh_with_mixamo_names_reads_back_exactly(tmp_path) -> None:
    m = walker(20)
    bvh = read_bvh(write_bvh(tmp_path / "m.bvh", apply_rig(m, "mixamo")))
    assert bvh.names[0] == "mixamorig:Hips" and "mixamorig:LeftToe_End" not in bvh.names
    assert bvh.parents[bvh.names.index("mixamorig:LeftShoulder")] == bvh.names.index(
        "mixamorig:Spine2"
    )
    assert np.abs(bvh.positions() - m.positions()).max() < 1e-5


def test_open_exporter_takes_a_rig_for_animation_files_only(tmp_path) -> None:
    assert open_exporter(tmp_path / "a.glb", rig="vrm").rig == "vrm"
    with pytest.raises(ValueError, match=r"rig='vrm' applies to \.bvh, \.glb exports"):
        open_exporter(tmp_path / "a.jsonl", rig="vrm")


def test_skin_binds_the_rest_pose_and_passes_the_rule_checks(tmp_path) -> None:
    m = apply_rig(walker(12), "vrm")
    path = write_glb(tmp_path / "s.glb", [m], rig="vrm")
    assert check_glb(path) == []
    doc = pygltflib.GLTF2().load(str(path))
    (skin,) = doc.skins
    joints = [doc.nodes[i].name for i in skin.joints]
    assert joints == [*m.names, *m.end_names] and doc.nodes[skin.skeleton].name == "hips"
    ibm = accessor_data(doc, skin.inverseBindMatrices).reshape(-1, 4, 4).transpose(0, 2, 1)

    def rest_world(node: int, parent: np.ndarray) -> dict[int, np.ndarray]:
        mat = parent.copy()
        mat[:3, 3] += parent[:3, :3] @ np.asarray(doc.nodes[node].translation or [0, 0, 0])
        out = {node: mat}
        for c in doc.nodes[node].children or []:
            out.update(rest_world(c, mat))
        return out

    world = rest_world(skin.skeleton, np.eye(4))  # rest pose: every rotation identity
    for k, node in enumerate(skin.joints):
        np.testing.assert_allclose(world[node] @ ibm[k], np.eye(4), atol=1e-6)  # bind = rest
    feet = np.array([world[n][1, 3] for n in skin.joints])
    assert feet.min() == pytest.approx(0.0, abs=1e-6)  # the rest pose stands on y = 0
    mesh_node = next(n for n in doc.nodes if n.skin is not None)
    assert mesh_node.name == "motion0_body" and doc.meshes[mesh_node.mesh].name == "motion0_body"


def test_each_box_follows_its_bone_rigidly(tmp_path) -> None:
    """Skinning by hand at every key (joint world x inverse bind x vertex) keeps each box at a
    fixed place on its bone: the box centre sits at its joint's rest offset, posed."""
    m = walker(15)
    body = body_mesh(m)
    rest = body.positions.reshape(20, 24, 3)
    centres = rest.mean(axis=1)
    pos, glob = m.positions(), m.global_rotations()
    rest_pts = np.zeros((25, 3))
    for j, p in enumerate(m.parents):
        rest_pts[j] = 0 if p < 0 else rest_pts[p] + m.offsets[j]
    for t in (0, 7, 14):
        for j in range(20):
            posed = pos[t, j] + (rest[j] - rest_pts[j]) @ glob[t, j].T
            centre = pos[t, j] + glob[t, j] @ (centres[j] - rest_pts[j])
            np.testing.assert_allclose(posed.mean(axis=0), centre, atol=1e-6)
            # the box spans its bone: it reaches past the joint it aims at
            aim = rig.AIMS[j]
            if j:
                end = rest_pts[aim] if aim < 20 else None
                if end is not None:
                    lo, hi = rest[j].min(0), rest[j].max(0)
                    assert np.all(lo <= end + 1e-9) and np.all(hi >= end - 1e-9)
    assert np.all(body.weights[:, 0] == 1) and body.joints[:, 0].max() == 19
    assert len(half_thickness()) == 20 and body.indices.max() == 20 * 24 - 1


def test_checker_catches_broken_files() -> None:
    doc = glb_document([walker(6)])
    assert check_gltf(doc) == []
    blob = bytearray(doc.binary_blob())
    anim = doc.animations[0]
    rot = next(c for c in anim.channels if c.target.path == "rotation")
    out = doc.accessors[anim.samplers[rot.sampler].output]
    start = doc.bufferViews[out.bufferView].byteOffset
    blob[start : start + 16] = np.array([0, 0, 0, 2], np.float32).tobytes()  # |q| = 2
    doc.set_binary_blob(bytes(blob))
    assert any("not unit length" in p for p in check_gltf(doc))
    doc = glb_document([walker(6)])
    doc.accessors[0].count += 1000  # reads past its view
    assert any("reads past" in p for p in check_gltf(doc))
    doc = glb_document([walker(6)])
    pos = doc.meshes[0].primitives[0].attributes.POSITION
    doc.accessors[pos].max = [9.0, 9.0, 9.0]
    assert any("min/max differ" in p for p in check_gltf(doc))
    doc = glb_document([walker(6)])
    doc.skins[0].joints = doc.skins[0].joints[:-1]
    assert any("inverse bind matrices" in p for p in check_gltf(doc))
    doc = glb_document([walker(6)])
    doc.nodes[0].children.append(doc.nodes[0].children[0])
    assert any("two parents" in p for p in check_gltf(doc))
