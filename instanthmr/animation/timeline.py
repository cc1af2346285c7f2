"""Frame times the animation writers can use, whatever timestamps the frames carried.

The BVH and glTF writers put every frame on a regular grid (one slot per frame time) and
hold poses through gaps, so absurd timestamps would make absurd files: one frame at
t = 1e9 s asked for billions of slots (28 GiB) at close, timestamps that never increase
gave a one-frame BVH, and decreasing ones negative glTF key times (an invalid file).
:func:`frame_slots` normalises the times first and logs one warning that counts what it
changed:

- a time that is not a finite number, or not after the previous frame's, is moved one frame
  time after the previous frame;
- a jump of more than :data:`MAX_GAP_S` seconds is cut to one frame time (the animation
  goes on as if the footage had been cut there);
- a timeline that would still need more than :data:`MAX_SLOTS_PER_FRAME` slots per frame
  written is replaced by evenly spaced frames.

The frame time is the median step between increasing timestamps (1 / ``fps`` when there is
none). Sensible timestamps pass unchanged.
"""

from __future__ import annotations

import logging

import numpy as np

log = logging.getLogger(__name__)

MAX_GAP_S = 10.0
"""The longest jump between two frames kept as it is (longer ones are cut to one frame)."""
MAX_SLOTS_PER_FRAME = 100
"""At most this many grid slots per frame written (plus 1000), whatever the timestamps."""
MIN_STEP_S = 1e-6
"""Steps shorter than this count as repeats when the frame time is measured."""


def _frame_time(times: np.ndarray, fps: float) -> float:
    steps = np.diff(times[np.isfinite(times)])
    steps = steps[(steps > MIN_STEP_S) & (steps <= MAX_GAP_S)]
    return float(np.median(steps)) if len(steps) else 1.0 / fps


def checked_times(times: np.ndarray, fps: float) -> tuple[np.ndarray, float]:
    """(normalised times, frame time) for frames timed ``times`` (see the module docs)."""
    t = np.asarray(times, dtype=np.float64)
    dt = _frame_time(t, fps)
    out = np.empty(len(t))
    counts = {"not finite": 0, "not after the previous frame's": 0,
              f"after a jump of more than {MAX_GAP_S:g} s": 0}  # fmt: skip
    keys = list(counts)
    for i, value in enumerate(t):
        if i == 0:
            out[0] = value if np.isfinite(value) else 0.0
            counts[keys[0]] += int(not np.isfinite(value))
            continue
        step = value - t[i - 1]
        if not np.isfinite(value) or not np.isfinite(t[i - 1]):
            why = keys[0] if not np.isfinite(value) else None
        elif step <= MIN_STEP_S:
            why = keys[1]
        elif step > MAX_GAP_S:
            why = keys[2]
        else:
            out[i] = out[i - 1] + step
            continue
        if why is not None:
            counts[why] += 1
        out[i] = out[i - 1] + dt
    changed = {k: v for k, v in counts.items() if v}
    if changed:
        what = ", ".join(f"{v} {k}" for k, v in changed.items())
        log.warning(
            "animation export: %d of %d frame times were retimed (%s): each such frame "
            "now comes one frame time (%.4g s) after the one before", sum(changed.values()),
            len(t), what, dt,
        )  # fmt: skip
    return out, dt


def frame_slots(times: np.ndarray, fps: float) -> tuple[np.ndarray, float]:
    """(grid slot of each frame, frame time): the times checked, then put on the grid."""
    if len(times) == 0:
        return np.zeros(0, dtype=np.int64), 1.0 / fps
    t, dt = checked_times(times, fps)
    slots = np.round((t - t[0]) / dt).astype(np.int64)
    limit = MAX_SLOTS_PER_FRAME * len(t) + 1000
    if slots[-1] > limit:
        log.warning(
            "animation export: the frame times span %d frame times for %d frames (more than "
            "%d): the frames are spaced evenly instead", int(slots[-1]), len(t), limit,
        )  # fmt: skip
        slots = np.arange(len(t), dtype=np.int64)
    return slots, dt
