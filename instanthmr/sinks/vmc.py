"""Live streaming of one person's pose over the VMC protocol (OSC over UDP).

``--stream vmc://HOST:PORT`` on the demo; ``vmc://HOST:PORT?track=N`` follows track ``N``
instead of the largest person. Every frame the pipeline produces becomes one OSC bundle
(python-osc), in this order:

1. ``/VMC/Ext/Root/Pos "root" px py pz qx qy qz qw``: the model root, on the ground below
   the pelvis (``py = 0``), no rotation;
2. ``/VMC/Ext/Bone/Pos NAME px py pz qx qy qz qw`` for each of the 20 rig bones, parents
   first, named after Unity's ``HumanBodyBones`` (``Hips``, ``Spine``, ``Chest``,
   ``UpperChest``, ``Neck``, ``Head``, ``LeftShoulder``, ``LeftUpperArm``, ...): the local
   position (the rig's bone offset; ``Hips``: the pelvis height) and local rotation, with
   identity rotations in a T-pose (as in a VRM model);
3. ``/VMC/Ext/OK 1`` (``0`` on frames without the person, which send no pose);
4. ``/VMC/Ext/T t``: seconds since the first frame, on the source's clock.

Coordinates are Unity's (left-handed, Y up, metres): a rig point ``(x, y, z)`` is sent as
``(-x, y, z)`` and a rotation ``(x, y, z, w)`` as ``(x, -y, -z, w)``.

A receiver that is gone, slow or never there costs nothing: the socket never blocks, a
datagram the system cannot take is dropped (:attr:`VmcSink.dropped`) and the pipeline goes
on. The host is resolved once, when the sink opens.
"""

from __future__ import annotations

import logging
import socket
import time
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

import numpy as np
from pythonosc.osc_bundle_builder import IMMEDIATELY, OscBundleBuilder
from pythonosc.osc_message_builder import OscMessageBuilder
from pythonosc.udp_client import UDPClient
from scipy.spatial.transform import Rotation

from ..animation.kinematics import Motion
from ..animation.live import LiveRig, choose_person
from ..errors import UserError
from ..results import FrameResult

log = logging.getLogger(__name__)

DEFAULT_PORT = 39539
"""The VMC protocol's usual receiving port (a Marionette's)."""
_TO_UNITY = np.array([-1.0, 1.0, 1.0])


class StreamUrlError(UserError, ValueError):
    """A ``--stream`` address that cannot be used (the message says how to write one)."""


@dataclass(frozen=True)
class VmcTarget:
    """Where to stream: host, port and, optionally, the track to follow."""

    host: str
    port: int
    track_id: int | None = None


def parse_stream_url(url: str) -> VmcTarget:
    """``vmc://HOST[:PORT][?track=N]`` -> :class:`VmcTarget` (port default 39539)."""
    how = ("write it as vmc://HOST:PORT, e.g. vmc://127.0.0.1:39539 (add ?track=N to follow "
           "one track)")  # fmt: skip
    parts = urlsplit(url)
    if parts.scheme != "vmc":
        raise StreamUrlError(
            f"unsupported stream {url!r}: only the VMC protocol is streamed; {how}"
        )
    try:
        port = parts.port or DEFAULT_PORT
    except ValueError as exc:
        raise StreamUrlError(f"bad port in {url!r} ({exc}); {how}") from None
    if not parts.hostname:
        raise StreamUrlError(f"no host in {url!r}; {how}")
    query = parse_qs(parts.query)
    unknown = set(query) - {"track"}
    if unknown:
        raise StreamUrlError(f"unknown option(s) {', '.join(sorted(unknown))} in {url!r}; {how}")
    track = None
    if "track" in query:
        try:
            track = int(query["track"][-1])
        except ValueError:
            raise StreamUrlError(f"track must be a whole number in {url!r}; {how}") from None
    return VmcTarget(parts.hostname, port, track)


def _message(address: str, *args: object) -> OscMessageBuilder:
    msg = OscMessageBuilder(address=address)
    for a in args:
        msg.add_arg(a)
    return msg


def pose_messages(motion: Motion) -> list[OscMessageBuilder]:
    """Root and bone messages of a one-frame ``motion`` (named after Unity's bones)."""
    root = motion.root_positions[0]
    ground = np.array([root[0], 0.0, root[2]]) * _TO_UNITY
    out = [_message("/VMC/Ext/Root/Pos", "root", *(float(v) for v in ground), 0.0, 0.0, 0.0, 1.0)]
    quats = Rotation.from_matrix(motion.rotations[0]).as_quat() * [1.0, -1.0, -1.0, 1.0]
    for j, name in enumerate(motion.names):
        local = np.array([0.0, root[1], 0.0]) if j == 0 else motion.offsets[j] * _TO_UNITY
        args = (*(float(v) for v in local), *(float(v) for v in quats[j]))
        out.append(_message("/VMC/Ext/Bone/Pos", name, *args))
    return out


class VmcSink:
    """Sends each frame's pose of one person to a VMC receiver (see the module docs).

    Args:
        target: where to send (:func:`parse_stream_url`).
        foot_lock: hold planted feet (needs the world stage's contact flags).
    """

    def __init__(self, target: VmcTarget, foot_lock: bool = True) -> None:
        try:
            info = socket.getaddrinfo(target.host, target.port, type=socket.SOCK_DGRAM)
        except socket.gaierror as exc:
            raise StreamUrlError(
                f"cannot resolve stream host {target.host!r} ({exc}); give an IP address or a "
                "host name this machine knows"
            ) from None
        self.address: tuple[str, int] = info[0][4][:2]
        self.target = target
        self.client = UDPClient(self.address[0], self.address[1], family=info[0][0])
        self.rig = LiveRig("unity", foot_lock=foot_lock)
        self.sent = 0
        self.dropped = 0
        self._current: int | None = None
        self._t0: float | None = None
        self._wall0 = time.monotonic()
        self._closed = False

    def _time(self, frame: FrameResult) -> float:
        if frame.timestamp is None:
            return time.monotonic() - self._wall0
        if self._t0 is None:
            self._t0 = float(frame.timestamp)
        return float(frame.timestamp) - self._t0

    def write(self, frame: FrameResult) -> None:
        """Send ``frame``'s pose of the followed person (or ``OK 0`` when absent)."""
        if self._closed:
            raise RuntimeError("write() after close()")
        person = choose_person(frame, self.target.track_id, self._current)
        bundle = OscBundleBuilder(IMMEDIATELY)
        if person is not None:
            if person.track_id != self._current:
                self.rig.reset()
                self._current = person.track_id
            for msg in pose_messages(self.rig.pose(person, frame)):
                bundle.add_content(msg.build())
        bundle.add_content(_message("/VMC/Ext/OK", int(person is not None)).build())
        bundle.add_content(_message("/VMC/Ext/T", float(self._time(frame))).build())
        try:
            self.client.send(bundle.build())
            self.sent += 1
        except OSError as exc:  # full buffer, refused, unreachable: never stop the pipeline
            if not self.dropped:
                log.warning("VMC stream to %s:%d: %s; dropping frames until it takes them",
                            *self.address, exc)  # fmt: skip
            self.dropped += 1

    def close(self) -> None:
        """Close the socket; safe to call more than once."""
        if not self._closed:
            self._closed = True
            self.client.close()
            log.info("VMC stream to %s:%d: %d frames sent, %d dropped",
                     *self.address, self.sent, self.dropped)  # fmt: skip

    def __enter__(self) -> VmcSink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
