"""FrameResults -> one :class:`~.kinematics.Motion` per track, on a common timeline.

- **Timeline.** Frame time is the median interval between consecutive timestamps of the
  frames written (:attr:`FrameResult.timestamp`), after absurd ones (not finite, not
  increasing, a jump of more than 10 s) are normalised with a warning (:mod:`.timeline`).
  When any frame has no timestamp, every frame is timed ``frame_index / fps`` (``fps``
  defaults to :data:`DEFAULT_FPS`). Each frame goes to grid slot
  ``round((t - t0) / frame_time)``, where ``t0`` is the first frame's time; a motion's
  ``start_time`` is its first slot × frame time, so tracks stay in sync.
- **Tracks.** Persons with ``track_id < 0`` (untracked) cannot be followed and are skipped
  (counted in :attr:`TrackBuffer.skipped`).
- **Frame.** A track is in the world frame (``joints_3d_world``: Y up, metres, origin on the
  ground below the camera) when every one of its frames has world joints; otherwise all its
  frames are taken from ``joints_3d_cam`` turned Y-up (:func:`.rig.camera_to_yup`), so a track
  never jumps between frames halfway through.
- **Gaps** (slots inside a track's span where it was not seen) hold the last observed pose
  and root position: the motion's ``observed`` mask marks them. Bone lengths are medians over
  the observed frames only.
- **Contact.** The world stage's foot contact flags (:attr:`FrameResult.world`, one
  :class:`~instanthmr.results.PersonWorld` per track) become the motion's ``contact``
  ((T, 2), False where unknown or held); None when no frame of the track had them.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np

from ..results import FrameResult
from . import rig
from .kinematics import Motion, solve_motion
from .timeline import frame_slots

log = logging.getLogger(__name__)

DEFAULT_FPS = 30.0
"""Frame rate assumed when frames carry no timestamps."""


@dataclass
class _Track:
    slots: list[int] = field(default_factory=list)
    cam: list[np.ndarray] = field(default_factory=list)
    world: list[np.ndarray | None] = field(default_factory=list)
    contact: list[tuple[bool, bool] | None] = field(default_factory=list)


class TrackBuffer:
    """Collects FrameResults and turns them into per-track motions.

    Keeps only each tracked person's 70 joints (camera and, when present, world frame) and
    each frame's time, not the frames themselves.
    """

    def __init__(self, fps: float = DEFAULT_FPS) -> None:
        if not (np.isfinite(fps) and fps > 0):
            raise ValueError(f"fps must be a positive number, got {fps}")
        self.fps = float(fps)
        self.skipped = 0
        self._times: list[tuple[int, float | None]] = []
        self._persons: list[
            tuple[int, int, np.ndarray, np.ndarray | None, tuple[bool, bool] | None]
        ] = []

    def add(self, frame: FrameResult) -> None:
        """Remember one frame's tracked persons."""
        row = len(self._times)
        self._times.append((int(frame.frame_index), frame.timestamp))
        for p in frame.persons:
            if p.track_id < 0:
                self.skipped += 1
                continue
            world = getattr(p, "joints_3d_world", None)
            world = None if world is None else np.asarray(world, dtype=np.float32)
            placed = frame.world.person(p.track_id) if frame.world is not None else None
            contact = None if placed is None else placed.contact
            self._persons.append(
                (row, p.track_id, p.joints_3d_cam.astype(np.float32), world, contact)
            )

    def timeline(self) -> tuple[np.ndarray, float]:
        """(slot of each frame written, frame time in seconds); absurd times (a jump of
        1e9 s, repeated or decreasing ones) are normalised with a warning
        (:mod:`.timeline`)."""
        stamps = [t for _, t in self._times]
        if any(t is None for t in stamps):
            times = np.array([i for i, _ in self._times], dtype=np.float64) / self.fps
        else:
            times = np.array(stamps, dtype=np.float64)
        return frame_slots(times, self.fps)

    def motions(self) -> list[Motion]:
        """One motion per track (ascending track id), gaps held (see the module docs)."""
        slots, dt = self.timeline()
        tracks: dict[int, _Track] = {}
        for row, tid, cam, world, contact in self._persons:
            tr = tracks.setdefault(tid, _Track())
            tr.slots.append(int(slots[row]))
            tr.cam.append(cam)
            tr.world.append(world)
            tr.contact.append(contact)
        if self.skipped:
            log.warning("animation export: skipped %d untracked person detections", self.skipped)
        return [_motion(tid, tracks[tid], dt) for tid in sorted(tracks)]


def _motion(track_id: int, tr: _Track, dt: float) -> Motion:
    in_world = all(w is not None for w in tr.world)
    if not in_world and any(w is not None for w in tr.world):
        log.warning(
            "track %d: %d of %d frames lack world joints; exporting it in the camera frame",
            track_id, sum(w is None for w in tr.world), len(tr.world),
        )  # fmt: skip
    joints = np.stack(tr.world if in_world else [rig.camera_to_yup(c) for c in tr.cam])  # type: ignore[misc]
    slots = np.asarray(tr.slots)
    known = np.array([c is not None for c in tr.contact])
    flags = np.array([c if c is not None else (False, False) for c in tr.contact], dtype=bool)
    order = np.argsort(slots, kind="stable")
    slots, joints, flags = slots[order], joints[order], flags.reshape(-1, 2)[order]
    last = np.r_[slots[1:] != slots[:-1], True]  # one sample per slot: the last one wins
    slots, joints, flags = slots[last], joints[last], flags[last]
    first = int(slots[0])
    span = int(slots[-1]) - first + 1
    observed = np.zeros(span, dtype=bool)
    observed[slots - first] = True
    source = np.maximum.accumulate(np.where(observed, np.arange(span), 0))  # hold = last seen
    sample = np.cumsum(observed) - 1  # index into the observed samples
    filled = joints[sample[source]]
    contact = None
    if known.any():
        contact = np.zeros((span, 2), dtype=bool)
        contact[slots - first] = flags
    return solve_motion(
        rig.rig_points(filled),
        rig.twist_references(filled),
        dt,
        observed=observed,
        start_time=first * dt,
        track_id=track_id,
        frame="world" if in_world else "camera",
        contact=contact,
    )


def observed_runs(observed: np.ndarray) -> list[tuple[int, int]]:
    """``(start, stop)`` of each run of consecutive True values (the clips of a split)."""
    obs = np.asarray(observed, dtype=bool).astype(np.int8)
    edges = np.diff(np.r_[0, obs, 0])
    return list(
        zip(np.flatnonzero(edges == 1).tolist(), np.flatnonzero(edges == -1).tolist(), strict=True)
    )
