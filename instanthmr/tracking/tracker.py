"""Track ids across frames: global assignment over box overlap and keypoint distance.

Each frame, every live track is matched to at most one person by
:func:`scipy.optimize.linear_sum_assignment` over the cost (see :func:`match_cost`)::

    cost = iou_weight * (1 - IoU(track box, box))
         + (1 - iou_weight) * min(1, mean joint distance / track box diagonal)

The joint distance is over :data:`~instanthmr.skeleton.BODY_JOINTS`; without keypoints it
falls back to the distance between box centres. Pairs whose cost exceeds ``max_cost`` are
never matched (gating). Rules, with the defaults of :class:`Tracker`:

- A new track is *tentative* (id -1) until it has been matched to ``min_hits`` (2) fresh
  detections; then it gets the next id (1, 2, 3, ... with no gaps). Tracks born on the
  very first update are confirmed at once, so a single image gets ids.
- Frames without detection (boxes carried from keypoints) keep tracks alive but add no
  hits: only the detector confirms a person.
- A frame on which a track is not matched is a miss. A tentative track is dropped at its
  first miss; a confirmed one after more than ``max_misses`` (30) consecutive misses.
- A person who leaves and comes back within ``max_misses`` frames, near where they were
  last seen, gets their old id back; later, or elsewhere, they get a new id (there is no
  appearance re-identification).
- ``max_tracks`` caps the people tracked in one frame; :meth:`Tracker.select` tells the
  pipeline which detections to keep before it runs HMR on them.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import supervision as sv
from scipy.optimize import linear_sum_assignment

from ..skeleton import NUM_JOINTS, JointSelection, select_joints
from .target import select_target as select_target  # re-exported: instanthmr.tracker


@dataclass
class Track:
    """The state of one tracked person (a snapshot when returned by the tracker).

    Attributes:
        key: internal handle, unique for the tracker's lifetime, set at birth (tentative
            tracks have one too); pass it back through ``update(track_keys=...)``.
        track_id: public id, -1 while tentative.
        box: (4,) the box the person was last seen with.
        keypoints: (70, 2) their last 2D joints, or None when never given.
        score: the last detector score.
        hits: number of fresh detections matched (frames with ``detected=True``).
        misses: consecutive frames without a match (0 = seen on the last frame).
        age: frames since the track was created.
    """

    key: int
    track_id: int
    box: np.ndarray
    keypoints: np.ndarray | None
    score: float
    hits: int = 1
    misses: int = 0
    age: int = 0

    @property
    def confirmed(self) -> bool:
        """Whether the track has a public id."""
        return self.track_id >= 0


def match_cost(
    track_boxes: np.ndarray,
    track_keypoints: np.ndarray | None,
    boxes: np.ndarray,
    keypoints: np.ndarray | None,
    *,
    iou_weight: float = 0.5,
    joints: JointSelection = "body",
) -> np.ndarray:
    """(T, N) matching cost in [0, 1] between T tracks and N new boxes (see module docstring).

    ``track_keypoints`` (T, 70, 2) and ``keypoints`` (N, 70, 2) may be None, or hold NaN
    rows for tracks without keypoints; the distance term then uses box centres.
    """
    tb = np.asarray(track_boxes, dtype=np.float64).reshape(-1, 4)
    nb = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    iou = sv.box_iou_batch(tb, nb).astype(np.float64)
    diag = np.maximum(np.hypot(tb[:, 2] - tb[:, 0], tb[:, 3] - tb[:, 1]), 1e-6)
    tc = (tb[:, :2] + tb[:, 2:]) / 2
    nc = (nb[:, :2] + nb[:, 2:]) / 2
    dist = np.linalg.norm(tc[:, None] - nc[None], axis=2)
    if track_keypoints is not None and keypoints is not None and len(tb) and len(nb):
        idx = select_joints(joints)
        tk = np.asarray(track_keypoints, dtype=np.float64)[:, idx]
        nk = np.asarray(keypoints, dtype=np.float64)[:, idx]
        with np.errstate(invalid="ignore"):
            kd = np.linalg.norm(tk[:, None] - nk[None], axis=3).mean(axis=2)
        dist = np.where(np.isfinite(kd), kd, dist)
    return iou_weight * (1 - iou) + (1 - iou_weight) * np.minimum(dist / diag[:, None], 1.0)


class Tracker:
    """Assigns stable ids to people across frames (rules in the module docstring).

    Args:
        min_hits: fresh detections needed to confirm a track (1 = at once).
        max_misses: consecutive unmatched frames after which a confirmed track is dropped.
        max_tracks: most people tracked in one frame (None = no cap); the pipeline's
            ``max_persons``.
        max_cost: gating threshold on :func:`match_cost`. The default 0.7 accepts, for
            example, a person whose box overlap fell to IoU 0.2 while their joints moved
            less than 0.6 box diagonals, and rejects any pair with no overlap whose joints
            are more than 0.4 diagonals apart.
        iou_weight: weight of ``1 - IoU`` in the cost (the rest goes to the joint distance).
        joints: joints used in the distance (see
            :func:`~instanthmr.skeleton.select_joints`).
        reseed_iou: in :meth:`merge_late`, a matched track whose box on the detection's
            frame overlaps its detection by less than this takes the detection's box
            (moved by the track's motion since) instead of its keypoint-carried one. Default
            0.3: under 10 % of carried boxes overlap their own person's detection that
            little on vtest.avi (thin, 30-90 px tall pedestrians), while a box that
            followed the wrong person overlaps it by about 0.
    """

    def __init__(
        self,
        *,
        min_hits: int = 2,
        max_misses: int = 30,
        max_tracks: int | None = None,
        max_cost: float = 0.7,
        iou_weight: float = 0.5,
        joints: JointSelection = "body",
        reseed_iou: float = 0.3,
    ) -> None:
        if min_hits < 1 or max_misses < 0:
            raise ValueError(f"need min_hits >= 1, max_misses >= 0; got {min_hits}, {max_misses}")
        if max_tracks is not None and max_tracks < 1:
            raise ValueError(f"max_tracks must be None or >= 1, got {max_tracks}")
        if not 0 <= iou_weight <= 1:
            raise ValueError(f"iou_weight must be in [0, 1], got {iou_weight}")
        self.min_hits = int(min_hits)
        self.max_misses = int(max_misses)
        self.max_tracks = None if max_tracks is None else int(max_tracks)
        self.max_cost = float(max_cost)
        self.iou_weight = float(iou_weight)
        self.joints = select_joints(joints)
        self.reseed_iou = float(reseed_iou)
        self.reset()

    def reset(self) -> None:
        """Drop every track and restart ids at 1."""
        self._tracks: list[Track] = []
        self._next_key = 0
        self._next_id = 1
        self.frame_count = 0
        self._merges = 0
        self.removed_ids: list[int] = []
        """Ids of the confirmed tracks dropped by the last :meth:`update`."""

    @property
    def tracks(self) -> list[Track]:
        """Snapshots of every live track, visible or not, in creation order."""
        return [dataclasses.replace(t) for t in self._tracks]

    def active_tracks(self) -> list[Track]:
        """Snapshots of the tracks seen on the last frame (tentative ones too): the people
        to carry into a frame without detection, via their ``keypoints``."""
        return [dataclasses.replace(t) for t in self._tracks if t.misses == 0]

    def select(self, boxes: np.ndarray, scores: np.ndarray, max_persons: int | None) -> np.ndarray:
        """Which detections to keep (and run HMR on), best first.

        Detections that continue a confirmed track seen on the last frame (box-only cost
        within the gate) come first, so a tracked person is not displaced by a newcomer
        with a slightly higher score; within each group, highest score first.

        Returns:
            (K,) int64 indices into ``boxes``, K = min(N, max_persons).
        """
        b = _as_boxes(boxes)
        s = _as_scores(scores, len(b))
        tracked = np.zeros(len(b), dtype=bool)
        live = [t for t in self._tracks if t.misses == 0 and t.confirmed]
        if live and len(b):
            cost = match_cost(
                np.stack([t.box for t in live]), None, b, None, iou_weight=self.iou_weight
            )
            tracked = (cost <= self.max_cost).any(axis=0)
        order = np.lexsort((-s, ~tracked)).astype(np.int64)
        return order if max_persons is None else order[: max(int(max_persons), 0)]

    def update(
        self,
        boxes: np.ndarray,
        scores: np.ndarray,
        keypoints: np.ndarray | None = None,
        detected: bool = True,
        *,
        track_keys: np.ndarray | list[int] | None = None,
    ) -> np.ndarray:
        """Match this frame's people to tracks and return their ids.

        Args:
            boxes: (N, 4) boxes ``x1, y1, x2, y2`` in pixels.
            scores: (N,) detector scores (on carried frames, pass the tracks' scores).
            keypoints: (N, 70, 2) 2D joints from HMR, or None.
            detected: True when the boxes are fresh observations (the detector or the
                caller); False when they were carried from keypoints. Carried boxes never
                start tracks and add no hits.
            track_keys: on carried frames, the :attr:`Track.key` each box was carried from;
                binds them directly instead of matching.

        Returns:
            (N,) int64 track ids, -1 for tentative tracks and for boxes beyond
            ``max_tracks``. An empty frame gives an empty array.
        """
        b = _as_boxes(boxes)
        s = _as_scores(scores, len(b))
        kp = None
        if keypoints is not None:
            kp = np.asarray(keypoints, dtype=np.float64)
            if kp.shape != (len(b), NUM_JOINTS, 2):
                raise ValueError(
                    f"keypoints must have shape ({len(b)}, {NUM_JOINTS}, 2), got {kp.shape}"
                )
        self.frame_count += 1
        self.removed_ids = []
        keep = self.select(b, s, self.max_tracks) if self.max_tracks is not None else None
        use = np.ones(len(b), dtype=bool) if keep is None else np.isin(np.arange(len(b)), keep)
        owner = np.full(len(b), -1, dtype=np.int64)  # index into self._tracks
        if track_keys is not None:
            owner = np.where(use, self._bind(track_keys, len(b)), -1)
        elif self._tracks and use.any():
            cand = np.flatnonzero(use)
            cost = match_cost(
                np.stack([t.box for t in self._tracks]),
                self._track_keypoints(),
                b[cand],
                None if kp is None else kp[cand],
                iou_weight=self.iou_weight,
                joints=self.joints,
            )
            rows, cols = self._assign(cost, self._tracks)
            owner[cand[cols]] = rows
        matched = set(owner[owner >= 0].tolist())
        for i in np.flatnonzero(owner >= 0):
            self._hit(self._tracks[owner[i]], b[i], s[i], None if kp is None else kp[i], detected)
        for j, t in enumerate(self._tracks):
            t.age += 1
            if j not in matched:
                t.misses += 1
        result = [self._tracks[o] if o >= 0 else None for o in owner]
        if detected:
            for i in np.flatnonzero((owner < 0) & use):
                result[i] = self._birth(b[i], s[i], None if kp is None else kp[i])
        survivors = []
        for t in self._tracks:
            if t.misses == 0 or (t.confirmed and t.misses <= self.max_misses):
                survivors.append(t)
            elif t.confirmed:
                self.removed_ids.append(t.track_id)
        self._tracks = survivors
        return np.array([-1 if t is None else t.track_id for t in result], dtype=np.int64)

    def merge_late(
        self,
        boxes: np.ndarray,
        scores: np.ndarray,
        boxes_then: dict[int, np.ndarray],
    ) -> list[int]:
        """Merge detections made on an earlier frame (an asynchronous detector).

        Matches the detections to the tracks seen on the last frame, by box cost
        (:func:`match_cost` without keypoints, gated by ``max_cost``) against the boxes the
        tracks had on the detection's frame (``boxes_then``, by :attr:`Track.key`; a track
        born since then is compared with its current box; confirmed tracks match first).
        A matched track counts a fresh detection (a hit, its score, confirmation); when its
        box then overlapped the detection by less than ``reseed_iou``, it takes the
        detection's box (moved by its motion since) and drops its keypoints. The
        detections left then go to the confirmed tracks not seen on the last frame (missed,
        not yet dropped), against their last box: a matched one comes back with its old id,
        the detection's box and no keypoints, as :meth:`update` does on a detector frame
        (the model may have lost a person for a frame or two). A track of
        that frame left unmatched counts a miss, so it is no longer carried, as on a frame
        where the detector ran and did not see it (tentative ones are dropped). Each unmatched
        detection starts a tentative track with its box and no keypoints, up to
        ``max_tracks`` people in all; the people found by the tracker's first merge are
        confirmed at once (as on a first frame). Tracks born after that frame never count
        a miss from it. No frame passes: ages do not advance.

        Args:
            boxes: (N, 4) the detections, in the frame they were made on.
            scores: (N,) their scores.
            boxes_then: ``{track key: (4,) box}`` of the tracks on that frame.

        Returns:
            The keys of the tracks born, highest score first.
        """
        b = _as_boxes(boxes)
        s = _as_scores(scores, len(b))
        first = self._merges == 0
        self._merges += 1
        live = [t for t in self._tracks if t.misses == 0]
        then = [t for t in live if t.key in boxes_then]
        taken = np.zeros(len(b), dtype=bool)
        if live and len(b):
            old = np.stack([np.asarray(boxes_then.get(t.key, t.box), dtype=np.float64)
                            for t in live])  # fmt: skip
            cost = match_cost(old, None, b, None, iou_weight=self.iou_weight)
            rows, cols = self._assign(cost, live)
            seen = set()
            for r, c in zip(rows, cols, strict=True):
                t = live[r]
                self._reseed(t, old[r], b[c])
                t.hits += 1
                t.score = float(s[c])
                if not t.confirmed and t.hits >= self.min_hits:
                    self._confirm(t)
                taken[c] = True
                seen.add(t.key)
            missed = [t for t in then if t.key not in seen]
        else:
            missed = then
        away = [t for t in self._tracks if t.misses > 0 and t.confirmed]
        left = np.flatnonzero(~taken)
        if away and len(left):
            cost = match_cost(np.stack([t.box for t in away]), None, b[left], None,
                              iou_weight=self.iou_weight)  # fmt: skip
            rows, cols = self._assign(cost, away)
            for r, c in zip(rows, cols, strict=True):
                t = away[r]
                t.box, t.keypoints, t.misses = b[left[c]].copy(), None, 0
                t.hits += 1
                t.score = float(s[left[c]])
                taken[left[c]] = True
        for t in missed:
            t.misses += 1
        self._tracks = [t for t in self._tracks if t.misses == 0 or t.confirmed]
        live = sum(t.misses == 0 for t in self._tracks)
        room = len(b) if self.max_tracks is None else max(0, self.max_tracks - live)
        born = []
        for i in np.flatnonzero(~taken)[np.argsort(-s[~taken], kind="stable")][:room]:
            t = self._birth(b[i], s[i], None)
            if first and not t.confirmed:
                self._confirm(t)
            born.append(t.key)
        return born

    def _reseed(self, t: Track, then: np.ndarray, found: np.ndarray) -> None:
        """Put a track back on its detection when its carried box had left it.

        ``then`` is the track's box on the detection's frame, ``found`` the detection
        matched to it. When they overlap by less than ``reseed_iou``, the carried box
        followed the wrong joints (typically a crop holding two people, whose model output
        moved onto the other one): the track takes the detection, moved by its own motion
        since then, and forgets its keypoints, so its next crop is made from that box.
        """
        iou = float(sv.box_iou_batch(then[None], found[None])[0, 0])
        if iou >= self.reseed_iou:
            return
        shift = (t.box[:2] + t.box[2:]) / 2 - (then[:2] + then[2:]) / 2
        t.box = found + np.concatenate([shift, shift])
        t.keypoints = None

    def _assign(self, cost: np.ndarray, tracks: list[Track]) -> tuple[np.ndarray, np.ndarray]:
        """Track rows and detection columns matched by ``cost``, confirmed tracks first.

        Two rounds of :func:`~scipy.optimize.linear_sum_assignment`: the confirmed tracks
        take their detections first, then the tentative tracks match the detections left.
        A tentative track (often a second, offset box the detector put on a tracked person
        for a frame) never takes a detection from a confirmed track that it is within the
        gate of. Pairs above ``max_cost`` are never matched.
        """
        gated = cost > self.max_cost
        free = np.ones(cost.shape[1], dtype=bool)
        rows: list[int] = []
        cols: list[int] = []
        confirmed = np.array([t.confirmed for t in tracks], dtype=bool)
        for group in (np.flatnonzero(confirmed), np.flatnonzero(~confirmed)):
            open_cols = np.flatnonzero(free)
            if not len(group) or not len(open_cols):
                continue
            sub = np.ix_(group, open_cols)
            # gated pairs get a prohibitive cost so they never steer the optimum
            r, c = linear_sum_assignment(np.where(gated[sub], 1e6, cost[sub]))
            ok = ~gated[sub][r, c]
            rows += group[r[ok]].tolist()
            cols += open_cols[c[ok]].tolist()
            free[open_cols[c[ok]]] = False
        return np.array(rows, dtype=np.int64), np.array(cols, dtype=np.int64)

    def _bind(self, track_keys: np.ndarray | list[int], n: int) -> np.ndarray:
        keys = np.asarray(track_keys, dtype=np.int64).reshape(-1)
        if len(keys) != n:
            raise ValueError(f"got {len(keys)} track_keys for {n} boxes; pass one per box")
        if len(set(keys.tolist())) != len(keys):
            raise ValueError(f"track_keys must be distinct, got {keys.tolist()}")
        where = {t.key: j for j, t in enumerate(self._tracks)}
        missing = [int(k) for k in keys if int(k) not in where]
        if missing:
            raise ValueError(
                f"track_keys {missing} are not live tracks; take keys from "
                "active_tracks() of the previous frame"
            )
        return np.array([where[int(k)] for k in keys], dtype=np.int64)

    def _track_keypoints(self) -> np.ndarray | None:
        if all(t.keypoints is None for t in self._tracks):
            return None
        nan = np.full((NUM_JOINTS, 2), np.nan)
        return np.stack([nan if t.keypoints is None else t.keypoints for t in self._tracks])

    def _hit(
        self, t: Track, box: np.ndarray, score: float, kp: np.ndarray | None, detected: bool
    ) -> None:
        t.box = box.copy()
        if kp is not None:
            t.keypoints = kp.copy()
        t.misses = 0
        if detected:
            t.hits += 1
            t.score = float(score)
            if not t.confirmed and t.hits >= self.min_hits:
                self._confirm(t)

    def _birth(self, box: np.ndarray, score: float, kp: np.ndarray | None) -> Track:
        t = Track(self._next_key, -1, box.copy(), None if kp is None else kp.copy(), float(score))
        self._next_key += 1
        if self.min_hits <= 1 or self.frame_count == 1:
            self._confirm(t)
        self._tracks.append(t)
        return t

    def _confirm(self, t: Track) -> None:
        t.track_id = self._next_id
        self._next_id += 1


def _as_boxes(boxes: object) -> np.ndarray:
    b = np.asarray(boxes, dtype=np.float64)
    if b.size == 0:
        return b.reshape(0, 4)
    if b.ndim != 2 or b.shape[1] != 4 or not np.all(np.isfinite(b)):
        raise ValueError(f"boxes must be a finite (N, 4) array of x1, y1, x2, y2; got {b.shape}")
    return b


def _as_scores(scores: object, n: int) -> np.ndarray:
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    if len(s) != n:
        raise ValueError(f"got {len(s)} scores for {n} boxes; pass one score per box")
    return s
