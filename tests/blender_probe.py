"""Run inside Blender: import a file as a user would and report what came in, as JSON.

    blender -b --factory-startup --python tests/blender_probe.py -- IN.glb|IN.bvh OUT.json [FRAMES]

With PROBE_PATCH_OPEN=1 in the environment, a BVH is imported with the open-mode shim that
docs/animation.md gives for Debian's Blender 3.4 (its importer opens files with 'rU').

Reports every object (name, type, parent), each armature's bones, each action's curves
(key count, whether any key is NaN), each mesh's armature modifier and vertex groups, and,
at each of FRAMES (comma-separated scene frames, default "1"), the world position of every
pose bone's head and the evaluated (deformed) mesh's bounding box. Blender is Z up: a glTF
point (x, y, z) comes in as (x, -z, y).
"""

import builtins
import json
import math
import os
import sys

import bpy  # provided by Blender

argv = sys.argv[sys.argv.index("--") + 1 :]
src, out = argv[0], argv[1]
frames = [int(f) for f in (argv[2] if len(argv) > 2 else "1").split(",")]

bpy.ops.wm.read_factory_settings(use_empty=True)
if src.endswith(".bvh"):
    if os.environ.get("PROBE_PATCH_OPEN"):  # the docs' workaround for Debian's Blender 3.4
        _open = builtins.open
        builtins.open = lambda f, mode="r", *a, **k: _open(f, mode.replace("U", ""), *a, **k)
    bpy.ops.import_anim.bvh(filepath=src)
else:
    # Debian's Blender 3.4 with NumPy >= 1.24: the default shading guess ("NORMALS") calls
    # the removed np.bool and stops the import; Flat (or Smooth) avoids that code.
    bpy.ops.import_scene.gltf(filepath=src, import_shading="FLAT")

scene = bpy.context.scene
report = {"objects": [], "armatures": {}, "actions": {}, "meshes": {}, "frames": {},
          "fps": scene.render.fps / scene.render.fps_base,
          "frame_range": [scene.frame_start, scene.frame_end]}
for ob in bpy.data.objects:
    report["objects"].append({"name": ob.name, "type": ob.type,
                              "parent": ob.parent.name if ob.parent else None})
    if ob.type == "ARMATURE":
        report["armatures"][ob.name] = {
            "bones": [b.name for b in ob.data.bones],
            "parents": {b.name: b.parent.name if b.parent else None for b in ob.data.bones},
            "action": ob.animation_data.action.name
            if ob.animation_data and ob.animation_data.action else None,
        }
    if ob.type == "MESH":
        mods = [m for m in ob.modifiers if m.type == "ARMATURE"]
        report["meshes"][ob.name] = {
            "armature": mods[0].object.name if mods and mods[0].object else None,
            "vertex_groups": [g.name for g in ob.vertex_groups],
            "vertices": len(ob.data.vertices),
        }
for act in bpy.data.actions:
    keys = [k for fc in act.fcurves for k in fc.keyframe_points]
    report["actions"][act.name] = {
        "fcurves": len(act.fcurves),
        "keys": len(keys),
        "nan": any(not math.isfinite(v) for k in keys for v in k.co),
        "paths": sorted({fc.data_path for fc in act.fcurves})[:200],
        "range": list(act.frame_range),
    }
depsgraph = bpy.context.evaluated_depsgraph_get()
for f in frames:
    scene.frame_set(f)
    depsgraph = bpy.context.evaluated_depsgraph_get()
    snap = {"bones": {}, "mesh_bbox": {}}
    for ob in bpy.data.objects:
        if ob.type == "ARMATURE":
            snap["bones"][ob.name] = {
                pb.name: list(ob.matrix_world @ pb.head) for pb in ob.pose.bones
            }
        if ob.type == "MESH":
            ev = ob.evaluated_get(depsgraph)
            mesh = ev.to_mesh()
            pts = [ev.matrix_world @ v.co for v in mesh.vertices]
            snap["mesh_bbox"][ob.name] = [[min(p[i] for p in pts) for i in range(3)],
                                          [max(p[i] for p in pts) for i in range(3)]]
            ev.to_mesh_clear()
    report["frames"][str(f)] = snap
with open(out, "w") as fh:
    json.dump(report, fh)
print("probe: wrote", out)
