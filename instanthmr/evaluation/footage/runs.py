"""Run a pipeline over a clip, and the detector alone over every frame.

A :class:`ClipRun` keeps every :class:`~instanthmr.results.FrameResult` of one run, what
the scheduler asked the detector for (by reason), and the run's model header. The frames are
decoded again for every run (a 795-frame 768x576 clip is 1 GB decoded; decoding it costs
far less than the HMR stage).
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ...options import PipelineOptions
from ...results import FrameResult
from ...sources.files import Frame, VideoSource


@dataclass
class ClipRun:
    """One pipeline run over a clip.

    Attributes:
        label: what the run was (e.g. ``"stride 4"``), for tables.
        results: one FrameResult per frame, in order.
        requests: detector requests by reason (the scheduler's counts; with the async
            detector a request can be replaced by a newer one before it runs).
        header: :meth:`~instanthmr.pipeline.PosePipeline.describe` of the run.
        real_joints: (70,) bool, the joints the model really predicts.
        fps: the clip's frame rate.
    """

    label: str
    results: list[FrameResult]
    requests: dict[str, int] = field(default_factory=dict)
    header: dict[str, Any] = field(default_factory=dict)
    real_joints: np.ndarray = field(default_factory=lambda: np.ones(70, bool))
    fps: float = 0.0

    @property
    def frames(self) -> int:
        """Number of frames run."""
        return len(self.results)


def iter_clip(video: str | os.PathLike[str], limit: int | None = None) -> Iterator[Frame]:
    """The clip's frames (RGB, with index and timestamp), at most ``limit`` of them."""
    source = VideoSource(video)
    try:
        yield from itertools.islice(iter(source), limit)
    finally:
        source.close()


def clip_fps(video: str | os.PathLike[str]) -> float:
    """The frame rate the file declares (30 when it declares none)."""
    source = VideoSource(video)
    try:
        return float(source.fps or 30.0)
    finally:
        source.close()


def run_clip(
    video: str | os.PathLike[str],
    options: PipelineOptions,
    *,
    label: str,
    limit: int | None = None,
) -> ClipRun:
    """Run a :class:`~instanthmr.pipeline.PosePipeline` built from ``options`` over a clip.

    Frames go through :meth:`~instanthmr.pipeline.PosePipeline.predict_video` (smoothing
    on unless ``options.smoothing`` is False), with the container's timestamps.
    """
    from ...pipeline import PosePipeline

    with PosePipeline(options=options) as pipe:
        results = list(pipe.predict_video(iter_clip(video, limit)))
        return ClipRun(
            label=label,
            results=results,
            requests={k: v for k, v in pipe.scheduler.counts.items() if v},
            header=pipe.describe(),
            real_joints=np.asarray(pipe.hmr.real_joints, bool),
            fps=clip_fps(video),
        )


@dataclass
class Detections:
    """The detector's people on every frame of a clip (``boxes[i]``: (N_i, 4), ``scores[i]``)."""

    boxes: list[np.ndarray]
    scores: list[np.ndarray]

    def __len__(self) -> int:
        return len(self.boxes)

    @property
    def counts(self) -> np.ndarray:
        """(T,) people found per frame."""
        return np.array([len(b) for b in self.boxes], dtype=np.int64)


def detect_every_frame(
    detector: Any, video: str | os.PathLike[str], limit: int | None = None
) -> Detections:
    """Run ``detector.detect`` on every frame of the clip (the reference for carried boxes)."""
    from ...detector.boxes import boxes_and_scores

    boxes, scores = [], []
    for frame in iter_clip(video, limit):
        b, s = boxes_and_scores(detector.detect(frame.image))
        boxes.append(b)
        scores.append(s)
    return Detections(boxes, scores)
