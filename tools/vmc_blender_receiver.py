"""A minimal VMC receiver inside Blender: poses an armature from ``--stream vmc://`` packets.

    blender -b --factory-startup --python tools/vmc_blender_receiver.py -- \\
        PORT COUNT OUT.png [SITE_PACKAGES]

Listens on 127.0.0.1:PORT (UDP) until COUNT pose bundles came (or 20 s passed without one),
decodes them with python-osc (give the folder holding ``pythonosc`` as SITE_PACKAGES when
Blender's Python lacks it), builds an armature named after Unity's HumanBodyBones from the
first pose (its T-pose: the bones' local positions, no rotation), keys every received pose
on consecutive frames, renders the last one (Cycles, CPU) with one box per bone, and prints
a JSON summary (packets, bones, /VMC/Ext/T steps). For interactive use in Blender or Unity,
use the VMC4B add-on or EVMC4U (docs/animation.md); this script is how the picture in the
docs was made and how the stream was checked against a receiver in Blender.
"""

import itertools
import json
import socket
import sys

import bpy  # provided by Blender
from mathutils import Matrix, Quaternion, Vector

argv = sys.argv[sys.argv.index("--") + 1 :]
port, count, out = int(argv[0]), int(argv[1]), argv[2]
if len(argv) > 3:
    sys.path.append(argv[3])
from pythonosc.osc_packet import OscPacket  # noqa: E402

PARENTS = {
    "Hips": None, "Spine": "Hips", "Chest": "Spine", "UpperChest": "Chest",
    "Neck": "UpperChest", "Head": "Neck", "LeftShoulder": "UpperChest",
    "RightShoulder": "UpperChest", "LeftUpperArm": "LeftShoulder",
    "RightUpperArm": "RightShoulder", "LeftLowerArm": "LeftUpperArm",
    "RightLowerArm": "RightUpperArm", "LeftHand": "LeftLowerArm", "RightHand": "RightLowerArm",
    "LeftUpperLeg": "Hips", "RightUpperLeg": "Hips", "LeftLowerLeg": "LeftUpperLeg",
    "RightLowerLeg": "RightUpperLeg", "LeftFoot": "LeftLowerLeg", "RightFoot": "RightLowerLeg",
}  # fmt: skip
C = Matrix(((1, 0, 0), (0, 0, -1), (0, 1, 0)))  # Y-up right-handed -> Blender's Z up


def to_blender(p):
    """A Unity point (left-handed, Y up) in Blender's frame."""
    return C @ Vector((-p[0], p[1], p[2]))


def rot_to_blender(q):
    """A Unity rotation (x, y, z, w) as a Blender 3x3 matrix."""
    r = Quaternion((q[3], q[0], -q[1], -q[2])).to_matrix()
    return C @ r @ C.transposed()


def globals_of(bones, root):
    """Chain local (position, rotation) in order: global (position, 3x3) per bone, Blender."""
    out = {}
    for name, (pos, quat) in bones.items():
        parent = PARENTS.get(name)
        local_p, local_r = to_blender(pos), rot_to_blender(quat)
        if parent is None:
            out[name] = (to_blender(root) + local_p, local_r)
        else:
            pp, pr = out[parent]
            out[name] = (pp + pr @ local_p, pr @ local_r)
    return out


sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.bind(("127.0.0.1", port))
sock.settimeout(20.0)
poses, times, packets = [], [], 0
print("listening on", port, flush=True)
while len(poses) < count:
    try:
        data = sock.recv(65536)
    except TimeoutError:
        break
    packets += 1
    root, bones = None, {}
    for m in OscPacket(data).messages:
        msg = m.message
        if msg.address == "/VMC/Ext/Root/Pos":
            root = msg.params[1:4]
        elif msg.address == "/VMC/Ext/Bone/Pos" and msg.params[0] in PARENTS:
            bones[msg.params[0]] = (msg.params[1:4], msg.params[4:8])
        elif msg.address == "/VMC/Ext/T":
            times.append(float(msg.params[0]))
    if root is not None and len(bones) == len(PARENTS):
        poses.append((root, bones))
sock.close()
if not poses:
    raise SystemExit("no pose received")

bpy.ops.wm.read_factory_settings(use_empty=True)
scene = bpy.context.scene
rest = globals_of({n: (p, (0.0, 0.0, 0.0, 1.0)) for n, (p, _) in poses[0][1].items()},
                  (0.0, 0.0, 0.0))  # fmt: skip
arm_data = bpy.data.armatures.new("VMC")
arm = bpy.data.objects.new("VMC", arm_data)
scene.collection.objects.link(arm)
bpy.context.view_layer.objects.active = arm
bpy.ops.object.mode_set(mode="EDIT")
kids = {n: [k for k, p in PARENTS.items() if p == n] for n in PARENTS}
for name in PARENTS:
    eb = arm_data.edit_bones.new(name)
    eb.head = rest[name][0]
    ends = [rest[k][0] for k in kids[name] if (rest[k][0] - rest[name][0]).length > 1e-3]
    tail = sum(ends, Vector()) / len(ends) if ends else rest[name][0] + Vector((0, 0, 0.08))
    if name.endswith("Foot"):
        tail = rest[name][0] + Vector((0, -0.12, -0.05))
    if name == "Hips":
        tail = rest[name][0] + Vector((0, 0, 0.1))
    eb.tail = tail
for name, parent in PARENTS.items():
    if parent:
        arm_data.edit_bones[name].parent = arm_data.edit_bones[parent]
bpy.ops.object.mode_set(mode="OBJECT")

for name in PARENTS:  # one box per bone, parented to it, so the render shows a body
    bone = arm_data.bones[name]
    length = max(bone.length, 0.05)
    bpy.ops.mesh.primitive_cube_add(size=1)
    box = bpy.context.object
    box.scale = (0.09, length, 0.09) if "Spine" not in name and "Chest" not in name else (
        0.22, length, 0.14)
    box.parent, box.parent_type, box.parent_bone = arm, "BONE", name
    box.matrix_parent_inverse = Matrix.Identity(4)
    box.location = (0, -length / 2, 0)  # bone space: the box's centre halfway up the bone

for frame, (root, bones) in enumerate(poses, start=1):
    glob = globals_of(bones, root)
    desired = {}
    for name, (pos, rot) in glob.items():
        bone = arm_data.bones[name]
        desired[name] = Matrix.Translation(pos) @ (rot @ bone.matrix_local.to_3x3()).to_4x4()
    for name, parent in PARENTS.items():
        pb, bone = arm.pose.bones[name], arm_data.bones[name]
        if parent is None:
            pb.matrix_basis = bone.matrix_local.inverted() @ desired[name]
        else:
            rel = arm_data.bones[parent].matrix_local.inverted() @ bone.matrix_local
            pb.matrix_basis = rel.inverted() @ desired[parent].inverted() @ desired[name]
        pb.keyframe_insert("location", frame=frame)
        pb.keyframe_insert("rotation_quaternion", frame=frame)
scene.frame_start, scene.frame_end = 1, len(poses)
scene.frame_set(len(poses))

hips = arm.matrix_world @ arm.pose.bones["Hips"].head
head = arm.matrix_world @ arm.pose.bones["Head"].head
bpy.ops.mesh.primitive_plane_add(size=40, location=(hips.x, hips.y, 0))
bpy.ops.object.light_add(type="SUN", rotation=(0.7, 0, 0.5))
bpy.context.object.data.energy = 4.0
world = bpy.data.worlds.new("sky")
world.use_nodes = True
world.node_tree.nodes["Background"].inputs["Color"].default_value = (0.55, 0.6, 0.7, 1)
scene.world = world
eye = hips + Vector((2.4, -3.0, 0.8))
bpy.ops.object.camera_add(location=eye)
scene.camera = bpy.context.object
scene.camera.rotation_euler = (hips - eye).to_track_quat("-Z", "Y").to_euler()
scene.render.engine = "CYCLES"
scene.cycles.samples = 32
scene.cycles.use_denoising = False  # Debian builds Blender without OpenImageDenoise
scene.render.resolution_x, scene.render.resolution_y = 640, 480
scene.render.filepath = out
bpy.ops.render.render(write_still=True)
steps = [b - a for a, b in itertools.pairwise(times)]
print(json.dumps({"packets": packets, "poses": len(poses), "bones": len(PARENTS),
                  "head_height": head.z, "hips": list(hips),
                  "t_step_median": sorted(steps)[len(steps) // 2] if steps else None}))
