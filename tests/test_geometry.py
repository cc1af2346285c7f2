"""Crop geometry: exact maps, padding, validation, CLIFF and the full-frame camera."""

from __future__ import annotations

import numpy as np
import pytest

from instanthmr import geometry as g


def _rng_boxes(rng: np.random.Generator, n: int, w: int, h: int) -> np.ndarray:
    cx, cy = rng.uniform(0, w, n), rng.uniform(0, h, n)
    bw, bh = rng.uniform(10, w, n), rng.uniform(10, h, n)
    return np.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], axis=1)


def test_crop_frame_round_trip_under_1e3_px() -> None:
    rng = np.random.default_rng(0)
    boxes = _rng_boxes(rng, 50, 1920, 1080)
    squares = g.square_crops(boxes)
    pts = rng.uniform(-50, 1970, size=(50, 70, 2))
    back = g.crop_to_frame(g.frame_to_crop(pts, squares), squares)
    assert np.abs(back - pts).max() < 1e-3
    norm = rng.uniform(-1, 1, size=(50, 70, 2))
    assert np.abs(g.frame_to_crop(g.crop_to_frame(norm, squares), squares) - norm).max() < 1e-9


def test_square_is_1_2_max_side_centred() -> None:
    sq = g.square_crops(np.array([[10.0, 20.0, 110.0, 70.0]]))
    np.testing.assert_allclose(sq, [[60.0, 45.0, 120.0]])


def test_crop_corners_follow_contract_formula() -> None:
    # Normalised -1 is crop pixel 0 = square's top-left; +1 is pixel 224 = bottom-right edge.
    sq = g.square_crops(np.array([[100.0, 50.0, 300.0, 250.0]]))  # side 240, x1 = 80, y1 = 30
    pts = g.crop_to_frame(np.array([[[-1.0, -1.0], [1.0, 1.0], [0.0, 0.0]]]), sq)
    np.testing.assert_allclose(pts[0], [[80, 30], [320, 270], [200, 150]])


def test_crop_pixels_match_direct_sampling_and_zero_padding() -> None:
    # A smooth ramp image: bilinear sampling is exact on it, so each crop pixel must equal
    # the ramp evaluated at the frame point the contract maps it to.
    h, w = 120, 160
    yy, xx = np.mgrid[0:h, 0:w]
    img = np.stack([xx, yy, (xx + yy) // 2], axis=-1).astype(np.uint8)
    box = np.array([[-40.0, 10.0, 60.0, 110.0]])  # partly left of the frame
    sq = g.square_crops(box)
    crop = g.crop_images(img, sq)[0].astype(np.float64)
    u = np.arange(224)
    fx = sq[0, 0] - sq[0, 2] / 2 + u * sq[0, 2] / 224
    fy = sq[0, 1] - sq[0, 2] / 2 + u * sq[0, 2] / 224
    inside_x = (fx >= 0) & (fx <= w - 1)
    inside_y = (fy >= 0) & (fy <= h - 1)
    cols, rows = np.where(inside_x)[0], np.where(inside_y)[0]
    # interior: R channel is the frame x coordinate, G the frame y coordinate (to rounding)
    assert np.abs(crop[rows[2:-2]][:, cols[2:-2], 0] - fx[cols[2:-2]][None]).max() <= 1.0
    assert np.abs(crop[rows[2:-2]][:, cols[2:-2], 1] - fy[rows[2:-2]][:, None]).max() <= 1.0
    # columns that map left of the frame (x < -1) are zero padding
    outside = np.where(fx < -1)[0]
    assert len(outside) > 20
    assert crop[:, outside].max() == 0


def test_normalize_is_imagenet_chw() -> None:
    crops = np.zeros((2, 224, 224, 3), np.uint8)
    crops[1] = 255
    x = g.normalize_crops(crops)
    assert x.shape == (2, 3, 224, 224) and x.dtype == np.float32
    np.testing.assert_allclose(x[0, :, 0, 0], -g.IMAGENET_MEAN / g.IMAGENET_STD, rtol=1e-6)
    np.testing.assert_allclose(x[1, :, 5, 7], (1 - g.IMAGENET_MEAN) / g.IMAGENET_STD, rtol=1e-6)


def test_cliff_vector() -> None:
    c = g.cliff_vectors(np.array([[0.0, 0.0, 640.0, 480.0], [100, 200, 150, 300]]), (640, 480))
    np.testing.assert_allclose(c[0], [0.0, 0.0, 1.0], atol=1e-7)
    np.testing.assert_allclose(c[1], [2 * 125 / 640 - 1, 2 * 250 / 480 - 1, 100 / 640], rtol=1e-6)


def test_full_frame_camera_and_projection() -> None:
    f, pp = g.full_frame_camera((640, 480))
    assert f == pytest.approx(800.0)
    np.testing.assert_allclose(pp, [320, 240])
    uv = g.project_points(np.array([[0.5, -0.25, 2.0], [0.0, 0.0, 1.0]]), f, pp)
    np.testing.assert_allclose(uv, [[520, 140], [320, 240]])
    with pytest.raises(ValueError, match="in front of the camera"):
        g.project_points(np.array([0.0, 0.0, -1.0]), f, pp)


@pytest.mark.parametrize(
    ("box", "match"),
    [
        ([np.nan, 0, 10, 10], "NaN"),
        ([50, 0, 10, 10], "inverted or has zero size"),
        ([10, 10, 10, 40], "inverted or has zero size"),
        ([700, 10, 800, 100], "entirely outside"),
        ([-100, -100, -1, -1], "entirely outside"),
    ],
)
def test_bad_boxes_are_named(box: list[float], match: str) -> None:
    with pytest.raises(ValueError, match=match) as err:
        g.validate_boxes(np.array([[0, 0, 5, 5], box], dtype=np.float64), (640, 480))
    assert "box 1" in str(err.value)


def test_box_shape_errors_and_empty() -> None:
    with pytest.raises(ValueError, match=r"\(N, 4\)"):
        g.validate_boxes(np.array([1.0, 2, 3, 4]), (10, 10))
    with pytest.raises(ValueError, match=r"\(N, 4\)"):
        g.validate_boxes(np.zeros((2, 5)), (10, 10))
    assert g.validate_boxes(np.zeros((0, 4)), (10, 10)).shape == (0, 4)
    assert g.validate_boxes([], (10, 10)).shape == (0, 4)
    ok = g.validate_boxes([[-5, -5, 5, 5]], (10, 10))  # partly outside is fine
    assert ok.shape == (1, 4)


@pytest.mark.parametrize(
    ("image", "exc", "match"),
    [
        (np.zeros((8, 8, 3), np.float32), TypeError, "uint8.*float"),
        (np.zeros((8, 8), np.uint8), ValueError, "grayscale"),
        (np.zeros((8, 8, 4), np.uint8), ValueError, "RGBA"),
        (np.zeros((2, 8, 8, 3), np.uint8), ValueError, "rank 4"),
        (np.zeros((0, 8, 3), np.uint8), ValueError, "empty"),
        ([[1, 2, 3]], TypeError, "numpy array"),
    ],
)
def test_bad_images_are_named(image: object, exc: type, match: str) -> None:
    with pytest.raises(exc, match=match):
        g.validate_image(image)
