"""Scenes with a monocular model's noise, for the world-frame tests and ``tools/world_accuracy.py``.

A scene is a camera (height, pitch, roll, image size; the model's virtual pinhole, focal
``sqrt(W^2 + H^2)``), a ground (the floor, optionally a platform or a ramp) and people who
walk curved paths with stops. Each person has a body height and a footstep gait: footsteps
are laid along the path, ``step`` metres apart, alternating sides; a foot is planted on its
footstep (heel and toe tips on the ground, still) while the pelvis passes ``stance * step``
either side of it and swings to its next footstep in between (lifted up to ``lift``). Stops
happen in double support, so a stopped person stands on both feet.

What the "model" outputs (:meth:`Scene.render`), per person and frame, as a monocular HMR
model errs (``docs/world.md``):

- every joint jitters by ``lateral`` metres (isotropic, independent per joint and frame);
- ``joints_2d`` are the pinhole projections of the true joints jittered alike, but
  independently (the model's 2D and 3D heads err separately): the 2D keypoints agree with
  the body across the viewing ray to ``lateral``;
- ``cam_trans`` is the true pelvis scaled by ``1 + e(t)`` along its viewing ray, with e a
  slow Gaussian process (standard deviation ``depth``, a Gaussian kernel of ``corr_s``
  seconds: it drifts over about two seconds), independent per person: the whole body moves
  along the ray together. ``joints_3d_local`` is the jittered body about the true pelvis.

A person is in a frame only while all main joints project inside the image. True contact
(for precision/recall) is "planted on the floor": a planted foot on a platform or ramp is
not in contact with the floor.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from instanthmr.results import PersonResult
from instanthmr.skeleton import JOINT_INDEX, NUM_JOINTS
from instanthmr.world import WorldFrame

J = JOINT_INDEX
FPS = 30.0
MAIN_JOINTS = [J[n] for n in (
    "nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder", "right_shoulder",
    "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hip", "right_hip",
    "left_knee", "right_knee", "left_ankle", "right_ankle", "left_heel", "right_heel",
    "left_big_toe_tip", "right_big_toe_tip", "neck",
)]  # fmt: skip
UP = np.array([0.0, 1.0, 0.0])


@dataclass(frozen=True)
class Camera:
    """A static camera: height (m), pitch and roll (degrees), image (width, height)."""

    height: float
    pitch: float
    roll: float = 0.0
    size: tuple[int, int] = (1280, 720)

    @property
    def frame(self) -> WorldFrame:
        """The true world frame."""
        return WorldFrame.from_camera(self.height, self.pitch, self.roll)

    @property
    def focal(self) -> float:
        """The model's virtual pinhole: ``sqrt(W^2 + H^2)`` pixels."""
        return float(np.hypot(*self.size))

    @property
    def principal(self) -> np.ndarray:
        """The image centre, pixels."""
        return np.array(self.size, dtype=np.float64) / 2.0


@dataclass(frozen=True)
class Box:
    """A raised region of the ground: ``x0..x1`` by ``z0..z1`` metres (world frame).

    ``top`` metres high; with ``rise=True`` it is a ramp rising linearly from 0 at ``x0`` to
    ``top`` at ``x1``.
    """

    x0: float
    x1: float
    z0: float
    z1: float
    top: float
    rise: bool = False

    def height(self, x: np.ndarray, z: np.ndarray) -> np.ndarray:
        inside = (x >= self.x0) & (x <= self.x1) & (z >= self.z0) & (z <= self.z1)
        h = self.top * np.clip((x - self.x0) / (self.x1 - self.x0), 0, 1) if self.rise else self.top
        return np.where(inside, h, 0.0)


@dataclass(frozen=True)
class Route:
    """A closed curved path (a Lissajous figure) walked at ``speed`` with stops.

    The path is ``(cx + ax sin(u + px), cz + az sin(k u + pz))``; every ``stop_every`` seconds
    of walking the person stops for ``stop_s`` seconds (0: never). ``step`` is the distance
    between footsteps, ``stance`` the part of a step each foot is planted either side of its
    footstep (above 0.5: double support; below: flight, a run), ``lift`` the swing height.
    """

    cx: float
    cz: float
    ax: float
    az: float
    k: float = 1.5
    px: float = 0.0
    pz: float = 0.0
    speed: float = 1.3
    stop_every: float = 4.0
    stop_s: float = 1.5
    step: float = 0.7
    stance: float = 0.6
    lift: float = 0.1

    def curve(self, u: np.ndarray) -> np.ndarray:
        """(N, 2) ground points x, z."""
        return np.stack([self.cx + self.ax * np.sin(u + self.px),
                         self.cz + self.az * np.sin(self.k * u + self.pz)], axis=-1)  # fmt: skip


@dataclass
class Actor:
    """One person: track id, body height (m), route, and when they are in the scene (s)."""

    track_id: int
    body: float
    route: Route
    enter: float = 0.0
    leave: float = math.inf
    _table: tuple[np.ndarray, np.ndarray] | None = field(default=None, repr=False)

    def _arc(self) -> tuple[np.ndarray, np.ndarray]:
        if self._table is None:
            u = np.linspace(0.0, 60 * math.pi, 60000)
            pts = self.route.curve(u)
            s = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(pts, axis=0), axis=1))])
            self._table = (u, s)
        return self._table

    def at(self, s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Ground points (N, 2) and unit tangents (N, 2) at arc lengths ``s``."""
        u_tab, s_tab = self._arc()
        u = np.interp(s, s_tab, u_tab)
        p = self.route.curve(u)
        d = self.route.curve(u + 1e-4) - p
        return p, d / np.linalg.norm(d, axis=-1, keepdims=True)

    def arc_lengths(self, times: np.ndarray) -> np.ndarray:
        """The pelvis's arc length along the route at each time (stops in double support)."""
        r = self.route
        out = np.empty(len(times))
        s = 2.0 * r.step + r.step / 2  # start in double support, footstep index >= 2
        walked, stop_until, pending = 0.0, -1.0, None
        last = times[0]
        for i, t in enumerate(times):
            dt = t - last
            last = t
            if t < stop_until:
                out[i] = s
                continue
            ds = r.speed * dt
            if pending is not None and s + ds >= pending:  # reached double support: stop
                s, pending, stop_until = pending, None, t + r.stop_s
                out[i] = s
                continue
            s += ds
            walked += dt
            if r.stop_s > 0 and r.stance > 0.5 and pending is None and walked >= r.stop_every:
                walked = 0.0
                pending = r.step * (math.floor(s / r.step + 0.5) + 0.5)  # next mid double support
                if pending <= s:
                    pending += r.step
            out[i] = s
        return out


def _ground(boxes: tuple[Box, ...], xz: np.ndarray) -> np.ndarray:
    h = np.zeros(xz.shape[:-1])
    for b in boxes:
        h = np.maximum(h, b.height(xz[..., 0], xz[..., 1]))
    return h


def _feet(actor: Actor, s: np.ndarray, boxes: tuple[Box, ...]) -> list[tuple[np.ndarray, ...]]:
    """Per side: heel (N, 3), foot direction (N, 3), planted (N,), footstep ground height (N,)."""
    r = actor.route
    c, step = r.stance * r.step, r.step
    out = []
    for side in (0, 1):
        k = side + 2 * np.floor((s + c - side * step) / (2 * step))
        k0, k2 = k * step, (k + 2) * step
        planted = s <= k0 + c
        p = np.clip((s - k0 - c) / (2 * step - 2 * c), 0.0, 1.0)
        heels, dirs, grounds = [], [], []
        for ks in (k0, k2):
            pt, tg = actor.at(ks)
            normal = np.stack([-tg[:, 1], tg[:, 0]], axis=-1)  # left of the path
            lateral = (0.1 if side == 0 else -0.1) * actor.body / 1.75
            foot = pt + lateral * normal - 0.05 * tg
            grounds.append(_ground(boxes, foot + 0.1 * tg))
            heels.append(np.column_stack([foot[:, 0], grounds[-1], foot[:, 1]]))
            dirs.append(np.column_stack([tg[:, 0], np.zeros(len(tg)), tg[:, 1]]))
        ease = np.where(planted, 0.0, (1 - np.cos(np.pi * p)) / 2)[:, None]
        heel = heels[0] + ease * (heels[1] - heels[0])
        heel[:, 1] += np.where(planted, 0.0, r.lift * np.sin(np.pi * p))
        d = dirs[0] + ease * (dirs[1] - dirs[0])
        d /= np.linalg.norm(d, axis=1, keepdims=True)
        out.append((heel, d, planted, grounds[0]))
    return out


def _offsets(track_id: int) -> np.ndarray:
    """Fixed small offsets of the hand joints about the wrists, per person."""
    return np.random.default_rng(1000 + track_id).normal(0.0, 0.04, (NUM_JOINTS, 3))


def body_joints(
    actor: Actor, times: np.ndarray, boxes: tuple[Box, ...] = ()
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """World joints (N, 70, 3), planted (N, 2) and footstep ground heights (N, 2)."""
    s = actor.arc_lengths(times)
    pel_xz, tg = actor.at(s)
    n = len(times)
    scale = actor.body / 1.75
    d = np.column_stack([tg[:, 0], np.zeros(n), tg[:, 1]])
    right = np.cross(d, UP)
    pelvis = np.column_stack([pel_xz[:, 0], _ground(boxes, pel_xz) + 0.53 * actor.body,
                              pel_xz[:, 1]])  # fmt: skip
    feet = _feet(actor, s, boxes)
    up = UP * scale
    out = np.repeat(pelvis[:, None, :], NUM_JOINTS, axis=1) + _offsets(actor.track_id) * scale

    def put(name: str, value: np.ndarray) -> None:
        out[:, J[name]] = value

    put("left_hip", pelvis - 0.1 * scale * right)
    put("right_hip", pelvis + 0.1 * scale * right)
    neck = pelvis + 0.57 * up
    put("neck", neck)
    swing = (feet[0][0] - feet[1][0]) @ np.diag([1.0, 0.0, 1.0])  # arms swing against the legs
    for side, sign in (("left", -1.0), ("right", 1.0)):
        sh = pelvis + 0.52 * up + sign * 0.19 * scale * right
        put(f"{side}_shoulder", sh)
        put(f"{side}_acromion", sh + 0.01 * up + sign * 0.01 * scale * right)
        arm = (-0.5 if side == "left" else 0.5) * swing
        elbow = sh - 0.28 * up + 0.3 * arm
        wrist = elbow - 0.26 * up + 0.5 * arm
        put(f"{side}_elbow", elbow)
        put(f"{side}_olecranon", elbow - 0.02 * scale * d)
        put(f"{side}_cubital_fossa", elbow + 0.02 * scale * d)
        put(f"{side}_wrist", wrist)
        for name, idx in J.items():
            if name.startswith(side) and any(f in name for f in ("thumb", "index", "middle",
                                                                 "ring", "pinky")):  # fmt: skip
                out[:, idx] = wrist - 0.08 * up + _offsets(actor.track_id)[idx] * 0.5 * scale
    head = pelvis + 0.7 * up
    put("nose", head + 0.1 * scale * d)
    put("left_eye", head + 0.03 * up + 0.08 * scale * d - 0.03 * scale * right)
    put("right_eye", head + 0.03 * up + 0.08 * scale * d + 0.03 * scale * right)
    put("left_ear", head - 0.075 * scale * right)
    put("right_ear", head + 0.075 * scale * right)
    planted, grounds = [], []
    for side, name in enumerate(("left", "right")):
        heel, fd, stance, ground = feet[side]
        fright = np.cross(fd, UP)
        inner = (0.03 if side == 0 else -0.03) * scale * fright
        put(f"{name}_heel", heel)
        put(f"{name}_big_toe_tip", heel + 0.2 * scale * fd + inner)
        put(f"{name}_small_toe_tip", heel + 0.18 * scale * fd - inner)
        ankle = heel + 0.05 * scale * fd + 0.08 * up
        put(f"{name}_ankle", ankle)
        hip = out[:, J[f"{name}_hip"]]
        put(f"{name}_knee", 0.5 * (ankle + hip) + 0.04 * scale * d)
        planted.append(stance)
        grounds.append(ground)
    return out, np.stack(planted, axis=1), np.stack(grounds, axis=1)


def slow_noise(rng: np.random.Generator, n: int, std: float, corr_s: float) -> np.ndarray:
    """(n,) a smooth zero-mean Gaussian process sampled at FPS, standard deviation ``std``."""
    if std == 0:
        return np.zeros(n)
    sigma = corr_s * FPS
    half = int(4 * sigma)
    kernel = np.exp(-0.5 * (np.arange(-half, half + 1) / sigma) ** 2)
    white = rng.normal(size=n + 2 * half)
    x = np.convolve(white, kernel / np.sqrt(np.sum(kernel**2)), mode="valid")
    return std * x[:n]


@dataclass
class Truth:
    """What a frame's person really is: world joints, contact with the floor, level."""

    track_id: int
    joints_world: np.ndarray
    contact: tuple[bool, bool]
    planted: tuple[bool, bool]
    level: float


def make_person(joints_cam: np.ndarray, trans: np.ndarray, camera: Camera,
                jitter: np.ndarray, scale: float, track_id: int,
                size: float = 1.0) -> PersonResult:  # fmt: skip
    """The model's output for one person: its 3D joints jittered by ``jitter[0]``, its 2D
    keypoints the projections of the joints jittered by ``jitter[1]`` (the two heads err
    independently), the depth of the whole body scaled by ``scale``, the 3D body and its
    distance both by ``size``."""
    seen = joints_cam + jitter[0]
    kp = joints_cam + jitter[1]
    uv = kp[:, :2] / kp[:, 2:3] * camera.focal + camera.principal
    lo, hi = uv[MAIN_JOINTS].min(axis=0), uv[MAIN_JOINTS].max(axis=0)
    return PersonResult(
        bbox=np.concatenate([lo, hi]), score=0.9, joints_2d=uv,
        joints_3d_local=(seen - trans) * size, cam_trans=trans * scale * size,
        mhr_params=np.zeros(204), shape_params=np.zeros(45),
        focal_length=camera.focal, principal_point=camera.principal, image_size=camera.size,
        track_id=track_id,
    )  # fmt: skip


@dataclass
class Scene:
    """A camera, a ground, people and a duration; :meth:`render` gives the model's view."""

    name: str
    camera: Camera
    actors: list[Actor]
    seconds: float = 10.0
    boxes: tuple[Box, ...] = ()

    def render(
        self,
        depth: float = 0.05,
        lateral: float = 0.015,
        seed: int = 0,
        corr_s: float = 1.0,
        fps: float = FPS,
        size_error: float = 0.0,
    ) -> list[tuple[float, list[PersonResult], list[Truth]]]:
        """Frames ``(timestamp, persons, truths)`` with the noise of the module docstring.

        ``size_error`` (standard deviation, fraction) makes the model get each person's
        body size wrong by a constant factor ``1 + e``: their 3D body and its distance both
        scale by it, their 2D keypoints do not (a person of a size the model misjudges)."""
        rng = np.random.default_rng(seed)
        times = np.arange(round(self.seconds * fps)) / fps
        cam = self.camera
        frame = cam.frame
        frames: list[tuple[float, list[PersonResult], list[Truth]]] = [
            (float(t), [], []) for t in times
        ]
        for actor in self.actors:
            size = 1.0 + rng.normal(0.0, size_error) if size_error else 1.0
            world, planted, grounds = body_joints(actor, times, self.boxes)
            eps = slow_noise(rng, len(times), depth, corr_s * FPS / fps)
            jitter = rng.normal(0.0, lateral, (len(times), 2, NUM_JOINTS, 3))
            cam_pts = frame.world_to_cam(world)
            for i, t in enumerate(times):
                if not actor.enter <= t < actor.leave:
                    continue
                pts = cam_pts[i]
                main = pts[MAIN_JOINTS]
                if np.any(main[:, 2] < 0.5):
                    continue
                uv = main[:, :2] / main[:, 2:3] * cam.focal + cam.principal
                if np.any(uv < 0) or np.any(uv > np.array(cam.size)):
                    continue
                trans = 0.5 * (pts[J["left_hip"]] + pts[J["right_hip"]])
                p = make_person(pts, trans, cam, jitter[i], 1.0 + eps[i], actor.track_id, size)
                on_floor = grounds[i] < 0.01
                frames[i][1].append(p)
                frames[i][2].append(Truth(
                    actor.track_id, world[i],
                    (bool(planted[i, 0] and on_floor[0]), bool(planted[i, 1] and on_floor[1])),
                    (bool(planted[i, 0]), bool(planted[i, 1])), float(np.min(grounds[i])),
                ))  # fmt: skip
        return frames


# ---- the scenes of the bench -------------------------------------------------------------

CAMERAS: dict[str, Camera] = {
    "tripod": Camera(1.2, 5.0, 2.0, (1280, 720)),
    "shelf": Camera(1.8, 12.0, -3.0, (1280, 720)),
    "room": Camera(2.5, 20.0, 3.0, (1280, 960)),
    "corner": Camera(3.0, 35.0, -1.5, (960, 1280)),
    "mast": Camera(6.0, 25.0, 2.0, (1280, 960)),
    "mast-steep": Camera(6.0, 50.0, -4.0, (720, 1280)),
}
"""Camera height 1.2 to 6 m, pitch 5 to 50 deg, roll up to 4 deg."""

REGIONS: dict[str, tuple[float, float, float, float]] = {
    "tripod": (0.0, -7.0, 2.0, 2.5),  # centre x, z; half extents: people 4.5-9.5 m away
    "shelf": (0.0, -7.0, 2.2, 2.5),
    "room": (0.0, -5.7, 1.8, 1.9),
    "corner": (0.0, -3.7, 1.1, 1.5),
    "mast": (0.0, -13.5, 4.5, 6.0),  # 7.5-19.5 m
    "mast-steep": (0.0, -5.0, 1.6, 2.5),
}
"""Where people walk for each camera: inside the view with heads and feet."""

BODIES = (1.78, 1.65, 1.84, 1.70)

LAYOUTS: dict[str, dict] = {
    "room": {
        "platform": (Box(-1.3, 0.3, -4.1, -2.9, 0.5),
                     Route(-0.5, -3.5, 0.55, 0.4, k=2.0, speed=0.8, stop_every=3.0, stop_s=2.0)),
        "ramp": (Box(-1.2, 0.8, -4.8, -3.6, 0.4, rise=True),
                 Route(0.1, -4.2, 1.4, 0.45, k=1.0, pz=0.5, speed=1.0, stop_every=5.0,
                       stop_s=1.0)),
        "landing": Box(0.8, 1.6, -4.8, -3.6, 0.4),
        "floor": (0.0, -6.2, 1.6, 1.2),
    },
    "mast": {
        "platform": (Box(-3.0, -1.4, -10.6, -9.4, 0.5),
                     Route(-2.2, -10.0, 0.55, 0.4, k=2.0, speed=0.8, stop_every=3.0, stop_s=2.0)),
        "ramp": (Box(-2.0, 1.0, -11.0, -9.5, 0.4, rise=True),
                 Route(0.0, -10.25, 2.3, 0.5, k=1.0, pz=0.5, speed=1.0, stop_every=5.0,
                       stop_s=1.0)),
        "landing": Box(1.0, 2.5, -11.0, -9.5, 0.4),
        "floor": (0.0, -15.5, 4.0, 3.5),
    },
}  # fmt: skip
"""Where the platform (1.6 x 1.2 m, 0.5 m high) or the ramp (0.4 m over 2 m, then a landing)
stands, the route of the person on it, and the floor region of the others, per camera."""


def walkers(camera: str, count: int, seed: int = 0, stops: bool = True,
            region: tuple[float, float, float, float] | None = None) -> list[Actor]:  # fmt: skip
    """``count`` people on different curved paths over the camera's region (or ``region``:
    centre x, z and half extents)."""
    cx, cz, hx, hz = region or REGIONS[camera]
    rng = np.random.default_rng(seed)
    out = []
    for i in range(count):
        route = Route(
            cx + rng.uniform(-0.15, 0.15) * hx, cz + rng.uniform(-0.15, 0.15) * hz,
            hx * rng.uniform(0.7, 0.85), hz * rng.uniform(0.7, 0.85),
            k=(1.5, 0.5, 2.5, 1.3333)[i % 4], px=rng.uniform(0, 2 * math.pi),
            pz=rng.uniform(0, 2 * math.pi), speed=rng.uniform(1.0, 1.4),
            stop_every=rng.uniform(3.0, 5.0) if stops else 0.0,
            stop_s=rng.uniform(1.0, 2.0) if stops else 0.0,
        )  # fmt: skip
        out.append(Actor(i + 1, BODIES[i % 4], route))
    return out


def scene(name: str, camera: str = "room", people: int = 3, seconds: float = 10.0,
          seed: int = 0) -> Scene:  # fmt: skip
    """A named scene of the bench.

    - ``walk``: ``people`` walkers on curved paths with stops.
    - ``restless``: nobody is ever still: two walkers without stops and a runner.
    - ``platform``: a 0.5 m platform (1.6 x 1.2 m) with one person on it from the start;
      the others walk the floor from 3 s on (:data:`LAYOUTS`: room and mast cameras).
    - ``ramp``: a ramp rising 0.4 m over 2 m up to a landing; one person walks up and
      down it and over the landing, the others walk the floor.
    """
    cam = CAMERAS[camera]
    if name == "walk":
        return Scene(f"{camera}/{people}p", cam, walkers(camera, people, seed), seconds)
    if name == "restless":
        actors = walkers(camera, 3, seed, stops=False)
        actors[2].route = Route(**{**actors[2].route.__dict__, "speed": 2.6, "stance": 0.35,
                                   "step": 1.0, "lift": 0.18, "stop_every": 0.0})  # fmt: skip
        return Scene(f"{camera}/restless", cam, actors, seconds)
    if name in ("platform", "ramp"):
        if camera not in LAYOUTS:
            raise ValueError(f"the {name} scene is laid out for {', '.join(LAYOUTS)} only")
        lay = LAYOUTS[camera]
        box, route = lay[name]
        boxes = (box,) if name == "platform" else (box, lay["landing"])
        raised = Actor(9, 1.75, route)
        floor = walkers(camera, max(people - 1, 1), seed, region=lay["floor"])
        if name == "platform":
            for a in floor:
                a.enter = 3.0  # the person on the platform is alone for the first 3 s
        return Scene(f"{camera}/{name}", cam, [raised, *floor], seconds, boxes)
    raise ValueError(f"unknown scene {name!r}")
