"""How often the detector ran, and why (detect on need, live mode).

A frame counts as a detector run when its boxes came from the detector
(``FrameResult.detector_ran``): with the async detector, the frame where the boxes were
merged, whose ``detect_reason`` is the reason they were asked for. Requests that a newer
one replaced before they ran (newest frame wins) are not runs; the scheduler's counts of
requests are kept beside them (:attr:`~.runs.ClipRun.requests`).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from ...tracking.schedule import REASONS
from .runs import ClipRun

REASON_GROUPS: dict[str, tuple[str, ...]] = {
    "no-tracks": ("no-tracks",),
    "new-motion": ("new-motion",),
    "lost track": ("keypoints-collapsed", "box-left-frame", "box-jump", "tracks-merged"),
    "unconfirmed": ("unconfirmed",),
    "max-interval": ("max-interval", "stride"),
}
"""The reasons of :data:`~instanthmr.tracking.schedule.REASONS`, grouped as in the docs."""


@dataclass
class DetectorRuns:
    """Detector runs of one clip run, by reason.

    Attributes:
        label: the run.
        frames: frames in the run.
        runs: frames whose boxes came from the detector.
        by_reason: runs per reason (every :data:`REASONS` entry, zeros included).
        requests: requests per reason (the scheduler's counts).
        latency_median: median frames between the detected frame and the merge (0 for a
            detector in the frame loop).
    """

    label: str
    frames: int
    runs: int
    by_reason: dict[str, int] = field(default_factory=dict)
    requests: dict[str, int] = field(default_factory=dict)
    latency_median: float = 0.0

    @property
    def share(self) -> float:
        """Runs over frames."""
        return self.runs / self.frames if self.frames else float("nan")

    def group_shares(self) -> dict[str, float]:
        """Share of frames with a run, per group of :data:`REASON_GROUPS`."""
        if not self.frames:
            return dict.fromkeys(REASON_GROUPS, float("nan"))
        return {g: sum(self.by_reason.get(r, 0) for r in rs) / self.frames
                for g, rs in REASON_GROUPS.items()}  # fmt: skip

    def as_dict(self) -> dict[str, Any]:
        """The figures as plain types, the shares included."""
        return {**asdict(self), "share": self.share, "group_shares": self.group_shares()}


def detector_runs(run: ClipRun) -> DetectorRuns:
    """Count the detector runs of ``run`` by reason."""
    ran = [r for r in run.results if r.detector_ran]
    counts = Counter(r.detect_reason for r in ran)
    latency = [r.frame_index - r.detection_frame for r in ran if r.detection_frame is not None]
    return DetectorRuns(
        label=run.label,
        frames=run.frames,
        runs=len(ran),
        by_reason={reason: int(counts.get(reason, 0)) for reason in REASONS},
        requests=dict(run.requests),
        latency_median=float(np.median(latency)) if latency else 0.0,
    )
