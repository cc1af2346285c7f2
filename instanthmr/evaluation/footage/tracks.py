"""Tracking on a clip without ground truth: people per frame, tracks, fragmentation, swaps.

Definitions (all from the run's own boxes and ids):

- **persons per frame**: people in each :class:`~instanthmr.results.FrameResult`;
  ``untracked`` counts the person-frames without an id (tentative tracks, id -1).
- **track length**: the number of frames a confirmed id appears on; a track shorter than
  ``short`` (10) frames is a fragment.
- **expected box**: an id's box on t-1 moved by its motion from t-2 to t-1 (constant
  velocity; its box on t-1 when it was not on t-2). Comparing with the expected boxes keeps
  two people who walk past each other, half a box width a frame, from looking like a swap.
- **swap**: two ids A and B, both on frames t-1 and t, where each one's box on t overlaps the
  *other's* expected box more than its own (and by at least ``swap_iou``): the two people
  traded ids.
- **takeover**: one id whose box on t overlaps its own expected box by less than
  ``takeover_own`` and another id's expected box by at least ``swap_iou``: it jumped onto
  someone else (a swap is two takeovers).
- **break**: an id born on frame t whose first box overlaps (IoU >= ``break_iou``) the last
  box of an id that ended within ``break_gap`` frames before and never came back: one
  person's track broken into two ids.
- **duplicate**: two ids on one frame whose boxes overlap by more than ``duplicate_iou``:
  two tracks following one person (carried boxes can converge onto one body).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import supervision as sv

from ...results import FrameResult


@dataclass
class TrackEvents:
    """Frame-level events, for inspection: ``(frame, id_a, id_b)`` per event."""

    swaps: list[tuple[int, int, int]] = field(default_factory=list)
    takeovers: list[tuple[int, int, int]] = field(default_factory=list)
    breaks: list[tuple[int, int, int]] = field(default_factory=list)
    duplicates: list[tuple[int, int, int]] = field(default_factory=list)


@dataclass
class TrackStats:
    """Tracking figures of one run (see the module docstring for the definitions)."""

    frames: int
    persons_mean: float
    persons_median: float
    persons_max: int
    untracked: int
    tracks: int
    short_tracks: int
    short: int
    length_median: float
    swaps: int
    takeovers: int
    breaks: int
    duplicates: int
    events: TrackEvents = field(default_factory=TrackEvents, repr=False)

    def as_dict(self) -> dict[str, Any]:
        """The figures as plain types (events included)."""
        return asdict(self)


def _iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a, b = np.asarray(a, float).reshape(-1, 4), np.asarray(b, float).reshape(-1, 4)
    return sv.box_iou_batch(a, b)


def id_boxes(results: Sequence[FrameResult]) -> list[dict[int, np.ndarray]]:
    """Per frame, ``{track id: box}`` of the tracked persons (id >= 0)."""
    return [{p.track_id: np.asarray(p.bbox, float) for p in r.persons if p.track_id >= 0}
            for r in results]  # fmt: skip


def track_lengths(results: Sequence[FrameResult]) -> dict[int, int]:
    """Frames each confirmed id appears on."""
    lengths: dict[int, int] = defaultdict(int)
    for frame in id_boxes(results):
        for tid in frame:
            lengths[tid] += 1
    return dict(lengths)


def expected_boxes(
    before: dict[int, np.ndarray], last: dict[int, np.ndarray]
) -> dict[int, np.ndarray]:
    """Each id of ``last`` moved by its motion since ``before`` (constant velocity); an id
    not in ``before`` stays where it was."""
    return {i: 2 * b - before[i] if i in before else b for i, b in last.items()}


def track_stats(
    results: Sequence[FrameResult],
    *,
    short: int = 10,
    swap_iou: float = 0.3,
    takeover_own: float = 0.1,
    break_iou: float = 0.3,
    break_gap: int = 30,
    duplicate_iou: float = 0.7,
) -> TrackStats:
    """Tracking figures of a run (definitions in the module docstring).

    An empty run gives zeros (NaN for the means and medians).
    """
    counts = np.array([len(r.persons) for r in results], dtype=np.int64)
    frames = id_boxes(results)
    lengths = track_lengths(results)
    events = TrackEvents()
    first: dict[int, int] = {}
    last: dict[int, int] = {}
    for t, cur in enumerate(frames):
        for tid in cur:
            first.setdefault(tid, t)
            last[tid] = t
        ids = sorted(cur)
        if len(ids) > 1:
            iou = _iou(np.stack([cur[i] for i in ids]), np.stack([cur[i] for i in ids]))
            for a, b in zip(*np.nonzero(np.triu(iou > duplicate_iou, 1)), strict=True):
                events.duplicates.append((t, ids[a], ids[b]))
        if t == 0:
            continue
        prev = expected_boxes(frames[t - 2] if t > 1 else {}, frames[t - 1])
        both = [i for i in ids if i in prev]
        if len(both) > 1:
            now = _iou(np.stack([cur[i] for i in both]), np.stack([prev[i] for i in both]))
            own = np.diag(now)
            for a in range(len(both)):
                for b in range(a + 1, len(both)):
                    if (now[a, b] >= swap_iou and now[b, a] >= swap_iou
                            and now[a, b] > own[a] and now[b, a] > own[b]):  # fmt: skip
                        events.swaps.append((t, both[a], both[b]))
        others = [i for i in prev]
        for tid in both:
            if not len(others):
                break
            own = _iou(cur[tid], prev[tid])[0, 0]
            cross = _iou(cur[tid], np.stack([prev[i] for i in others]))[0]
            for j, o in enumerate(others):
                if o != tid and own < takeover_own and cross[j] >= swap_iou:
                    events.takeovers.append((t, tid, o))
    ended = {tid: t for tid, t in last.items()}
    for tid, born in first.items():
        if born == 0:
            continue
        box = frames[born][tid]
        for old, end in ended.items():
            if old == tid or not (born - break_gap <= end < born) or first[old] >= born:
                continue
            if _iou(box, frames[end][old])[0, 0] >= break_iou:
                events.breaks.append((born, old, tid))
                break
    values = np.array(list(lengths.values()), dtype=np.float64)
    nan = float("nan")
    return TrackStats(
        frames=len(results),
        persons_mean=float(counts.mean()) if len(counts) else nan,
        persons_median=float(np.median(counts)) if len(counts) else nan,
        persons_max=int(counts.max()) if len(counts) else 0,
        untracked=int(sum(p.track_id < 0 for r in results for p in r.persons)),
        tracks=len(lengths),
        short_tracks=int((values < short).sum()),
        short=short,
        length_median=float(np.median(values)) if len(values) else nan,
        swaps=len(events.swaps),
        takeovers=len(events.takeovers),
        breaks=len(events.breaks),
        duplicates=len(events.duplicates),
        events=events,
    )
