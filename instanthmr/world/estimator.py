"""Online ground estimate with honest uncertainty: ground samples, levels, settle and re-open.

**Ground samples.** Every frame, each tracked person standing or walking upright (the body's
ankle-to-neck line within ``upright_angle`` of the current up direction) gives one sample:
the mean of the heel and toe tips of their lower foot among those still in the image
(slower than ``still_speed``, :class:`~.observation.FootMotion`; both feet when they are
level), at the depth fixed by their 2D keypoints and metric body (:mod:`.depth`). A walker
always has a planted foot, so no one needs to stand still; a swinging or landing foot and a
runner in flight give none. Each sample carries its noise:
along its viewing ray the depth's per-frame error (its standard deviation times the
distance), across it the keypoints' scatter and ``contact_std`` (how well a foot marks the
floor). Samples are grouped into clusters, one person over ``cluster_s`` seconds.

**Fit.** Every ``refit_every`` frames the floor is refitted on all samples kept
(:func:`~.ground_fit.fit_floor`, started from the last trusted plane; until the frame is
known, from the normal the clusters agree on, :func:`~.ground_fit.within_normal`). The
samples are split into levels (:func:`~.ground_fit.levels`): the floor is the
level with the most foot-time among those spreading at least ``min_extent`` metres both
ways, and it changes only when another level holds ``floor_hysteresis`` times its
foot-time. Samples on other levels (a stage, a ramp) do not tilt the floor.

**Known.** The frame is known when the floor's standard deviations are within
``max_height_std`` and ``max_angle_std`` and they come from at least ``min_clusters``
clusters. ``confidence = 1 / (1 + q^2)``, ``q`` the largest of the three standard
deviations over its limit: 0.5 at the limits, 0.8 at half of them.

**Settle and re-open.** Once ``settle_fits`` fits in a row are within ``settle_fraction`` of
the limits, the frame settles: it stops changing. The samples since then (at most
``recheck_s`` seconds) are fitted on their own at every refit; when they disagree with the
settled frame beyond both uncertainties (Mahalanobis distance squared above
``reopen_chi2``), the frame re-opens: older samples are dropped, the estimate continues
from the new evidence alone, and :attr:`Estimate.reopened` counts it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..skeleton import JOINT_INDEX
from .frame import WorldFrame
from .ground_fit import FloorFit, Level, fit_floor, levels, within_normal
from .observation import FOOT_JOINTS, Observation
from .plane import DegeneratePlaneError
from .samples import Samples, SampleStore

NECK = JOINT_INDEX["neck"]
ANKLES = (JOINT_INDEX["left_ankle"], JOINT_INDEX["right_ankle"])
LEVEL_FEET = 0.03
"""Feet within this height of each other (m) are both on the ground: their mean is used."""


@dataclass
class EstimatorConfig:
    """Settings of :class:`GroundEstimator` (the documented defaults in brackets).

    Attributes:
        still_speed: a foot faster than this in the image (m/s at its depth) marks no
            ground [0.5].
        depth_noise: the model's depth error, standard deviation as a fraction of the
            distance, where the 2D keypoints cannot fix it [0.06].
        size_std: least per-person offset of the 2D depth, as a fraction of the person's
            height under the camera (a body size the model misjudges; the people's own
            scatter is estimated on top) [0.002].
        lateral: the joints' error across the ray when the keypoints cannot measure it, m
            [0.02].
        contact_std: how well a foot on the ground marks the floor, m [0.01].
        upright_angle: a person whose ankle-to-neck line leans more than this from up
            (degrees) gives no sample [30].
        cluster_s: seconds of one person's samples that share their errors [1.5].
        min_samples: samples needed before a fit is tried [30].
        min_clusters: clusters needed for a known frame [6].
        max_height_std: the camera height's standard deviation must be below this, m [0.025].
        max_angle_std: ... and pitch's and roll's below this, degrees [0.5].
        min_extent: the floor's samples must spread this far both ways (2 standard
            deviations), m [0.8]; a smaller level may be a platform.
        level_tol: samples within this height of a level belong to it, m [0.12].
        floor_hysteresis: another level becomes the floor when it holds this many times the
            floor's foot-time [1.5].
        settle_fraction: fits within this fraction of the limits may settle [0.5].
        settle_fits: ... this many in a row [3].
        recheck_s: a settled frame is checked against the samples of the last this many
            seconds [5].
        reopen_chi2: it re-opens when they disagree by more than this squared Mahalanobis
            distance (3 degrees of freedom: 25 is a 1-in-60000 chance) [25].
        refit_every: frames between fits [10]; three times as many while settled, when the
            fit only checks the settled frame.
        max_samples: samples kept (the oldest are dropped first) [6000].
    """

    still_speed: float = 0.5
    depth_noise: float = 0.06
    size_std: float = 0.002
    lateral: float = 0.02
    contact_std: float = 0.01
    upright_angle: float = 30.0
    cluster_s: float = 1.5
    min_samples: int = 30
    min_clusters: int = 6
    max_height_std: float = 0.025
    max_angle_std: float = 0.5
    min_extent: float = 0.8
    level_tol: float = 0.12
    floor_hysteresis: float = 1.5
    settle_fraction: float = 0.5
    settle_fits: int = 3
    recheck_s: float = 5.0
    reopen_chi2: float = 25.0
    refit_every: int = 10
    max_samples: int = 6000

    def __post_init__(self) -> None:
        positive = ("still_speed", "depth_noise", "lateral", "contact_std", "upright_angle",
                    "cluster_s", "max_height_std", "max_angle_std", "level_tol",
                    "settle_fraction", "recheck_s", "reopen_chi2")  # fmt: skip
        bad = [k for k in positive if not getattr(self, k) > 0]
        if bad or self.size_std < 0 or self.min_extent < 0:
            raise ValueError(f"{', '.join(bad) or 'size_std/min_extent'} must be > 0: {self}")
        if not 3 <= self.min_samples <= self.max_samples:
            raise ValueError(f"need 3 <= min_samples <= max_samples: {self}")
        if self.refit_every < 1 or self.min_clusters < 2 or self.settle_fits < 1:
            raise ValueError(f"need refit_every >= 1, min_clusters >= 2, settle_fits >= 1: {self}")
        if self.floor_hysteresis < 1:
            raise ValueError(f"floor_hysteresis must be >= 1, got {self.floor_hysteresis}")


@dataclass
class Estimate:
    """The estimator's state after a frame.

    Attributes:
        frame: the world frame, or None while unknown.
        confidence: 0..1 (see the module docstring).
        inliers: ground samples supporting the floor.
        samples: ground samples kept.
        reason: why the world frame is unknown ("" when known).
        settled: the frame has settled (it no longer changes until it re-opens).
        reopened: how many times a settled frame re-opened.
        last_reopen: what the last re-opening found ("" before any).
        height_std: standard deviation of the camera height, m (None before any fit).
        pitch_std: ... of the pitch, degrees.
        roll_std: ... of the roll, degrees.
        levels: ground levels seen (the floor and others, such as a platform).
    """

    frame: WorldFrame | None = None
    confidence: float = 0.0
    inliers: int = 0
    samples: int = 0
    reason: str = (
        "no ground samples yet: the world frame stays unknown until people stand or walk in view"
    )
    settled: bool = False
    reopened: int = 0
    last_reopen: str = ""
    height_std: float | None = None
    pitch_std: float | None = None
    roll_std: float | None = None
    levels: int = 0


@dataclass
class GroundEstimator:
    """Collects ground samples per track and fits the floor online (see the module docstring)."""

    config: EstimatorConfig = field(default_factory=EstimatorConfig)

    def __post_init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """Forget every sample and the estimate."""
        self._store = SampleStore(self.config.max_samples)
        self._down = np.zeros(3)
        self._fit: FloorFit | None = None
        self._settled: FloorFit | None = None
        self._settled_at = 0.0
        self._calm = 0
        self._frames_since_fit = 0
        self._new = False
        self.estimate = Estimate()

    @property
    def up(self) -> np.ndarray:
        """The best up direction known (camera frame): the known floor's normal, else the
        people's (their mean ankle-to-neck direction)."""
        if self.estimate.frame is not None and self._fit is not None:
            return self._fit.normal
        norm = np.linalg.norm(self._down)
        return -self._down / norm if norm > 0 else np.array([0.0, -1.0, 0.0])

    def samples(self) -> Samples:
        """A copy of the ground samples kept (oldest dropped first beyond ``max_samples``)."""
        return self._store.samples()

    @property
    def fit(self) -> FloorFit | None:
        """The floor fit behind the published frame (the settled one while settled)."""
        return self._settled or self._fit

    def add(self, obs: Observation, timestamp: float, foot_speed: np.ndarray | None = None) -> int:
        """Take this frame's ground samples; returns how many.

        ``foot_speed`` (P, 2): each foot's image speed, m/s (:class:`~.observation.FootMotion`);
        only feet slower than ``still_speed`` mark the ground. None: every foot may.
        """
        if len(obs) == 0:
            return 0
        cfg = self.config
        local = obs.local
        body = local[:, NECK] - local[:, list(ANKLES)].mean(axis=1)
        length = np.linalg.norm(body, axis=1)
        up = self.up
        limit = cfg.upright_angle if self.estimate.frame is not None else 80.0
        upright = body @ up >= length * math.cos(math.radians(limit))
        if self.estimate.frame is None:
            self._down -= (body[upright] / length[upright, None]).sum(axis=0)
        if not upright.any():
            return 0
        feet = local[:, list(FOOT_JOINTS)].reshape(-1, 2, 3, 3).mean(axis=2)  # (P, 2, 3)
        heights = feet @ up  # (P, 2) left, right
        if foot_speed is not None:  # a moving foot (swinging, landing) is not on the ground
            heights = np.where(foot_speed < cfg.still_speed, heights, np.inf)
        lowest = heights.min(axis=1, keepdims=True)
        use = heights < lowest + LEVEL_FEET  # the lower foot, or both when level
        upright &= np.isfinite(lowest[:, 0])
        if not upright.any():
            return 0
        count = use.sum(axis=1)
        point_local = ((feet * use[..., None]).sum(axis=1) / np.maximum(count, 1)[:, None])[upright]
        npts = 3.0 * count[upright]
        trans = obs.trans[upright]
        dist = np.linalg.norm(trans, axis=1)
        d = obs.depth
        frame_var = np.maximum(d.std[upright] ** 2 - cfg.size_std**2 * d.used_2d[upright], 0)
        lateral = np.where(np.isnan(d.lateral[upright]), cfg.lateral, d.lateral[upright])
        track = obs.track[upright]
        self._store.add(
            points=point_local + trans, rays=trans / dist[:, None], roots=trans,
            var_along=frame_var * dist**2, var_iso=lateral**2 / npts + cfg.contact_std**2,
            cluster=track * 1_000_000 + int(timestamp // cfg.cluster_s), track=track,
            time=np.full(len(track), timestamp),
        )  # fmt: skip
        self._new = True
        return len(track)

    def update(
        self, obs: Observation, timestamp: float, foot_speed: np.ndarray | None = None
    ) -> Estimate:
        """Add this frame's samples (see :meth:`add`) and refit when due; returns the current
        estimate."""
        self.add(obs, timestamp, foot_speed)
        est = self.estimate
        est.samples = self._store.count
        self._frames_since_fit += 1
        if self._store.count < self.config.min_samples:
            est.reason = (
                f"{self._store.count} ground samples, need {self.config.min_samples}: the "
                "world frame stays unknown until people stand or walk in view"
            )
            return est
        every = self.config.refit_every * (3 if est.settled else 1)  # settled: a check only
        if not (self._new and self._frames_since_fit >= every):
            return est
        self._frames_since_fit, self._new = 0, False
        self._refit(est, timestamp)
        return est

    # ---- fitting ----------------------------------------------------------------------

    def _floor(self, lv: list[Level], hysteresis: bool) -> Level:
        """The floor among the levels: the most foot-time among the wide ones; with
        ``hysteresis``, the level at height 0 (the floor so far) unless another holds
        ``floor_hysteresis`` times its foot-time."""
        cfg = self.config
        wide = [x for x in lv if x.extent[1] >= cfg.min_extent]
        best = wide[0] if wide else lv[0]
        if not hysteresis:
            return best
        current = min(lv, key=lambda x: abs(x.offset))
        if abs(current.offset) > cfg.level_tol or current is best:
            return best
        current_wide = current.extent[1] >= cfg.min_extent
        if current_wide and best.samples < cfg.floor_hysteresis * current.samples:
            return current
        if not current_wide and not wide:
            return current
        return best

    def _fit_all(self, samples: Samples, warm: FloorFit | None) -> tuple[FloorFit, Level, int]:
        """The floor on these samples: from ``warm`` (a trusted fit), else from scratch."""
        cfg = self.config
        if warm is None:
            n = within_normal(samples, self.up)
            h = -float(np.median(samples.points @ n))
        else:
            n, h = warm.normal, warm.height
        lv = levels(samples, n, h, cfg.level_tol)
        floor = self._floor(lv, warm is not None)
        fit = fit_floor(
            samples.take(floor.mask),
            n,
            h - floor.offset,
            size_std=cfg.size_std,
            window=cfg.cluster_s,
        )
        return fit, floor, len(lv)

    def _refit(self, est: Estimate, now: float) -> None:
        if self._settled is not None:
            self._check_settled(est, self._store.samples(), now)
            if self._settled is not None:
                return
        warm = self._fit if self.estimate.frame is not None else None  # trusted planes only
        try:
            fit, floor, count = self._fit_all(self._store.samples(), warm)
        except (DegeneratePlaneError, ValueError, np.linalg.LinAlgError) as err:
            est.frame, est.reason, self._calm = None, f"no ground plane yet: {err}", 0
            return
        self._fit = fit
        est.levels = count
        self._publish(est, fit, floor, now)

    def _publish(self, est: Estimate, fit: FloorFit, floor: Level, now: float) -> None:
        cfg = self.config
        sp, sr = fit.angle_std()
        sh = fit.height_std
        q = max(sh / cfg.max_height_std, sp / cfg.max_angle_std, sr / cfg.max_angle_std)
        est.height_std, est.pitch_std, est.roll_std = sh, sp, sr
        est.confidence, est.inliers = 1.0 / (1.0 + q * q), fit.inliers
        try:
            frame = WorldFrame(fit.normal, fit.height)
        except ValueError as err:  # DegeneratePlaneError, or a height out of range
            est.frame, est.reason, self._calm = None, f"no ground plane yet: {err}", 0
            return
        why = ""
        if floor.extent[1] < cfg.min_extent:
            why = (
                f"the floor seen so far spans {floor.extent[0]:.1f} x {floor.extent[1]:.1f} m, "
                f"need {cfg.min_extent:g} m both ways (a smaller level may be a platform): "
                "let people walk over more of the floor"
            )
        elif fit.clusters < cfg.min_clusters:
            why = (
                f"evidence from {fit.clusters:.1f} person-windows of {cfg.cluster_s:g} s, need "
                f"{cfg.min_clusters}: let people walk longer"
            )
        elif q > 1.0:
            why = (
                f"too uncertain yet: height +-{100 * sh:.1f} cm, pitch +-{sp:.2f} deg, roll "
                f"+-{sr:.2f} deg (1 standard deviation; limits {100 * cfg.max_height_std:g} "
                f"cm, {cfg.max_angle_std:g} deg): let people walk longer or nearer"
            )
        if est.reopened:
            why = why and f"{why}; {est.last_reopen}"
        if why:
            est.frame, est.reason, self._calm = None, why, 0
            return
        est.frame, est.reason = frame, ""
        self._calm = self._calm + 1 if q <= cfg.settle_fraction else 0
        if self._calm >= cfg.settle_fits:
            self._settled, self._settled_at = fit, now
            est.settled = True

    def _check_settled(self, est: Estimate, samples: Samples, now: float) -> None:
        """Re-open the settled frame when the recent samples disagree with it."""
        cfg = self.config
        ref = self._settled
        assert ref is not None
        recent = samples.time >= max(self._settled_at, now - cfg.recheck_s)
        fresh = samples.take(recent)
        if len(fresh) < cfg.min_samples or len(np.unique(fresh.cluster)) < cfg.min_clusters:
            return
        try:  # the recent evidence on its own, from scratch (levels and all)
            new, _, _ = self._fit_all(fresh, None)
        except (ValueError, np.linalg.LinAlgError):
            return
        if new.clusters < cfg.min_clusters:
            return
        d = np.array([new.height - ref.height, *(ref.basis @ new.normal)])
        m2 = float(d @ np.linalg.solve(new.cov + ref.cov, d))
        if m2 <= cfg.reopen_chi2:
            return
        tilt = math.degrees(math.acos(float(np.clip(new.normal @ ref.normal, -1.0, 1.0))))
        since = max(self._settled_at, now - cfg.recheck_s)
        est.reopened += 1
        est.last_reopen = (
            f"re-opened at {now:.1f} s: the ground seen since {since:.1f} s is "
            f"{100 * abs(d[0]):.1f} cm and {tilt:.2f} deg from the settled frame "
            f"(squared Mahalanobis distance {m2:.0f} > {cfg.reopen_chi2:g})"
        )
        self._store.keep(recent)
        self._settled, self._fit, self._calm = None, new, 0
        est.settled = False
        est.frame, est.reason = None, est.last_reopen
