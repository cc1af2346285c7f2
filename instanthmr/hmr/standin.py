"""The stand-in HMR model: MediaPipe's BlazePose GHUM 3D wrapped in the InstantHMR contract.

The real InstantHMR weights cannot always be had (no network, a machine that never reaches
the Hugging Face Hub). The package therefore ships ``assets/standin-blazepose.onnx``: a real,
trained body-landmark model (BlazePose GHUM 3D "full", by Google's MediaPipe team,
Apache-2.0) inside a graph with the contract's inputs and outputs, so every stage (batching,
tracking, the world frame, exports, the app) sees it exactly as it sees the real file.

What it is not: InstantHMR. It has no hands and no face beyond a few points, and no body
model: ``mhr_params`` and ``shape_params`` are zeros. Of the 70 MHR70 joints, the body joints
come from the matching BlazePose landmarks ("real"); the neck, fingers, small toes and the
elbow and shoulder surface points are placed from them by fixed rules ("approximated"). The
file's metadata lists which are which (:data:`META_REAL_JOINTS`), and evaluation uses only
the real ones. Everything that shows its output labels it (``model_kind``
``standin-blazepose``, see :mod:`instanthmr.hmr.kinds`). It is selected with
``model="standin"`` (``--model standin``); ``tools/make_standin.py`` builds it
(:mod:`instanthmr.export.standin`).

Camera translation. The graph solves ``cam_trans`` in closed form so that
``joints_3d + cam_trans`` projects onto ``joints_2d`` through the contract's full-frame
camera (f = the image diagonal, principal point at the centre), by linear least squares over
the real joints (:func:`solve_cam_trans`). The contract's CLIFF vector
``[cx_norm, cy_norm, b_scale]`` does not carry the frame's aspect ratio, which the camera
needs, so the graph assumes a 4:3 frame (:data:`GRAPH_ASPECT`; the file records it). Where
the frame is known, :class:`~instanthmr.hmr.model.HMRModel` solves the same equations again
for the real frame (:func:`refit_cam_trans`), so the projection holds on any frame size.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from ..geometry import crop_to_frame, full_frame_camera
from ..skeleton import JOINT_NAMES, NUM_JOINTS

MODEL_KIND = "standin-blazepose"
"""The file's ``model_kind`` metadata value."""
ASSET = "standin-blazepose.onnx"
NOTICE = "standin-blazepose.NOTICE.txt"

META_MODEL_KIND = "model_kind"
META_REAL_JOINTS = "standin_real_joints"
"""JSON list of the MHR70 joint names taken from a matching BlazePose landmark."""
META_JOINT_SOURCES = "standin_joint_sources"
"""JSON object: MHR70 joint name -> how it is made from the BlazePose landmarks."""
META_GRAPH_ASPECT = "standin_graph_frame_aspect"
"""``W:H`` of the frame the graph's own ``cam_trans`` assumes."""
META_PRESENCE_THRESHOLD = "standin_presence_threshold"

GRAPH_ASPECT = (4, 3)
"""The frame aspect ratio the graph assumes for ``cam_trans`` (vtest.avi, 640x480 webcams)."""
PRESENCE_THRESHOLD = 0.5
"""BlazePose's person-presence probability below which a crop gives NaN joints
(MediaPipe's own default ``min_tracking_confidence``)."""


def standin_path() -> Path:
    """The stand-in model file shipped in the package."""
    from ..sources.files import asset_path

    return asset_path(ASSET, "the stand-in model",
                      "python tools/make_standin.py --source PATH/TO/blazepose.onnx")  # fmt: skip


def is_standin(metadata: Mapping[str, str]) -> bool:
    """True when a model file's metadata marks it as the BlazePose stand-in."""
    return metadata.get(META_MODEL_KIND, "") == MODEL_KIND


def real_joint_mask(metadata: Mapping[str, str]) -> np.ndarray:
    """(70,) bool: the joints a model really predicts. All True unless the file lists its
    real joints (:data:`META_REAL_JOINTS`, the stand-in); unknown names are an error."""
    text = metadata.get(META_REAL_JOINTS)
    if not text:
        return np.ones(NUM_JOINTS, bool)
    names = json.loads(text)
    unknown = sorted(set(names) - set(JOINT_NAMES))
    if unknown:
        raise ValueError(f"the model's {META_REAL_JOINTS} names unknown joints: {unknown}")
    return np.isin(np.array(JOINT_NAMES), names)


def solve_cam_trans(rays: np.ndarray, joints_3d: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """(N, 3) translations t with ``joints_3d + t`` on the given camera rays (least squares).

    Args:
        rays: (N, K, 2) normalised image coordinates ``((x - cx) / f, (y - cy) / f)`` of the
            2D joints in the full frame.
        joints_3d: (N, K, 3) body-centred joints, metres, camera axes (X right, Y down).
        weights: (K,) non-negative weight per joint (0 leaves a joint out).

    A joint on ray (a, b) satisfies ``X + tx = a (Z + tz)`` and ``Y + ty = b (Z + tz)``:
    linear in t. Eliminating tx and ty gives, with weighted means and covariances,
    ``tz = -(cov(a, aZ - X) + cov(b, bZ - Y)) / (var(a) + var(b))``,
    ``tx = mean(aZ - X) + mean(a) tz`` and ``ty`` likewise. The graph computes the same
    expressions (:mod:`instanthmr.export.standin`).
    """
    r = np.asarray(rays, np.float64)
    j = np.asarray(joints_3d, np.float64)
    w = np.asarray(weights, np.float64) / np.sum(weights)
    a, b = r[..., 0], r[..., 1]
    c = a * j[..., 2] - j[..., 0]
    d = b * j[..., 2] - j[..., 1]

    def mean(v: np.ndarray) -> np.ndarray:
        return (v * w).sum(-1)

    ma, mb, mc, md = mean(a), mean(b), mean(c), mean(d)
    cov = mean((a - ma[:, None]) * (c - mc[:, None])) + mean((b - mb[:, None]) * (d - md[:, None]))
    var = mean((a - ma[:, None]) ** 2) + mean((b - mb[:, None]) ** 2)
    tz = -cov / var
    return np.stack([mc + ma * tz, md + mb * tz, tz], axis=-1)


def frame_rays(
    joints_2d: np.ndarray, squares: np.ndarray, image_size: tuple[int, int]
) -> np.ndarray:
    """(N, K, 2) rays of crop-normalised 2D joints through the contract's full-frame camera."""
    focal, centre = full_frame_camera(image_size)
    return (crop_to_frame(joints_2d, squares) - centre) / focal


def refit_cam_trans(
    outputs: Mapping[str, np.ndarray],
    squares: np.ndarray,
    image_size: tuple[int, int],
    weights: np.ndarray,
) -> np.ndarray:
    """(N, 3) float32 ``cam_trans`` solved for the real frame (not the graph's 4:3 guess)."""
    rays = frame_rays(outputs["joints_2d"], squares, image_size)
    with np.errstate(invalid="ignore", divide="ignore"):  # NaN persons stay NaN
        return solve_cam_trans(rays, outputs["joints_3d"], weights).astype(np.float32)
