"""Render one frame of an animation export in Blender, headless (how docs/img pictures are made).

    blender -b --factory-startup --python tools/blender_render.py -- IN.glb OUT.png [FRAME]

Imports the ``.glb`` with Blender's stock glTF importer (Shading: Flat, which Debian's
Blender 3.4 needs with NumPy >= 1.24), adds a floor, a sun and a camera aimed at the first
armature's hips, shows the bones in front of the body, and renders scene frame FRAME
(default 24, i.e. 1 s at Blender's 24 FPS) with Cycles on the CPU.
"""

import math
import sys

import bpy  # provided by Blender
from mathutils import Vector

argv = sys.argv[sys.argv.index("--") + 1 :]
src, out = argv[0], argv[1]
frame = int(argv[2]) if len(argv) > 2 else 24

bpy.ops.wm.read_factory_settings(use_empty=True)
bpy.ops.import_scene.gltf(filepath=src, import_shading="FLAT")
scene = bpy.context.scene
scene.frame_set(frame)
arm = next(o for o in bpy.data.objects if o.type == "ARMATURE")
arm.show_in_front = True
arm.data.display_type = "STICK"
hips = arm.matrix_world @ arm.pose.bones[0].head

bpy.ops.mesh.primitive_plane_add(size=40, location=(hips.x, hips.y, 0))
floor = bpy.context.object
mat = bpy.data.materials.new("floor")
mat.diffuse_color = (0.35, 0.37, 0.4, 1)
mat.use_nodes = True
mat.node_tree.nodes["Principled BSDF"].inputs["Base Color"].default_value = (0.3, 0.32, 0.35, 1)
floor.data.materials.append(mat)
bpy.ops.object.light_add(type="SUN", rotation=(math.radians(40), 0, math.radians(30)))
bpy.context.object.data.energy = 4.0
world = bpy.data.worlds.new("sky")
world.use_nodes = True
world.node_tree.nodes["Background"].inputs["Color"].default_value = (0.6, 0.65, 0.72, 1)
world.node_tree.nodes["Background"].inputs["Strength"].default_value = 0.8
scene.world = world

eye = hips + Vector((2.6, -3.2, 0.9))
bpy.ops.object.camera_add(location=eye)
cam = bpy.context.object
cam.rotation_euler = (hips - eye).to_track_quat("-Z", "Y").to_euler()
cam.data.lens = 40
scene.camera = cam

scene.render.engine = "CYCLES"
scene.cycles.device = "CPU"
scene.cycles.samples = 32
scene.cycles.use_denoising = False  # Debian builds Blender without OpenImageDenoise
scene.render.resolution_x, scene.render.resolution_y = 640, 480
scene.render.filepath = out
bpy.ops.render.render(write_still=True)
print("rendered", out)
