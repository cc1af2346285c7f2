"""Accuracy metrics: numpy only, vectorised over frames and persons.

Conventions:

- 3D inputs are in **metres**; 3D errors come out in **millimetres** (``scale=1000``; pass
  ``scale=1`` when the inputs are already in mm). Joints are ``(..., J, 3)``: any leading
  axes (frames, persons) are kept, and every per-sample metric returns an array shaped like
  the leading axes. Reports average those arrays; nothing here averages for you except the
  counting metrics (detection, :func:`pck`).
- Definitions follow the evaluation code of WHAM and GVHMR (which take theirs from HMMR and
  SLAHMR), re-derived here: pelvis alignment by the mean of the hips, similarity Procrustes
  with the reflection fix, W-MPJPE/WA-MPJPE on 100-frame chunks, RTE as a percentage of the
  ground-truth path length after a rigid (no scale) alignment, acceleration error as the
  second difference, jitter as the third difference, foot sliding during ground-truth
  contact. Numbers are comparable to theirs only when the joint sets are the same; see
  ``docs/evaluation.md``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import supervision as sv
from scipy.optimize import linear_sum_assignment

M2MM = 1000.0
CHUNK = 100  # frames per W-MPJPE / WA-MPJPE chunk, as in WHAM and GVHMR
COCO_SIGMAS = np.array(
    [0.26, 0.25, 0.25, 0.35, 0.35, 0.79, 0.79, 0.72, 0.72,
     0.62, 0.62, 1.07, 1.07, 0.87, 0.87, 0.89, 0.89]
) / 10.0  # fmt: skip
"""Per-keypoint OKS sigmas of the COCO 17 keypoints (as in pycocotools)."""


def _pair(pred: object, gt: object, last: int = 3) -> tuple[np.ndarray, np.ndarray]:
    p = np.asarray(pred, dtype=np.float64)
    g = np.asarray(gt, dtype=np.float64)
    if p.shape != g.shape:
        raise ValueError(f"prediction and ground truth shapes differ: {p.shape} vs {g.shape}")
    if p.ndim < 2 or p.shape[-1] != last:
        raise ValueError(f"expected points shaped (..., J, {last}), got {p.shape}")
    return p, g


def _joint_error(p: np.ndarray, g: np.ndarray) -> np.ndarray:
    return np.linalg.norm(p - g, axis=-1).mean(axis=-1)


def pelvis_of(
    joints: np.ndarray, hips: Sequence[int] | None = None, pelvis: int | None = None
) -> np.ndarray:
    """(..., 1, 3) pelvis: joint ``pelvis`` when given, else the mean of the ``hips`` joints."""
    j = np.asarray(joints, dtype=np.float64)
    if pelvis is not None:
        return j[..., [int(pelvis)], :]
    if hips is None:
        raise ValueError("pelvis alignment needs hips=(left, right) or pelvis=index")
    return j[..., list(hips), :].mean(axis=-2, keepdims=True)


def mpjpe(
    pred: object,
    gt: object,
    *,
    hips: Sequence[int] | None = None,
    pelvis: int | None = None,
    align: bool = True,
    scale: float = M2MM,
) -> np.ndarray:
    """Mean per-joint position error, per sample (mm).

    ``MPJPE = 1/J * sum_j || (P_j - P_root) - (G_j - G_root) ||``, where the root is joint
    ``pelvis`` when given, else the mean of the ``hips`` joints (each side aligned by its own
    root). ``align=False`` compares the raw positions (no root subtraction).

    Args:
        pred, gt: (..., J, 3) joints in metres.
        hips: (left, right) hip indices for the default pelvis.
        pelvis: index of a pelvis joint, used instead of the hips.
        align: subtract each side's pelvis first.
        scale: unit factor of the result (1000: metres in, mm out).

    Returns:
        (...,) error per sample.
    """
    p, g = _pair(pred, gt)
    if align:
        p = p - pelvis_of(p, hips, pelvis)
        g = g - pelvis_of(g, hips, pelvis)
    return _joint_error(p, g) * scale


def similarity_transform(
    src: object, dst: object, *, with_scale: bool = True, weights: object = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Least-squares ``s, R, t`` with ``s * R @ src + t ~ dst`` (Umeyama, 1991), batched.

    Cross-covariance ``C = sum_i w_i (y_i - mu_y)(x_i - mu_x)^T``, ``U D V^T = svd(C)``,
    ``S = diag(1, 1, sign(det(U) det(V)))`` (the reflection fix: ``R`` is a proper rotation),
    ``R = U S V^T``, ``s = trace(D S) / sum_i w_i |x_i - mu_x|^2`` (1 when ``with_scale`` is
    False), ``t = mu_y - s R mu_x``.

    Args:
        src, dst: (..., N, D) point sets.
        with_scale: fit the scale (similarity) or not (rigid).
        weights: optional (..., N) non-negative weights (0 leaves a point out).

    Returns:
        ``s`` (...,), ``R`` (..., D, D), ``t`` (..., D).
    """
    x = np.asarray(src, dtype=np.float64)
    y = np.asarray(dst, dtype=np.float64)
    if x.shape != y.shape:
        raise ValueError(f"point sets differ in shape: {x.shape} vs {y.shape}")
    w = np.ones(x.shape[:-1]) if weights is None else np.asarray(weights, np.float64)
    w = np.broadcast_to(w, x.shape[:-1])[..., None]
    total = w.sum(axis=-2, keepdims=True)
    if np.any(total <= 0):
        raise ValueError("alignment needs at least one point with positive weight")
    mx = (w * x).sum(axis=-2, keepdims=True) / total
    my = (w * y).sum(axis=-2, keepdims=True) / total
    x0, y0 = x - mx, y - my
    cov = np.einsum("...ni,...nj->...ij", w * y0, x0)
    u, d, vt = np.linalg.svd(cov)
    sign = np.sign(np.linalg.det(u) * np.linalg.det(vt))
    sign = np.where(sign == 0, 1.0, sign)
    fix = np.ones(d.shape)
    fix[..., -1] = sign
    r = (u * fix[..., None, :]) @ vt
    if with_scale:
        var = (w * x0**2).sum(axis=(-2, -1))
        s = (d * fix).sum(axis=-1) / np.maximum(var, 1e-300)
    else:
        s = np.ones(x.shape[:-2])
    t = my[..., 0, :] - s[..., None] * np.einsum("...ij,...j->...i", r, mx[..., 0, :])
    return s, r, t


def apply_transform(points: object, s: np.ndarray, r: np.ndarray, t: np.ndarray) -> np.ndarray:
    """``s * R @ p + t`` for (..., N, D) points and the outputs of :func:`similarity_transform`."""
    p = np.asarray(points, dtype=np.float64)
    s = np.asarray(s, dtype=np.float64)
    return s[..., None, None] * np.einsum("...ij,...nj->...ni", r, p) + t[..., None, :]


def pa_mpjpe(pred: object, gt: object, *, scale: float = M2MM) -> np.ndarray:
    """Procrustes-aligned MPJPE per sample (mm).

    Each predicted pose is moved onto its ground truth by the best similarity transform
    (rotation with the reflection fix, uniform scale, translation;
    :func:`similarity_transform`), then MPJPE is taken without further alignment. A
    rotated, scaled and translated copy scores 0; a mirrored copy does not.
    """
    p, g = _pair(pred, gt)
    return _joint_error(apply_transform(p, *similarity_transform(p, g)), g) * scale


def pve(
    pred_verts: object,
    gt_verts: object,
    pred_pelvis: object,
    gt_pelvis: object,
    *,
    scale: float = M2MM,
) -> np.ndarray:
    """Per-vertex error per sample (mm): vertices compared after subtracting each side's
    pelvis (``(..., 3)``, from that side's joints), as for MPJPE."""
    p, g = _pair(pred_verts, gt_verts)
    pp = np.asarray(pred_pelvis, np.float64)[..., None, :]
    gp = np.asarray(gt_pelvis, np.float64)[..., None, :]
    return _joint_error(p - pp, g - gp) * scale


def _chunks(n: int, chunk: int) -> list[slice]:
    if chunk < 2:
        raise ValueError(f"chunk must be >= 2 frames, got {chunk}")
    return [slice(a, min(n, a + chunk)) for a in range(0, n, chunk)]


def _world_pair(pred: object, gt: object) -> tuple[np.ndarray, np.ndarray]:
    p, g = _pair(pred, gt)
    if p.ndim != 3:
        raise ValueError(f"world metrics take one person's track (F, J, 3), got {p.shape}")
    if len(p) < 2:
        raise ValueError(f"world metrics need at least 2 frames, got {len(p)}")
    return p, g


def w_mpjpe(pred: object, gt: object, *, chunk: int = CHUNK, scale: float = M2MM) -> np.ndarray:
    """World MPJPE aligned on the first two frames, per frame (mm).

    The track is cut into chunks of ``chunk`` frames (100, as WHAM/GVHMR's W-MPJPE100). In
    each chunk the similarity transform that best maps the predicted joints of the chunk's
    **first two frames** onto the ground truth is applied to the whole chunk; then the
    per-frame MPJPE without root alignment. Drift after the start is therefore counted.
    A one-frame tail chunk is aligned on its single frame.

    Args:
        pred, gt: (F, J, 3) one person's world joints in metres.
    """
    p, g = _world_pair(pred, gt)
    out = np.empty(len(p))
    for sl in _chunks(len(p), chunk):
        head = slice(sl.start, min(sl.start + 2, sl.stop))
        s, r, t = similarity_transform(p[head].reshape(-1, 3), g[head].reshape(-1, 3))
        out[sl] = _joint_error(apply_transform(p[sl], s, r, t), g[sl])
    return out * scale


def wa_mpjpe(pred: object, gt: object, *, chunk: int = CHUNK, scale: float = M2MM) -> np.ndarray:
    """World MPJPE after a whole-chunk similarity alignment, per frame (mm).

    As :func:`w_mpjpe`, but the Umeyama similarity is fitted to all joints of all frames of
    each 100-frame chunk, so only the shape of the trajectory within the chunk counts.
    """
    p, g = _world_pair(pred, gt)
    out = np.empty(len(p))
    for sl in _chunks(len(p), chunk):
        s, r, t = similarity_transform(p[sl].reshape(-1, 3), g[sl].reshape(-1, 3))
        out[sl] = _joint_error(apply_transform(p[sl], s, r, t), g[sl])
    return out * scale


def rte(pred_root: object, gt_root: object) -> np.ndarray:
    """Root translation error per frame, in % of the ground-truth path length.

    The predicted root trajectory (F, 3) is aligned to the ground truth by the best rigid
    transform (rotation and translation, **no scale**) over the whole track; then
    ``RTE_t = 100 * || R p_t + t - g_t || / sum_t || g_{t+1} - g_t ||``. Units cancel.

    Raises:
        ValueError: a ground-truth path of zero length (RTE is undefined for a person
            standing still).
    """
    p, g = _pair(pred_root, gt_root)
    if p.ndim != 2 or len(p) < 2:
        raise ValueError(f"rte takes (F, 3) root trajectories with F >= 2, got {p.shape}")
    length = np.linalg.norm(np.diff(g, axis=0), axis=-1).sum()
    if length <= 0:
        raise ValueError("rte is undefined: the ground-truth root does not move")
    s, r, t = similarity_transform(p, g, with_scale=False)
    aligned = apply_transform(p, s, r, t)
    return np.linalg.norm(aligned - g, axis=-1) / length * 100.0


def _valid_windows(valid: object, n: int, width: int) -> np.ndarray:
    v = np.asarray(valid, dtype=bool).reshape(-1)
    if v.shape[0] != n:
        raise ValueError(f"valid must have one flag per frame ({n}), got {v.shape[0]}")
    return np.all(np.lib.stride_tricks.sliding_window_view(v, width), axis=-1)


def accel_error(
    pred: object, gt: object, *, valid: object = None, scale: float = M2MM
) -> np.ndarray:
    """Acceleration error per frame triple (mm/frame^2).

    ``a_t = x_{t-1} - 2 x_t + x_{t+1}``; the error is ``1/J sum_j || a^pred_tj - a^gt_tj ||``
    for each middle frame t (F-2 values). With ``valid`` (F,), triples that touch an invalid
    frame are left out. Multiply by ``fps^2 / 1000`` for m/s^2. A constant-velocity path
    predicted exactly, or with a constant offset, scores 0.

    Args:
        pred, gt: (F, ..., J, 3) joints in metres, frames first.
    """
    p, g = _pair(pred, gt)
    if len(p) < 3:
        raise ValueError(f"accel_error needs at least 3 frames, got {len(p)}")
    ap = p[:-2] - 2 * p[1:-1] + p[2:]
    ag = g[:-2] - 2 * g[1:-1] + g[2:]
    err = _joint_error(ap, ag) * scale
    if valid is not None:
        err = err[_valid_windows(valid, len(p), 3)]
    return err


def jitter(pred: object, *, fps: float = 30.0) -> np.ndarray:
    """Jitter per frame quadruple, in units of 10 m/s^3 (as WHAM and GVHMR report it).

    ``j_t = (x_{t+2} - 3 x_{t+1} + 3 x_t - x_{t-1}) * fps^3``, the norm averaged over joints,
    divided by 10. (F-3 values; inputs (F, ..., J, 3) in metres.)
    """
    p = np.asarray(pred, dtype=np.float64)
    if p.ndim < 2 or p.shape[-1] != 3 or len(p) < 4:
        raise ValueError(f"jitter takes (F >= 4, ..., J, 3) joints, got {p.shape}")
    d3 = p[3:] - 3 * p[2:-1] + 3 * p[1:-2] - p[:-3]
    return np.linalg.norm(d3 * fps**3, axis=-1).mean(axis=-1) / 10.0


def foot_sliding(
    pred_feet: object, gt_feet: object, *, threshold: float = 0.01, scale: float = M2MM
) -> np.ndarray:
    """Foot sliding: predicted foot displacement during ground-truth contact (mm).

    A foot point k is in contact between frames t and t+1 when its ground-truth displacement
    is under ``threshold`` (1 cm/frame, as GVHMR). The result holds the predicted
    displacement ``|| p_{t+1,k} - p_{t,k} ||`` of every such (t, k), flattened; its mean is
    the FS metric. Empty when the ground truth never stands still.

    Args:
        pred_feet, gt_feet: (F, K, 3) foot points (ankles, heels, toes, or foot vertices) in
            metres, world frame.
    """
    p, g = _pair(pred_feet, gt_feet)
    if p.ndim != 3 or len(p) < 2:
        raise ValueError(f"foot_sliding takes (F >= 2, K, 3) points, got {p.shape}")
    contact = np.linalg.norm(np.diff(g, axis=0), axis=-1) < threshold
    moved = np.linalg.norm(np.diff(p, axis=0), axis=-1)
    return moved[contact] * scale


def pck(
    pred: object, gt: object, threshold: float, *, ref: object = None, visible: object = None
) -> np.ndarray:
    """Percentage of correct keypoints per sample (%).

    A visible joint is correct when ``|| p - g || <= threshold * ref`` (``ref`` (...,), for
    example the box size or head size; pixels when None). Samples without a visible joint
    give NaN.

    Args:
        pred, gt: (..., J, 2) keypoints in pixels (3D works too).
        visible: (..., J) booleans (default: all).
    """
    p = np.asarray(pred, np.float64)
    g = np.asarray(gt, np.float64)
    if p.shape != g.shape or p.ndim < 2:
        raise ValueError(f"pck needs equal (..., J, D) shapes, got {p.shape} and {g.shape}")
    dist = np.linalg.norm(p - g, axis=-1)
    limit = threshold * (1.0 if ref is None else np.asarray(ref, np.float64)[..., None])
    vis = np.ones(dist.shape, bool) if visible is None else np.asarray(visible, bool)
    n = vis.sum(axis=-1)
    ok = ((dist <= limit) & vis).sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, 100.0 * ok / np.maximum(n, 1), np.nan)


def oks(
    pred: object, gt: object, visible: object, area: object, sigmas: object = COCO_SIGMAS
) -> np.ndarray:
    """Object keypoint similarity per sample, in [0, 1], as COCO defines it.

    ``OKS = mean over visible j of exp(-d_j^2 / (2 * area * (2 sigma_j)^2))`` with ``d_j`` the
    pixel distance and ``area`` the ground-truth object area (pixels^2). NaN when no joint
    is visible.
    """
    p = np.asarray(pred, np.float64)
    g = np.asarray(gt, np.float64)
    if p.shape != g.shape or p.shape[-1] != 2:
        raise ValueError(f"oks needs equal (..., J, 2) shapes, got {p.shape} and {g.shape}")
    k2 = (2 * np.asarray(sigmas, np.float64)) ** 2
    if k2.shape[-1] != p.shape[-2]:
        raise ValueError(f"{k2.shape[-1]} sigmas for {p.shape[-2]} joints")
    a = np.asarray(area, np.float64)[..., None]
    e = ((p - g) ** 2).sum(axis=-1) / k2 / (2 * (a + np.spacing(1)))
    vis = np.asarray(visible, bool)
    n = vis.sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, (np.exp(-e) * vis).sum(axis=-1) / np.maximum(n, 1), np.nan)


def match_boxes(pred: object, gt: object, iou_threshold: float = 0.5) -> np.ndarray:
    """(K, 2) ``(pred_index, gt_index)`` pairs: the Hungarian assignment that maximises the
    total IoU (``scipy.optimize.linear_sum_assignment``), keeping pairs with IoU >= threshold."""
    iou = sv.box_iou_batch(np.asarray(pred, np.float64).reshape(-1, 4),
                           np.asarray(gt, np.float64).reshape(-1, 4))
    if iou.size == 0:
        return np.zeros((0, 2), np.int64)
    rows, cols = linear_sum_assignment(-iou)
    keep = iou[rows, cols] >= iou_threshold
    return np.stack([rows[keep], cols[keep]], axis=1).astype(np.int64)


@dataclass
class DetectionCounts:
    """True/false positives and misses accumulated over frames."""

    tp: int = 0
    fp: int = 0
    fn: int = 0

    def add(self, pred: object, gt: object, iou_threshold: float = 0.5) -> np.ndarray:
        """Count one frame's (N, 4) predicted and (M, 4) ground-truth boxes; return the pairs."""
        pairs = match_boxes(pred, gt, iou_threshold)
        n_pred = len(np.asarray(pred).reshape(-1, 4))
        n_gt = len(np.asarray(gt).reshape(-1, 4))
        self.tp += len(pairs)
        self.fp += n_pred - len(pairs)
        self.fn += n_gt - len(pairs)
        return pairs

    @property
    def precision(self) -> float:
        """TP / (TP + FP) in %; NaN with no predictions."""
        d = self.tp + self.fp
        return 100.0 * self.tp / d if d else float("nan")

    @property
    def recall(self) -> float:
        """TP / (TP + FN) in %; NaN with no ground truth."""
        d = self.tp + self.fn
        return 100.0 * self.tp / d if d else float("nan")

    @property
    def f1(self) -> float:
        """Harmonic mean of precision and recall, in % (``2 TP / (2 TP + FP + FN)``)."""
        d = 2 * self.tp + self.fp + self.fn
        return 100.0 * 2 * self.tp / d if d else float("nan")

    def as_dict(self) -> dict[str, float]:
        """Counts and rates, for a report."""
        return {"tp": self.tp, "fp": self.fp, "fn": self.fn, "precision": self.precision,
                "recall": self.recall, "f1": self.f1}  # fmt: skip


def detection_scores(
    frames: Iterable[tuple[object, object]], iou_threshold: float = 0.5
) -> DetectionCounts:
    """Precision, recall and F1 (%) over ``(pred_boxes, gt_boxes)`` pairs, one per frame, with
    Hungarian matching at ``iou_threshold``."""
    counts = DetectionCounts()
    for pred, gt in frames:
        counts.add(pred, gt, iou_threshold)
    return counts
