"""Robust ground-plane fit: RANSAC over point triples, then a least-squares refit on inliers.

The plane is ``normal . p + offset = 0`` in the camera frame (X right, Y down, Z forward,
metres), with ``normal`` the unit **up** vector (against gravity) and ``offset`` the
camera's height above the plane (positive when the camera is above it).

No installed library fits a plane this way without a heavy dependency (scikit-learn's
``RANSACRegressor`` fits ``y = f(x)`` and breaks for steep planes, Open3D is a large native
package), so the fit is written here in vectorised numpy: about 40 lines.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

DEFAULT_DOWN = np.array([0.0, 1.0, 0.0])
"""Camera +Y: "down" in the image, used to orient the normal when no body hint is given."""


VOTERS = 1500
"""Most points each RANSAC proposal is scored on (a random subset of larger inputs)."""


class DegeneratePlaneError(ValueError):
    """The points do not define a ground plane (too few, collinear, or the camera under it)."""


@dataclass(frozen=True)
class GroundPlane:
    """A ground plane in the camera frame.

    Attributes:
        normal: (3,) unit up vector in camera coordinates.
        offset: camera height above the plane, metres (``normal . p + offset = 0``).
        inliers: (N,) bool mask of the points that support the plane (all True when the
            plane was given rather than fitted).
        rms: root-mean-square distance of the inliers to the plane, metres.
        extent: (2,) spread of the inliers in the plane (2 standard deviations along their
            major and minor in-plane axes), metres; a small minor spread means the points
            lie near a line and the plane's tilt about that line is poorly known.
    """

    normal: np.ndarray
    offset: float
    inliers: np.ndarray
    rms: float = 0.0
    extent: tuple[float, float] = (0.0, 0.0)

    @property
    def num_inliers(self) -> int:
        """How many points support the plane."""
        return int(np.count_nonzero(self.inliers))

    def distance(self, points_cam: np.ndarray) -> np.ndarray:
        """Signed height of camera-frame points above the plane, metres (positive = above)."""
        return np.asarray(points_cam, dtype=np.float64) @ self.normal + self.offset


def _plane_through(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unit normals (K, 3) and offsets (K,) of planes through K point triples; area-weighted."""
    n = np.cross(b - a, c - a)
    norm = np.linalg.norm(n, axis=1)
    ok = norm > 1e-9
    n[ok] /= norm[ok, None]
    n[~ok] = 0.0
    return n, -np.einsum("ij,ij->i", n, a)


def _refit(points: np.ndarray) -> tuple[np.ndarray, float, np.ndarray]:
    """Least-squares plane (total least squares, by SVD) through points: normal, offset, sv."""
    centre = points.mean(axis=0)
    _, sv, vt = np.linalg.svd(points - centre, full_matrices=False)
    normal = vt[2]
    return normal, float(-normal @ centre), sv


def fit_ground_plane(
    points_cam: np.ndarray,
    *,
    down: np.ndarray | None = None,
    threshold: float = 0.03,
    iterations: int = 256,
    min_points: int = 3,
    min_extent: float = 0.1,
    seed: int = 0,
) -> GroundPlane:
    """Fit the ground plane to foot points in the camera frame.

    RANSAC: ``iterations`` random point triples each propose a plane; the one with the most
    points within ``threshold`` metres wins; a least-squares refit on its inliers (twice,
    re-selecting inliers in between) gives the result. The normal is oriented against
    ``down`` (the mean neck->ankle direction of the people; camera +Y when not given).

    Args:
        points_cam: (N, 3) points in the camera frame, metres.
        down: (3,) a direction that points down (towards the floor), camera frame.
        threshold: inlier distance, metres.
        iterations: RANSAC proposals.
        min_points: fewest points accepted.
        min_extent: smallest in-plane spread of the inliers across their main direction
            (2 standard deviations), metres; below it the points are called collinear.
        seed: random seed (the fit is deterministic for a given input).

    Raises:
        DegeneratePlaneError: too few points, points (nearly) collinear, or the camera not
            above the plane.
        ValueError: ``points_cam`` has the wrong shape or non-finite values.
    """
    pts = np.asarray(points_cam, dtype=np.float64)
    if pts.ndim != 2 or pts.shape[1] != 3:
        raise ValueError(f"points_cam must have shape (N, 3), got {pts.shape}")
    if not np.all(np.isfinite(pts)):
        raise ValueError("points_cam contains NaN or infinite values")
    if len(pts) < max(3, min_points):
        raise DegeneratePlaneError(
            f"{len(pts)} foot points cannot define a ground plane; need at least "
            f"{max(3, min_points)} (let people walk or stand in view longer)"
        )
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(pts), (iterations, 3))  # repeats give a zero normal: no vote
    normals, offsets = _plane_through(pts[idx[:, 0]], pts[idx[:, 1]], pts[idx[:, 2]])
    # Proposals are scored on at most VOTERS points (bounded cost); the refits use all.
    voters = pts if len(pts) <= VOTERS else pts[rng.choice(len(pts), VOTERS, replace=False)]
    # Written out rather than a matmul: a (K, 3) @ (3, N) product goes to a multi-threaded
    # BLAS, which is many times slower than this on a busy machine.
    signed = sum(normals[:, k, None] * voters[None, :, k] for k in range(3)) + offsets[:, None]
    dist = np.abs(signed)  # (K, min(N, VOTERS))
    votes = np.where(np.linalg.norm(normals, axis=1) > 0, (dist < threshold).sum(axis=1), -1)
    best = int(np.argmax(votes))
    inliers = np.abs(pts @ normals[best] + offsets[best]) < threshold
    if inliers.sum() < 3:
        raise DegeneratePlaneError(
            "no three foot points define a plane (all points coincide or are collinear)"
        )
    for _ in range(2):
        normal, offset, sv = _refit(pts[inliers])
        refined = np.abs(pts @ normal + offset) < threshold
        if refined.sum() < 3:
            break
        inliers = refined
    normal, offset, sv = _refit(pts[inliers])
    count = int(inliers.sum())
    extent = (2.0 * sv[0] / np.sqrt(count), 2.0 * sv[1] / np.sqrt(count))
    if extent[1] < min_extent:
        raise DegeneratePlaneError(
            f"the foot points lie on a line (spread {extent[1]:.3f} m across it, need "
            f"{min_extent} m): the ground's tilt about that line is unknown. People need to "
            "walk in more than one direction, or give --camera-height and --camera-pitch"
        )
    hint = DEFAULT_DOWN if down is None else np.asarray(down, dtype=np.float64)
    if normal @ hint > 0:
        normal, offset = -normal, -offset
    if offset <= 0:
        raise DegeneratePlaneError(
            f"the camera is {offset:.2f} m from the fitted plane on the wrong side (below the "
            "floor the people stand on): the points are not a floor seen from above"
        )
    rms = float(np.sqrt(np.mean((pts[inliers] @ normal + offset) ** 2)))
    return GroundPlane(normal=normal, offset=float(offset), inliers=inliers, rms=rms,
                       extent=(float(extent[0]), float(extent[1])))  # fmt: skip
