"""Synthetic motions with known answers for the animation tests.

:func:`walker` poses the 20-joint rig by forward kinematics (so bone lengths are constant),
with a straight spine as the rig assumes, knees bending past 100°, elbows past 90° and a
full 360° turn of the body. :func:`mhr70_from_points` builds MHR70 joints whose derived rig
points (:func:`instanthmr.animation.rig.rig_points`) are exactly the given ones, so the
whole chain FrameResult -> rig -> BVH/glTF -> forward kinematics can be checked to 1 mm.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pygltflib
from scipy.spatial.transform import Rotation

from instanthmr.animation import rig
from instanthmr.animation.kinematics import Motion
from instanthmr.results import FrameResult, PersonResult
from instanthmr.skeleton import JOINT_INDEX, JOINT_NAMES

# Bone lengths (metres) of every rig point from its parent; zero-offset joints get 0.
LENGTHS = {
    "LeftUpLeg": 0.1, "RightUpLeg": 0.1, "LeftLeg": 0.42, "RightLeg": 0.42,
    "LeftFoot": 0.40, "RightFoot": 0.40, "Spine1": 0.17, "Spine2": 0.17, "Neck": 0.17,
    "Head": 0.12, "LeftArm": 0.17, "RightArm": 0.17, "LeftForeArm": 0.28,
    "RightForeArm": 0.28, "LeftHand": 0.25, "RightHand": 0.25, "LeftToe": 0.15,
    "RightToe": 0.15, "HeadEnd": 0.1, "LeftHandEnd": 0.09, "RightHandEnd": 0.09,
}  # fmt: skip
HALF_WIDTH = {"ear": 0.07, "toe": 0.03, "hand": 0.03}


def rest_offsets() -> np.ndarray:
    """(P, 3) rest offsets of the rig points with :data:`LENGTHS`."""
    lengths = np.array([LENGTHS.get(n, 0.0) for n in rig.POINT_NAMES])
    return rig.REST_DIRS * lengths[:, None]


def walker(frames: int = 90, fps: float = 30.0) -> Motion:
    """A rig motion: walking forward while turning a full circle, limbs swinging."""
    t = np.arange(frames) / fps
    ph = 2 * np.pi * 1.2 * t
    nj = len(rig.JOINT_NAMES)
    rv = np.zeros((frames, nj, 3))
    idx = {n: i for i, n in enumerate(rig.JOINT_NAMES)}
    heading = np.linspace(0, 2 * np.pi, frames)  # a full turn over the clip
    root = Rotation.from_euler("YXZ", np.c_[heading, 0.15 * np.sin(ph), 0.05 * np.cos(ph)])
    for side, s in (("Left", 1), ("Right", -1)):
        rv[:, idx[f"{side}UpLeg"], 0] = -0.6 * s * np.sin(ph)  # thigh swing about X
        rv[:, idx[f"{side}Leg"], 0] = 1.0 + 0.9 * np.sin(ph + s)  # knee: up to ~108°
        rv[:, idx[f"{side}Foot"], 0] = 0.3 * np.sin(ph)
        rv[:, idx[f"{side}Arm"]] = np.c_[0.5 * s * np.sin(ph), 0.3 * np.cos(ph), -s * 1.2 + 0 * t]
        rv[:, idx[f"{side}ForeArm"], 1] = s * (0.9 + 0.8 * np.sin(ph))  # elbow: up to ~97°
        rv[:, idx[f"{side}Hand"]] = np.c_[0.4 * np.sin(ph), 0.2 * np.cos(ph), 0.1 * np.sin(ph)]
        rv[:, idx[f"{side}Shoulder"], 2] = 0.1 * s * np.sin(ph)
    rv[:, idx["Spine"]] = np.c_[0.2 * np.sin(ph), 0.3 * np.sin(ph / 2), 0.05 * np.cos(ph)]
    rv[:, idx["Neck"], 0] = 0.2 * np.sin(ph)
    rv[:, idx["Head"]] = np.c_[0.2 * np.cos(ph), 0.6 * np.sin(ph / 3), 0.05 + 0 * t]
    local = Rotation.from_rotvec(rv.reshape(-1, 3)).as_matrix().reshape(frames, nj, 3, 3)
    local[:, 0] = root.as_matrix()
    offsets = rest_offsets()
    start = np.array([0.5, 0.95, 3.0])
    pos = start + np.c_[1.2 * t, 0.03 * np.sin(2 * ph), -0.4 * t]
    return Motion(
        rig.JOINT_NAMES, rig.PARENTS, offsets[:nj], local, pos, 1 / fps, rig.EULER_ORDERS,
        rig.END_NAMES, rig.END_PARENTS, offsets[nj:],
    )  # fmt: skip


def mhr70_from_points(points: np.ndarray, glob: np.ndarray) -> np.ndarray:
    """(T, P, 3) rig points and (T, J, 3, 3) global rotations -> (T, 70, 3) MHR70 joints."""
    name_at = {n: i for i, n in enumerate(rig.POINT_NAMES)}

    def pt(name: str) -> np.ndarray:
        return points[:, name_at[name]]

    def axis(joint: str, k: int) -> np.ndarray:
        return glob[:, rig.JOINT_NAMES.index(joint)][:, :, k]

    out = np.repeat(pt("Head")[:, None], len(JOINT_NAMES), axis=1)  # unused joints: the head
    put = {
        "left_hip": pt("LeftUpLeg"), "right_hip": pt("RightUpLeg"),
        "left_knee": pt("LeftLeg"), "right_knee": pt("RightLeg"),
        "left_ankle": pt("LeftFoot"), "right_ankle": pt("RightFoot"),
        "neck": pt("Neck"), "nose": pt("HeadEnd"),
        "left_ear": pt("Head") + HALF_WIDTH["ear"] * axis("Head", 0),
        "right_ear": pt("Head") - HALF_WIDTH["ear"] * axis("Head", 0),
        "left_small_toe_tip": pt("LeftToe") + HALF_WIDTH["toe"] * axis("LeftFoot", 0),
        "left_big_toe_tip": pt("LeftToe") - HALF_WIDTH["toe"] * axis("LeftFoot", 0),
        "right_big_toe_tip": pt("RightToe") + HALF_WIDTH["toe"] * axis("RightFoot", 0),
        "right_small_toe_tip": pt("RightToe") - HALF_WIDTH["toe"] * axis("RightFoot", 0),
        "left_shoulder": pt("LeftArm"), "right_shoulder": pt("RightArm"),
        "left_elbow": pt("LeftForeArm"), "right_elbow": pt("RightForeArm"),
        "left_wrist": pt("LeftHand"), "right_wrist": pt("RightHand"),
    }  # fmt: skip
    for side, hand in (("left", "LeftHand"), ("right", "RightHand")):
        for finger, sign in (("index", 1), ("middle", 0), ("ring", 0), ("pinky", -1)):
            for part in ("tip", "first_joint", "second_joint", "third_joint"):
                end = pt(f"{hand}End")
                put[f"{side}_{finger}_{part}"] = end + sign * HALF_WIDTH["hand"] * axis(hand, 2)
    for name, value in put.items():
        out[:, JOINT_INDEX[name]] = value
    return out


def with_world(person: PersonResult, world: np.ndarray) -> PersonResult:
    """``person`` carrying ``joints_3d_world``.

    Uses the real field (``dataclasses.replace``) once ``PersonResult`` has it (the world
    frame work); until then the value is set on the instance, read the same way through
    ``getattr(person, "joints_3d_world", None)``.
    """
    if "joints_3d_world" in {f.name for f in dataclasses.fields(PersonResult)}:
        return dataclasses.replace(person, joints_3d_world=world)
    object.__setattr__(person, "joints_3d_world", np.asarray(world, dtype=np.float32))
    return person


def person(joints_cam: np.ndarray, track_id: int) -> PersonResult:
    """A PersonResult whose ``joints_3d_cam`` is ``joints_cam`` (other fields: placeholders)."""
    trans = joints_cam.mean(axis=0)
    return PersonResult(
        bbox=[0, 0, 10, 10], score=0.9, joints_2d=np.zeros((70, 2)),
        joints_3d_local=joints_cam - trans, cam_trans=trans, mhr_params=np.zeros(204),
        shape_params=np.zeros(45), focal_length=500.0, principal_point=[320, 240],
        image_size=(640, 480), track_id=track_id,
    )  # fmt: skip


def frames_from(
    tracks: dict[int, np.ndarray], count: int, fps: float | None = 25.0
) -> list[FrameResult]:
    """FrameResults from per-track (count, 70, 3) camera joints; NaN rows: not in that frame."""
    out = []
    for i in range(count):
        ps = [person(j[i], tid) for tid, j in tracks.items() if np.all(np.isfinite(j[i]))]
        stamp = None if fps is None else i / fps
        out.append(FrameResult(ps, i, (640, 480), timestamp=stamp))
    return out


def _accessor(doc: pygltflib.GLTF2, blob: bytes, index: int) -> np.ndarray:
    acc = doc.accessors[index]
    view = doc.bufferViews[acc.bufferView]
    width = {"SCALAR": 1, "VEC3": 3, "VEC4": 4}[acc.type]
    start = (view.byteOffset or 0) + (acc.byteOffset or 0)
    data = np.frombuffer(blob, dtype=np.float32, count=acc.count * width, offset=start)
    return data.reshape(acc.count, width) if width > 1 else data


def track_groups(doc: pygltflib.GLTF2) -> list[int]:
    """The track group nodes among the scene roots (the skinned body nodes are roots too)."""
    return [i for i in doc.scenes[doc.scene].nodes if doc.nodes[i].mesh is None]


def glb_positions(path, group: int = 0) -> tuple[dict[str, np.ndarray], np.ndarray, dict]:
    """Read a .glb with pygltflib: world positions of one track's nodes at each of its keys.

    Nodes of one track have unique names (the rig's), so the names key the result.

    ``group`` picks the scene root (one per track); returns (node name -> (K, 3) positions,
    the K key times, every channel as (node, path) -> (times, values)).
    """
    doc = pygltflib.GLTF2().load(str(path))
    blob = doc.binary_blob()
    anim = doc.animations[0]
    tracks: dict[tuple[int, str], tuple[np.ndarray, np.ndarray]] = {}
    for ch in anim.channels:
        s = anim.samplers[ch.sampler]
        tracks[(ch.target.node, ch.target.path)] = (_accessor(doc, blob, s.input),
                                                    _accessor(doc, blob, s.output))  # fmt: skip
    top = track_groups(doc)[group]
    times = tracks[(doc.nodes[top].children[0], "rotation")][0]  # the root joint's keys
    world: dict[str, np.ndarray] = {}

    def visit(node: int, parent: np.ndarray) -> None:
        n = doc.nodes[node]
        trans = np.broadcast_to(np.asarray(n.translation or [0, 0, 0], float), (len(times), 3))
        trans = tracks.get((node, "translation"), (None, trans))[1]
        quat = tracks.get((node, "rotation"), (None, np.array([n.rotation or [0, 0, 0, 1]])))[1]
        m = np.tile(np.eye(4), (len(times), 1, 1))
        m[:, :3, :3] = Rotation.from_quat(np.broadcast_to(quat, (len(times), 4))).as_matrix()
        m[:, :3, 3] = trans
        mat = parent @ m
        world[n.name] = mat[:, :3, 3]
        for c in n.children:
            visit(c, mat)

    visit(top, np.tile(np.eye(4), (len(times), 1, 1)))  # the group's scale is animated: skip it
    return world, times, tracks


def _two_bone_knee(hip: np.ndarray, ankle: np.ndarray, l1: float, l2: float) -> np.ndarray:
    """Knee positions of legs from ``hip`` to ``ankle`` (T, 3), bending forward (+Z)."""
    to = ankle - hip
    d = np.linalg.norm(to, axis=-1)
    u = to / d[:, None]
    along = (l1**2 - l2**2 + d**2) / (2 * d)
    across = np.sqrt(np.maximum(l1**2 - along**2, 0.0))
    fwd = np.array([0.0, 0.0, 1.0]) - u[:, 2:3] * u
    fwd /= np.linalg.norm(fwd, axis=-1, keepdims=True)
    return hip + along[:, None] * u + across[:, None] * fwd


def stepper(frames: int = 150, fps: float = 30.0) -> tuple[np.ndarray, np.ndarray]:
    """A walk with truly planted feet, in a world frame (Y up, ground y = 0, walking +Z).

    1 m/s, one stride (1 m) per second per foot, each foot on the ground 60% of its cycle
    (its ankle, heel and toes not moving at all), the other 40% swinging forward with a
    10 cm lift. Returns (truth (T, 70, 3) MHR70 joints, truth (T, 2) contact: ankle still).
    """
    t = np.arange(frames) / fps
    thigh, shin, stance = 0.42, 0.40, 0.6
    pelvis = np.c_[0 * t, 0.80 + 0.015 * np.cos(4 * np.pi * t), t - 0.3]
    ankles, planted = [], []
    for x, offset, start in ((0.1, 0.0, 0.0), (-0.1, 0.5, -0.5)):
        phase = t + offset
        cycle, frac = np.floor(phase), phase % 1.0
        swing = np.clip((frac - stance) / (1 - stance), 0, 1)
        ease = 0.5 - 0.5 * np.cos(np.pi * swing)
        z = cycle + start + ease
        y = 0.08 + 0.10 * np.sin(np.pi * swing)
        ankles.append(np.c_[x + 0 * t, y, z])
        planted.append(frac < stance)
    pts = np.zeros((frames, len(rig.POINT_NAMES), 3))
    at = {n: i for i, n in enumerate(rig.POINT_NAMES)}
    up = np.array([0.0, 1.0, 0.0])
    pts[:, at["Hips"]] = pts[:, at["Spine"]] = pelvis
    for side, name in enumerate(("Left", "Right")):
        hip = pelvis + [0.1 if side == 0 else -0.1, 0, 0]
        pts[:, at[f"{name}UpLeg"]] = hip
        pts[:, at[f"{name}Foot"]] = ankles[side]
        pts[:, at[f"{name}Leg"]] = _two_bone_knee(hip, ankles[side], thigh, shin)
        pts[:, at[f"{name}Toe"]] = ankles[side] + [0, -0.06, 0.15]
    for k, name in enumerate(("Spine1", "Spine2", "Neck"), start=1):
        pts[:, at[name]] = pelvis + k * 0.17 * up
    neck = pts[:, at["Neck"]]
    pts[:, at["LeftShoulder"]] = pts[:, at["RightShoulder"]] = neck
    pts[:, at["Head"]] = neck + 0.12 * up
    pts[:, at["HeadEnd"]] = pts[:, at["Head"]] + [0, 0, 0.1]
    for side, name in enumerate(("Left", "Right")):
        sign = 1 if side == 0 else -1
        swing = 0.3 * np.sin(2 * np.pi * t + side * np.pi)
        down = np.c_[0 * t, -np.cos(swing), np.sin(swing)]
        shoulder = neck + [sign * 0.17, 0, 0]
        pts[:, at[f"{name}Arm"]] = shoulder
        pts[:, at[f"{name}ForeArm"]] = shoulder + 0.28 * down
        pts[:, at[f"{name}Hand"]] = shoulder + 0.53 * down
        pts[:, at[f"{name}HandEnd"]] = shoulder + 0.62 * down
    glob = np.broadcast_to(np.eye(3), (frames, len(rig.JOINT_NAMES), 3, 3))
    joints = mhr70_from_points(pts, glob)
    for name, foot in (("left", 0), ("right", 1)):
        joints[:, JOINT_INDEX[f"{name}_heel"]] = ankles[foot] + [0, -0.06, -0.05]
    return joints, np.stack(planted, axis=1)


def world_frames(joints: np.ndarray, fps: float = 30.0, **motion_config) -> list[FrameResult]:
    """FrameResults of one person (track 1) whose world joints are ``joints`` (T, 70, 3), put
    through the real world stage (a camera 1.6 m high, pitched 10° down) as the pipeline does:
    world joints, trajectory and its contact flags."""
    from instanthmr.world import WorldFrame
    from instanthmr.world.stage import WorldTracker
    from instanthmr.world.trajectory import MotionConfig

    frame = WorldFrame.from_camera(1.6, 10.0)
    stage = WorldTracker(frame, motion=MotionConfig(**motion_config))
    out = []
    for i, j in enumerate(joints):
        persons, info = stage.update([person(frame.world_to_cam(j), 1)], i / fps)
        out.append(FrameResult(persons, i, (640, 480), timestamp=i / fps, world=info))
    return out
