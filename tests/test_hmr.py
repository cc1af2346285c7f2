"""HMRModel end to end: the analytic oracle proves the full-frame geometry; a random-init
export (meaningless poses, real compute) proves batching, padding and chunking."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx_builders import build_oracle, joint_offsets, oracle_expected

from instanthmr.geometry import cliff_vectors, full_frame_camera
from instanthmr.hmr.model import HMRModel


@pytest.fixture(scope="module")
def oracle(tmp_path_factory: pytest.TempPathFactory) -> HMRModel:
    path = tmp_path_factory.mktemp("oracle") / "oracle.onnx"
    onnx.save(build_oracle(), path)
    return HMRModel(path, device="cpu")


def _blob_image(w: int, h: int, x0: float, y0: float, sigma: float) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    v = 255 * np.exp(-((xx - x0) ** 2 + (yy - y0) ** 2) / (2 * sigma**2))
    img = np.zeros((h, w, 3), np.uint8)
    img[..., 0] = np.round(v).astype(np.uint8)
    return img


@pytest.mark.parametrize("size", [(640, 480), (480, 640), (1920, 1080), (300, 300), (1000, 200)])
def test_oracle_joints_land_on_the_blob_within_half_a_pixel(oracle: HMRModel, size) -> None:
    w, h = size
    rng = np.random.default_rng(w * 7 + h)
    for _ in range(3):
        x0, y0 = rng.uniform(0, w), rng.uniform(0, h)  # anywhere, edges included
        base = rng.uniform(0.15, 0.4) * min(w, h)
        # boxes of 1x-2.5x the base size, shifted so the blob stays inside the central crop
        sides = base * rng.uniform(1.0, 2.5, 4)
        shift = rng.uniform(-0.2, 0.2, (4, 2)) * sides[:, None]
        cx, cy = x0 + shift[:, 0], y0 + shift[:, 1]
        aspect = rng.uniform(0.5, 1.0, 4)
        boxes = np.stack(
            [cx - sides / 2, cy - sides * aspect / 2, cx + sides / 2, cy + sides * aspect / 2], 1
        )
        sigma = 1.2 * sides.max() * 2.6 / 224  # >= 2.6 crop px in the largest crop
        img = _blob_image(w, h, x0, y0, sigma)
        persons = oracle.predict(img, boxes)
        assert len(persons) == 4
        squares_side = 1.2 * np.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])
        for p, side in zip(persons, squares_side, strict=True):
            expected = np.array([x0, y0]) + joint_offsets() * side / 2
            err = np.abs(p.joints_2d - expected).max()
            assert err < 0.5, f"frame {size}: joint error {err:.3f} px for box {p.bbox}"


def test_oracle_other_outputs_and_camera(oracle: HMRModel) -> None:
    img = np.zeros((480, 640, 3), np.uint8)
    img[200:260, 300:340, 0] = 255
    img[440:470, 10:40, 0] = 255  # a blob for the second box too (the oracle needs one)
    boxes = np.array([[280.0, 150, 360, 300], [-30, 400, 90, 560]])  # 2nd partly outside
    persons = oracle.predict(img, boxes, scores=[0.9, 0.4])
    exp = oracle_expected(cliff_vectors(boxes, (640, 480)))
    f, pp = full_frame_camera((640, 480))
    for i, p in enumerate(persons):
        np.testing.assert_allclose(p.cam_trans, exp["cam_trans"][i], atol=1e-5)
        np.testing.assert_allclose(p.mhr_params, exp["mhr_params"][i], rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(p.shape_params, exp["shape_params"][i], rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(p.joints_3d_local, exp["joints_3d"][i], rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(p.joints_3d_cam, p.joints_3d_local + p.cam_trans, atol=1e-6)
        assert p.focal_length == pytest.approx(f)
        np.testing.assert_allclose(p.principal_point, pp)
        assert p.image_size == (640, 480)
        np.testing.assert_allclose(p.bbox, boxes[i])
    assert [p.score for p in persons] == pytest.approx([0.9, 0.4])


def test_no_boxes_gives_an_empty_list(oracle: HMRModel) -> None:
    out = oracle.predict(np.zeros((10, 10, 3), np.uint8), np.zeros((0, 4)))
    assert out == []


@pytest.mark.parametrize(
    ("image", "boxes", "exc", "match"),
    [
        (np.zeros((64, 64, 3), np.float32), [[0, 0, 9, 9]], TypeError, "uint8"),
        (np.zeros((64, 64), np.uint8), [[0, 0, 9, 9]], ValueError, "grayscale"),
        (np.zeros((64, 64, 4), np.uint8), [[0, 0, 9, 9]], ValueError, "RGBA"),
        (np.zeros((1, 64, 64, 3), np.uint8), [[0, 0, 9, 9]], ValueError, "rank 4"),
        (np.zeros((0, 64, 3), np.uint8), [[0, 0, 9, 9]], ValueError, "empty"),
        (np.zeros((64, 64, 3), np.uint8), [[0, np.nan, 9, 9]], ValueError, "box 0.*NaN"),
        (np.zeros((64, 64, 3), np.uint8), [[9, 0, 0, 9]], ValueError, "inverted"),
    ],
)
def test_bad_inputs_to_predict(oracle: HMRModel, image, boxes, exc, match) -> None:
    with pytest.raises(exc, match=match):
        oracle.predict(image, np.asarray(boxes, dtype=np.float64))


def test_scores_must_match_boxes(oracle: HMRModel) -> None:
    with pytest.raises(ValueError, match=r"scores must have shape \(2,\)"):
        oracle.predict(np.zeros((64, 64, 3), np.uint8), [[0, 0, 9, 9], [1, 1, 8, 8]], [0.5])


def _rel(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-12))


def _arrays(persons) -> dict[str, np.ndarray]:
    names = ["joints_2d", "joints_3d_local", "cam_trans", "mhr_params", "shape_params"]
    return {n: np.stack([getattr(p, n) for p in persons]) for n in names}


def test_batched_padded_and_chunked_equal_per_person_runs(hmr_onnx: Path) -> None:
    """Random-init export: real compute; the poses themselves are meaningless."""
    rng = np.random.default_rng(3)
    img = rng.integers(0, 255, (480, 640, 3), dtype=np.uint8)
    boxes = np.array([[10, 20, 200, 400], [300, 50, 420, 300], [500, 300, 700, 520],
                      [100, 100, 160, 180], [0, 0, 640, 480]], dtype=np.float64)  # fmt: skip
    plain = HMRModel(hmr_onnx, device="cpu", warmup=False)
    single = _arrays(plain.predict(img, boxes, batched=False))
    batched = _arrays(plain.predict(img, boxes))
    padded = HMRModel(hmr_onnx, device="cpu", pad_batch=4, warmup=False)  # chunks 4 + 1(+3 pad)
    chunked = _arrays(padded.predict(img, boxes))
    padded8 = _arrays(
        HMRModel(hmr_onnx, device="cpu", pad_batch=8, warmup=False).predict(img, boxes)
    )
    for name, ref in single.items():
        for other in (batched, chunked, padded8):
            assert _rel(other[name], ref) < 1e-5, name


def test_a_person_with_non_finite_output_is_left_out(oracle: HMRModel, caplog) -> None:
    # The oracle divides by the blob's weight: a crop with no blob gives NaN joints.
    oracle.left_out = [0, 0]  # the fixture is shared by the module
    img = np.zeros((200, 200, 3), np.uint8)
    img[40:60, 40:60, 0] = 255
    persons = oracle.predict(img, [[30, 30, 70, 70], [120, 120, 190, 190]], scores=[0.8, 0.7])
    assert len(persons) == 1 and persons[0].score == pytest.approx(0.8)
    assert any("not finite" in r.message for r in caplog.records)
    assert oracle.left_out == [1, 1]
    caplog.clear()  # a long run: warned on the 1st, 10th, 100th... call, not on every one
    for _ in range(11):
        oracle.predict(img, [[30, 30, 70, 70], [120, 120, 190, 190]])
    warned = [r for r in caplog.records if "not finite" in r.message and r.levelname == "WARNING"]
    assert oracle.left_out == [12, 12] and len(warned) == 1 and "on 10 calls" in warned[0].message
