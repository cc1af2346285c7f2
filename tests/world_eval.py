"""Scoring the world stage on a scene of ``world_bench.py``: accuracy, honesty, levels, contact.

:func:`evaluate` runs a real :class:`WorldTracker` over a rendered scene and returns a
:class:`Score`; the tests assert on it and ``tools/world_accuracy.py`` tabulates it.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np
from world_bench import Scene

from instanthmr.results import WorldInfo
from instanthmr.world import WorldFrame, WorldTracker

BAD_HEIGHT = 0.10
BAD_ANGLE = 2.0
"""A known frame further off than this (m, degrees) is a failure (issue 18)."""


@dataclass
class Score:
    """What one run of the world stage over one scene gave.

    Attributes:
        errors: (height m, pitch deg, roll deg) signed errors at the end, NaN when unknown.
        stds: the reported standard deviations at the end (NaN when unknown).
        first_known: seconds until the frame was first known (NaN: never).
        first_errors: the errors on that frame.
        known_frames: frames with a known world frame.
        covered: known frames whose three errors are all within two reported standard
            deviations.
        bad_frames: known frames off by more than 10 cm or 2 degrees.
        flips: known frames whose camera height jumped by more than 0.25 m from the
            previous known frame (the floor changed level).
        reopened: re-openings reported.
        settled: the frame had settled at the end.
        reason: the last frame's reason ("" when known).
        tp, fp, fn: foot contacts (true = planted on the floor) of people on the floor.
        raised_contacts, raised_feet: contacts flagged, and feet seen, of people on another
            level (a platform, a ramp above 5 cm).
        ms: milliseconds per ``WorldTracker.update``.
    """

    errors: tuple[float, float, float] = (math.nan,) * 3
    stds: tuple[float, float, float] = (math.nan,) * 3
    first_known: float = math.nan
    first_errors: tuple[float, float, float] = (math.nan,) * 3
    known_frames: int = 0
    covered: int = 0
    bad_frames: int = 0
    flips: int = 0
    reopened: int = 0
    settled: bool = False
    reason: str = ""
    tp: int = 0
    fp: int = 0
    fn: int = 0
    raised_contacts: int = 0
    raised_feet: int = 0
    ms: list[float] = field(default_factory=list)

    @property
    def known(self) -> bool:
        """Known at the end."""
        return not math.isnan(self.errors[0])

    @property
    def coverage(self) -> float:
        """Share of known frames whose errors the reported uncertainty covers."""
        return self.covered / self.known_frames if self.known_frames else math.nan


def errors_of(info: WorldInfo, truth: WorldFrame) -> tuple[float, float, float]:
    """Signed (height m, pitch deg, roll deg) errors of a known frame."""
    return (info.camera_height - truth.camera_height, info.pitch_deg - truth.pitch_deg,
            info.roll_deg - truth.roll_deg)  # fmt: skip


def evaluate(
    scene: Scene,
    depth: float = 0.05,
    lateral: float = 0.015,
    seed: int = 0,
    given: bool = False,
    stage: WorldTracker | None = None,
    size_error: float = 0.0,
) -> Score:
    """Run the world stage (online estimate, or the true frame when ``given``) over ``scene``
    (see :meth:`Scene.render` for the noise)."""
    truth = scene.camera.frame
    stage = stage or WorldTracker(truth if given else None)
    score = Score()
    last_height = None
    info = None
    frames = scene.render(depth=depth, lateral=lateral, seed=seed, size_error=size_error)
    for t, persons, truths in frames:
        t0 = time.perf_counter()
        out, info = stage.update(persons, t)
        score.ms.append((time.perf_counter() - t0) * 1e3)
        if not info.known:
            continue
        err = errors_of(info, truth)
        score.known_frames += 1
        if math.isnan(score.first_known):
            score.first_known, score.first_errors = t, err
        std = (info.height_std, info.pitch_std_deg, info.roll_std_deg)
        score.covered += all(abs(e) <= 2 * s for e, s in zip(err, std, strict=True))
        score.bad_frames += abs(err[0]) > BAD_HEIGHT or max(abs(err[1]), abs(err[2])) > BAD_ANGLE
        if last_height is not None and abs(info.camera_height - last_height) > 0.25:
            score.flips += 1
        last_height = info.camera_height
        for p, tr in zip(out, truths, strict=True):
            pred = np.array(info.person(p.track_id).contact)
            true = np.array(tr.contact)
            if tr.level > 0.05:
                score.raised_contacts += int(pred.sum())
                score.raised_feet += 2
                continue
            score.tp += int(np.sum(pred & true))
            score.fp += int(np.sum(pred & ~true))
            score.fn += int(np.sum(~pred & true))
    assert info is not None
    score.reopened, score.settled, score.reason = info.reopened, info.settled, info.reason
    if info.known:
        score.errors = errors_of(info, truth)
        score.stds = (info.height_std, info.pitch_std_deg, info.roll_std_deg)
    return score
