"""Each person's depth from their 2D keypoints and metric body: what depth noise leaves intact.

A monocular model's joints are accurate across the viewing ray (to a cm or two), but the
whole body slides along it, by a few percent of its distance, slowly over time. The 2D
keypoints and the body's metric shape (``joints_3d_local``) do not share that error: how
large the body looks in the image and how large it is in metres fix its distance. This is
the classic calibration from walking people's head and foot points (the height of a person
in pixels against their height in metres), using every main joint instead of two.

For a person with local joints ``L_j`` and translation ``T``, the depth correction is the
scale ``s`` that best explains the keypoints ``u_j`` when the body sits at ``s T`` (it
slides along its own viewing ray):

    u_j - c = f (L_j + s T)_xy / (L_j + s T)_z
    =>  s [(u_j - c) T_z - f T_xy] = f L_j,xy - (u_j - c) L_j,z

which is linear in ``s``: a least-squares fit over the main joints, with one re-weighting
that drops joints off by more than three robust standard deviations. Its variance comes from
the residuals (never below ``size_std``, how well the body's metric size is known). It
replaces the model's own depth (``s = 1``, standard deviation ``depth_noise``) unless a gate
refuses it: a 2D estimate further than four combined standard deviations from the model's
depth, or less precise than it, is not used (keypoints that do not belong to this body, a
model whose 2D and 3D heads disagree).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

DEPTH_JOINTS = slice(0, 21)
"""MHR70 joints 0-20 (face, shoulders, elbows, hips, knees, ankles, toe tips, heels): the
body whose 2D and 3D positions fix a person's depth (the hands are left out)."""

GATE = 4.0
"""A 2D depth further than this many combined standard deviations from the model's is unused."""


@dataclass(frozen=True)
class Depth:
    """Per-person depth corrections of one frame.

    Attributes:
        scale: (P,) multiply ``cam_trans`` by this to put the body at its corrected depth.
        std: (P,) standard deviation of ``scale`` (a fraction of the distance).
        used_2d: (P,) bool: the 2D keypoints took part (False: the model's depth alone).
        lateral: (P,) metric scatter of the keypoints about the fitted body, metres (the
            joints' error across the ray), NaN where the 2D was not used.
    """

    scale: np.ndarray
    std: np.ndarray
    used_2d: np.ndarray
    lateral: np.ndarray


def depth_from_keypoints(
    local: np.ndarray,
    trans: np.ndarray,
    keypoints: np.ndarray,
    focal: np.ndarray,
    principal: np.ndarray,
    depth_noise: float,
    size_std: float = 0.01,
) -> Depth:
    """Depth corrections for P persons (see the module docstring).

    Args:
        local: (P, 70, 3) ``joints_3d_local``, metres.
        trans: (P, 3) ``cam_trans``, metres.
        keypoints: (P, 70, 2) ``joints_2d``, pixels.
        focal: (P,) focal lengths, pixels.
        principal: (P, 2) principal points, pixels.
        depth_noise: the model's depth error (standard deviation, fraction of distance).
        size_std: how well the model's metric body size is taken to be known (fraction):
            the floor of the 2D estimate's standard deviation.
    """
    loc = local[:, DEPTH_JOINTS]
    c = keypoints[:, DEPTH_JOINTS] - principal[:, None, :]  # (P, J, 2)
    f = focal[:, None, None]
    tz = trans[:, None, 2:3]
    # Each equation is the pixel residual times the joint's depth: divide by it (pixels).
    inv_z = 1.0 / np.maximum(loc[..., 2:3] + tz, 1e-3)
    a = ((c * tz - f * trans[:, None, :2]) * inv_z).reshape(len(trans), -1)
    b = ((f * loc[..., :2] - c * loc[..., 2:3]) * inv_z).reshape(len(trans), -1)
    saa = np.maximum((a * a).sum(axis=1), 1e-12)
    s = (a * b).sum(axis=1) / saa
    r = b - a * s[:, None]
    # One re-weighting: joints off by more than 3 rms (occluded, mislabelled) are dropped.
    rr = r * r
    w = rr <= 9.0 * rr.mean(axis=1, keepdims=True) + 1e-12
    if w.all():
        n = np.full(len(trans), float(a.shape[1]))
    else:
        wa = a * w
        n = w.sum(axis=1)
        saa = np.maximum((wa * a).sum(axis=1), 1e-12)
        s = (wa * b).sum(axis=1) / saa
        r = (b - a * s[:, None]) * w
    rms = np.sqrt((r * r).sum(axis=1) / np.maximum(n - 1, 1))  # pixels
    # Errors in variables: the keypoints' noise (variance v, pixels^2; taken as half of the
    # residual variance, the 3D joints having the other half) enters both sides, a through
    # T_z (u - c) and b through -(u - c) L_z: it inflates sum(a^2) by v sum(T_z^2 / z^2) and
    # biases sum(a b) by -v sum(T_z L_z / z^2). Both are taken out.
    v = 0.5 * rms**2
    tz_z = (tz * inv_z)[..., 0]  # (P, J)
    lz_z = (loc[..., 2:3] * inv_z)[..., 0]
    wj = w.reshape(len(trans), -1, 2).sum(axis=2)  # equations kept per joint (0..2)
    saa_c = np.maximum(saa - v * (wj * tz_z * tz_z).sum(axis=1), 0.5 * saa)
    sab_c = s * saa + v * (wj * tz_z * lz_z).sum(axis=1)
    s = sab_c / saa_c
    std2d = np.sqrt(rms**2 / saa + size_std**2)
    prior = float(depth_noise)
    ok = (n >= 8) & (s > 0.5) & (s < 2.0) & (std2d < prior)
    ok &= np.abs(s - 1.0) <= GATE * np.sqrt(std2d**2 + prior**2)
    # Where the 2D keypoints fix the depth, they replace the model's: fusing the two would
    # gain little (the model's depth is several times less precise) and bring back a share
    # of its slowly drifting error, which averages out far more slowly than the keypoints'.
    scale = np.where(ok, s, 1.0)
    std = np.where(ok, std2d, prior)
    lateral = np.where(ok, rms * trans[:, 2] / focal, np.nan)
    return Depth(scale, std, ok, lateral)
