"""Crop geometry: pure, vectorised functions from full-frame boxes to model inputs and back.

Conventions (from the model contract):

- A box is ``x1, y1, x2, y2`` in full-frame pixels; image sizes are ``(width, height)``.
- The crop is the square centred on the box centre with side ``1.2 * max(bw, bh)``. Pixels
  outside the frame are zero padding. It is resampled bilinearly to 224x224 by one
  ``cv2.warpAffine`` per person from the exact float square.
- Crop pixel ``u`` maps back to the frame as ``x = sq_x1 + u * side / 224`` (same for y), and
  normalised crop coordinates ``n`` in [-1, 1] map to crop pixels as ``u = (n + 1) / 2 * 224``.
- The full-frame virtual pinhole has its principal point at ``(W/2, H/2)`` and, for the
  published pixel-conditioned model, ``f = sqrt(W^2 + H^2)``; focal-aware models (metadata
  ``cliff_focal``) take the focal the caller knows, or ``1.05 * sqrt(W^2 + H^2)``
  (:func:`default_focal`). The camera frame is X right, Y down, Z forward.
- The CLIFF vector is ``[2 cx / W - 1, 2 cy / H - 1, max(bw, bh) / max(W, H)]`` for the
  published model and ``[atan((cx - W/2) / f), atan((cy - H/2) / f), max(bw, bh) / f]``
  for focal-aware models.
"""

from __future__ import annotations

import cv2
import numpy as np

from .runtime.contract import CROP_SIZE

CROP_SCALE = 1.2
FOCAL_AWARE_DEFAULT = 1.05
"""Focal-aware models without a known focal use this many image diagonals (as upstream)."""
MAX_BOX_DIAGONALS = 10
"""A box wider or taller than this many image diagonals is refused as absurd."""
IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)


def validate_image(image: object) -> np.ndarray:
    """Check that ``image`` is an RGB ``uint8`` array shaped (H, W, 3) and return it.

    Raises:
        TypeError: not a numpy array, or not ``uint8`` (e.g. a float image).
        ValueError: wrong rank, wrong channel count (grayscale, RGBA) or an empty image.
    """
    if not isinstance(image, np.ndarray):
        raise TypeError(
            f"image must be a numpy array (H, W, 3) uint8 RGB, got {type(image).__name__}; "
            "load it with cv2.imread(path)[..., ::-1] or "
            "np.asarray(PIL.Image.open(path).convert('RGB'))"
        )
    if image.dtype != np.uint8:
        hint = (
            "scale a [0,1] float image with (image * 255).clip(0, 255).astype(np.uint8)"
            if np.issubdtype(image.dtype, np.floating)
            else "convert it with image.astype(np.uint8) after scaling to 0..255"
        )
        raise TypeError(f"image must have dtype uint8, got {image.dtype}; {hint}")
    if image.ndim == 2:
        raise ValueError(
            f"image is grayscale with shape {image.shape}; expected (H, W, 3) RGB. "
            "Convert it with cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)"
        )
    if image.ndim != 3:
        raise ValueError(f"image must have shape (H, W, 3), got rank {image.ndim} {image.shape}")
    if image.shape[2] == 4:
        raise ValueError(
            f"image has 4 channels {image.shape} (RGBA); expected RGB. "
            "Drop alpha with cv2.cvtColor(image, cv2.COLOR_RGBA2RGB)"
        )
    if image.shape[2] != 3:
        raise ValueError(f"image must have 3 channels (RGB), got shape {image.shape}")
    if image.shape[0] == 0 or image.shape[1] == 0:
        raise ValueError(f"image is empty, shape {image.shape}")
    return image


def image_size_of(image: np.ndarray) -> tuple[int, int]:
    """``(width, height)`` of an (H, W, C) image."""
    return int(image.shape[1]), int(image.shape[0])


def validate_boxes(boxes: object, image_size: tuple[int, int]) -> np.ndarray:
    """Check (N, 4) xyxy boxes against a frame of ``image_size = (W, H)``; return float64 copy.

    A box partly outside the frame is fine (that part becomes padding). NaN or infinite
    coordinates, inverted or zero-size boxes, boxes entirely outside the frame, boxes
    larger than :data:`MAX_BOX_DIAGONALS` times the image diagonal (no person is; such a
    box is a unit or format mix-up) and values that are not numbers raise ValueError
    naming the box.
    """
    try:
        arr = np.asarray(boxes, dtype=np.float64)
    except (TypeError, ValueError, OverflowError) as exc:
        raise ValueError(
            f"boxes must be numbers (N, 4) as x1, y1, x2, y2 in pixels; could not read them as "
            f"float64 ({type(exc).__name__}: {exc})"
        ) from None
    if arr.ndim == 1 and arr.shape[0] == 4:
        raise ValueError(
            f"boxes must have shape (N, 4), got {arr.shape}; wrap one box as boxes[None] "
            "or np.array([[x1, y1, x2, y2]])"
        )
    if arr.size == 0:
        return np.zeros((0, 4), dtype=np.float64)
    if arr.ndim != 2 or arr.shape[1] != 4:
        raise ValueError(f"boxes must have shape (N, 4) as x1, y1, x2, y2; got {arr.shape}")
    w, h = image_size
    limit = MAX_BOX_DIAGONALS * float(np.hypot(w, h))
    for i, b in enumerate(arr):
        if not np.all(np.isfinite(b)):
            raise ValueError(f"box {i} {b.tolist()} has NaN or infinite coordinates")
        if b[2] <= b[0] or b[3] <= b[1]:
            raise ValueError(
                f"box {i} {b.tolist()} is inverted or has zero size; expected x1 < x2 and y1 < y2"
            )
        if b[2] <= 0 or b[3] <= 0 or b[0] >= w or b[1] >= h:
            raise ValueError(f"box {i} {b.tolist()} lies entirely outside the {w}x{h} frame")
        side = max(b[2] - b[0], b[3] - b[1])
        if not side <= limit:  # also catches an overflow to inf in the subtraction
            raise ValueError(
                f"box {i} {b.tolist()} is {side:.3g} px across, more than {MAX_BOX_DIAGONALS}x "
                f"the diagonal of the {w}x{h} frame: boxes are x1, y1, x2, y2 in pixels of "
                "this image (not normalised, not another image's scale)"
            )
    return arr.copy()


def square_crops(boxes: np.ndarray, scale: float = CROP_SCALE) -> np.ndarray:
    """(N, 3) squares ``[cx, cy, side]``: centred on each box, side ``scale * max(bw, bh)``."""
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    cx = (b[:, 0] + b[:, 2]) / 2
    cy = (b[:, 1] + b[:, 3]) / 2
    side = scale * np.maximum(b[:, 2] - b[:, 0], b[:, 3] - b[:, 1])
    return np.stack([cx, cy, side], axis=1)


def crop_affines(squares: np.ndarray, size: int = CROP_SIZE) -> np.ndarray:
    """(N, 2, 3) affine maps from frame pixels to crop pixels: ``u = (x - sq_x1) * size / side``."""
    sq = np.asarray(squares, dtype=np.float64).reshape(-1, 3)
    s = size / sq[:, 2]
    m = np.zeros((len(sq), 2, 3), dtype=np.float64)
    m[:, 0, 0] = s
    m[:, 1, 1] = s
    m[:, 0, 2] = -(sq[:, 0] - sq[:, 2] / 2) * s
    m[:, 1, 2] = -(sq[:, 1] - sq[:, 2] / 2) * s
    return m


def crop_images(image: np.ndarray, squares: np.ndarray, size: int = CROP_SIZE) -> np.ndarray:
    """(N, size, size, 3) uint8 crops: one bilinear ``cv2.warpAffine`` per person, zero padding."""
    affines = crop_affines(squares, size)
    out = np.empty((len(affines), size, size, image.shape[2]), dtype=image.dtype)
    for i, m in enumerate(affines):
        cv2.warpAffine(
            image, m, (size, size), dst=out[i], flags=cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_CONSTANT, borderValue=0,
        )  # fmt: skip
    return out


def normalize_crops(crops: np.ndarray) -> np.ndarray:
    """uint8 (N, H, W, 3) RGB -> float32 (N, 3, H, W): [0, 1], ImageNet mean/std, CHW."""
    x = crops.astype(np.float32) * np.float32(1.0 / 255.0)
    x -= IMAGENET_MEAN
    x /= IMAGENET_STD
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2))


def cliff_vectors(boxes: np.ndarray, image_size: tuple[int, int]) -> np.ndarray:
    """(N, 3) float32 CLIFF vectors ``[cx_norm, cy_norm, b_scale]`` of boxes in the frame."""
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    w, h = image_size
    cx = (b[:, 0] + b[:, 2]) / 2
    cy = (b[:, 1] + b[:, 3]) / 2
    scale = np.maximum(b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]) / max(w, h)
    return np.stack([2 * cx / w - 1, 2 * cy / h - 1, scale], axis=1).astype(np.float32)


def focal_cliff_vectors(
    boxes: np.ndarray, image_size: tuple[int, int], focal: float
) -> np.ndarray:
    """(N, 3) float32 focal-aware CLIFF vectors ``[atan((cx - W/2)/f), atan((cy - H/2)/f),
    max(bw, bh)/f]`` of boxes in the frame, for models with metadata ``cliff_focal``."""
    if not (np.isfinite(focal) and focal > 0):
        raise ValueError(f"focal must be a positive number of pixels, got {focal}")
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    w, h = image_size
    cx = (b[:, 0] + b[:, 2]) / 2
    cy = (b[:, 1] + b[:, 3]) / 2
    side = np.maximum(b[:, 2] - b[:, 0], b[:, 3] - b[:, 1])
    out = np.stack([np.arctan((cx - w / 2) / focal), np.arctan((cy - h / 2) / focal),
                    side / focal], axis=1)  # fmt: skip
    return out.astype(np.float32)


def default_focal(image_size: tuple[int, int], cliff_focal: bool = False) -> float:
    """The focal (pixels) a model's camera uses when the caller gives none: the image
    diagonal for pixel-conditioned models, :data:`FOCAL_AWARE_DEFAULT` diagonals for
    focal-aware ones."""
    diagonal = float(np.hypot(*image_size))
    return FOCAL_AWARE_DEFAULT * diagonal if cliff_focal else diagonal


def crop_to_frame(
    points_norm: np.ndarray, squares: np.ndarray, size: int = CROP_SIZE
) -> np.ndarray:
    """Map (N, K, 2) normalised crop coordinates in [-1, 1] to full-frame pixels (float64)."""
    n = np.asarray(points_norm, dtype=np.float64)
    sq = np.asarray(squares, dtype=np.float64).reshape(-1, 1, 3)
    u = (n + 1.0) / 2.0 * size
    origin = sq[..., :2] - sq[..., 2:3] / 2
    return origin + u * (sq[..., 2:3] / size)


def frame_to_crop(points_px: np.ndarray, squares: np.ndarray, size: int = CROP_SIZE) -> np.ndarray:
    """Inverse of :func:`crop_to_frame`: (N, K, 2) frame pixels -> normalised crop coordinates."""
    p = np.asarray(points_px, dtype=np.float64)
    sq = np.asarray(squares, dtype=np.float64).reshape(-1, 1, 3)
    origin = sq[..., :2] - sq[..., 2:3] / 2
    u = (p - origin) * (size / sq[..., 2:3])
    return u / size * 2.0 - 1.0


def full_frame_camera(
    image_size: tuple[int, int], focal: float | None = None
) -> tuple[float, np.ndarray]:
    """Focal (``focal``, default ``sqrt(W^2 + H^2)``) and principal point ``(W/2, H/2)`` of
    the full-frame virtual pinhole."""
    w, h = image_size
    f = float(np.hypot(w, h)) if focal is None else float(focal)
    return f, np.array([w / 2.0, h / 2.0], dtype=np.float64)


def project_points(points_cam: np.ndarray, focal: float, principal_point: np.ndarray) -> np.ndarray:
    """Pinhole projection of (..., 3) camera-space points (Z forward) to (..., 2) pixels."""
    p = np.asarray(points_cam, dtype=np.float64)
    z = p[..., 2:3]
    if np.any(z <= 0):
        raise ValueError("points must lie in front of the camera (Z > 0) to be projected")
    return p[..., :2] / z * focal + np.asarray(principal_point, dtype=np.float64)
