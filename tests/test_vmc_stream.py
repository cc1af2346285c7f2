"""Live VMC streaming: a real UDP receiver on 127.0.0.1 decodes the packets python-osc sent.

The walker (known joints) goes through the world stage and the sink; the receiver checks
the message order, the bone names, the frame times and that the received local transforms,
chained in Unity's coordinates, put every joint where the walker has it.
"""

from __future__ import annotations

import socket

import numpy as np
import pytest
from animation_synth import frames_from, stepper, walker, world_frames
from pythonosc.osc_packet import OscPacket
from scipy.spatial.transform import Rotation

from instanthmr.animation import rig
from instanthmr.animation.rigs import joint_names
from instanthmr.results import FrameResult
from instanthmr.sinks.vmc import (
    StreamUrlError,
    VmcSink,
    VmcTarget,
    parse_stream_url,
)

UNITY = [joint_names("unity")[n] for n in rig.JOINT_NAMES]
UNITY_PARENTS = {  # HumanBodyBones hierarchy of the bones sent
    "Hips": None, "Spine": "Hips", "Chest": "Spine", "UpperChest": "Chest",
    "Neck": "UpperChest", "Head": "Neck", "LeftShoulder": "UpperChest",
    "RightShoulder": "UpperChest", "LeftUpperArm": "LeftShoulder",
    "RightUpperArm": "RightShoulder", "LeftLowerArm": "LeftUpperArm",
    "RightLowerArm": "RightUpperArm", "LeftHand": "LeftLowerArm", "RightHand": "RightLowerArm",
    "LeftUpperLeg": "Hips", "RightUpperLeg": "Hips", "LeftLowerLeg": "LeftUpperLeg",
    "RightLowerLeg": "RightUpperLeg", "LeftFoot": "LeftLowerLeg", "RightFoot": "RightLowerLeg",
}  # fmt: skip


class Receiver:
    """A UDP socket on 127.0.0.1 that decodes every OSC packet it gets, in arrival order."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(2.0)
        self.port = self.sock.getsockname()[1]

    def packets(self, count: int) -> list[list[tuple[str, tuple]]]:
        out = []
        for _ in range(count):
            data = self.sock.recv(65536)
            out.append([(m.message.address, tuple(m.message.params))
                        for m in OscPacket(data).messages])  # fmt: skip
        return out

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


def _unity_fk(packet: list[tuple[str, tuple]]) -> dict[str, np.ndarray]:
    """Global positions of the bones in one packet, chained as a Unity receiver would."""
    root = np.array(packet[0][1][1:4])
    glob: dict[str, tuple[np.ndarray, Rotation]] = {}
    for address, args in packet[1:]:
        if address != "/VMC/Ext/Bone/Pos":
            continue
        name, pos, quat = args[0], np.array(args[1:4]), Rotation.from_quat(args[4:8])
        parent = UNITY_PARENTS[name]
        if parent is None:
            glob[name] = (root + pos, quat)
        else:
            ppos, prot = glob[parent]
            glob[name] = (ppos + prot.apply(pos), prot * quat)
    return {k: v[0] for k, v in glob.items()}


def test_stream_url_parsing() -> None:
    assert parse_stream_url("vmc://127.0.0.1:39540") == VmcTarget("127.0.0.1", 39540)
    assert parse_stream_url("vmc://localhost") == VmcTarget("localhost", 39539)
    assert parse_stream_url("vmc://10.0.0.2:4000?track=3").track_id == 3
    for bad, why in (("osc://h:1", "only the VMC protocol"), ("vmc://h:99999", "bad port"),
                     ("vmc://:5", "no host"), ("vmc://h:1?trak=2", "unknown option"),
                     ("vmc://h:1?track=x", "whole number")):  # fmt: skip
        with pytest.raises(StreamUrlError, match=why):
            parse_stream_url(bad)
    with pytest.raises(StreamUrlError, match="cannot resolve"):
        VmcSink(VmcTarget("no-such-host.invalid", 39539))


def test_receiver_gets_every_frame_in_order_with_unity_bones(receiver) -> None:
    truth = walker(45)
    pts = truth.positions()
    frames = world_frames_from_points(pts, truth)
    with VmcSink(VmcTarget("127.0.0.1", receiver.port)) as sink:
        for f in frames:
            sink.write(f)
    packets = receiver.packets(len(frames))
    assert sink.sent == len(frames) and sink.dropped == 0
    for i, packet in enumerate(packets):
        addresses = [a for a, _ in packet]
        assert addresses == ["/VMC/Ext/Root/Pos", *["/VMC/Ext/Bone/Pos"] * 20,
                             "/VMC/Ext/OK", "/VMC/Ext/T"]  # fmt: skip
        assert packet[0][1][0] == "root" and packet[0][1][2] == 0.0  # on the ground
        assert [args[0] for _, args in packet[1:21]] == UNITY  # parents first
        assert packet[21][1] == (1,)
        assert packet[22][1][0] == pytest.approx(i / 30, abs=1e-5)  # the frame rate
        for _, args in packet[1:21]:
            assert np.linalg.norm(args[4:8]) == pytest.approx(1.0, abs=1e-5)
        got = _unity_fk(packet)
        for plain, unity in zip(rig.JOINT_NAMES, UNITY, strict=True):
            want = pts[i, rig.JOINT_NAMES.index(plain)] * [-1, 1, 1]  # Unity: x mirrored
            assert np.abs(got[unity] - want).max() < 2e-3, (i, unity)


def world_frames_from_points(pts: np.ndarray, truth) -> list[FrameResult]:
    """The walker's MHR70 joints as camera-frame FrameResults of track 4 at 30 FPS."""
    from animation_synth import mhr70_from_points

    cam = rig.camera_to_yup(mhr70_from_points(pts, truth.global_rotations()))
    return frames_from({4: cam}, len(pts), fps=30.0)


def test_absent_person_sends_ok_0_and_a_chosen_track_is_followed(receiver) -> None:
    truth = walker(6)
    pts = truth.positions()
    frames = world_frames_from_points(pts, truth)
    frames[2] = FrameResult([], 2, (640, 480), timestamp=2 / 30)
    with VmcSink(VmcTarget("127.0.0.1", receiver.port, track_id=4)) as sink:
        for f in frames:
            sink.write(f)
    packets = receiver.packets(len(frames))
    assert [a for a, _ in packets[2]] == ["/VMC/Ext/OK", "/VMC/Ext/T"]
    assert packets[2][0][1] == (0,) and packets[3][-2][1] == (1,)
    with VmcSink(VmcTarget("127.0.0.1", receiver.port, track_id=9)) as sink:
        sink.write(frames[0])  # track 9 is not there: no pose
    assert [a for a, _ in receiver.packets(1)[0]] == ["/VMC/Ext/OK", "/VMC/Ext/T"]


def test_streamed_feet_stay_put(receiver) -> None:
    """The live foot lock: with 1 cm noise, planted ankles do not move in the stream."""
    joints, _ = stepper(90)
    noisy = joints + np.random.default_rng(1).normal(0, 0.01, joints.shape)
    frames = world_frames(noisy)
    contact = np.array([f.world.persons[0].contact for f in frames])
    skate = {}
    for lock in (False, True):
        with VmcSink(VmcTarget("127.0.0.1", receiver.port), foot_lock=lock) as sink:
            for f in frames:
                sink.write(f)
        ankles = np.array([[p[n] for n in ("LeftFoot", "RightFoot")]
                           for p in map(_unity_fk, receiver.packets(len(frames)))])  # fmt: skip
        steps = np.linalg.norm(np.diff(ankles[..., [0, 2]], axis=0), axis=-1)
        held = contact[1:] & contact[:-1]
        skate[lock] = steps[held].mean()
    assert skate[False] > 0.01  # the noise makes estimated feet slide (~2 cm per frame)
    assert skate[True] < 0.001  # held: well under a millimetre per contact frame


def test_a_lost_receiver_never_stops_the_stream() -> None:
    """Nobody listening, then a full socket buffer: every write returns, nothing raises."""
    closed = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()  # nobody listens on this port any more
    truth = walker(3)
    frames = world_frames_from_points(truth.positions(), truth)
    with VmcSink(VmcTarget("127.0.0.1", port)) as sink:
        assert sink.client._sock.getblocking() is False  # sendto never waits for the receiver
        sink.client._sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1024)  # tiny: fills
        for i in range(300):
            sink.write(frames[i % 3])
    assert sink.sent + sink.dropped == 300
    with pytest.raises(RuntimeError, match="after close"):
        sink.write(frames[0])
