"""The floor from ground samples of known noise: weighted robust fit, honest covariance, levels.

Each ground sample (a person's lower foot, see :mod:`.estimator`) carries its own noise:
``var_along`` along its viewing ray (the depth error, growing with distance) and
``var_iso`` in every direction (joint jitter, how well a foot marks the floor). Its height
error over a plane with unit normal ``n`` has variance ``var_along (n . ray)^2 + var_iso``.

**Fit** (:func:`fit_floor`). Iteratively re-weighted, generalised least squares on the
sample heights, the plane written as ``n0 + alpha e1 + beta e2`` (``e1``, ``e2`` across
``n0``) and height ``h``: linear in ``(h, alpha, beta)`` about the previous estimate.
Weights are the inverse height variances times Tukey's biweight (c = 4.685, with a robust
scale that grows when the residuals are wider than their stated noise) of each sample's
residual, of its cluster's mean residual and of its cluster's slope against the plane; a
person most of whose clusters are rejected gives no weight at all. So a foot in the air, a
person on a step or a ramp and a wrong keypoint weigh nothing. The along-ray error moves a
sample's position on the plane together with its height: the expected products of those
errors are taken out of the normal equations (corrected least squares), or they would tilt
the fit.

**Covariance.** Samples of one person within a few seconds share their errors (the depth
error drifts slowly), and people may share an offset (a body size the model misjudges).
The least squares are generalised with two random offsets (Sherman-Morrison per cluster and
per person, :func:`_vinv`): one per cluster, of the variance the clusters' mean heights
show beyond their white noise about their person's mean, at least ``cluster_std`` and
``depth_bias`` of the cluster's distance seen vertically; one per person, of the variance
the people's mean heights show beyond their noise, at least ``size_std`` of their height
under the camera. The covariance of ``(h, alpha, beta)`` is the inverse of the generalised
normal matrix; pitch and roll standard deviations follow through their Jacobian.

**Levels** (:func:`levels`). Clusters are grouped by their mean height over the fitted
plane: a level is the clusters within ``tol`` of the heaviest remaining height, its weight
the foot-time (samples) it holds, its extent the spread of its samples on the plane.
:func:`within_normal` finds the normal from the variation within clusters only, so that
several levels agree on it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .samples import Samples, height_variance

TUKEY_C = 4.685


@dataclass(frozen=True)
class FloorFit:
    """A weighted robust plane fit and its uncertainty.

    Attributes:
        normal: (3,) unit up vector, camera frame.
        height: camera height over the plane, metres.
        cov: (3, 3) covariance of ``(h, alpha, beta)`` (``alpha``, ``beta``: tilts, radians,
            about the axes ``basis``).
        basis: (2, 3) the tilt axes ``e1``, ``e2``.
        weights: (N,) final robust weights in 0..1 (0: rejected).
        clusters: clusters with inliers, each counted by the time it spans (up to 0.8 of
            ``window``: 1), so a window just begun is not yet evidence.
        extent: (2,) spread of the inliers on the plane (2 standard deviations along their
            major and minor axes), metres.
    """

    normal: np.ndarray
    height: float
    cov: np.ndarray
    basis: np.ndarray
    weights: np.ndarray
    clusters: float
    extent: tuple[float, float]

    @property
    def inliers(self) -> int:
        """Samples with a robust weight above 0.5."""
        return int(np.count_nonzero(self.weights > 0.5))

    @property
    def height_std(self) -> float:
        """Standard deviation of the camera height, metres."""
        return math.sqrt(max(self.cov[0, 0], 0.0))

    def angle_std(self) -> tuple[float, float]:
        """Standard deviations of (pitch, roll), degrees."""
        jac = angle_jacobian(self.normal, self.basis)
        c = jac @ self.cov[1:, 1:] @ jac.T
        return tuple(math.degrees(math.sqrt(max(c[k, k], 0.0))) for k in (0, 1))  # type: ignore[return-value]


def tilt_basis(normal: np.ndarray) -> np.ndarray:
    """(2, 3) two unit vectors across ``normal``: camera X laid on the plane, and their cross."""
    e1 = np.array([1.0, 0.0, 0.0]) - normal[0] * normal
    e1 /= np.linalg.norm(e1)
    return np.stack([e1, np.cross(normal, e1)])


def angle_jacobian(normal: np.ndarray, basis: np.ndarray) -> np.ndarray:
    """(2, 2) derivatives of (pitch, roll) in radians with respect to the tilts (alpha, beta).

    ``pitch = asin(-n_z)``, ``roll = atan2(n_x, -n_y)`` (:class:`~.frame.WorldFrame`).
    """
    nx, ny, nz = normal
    d_pitch = np.array([0.0, 0.0, -1.0]) / max(math.sqrt(max(1.0 - nz * nz, 0.0)), 1e-9)
    d_roll = np.array([-ny, nx, 0.0]) / max(nx * nx + ny * ny, 1e-12)
    return np.stack([basis @ d_pitch, basis @ d_roll])


def _track_spread(
    mc: np.ndarray, wc: np.ndarray, w0: np.ndarray, cl: np.ndarray, cluster_track: np.ndarray,
    ntr: int, s2c: np.ndarray, scale: float,
) -> float:  # fmt: skip
    """The variance of a per-person offset that the people's mean heights over the plane show
    beyond their own noise (a person whose size the model misjudges sits off the floor by a
    constant); 0 with fewer than two people on the plane."""
    used = np.bincount(cl, weights=w0, minlength=len(wc)) / np.maximum(wc, 1e-300)  # 0..1
    info = used / (s2c + scale**2 / wc)  # each cluster's weight in its person's mean
    wt = np.bincount(cluster_track, weights=info, minlength=ntr)
    on = wt > 0.3 * np.bincount(cluster_track, weights=1 / (s2c + scale**2 / wc), minlength=ntr)
    if np.count_nonzero(on) < 2:
        return 0.0
    mean = np.bincount(cluster_track, weights=info * mc, minlength=ntr)[on] / wt[on]
    excess = (np.sum(mean**2) - np.sum(1.0 / wt[on])) / (np.count_nonzero(on) - 1)
    return max(float(excess), 0.0)


def _vinv(v: np.ndarray, w: np.ndarray, cl: np.ndarray, s2c: np.ndarray, tr: np.ndarray,
          tau2: np.ndarray) -> np.ndarray:  # fmt: skip
    """``V^-1 v`` for the columns of ``v`` (N, m), where ``V = diag(1/w) + s2c C C^T + T`` holds
    a random offset of variance ``s2c[c]`` shared by each cluster and one of ``tau2[k]`` shared by
    each track (clusters nest in tracks): Sherman-Morrison per cluster, then per track."""
    wv = w[:, None] * v
    wc = np.bincount(cl, weights=w)
    cols = range(v.shape[1])
    sc = np.stack([np.bincount(cl, weights=wv[:, k], minlength=len(wc)) for k in cols], 1)
    u = wv - w[:, None] * (sc * (s2c / (1.0 + s2c * wc))[:, None])[cl]
    u1 = w / (1.0 + s2c * wc)[cl]  # V1^-1 1
    t1 = np.bincount(tr, weights=u1, minlength=len(tau2))
    pk = np.stack([np.bincount(tr, weights=u[:, k], minlength=len(tau2)) for k in cols], 1)
    return u - u1[:, None] * (pk * (tau2 / (1.0 + tau2 * t1))[:, None])[tr]


def _slope_chi2(xy: np.ndarray, y: np.ndarray, w: np.ndarray, cl: np.ndarray,
                ncl: int) -> np.ndarray:  # fmt: skip
    """(C,) per cluster: how much a slope of the residuals ``y`` over the positions ``xy``
    explains, in units of their variance (``1 / w``): chi-squared with 2 degrees of freedom
    when the cluster lies on the plane."""
    ws = np.bincount(cl, weights=w, minlength=ncl)
    mx = np.stack([np.bincount(cl, weights=w * xy[:, k], minlength=ncl) for k in (0, 1)], 1)
    mx /= ws[:, None]
    my = np.bincount(cl, weights=w * y, minlength=ncl) / ws
    d = xy - mx[cl]
    e = y - my[cl]
    sxx = np.stack([np.bincount(cl, weights=w * d[:, i] * d[:, j], minlength=ncl)
                    for i, j in ((0, 0), (0, 1), (1, 1))], 1)  # fmt: skip
    sxy = np.stack([np.bincount(cl, weights=w * d[:, k] * e, minlength=ncl) for k in (0, 1)], 1)
    det = sxx[:, 0] * sxx[:, 2] - sxx[:, 1] ** 2
    ok = det > 1e-12 * np.maximum(sxx[:, 0] * sxx[:, 2], 1e-300)
    det = np.where(ok, det, 1.0)
    quad = (sxy[:, 0] ** 2 * sxx[:, 2] - 2 * sxy[:, 0] * sxy[:, 1] * sxx[:, 1]
            + sxy[:, 1] ** 2 * sxx[:, 0]) / det  # fmt: skip
    return np.where(ok, quad, 0.0)


def fit_floor(
    samples: Samples,
    normal: np.ndarray,
    height: float,
    *,
    size_std: float = 0.0,
    cluster_std: float = 0.005,
    depth_bias: float = 0.001,
    window: float = 1.5,
    iterations: int = 4,
) -> FloorFit:
    """Refine the plane ``(normal, height)`` on ``samples`` (see the module docstring).

    Args:
        samples: the ground samples.
        normal, height: the starting plane.
        size_std: each person's body-size error (fraction), shared by all their samples.
        cluster_std: least standard deviation of a cluster's shared error, metres.
        depth_bias: ... and least, as a fraction of the cluster's distance seen vertically.
        window: seconds a cluster spans when full (for :attr:`FloorFit.clusters`).
        iterations: re-weighting passes.

    Raises:
        ValueError: fewer than 3 samples with weight, or a singular system (samples on a
            line).
    """
    n, h = np.asarray(normal, dtype=np.float64), float(height)
    pts = samples.points
    _, cl = np.unique(samples.cluster, return_inverse=True)
    _, tr = np.unique(samples.track, return_inverse=True)
    ncl = int(cl.max()) + 1
    cluster_track = np.zeros(ncl, dtype=np.int64)
    cluster_track[cl] = tr
    ntr = int(tr.max()) + 1
    count_tr = np.bincount(tr, minlength=ntr)
    multi = np.bincount(cluster_track, minlength=ntr)[cluster_track] >= 2
    # Each cluster's shared error is at least cluster_std, and at least depth_bias of its
    # distance seen vertically (the 2D depth's own small biases, which grow with distance).
    reach = np.bincount(cl, weights=np.linalg.norm(samples.roots, axis=1), minlength=ncl)
    reach /= np.bincount(cl, minlength=ncl)
    floor_c = cluster_std**2 + (depth_bias * reach * abs(float(normal @ samples.rays.mean(0)))) ** 2
    robust = np.ones(len(pts))
    for it in range(iterations + 1):
        basis = tilt_basis(n)
        var = height_variance(samples, n)
        y = pts @ n + h
        # Cluster means of the residuals; their scatter about each track's mean beyond the
        # white noise is the clusters' shared error (slow depth drift).
        # (means weighted by the last robust weights, so a lifted foot does not move them;
        # their precision from all samples, so a rejected cluster does not look vague)
        w0 = np.maximum(robust, 1e-3) / var
        mc = np.bincount(cl, weights=w0 * y, minlength=ncl) / np.bincount(cl, w0, ncl)
        wc = np.bincount(cl, weights=1.0 / var, minlength=ncl)
        u = (y - mc[cl]) / np.sqrt(var)
        scale = max(1.0, 1.4826 * float(np.median(np.abs(u))))
        wtr = np.bincount(cluster_track, weights=wc, minlength=ntr)
        mtr = np.bincount(cluster_track, weights=wc * mc, minlength=ntr) / np.maximum(wtr, 1e-12)
        excess = (mc - mtr[cluster_track])[multi] ** 2 - scale**2 / wc[multi]
        s2c = np.maximum(floor_c, float(np.median(excess)) / 0.455 if len(excess) else 0.0)
        lever = np.bincount(tr, weights=samples.roots @ n, minlength=ntr) / count_tr
        tau2 = np.maximum((size_std * lever) ** 2, _track_spread(mc, wc, w0, cl, cluster_track,
                                                                  ntr, s2c, scale))  # fmt: skip
        # Tukey's biweight on each sample's residual against all of its noise, and on each
        # cluster's mean residual against its own: a cluster off the plane (a person on a
        # ramp, a step) weighs nothing even when each of its samples is within its noise.
        t = y / (TUKEY_C * np.sqrt(var * scale**2 + s2c[cl] + tau2[tr]))
        tc = mc / (TUKEY_C * np.sqrt(scale**2 / wc + s2c + tau2[cluster_track]))
        x = np.column_stack([np.ones(len(pts)), pts @ basis[0], pts @ basis[1]])
        if it > 0:  # once near the floor: a cluster sloping against it is on a ramp
            tc = np.hypot(tc, np.sqrt(_slope_chi2(x[:, 1:], y, w0, cl, ncl)) / (TUKEY_C * scale))
        robust = np.where(np.abs(t) < 1.0, (1.0 - t * t) ** 2, 0.0)
        on_plane = np.where(np.abs(tc) < 1.0, (1.0 - tc * tc) ** 2, 0.0)[cl]
        robust *= on_plane
        if it > 0:  # a person most of whose windows are off the floor (on a ramp) is no witness
            kept = np.bincount(tr, weights=on_plane > 0.1, minlength=ntr) / count_tr
            robust *= np.clip((kept - 0.3) / 0.4, 0.0, 1.0)[tr]
        w = robust / (var * scale**2)
        vx = _vinv(np.column_stack([x, y]), w, cl, s2c, tr, tau2)
        # Errors in variables: a sample's depth error moves it along its ray, so its
        # position on the plane (x) errs together with its height (y). The expected
        # products of those errors are taken out (corrected least squares).
        er = samples.rays @ basis.T  # (N, 2)
        wv = w * samples.var_along
        a = x.T @ vx[:, :3]
        a[1:, 1:] -= (er * wv[:, None]).T @ er
        g = x.T @ vx[:, 3]
        g[1:] -= (er * (wv * (samples.rays @ n))[:, None]).sum(axis=0)
        if np.count_nonzero(robust) < 3 or np.linalg.cond(a) > 1e12:
            raise ValueError("the ground samples do not define a plane (too few, or on a line)")
        if it == iterations:
            break  # the last pass only evaluates the weights at the solution
        step = -np.linalg.solve(a, g)
        m = n + step[1] * basis[0] + step[2] * basis[1]
        k = float(np.linalg.norm(m))
        n, h = m / k, (h + step[0]) / k
    cov = np.linalg.inv(a)
    inl = robust > 0.5
    # Clusters count by the time they span: a window just begun is not yet evidence.
    first = np.full(ncl, np.inf)
    last = np.full(ncl, -np.inf)
    np.minimum.at(first, cl[inl], samples.time[inl])
    np.maximum.at(last, cl[inl], samples.time[inl])
    span = np.clip((last - first) / (0.8 * window), 0.0, 1.0)
    groups = float(np.sum(span[np.isfinite(span)]))
    extent = spread(pts[inl], n) if np.count_nonzero(inl) >= 3 else (0.0, 0.0)
    return FloorFit(n, float(h), cov, basis, robust, groups, extent)


def within_normal(samples: Samples, normal: np.ndarray, iterations: int = 4) -> np.ndarray:
    """The floor's normal from how the samples vary within each cluster, started at ``normal``.

    Every cluster (one person, a few seconds) gets its own height, so samples on different
    levels (a platform, the floor) agree on one normal, and no plane tilted between two
    levels can explain them. The same weights, Tukey re-weighting and error-in-variables
    correction as :func:`fit_floor`.

    Raises:
        ValueError: the clusters do not fix a tilt (each person walked a straight line, all
            the same way).
    """
    n = np.asarray(normal, dtype=np.float64)
    n = n / np.linalg.norm(n)
    pts = samples.points
    _, cl = np.unique(samples.cluster, return_inverse=True)
    ncl = int(cl.max()) + 1
    robust = np.ones(len(pts))
    for _ in range(iterations):
        basis = tilt_basis(n)
        var = height_variance(samples, n)
        cols = np.column_stack([pts @ basis[0], pts @ basis[1], pts @ n])
        w = np.maximum(robust, 1e-3) / var
        wsum = np.bincount(cl, weights=w, minlength=ncl)
        means = np.stack([np.bincount(cl, weights=w * cols[:, k], minlength=ncl)
                          for k in range(3)], 1) / wsum[:, None]  # fmt: skip
        d = cols - means[cl]
        u = d[:, 2] / np.sqrt(var)
        scale = max(1.0, 1.4826 * float(np.median(np.abs(u))))
        t = u / (TUKEY_C * scale)
        robust = np.where(np.abs(t) < 1.0, (1.0 - t * t) ** 2, 0.0)
        w = robust / var
        er = samples.rays @ basis.T
        wv = w * samples.var_along
        a = (d[:, :2] * w[:, None]).T @ d[:, :2] - (er * wv[:, None]).T @ er
        g = (d[:, :2] * (w * d[:, 2])[:, None]).sum(axis=0)
        g -= (er * (wv * (samples.rays @ n))[:, None]).sum(axis=0)
        if np.linalg.cond(a) > 1e8:
            raise ValueError(
                "the ground samples do not fix the floor's tilt (everyone walked a straight "
                "line the same way): let people walk in more than one direction"
            )
        step = -np.linalg.solve(a, g)
        m = n + step[0] * basis[0] + step[1] * basis[1]
        n = m / np.linalg.norm(m)
    return n


def spread(points: np.ndarray, normal: np.ndarray) -> tuple[float, float]:
    """Spread of points on a plane: 2 standard deviations along their major and minor axes."""
    basis = tilt_basis(normal)
    xy = points @ basis.T
    xy = xy - xy.mean(axis=0)
    ev = np.linalg.eigvalsh(xy.T @ xy / len(xy))
    return float(2 * math.sqrt(max(ev[1], 0.0))), float(2 * math.sqrt(max(ev[0], 0.0)))


@dataclass(frozen=True)
class Level:
    """One level of the ground: a height over the fitted plane, its foot-time and extent.

    Attributes:
        offset: mean height of its clusters over the fitted plane, metres.
        samples: ground samples on it (its foot-time, in frames).
        extent: (2,) spread of its samples on the plane (major, minor), metres.
        mask: (N,) bool, the samples on it.
    """

    offset: float
    samples: int
    extent: tuple[float, float]
    mask: np.ndarray


def levels(samples: Samples, normal: np.ndarray, height: float, tol: float,
           most: int = 4) -> list[Level]:  # fmt: skip
    """The ground's levels, heaviest first (see the module docstring)."""
    y = samples.points @ normal + height
    w = 1.0 / height_variance(samples, normal)
    keys, cl = np.unique(samples.cluster, return_inverse=True)
    count = np.bincount(cl, minlength=len(keys)).astype(np.float64)
    mean = np.bincount(cl, weights=w * y, minlength=len(keys)) / np.bincount(
        cl, weights=w, minlength=len(keys)
    )
    free = np.ones(len(keys), dtype=bool)
    out: list[Level] = []
    while free.any() and len(out) < most:
        near = np.abs(mean[None, free] - mean[free][:, None]) <= tol  # (F, F)
        support = near.astype(np.float64) @ count[free]
        best = mean[free][int(np.argmax(support))]
        member = free & (np.abs(mean - best) <= tol)
        offset = float(np.average(mean[member], weights=count[member]))
        member = free & (np.abs(mean - offset) <= tol)
        if not member.any():
            member = free & (np.abs(mean - best) <= tol)
        mask = member[cl]
        ext = spread(samples.points[mask], normal) if np.count_nonzero(mask) >= 3 else (0.0, 0.0)
        out.append(Level(offset, int(np.count_nonzero(mask)), ext, mask))
        free &= ~member
    return out
