"""The model files users meet, each as a small ONNX graph built here with the real signature.

Every variant is the analytic oracle (tests/onnx_builders.py: 2D keypoints = the blob's
centroid in the crop plus fixed offsets, ``cam_trans = cliff_cond + (0, 0, 5)``, other
outputs linear in ``cliff_cond``) rewritten the way upstream's files differ: float16 I/O,
a fixed batch of 1, generic output names, ``cliff_focal`` / ``image_size`` metadata, the
4-output MHR-only layout. So each test checks that the loader decided right AND that the
numbers that come out are the oracle's (the same crop, CLIFF vector and camera), not only
that loading succeeded.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto
from onnx_builders import (
    N,
    build_io_model,
    build_oracle,
    contract_io,
    joint_offsets,
    oracle_expected,
    with_fixed_batch,
    with_float16_io,
    with_metadata,
    with_output_names,
    without_output,
)

from instanthmr.geometry import cliff_vectors, focal_cliff_vectors
from instanthmr.hmr.model import HMRModel
from instanthmr.runtime.contract import ContractError, UnsupportedModelError

W, H = 640, 480
BOXES = np.array([[250.0, 120, 390, 400], [20, 200, 140, 470], [470, 60, 600, 300]])
CENTRES = np.array([[320.0, 260], [80, 335], [535, 180]])  # a blob in each box


def _save(model: onnx.ModelProto, path: Path) -> Path:
    onnx.save(model, path)
    return path


def _image() -> np.ndarray:
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float64)
    v = np.zeros((H, W))
    for x0, y0 in CENTRES:
        v += np.exp(-((xx - x0) ** 2 + (yy - y0) ** 2) / (2 * 6.0**2))
    img = np.zeros((H, W, 3), np.uint8)
    img[..., 0] = np.round(255 * np.clip(v, 0, 1)).astype(np.uint8)
    return img


def _check_oracle_persons(persons, cliff: np.ndarray, atol_px: float, rtol: float) -> None:
    """The persons are the oracle's answer for these boxes and this CLIFF vector."""
    assert len(persons) == len(BOXES)
    exp = oracle_expected(cliff.astype(np.float64))
    sides = 1.2 * np.maximum(BOXES[:, 2] - BOXES[:, 0], BOXES[:, 3] - BOXES[:, 1])
    for i, p in enumerate(persons):
        expected_2d = CENTRES[i] + joint_offsets() * sides[i] / 2
        assert np.abs(p.joints_2d - expected_2d).max() < atol_px
        np.testing.assert_allclose(p.cam_trans, exp["cam_trans"][i], rtol=rtol, atol=rtol)
        np.testing.assert_allclose(p.mhr_params, exp["mhr_params"][i], rtol=rtol, atol=rtol * 5)
        np.testing.assert_allclose(p.joints_3d_local, exp["joints_3d"][i], rtol=rtol,
                                   atol=rtol)  # fmt: skip


@pytest.fixture(scope="module")
def image() -> np.ndarray:
    return _image()


def test_reference_oracle_file(tmp_path: Path, image: np.ndarray) -> None:
    hmr = HMRModel(_save(build_oracle(), tmp_path / "o.onnx"), device="cpu")
    sig = hmr.signature
    assert (sig.batch, sig.image_size, sig.cliff_focal, sig.layout) == (None, 224, False, "full")
    _check_oracle_persons(hmr.predict(image, BOXES), cliff_vectors(BOXES, (W, H)), 0.5, 1e-5)


def test_float16_io_is_cast_at_the_boundary(tmp_path: Path, image: np.ndarray) -> None:
    path = _save(with_float16_io(build_oracle()), tmp_path / "fp16io.onnx")
    hmr = HMRModel(path, device="cpu")
    types = {a.type for a in (*hmr.model_session.session.get_inputs(),
                              *hmr.model_session.session.get_outputs())}  # fmt: skip
    assert types == {"tensor(float16)"}  # the session really runs float16 I/O
    persons = hmr.predict(image, BOXES)
    out = hmr.infer(*[getattr(hmr.prepare(image, BOXES), k) for k in ("image", "cliff_cond")])
    assert all(v.dtype == np.float32 for v in out.values())
    # float16 keeps 11 bits: about 1e-3 relative, i.e. a fraction of a pixel here
    _check_oracle_persons(persons, cliff_vectors(BOXES, (W, H)), 1.5, 2e-2)


def test_fixed_batch_runs_padded_chunks(tmp_path: Path, image: np.ndarray) -> None:
    path = _save(with_fixed_batch(build_oracle(), 1), tmp_path / "b1.onnx")
    hmr = HMRModel(path, device="cpu")
    assert hmr.signature.batch == 1 and hmr.pad_batch == 1
    _check_oracle_persons(hmr.predict(image, BOXES), cliff_vectors(BOXES, (W, H)), 0.5, 1e-5)
    with pytest.raises(UnsupportedModelError, match="fixed batch of 1; pad_batch=4"):
        HMRModel(path, device="cpu", pad_batch=4, warmup=False)
    two = _save(with_fixed_batch(build_oracle(), 2), tmp_path / "b2.onnx")
    hmr2 = HMRModel(two, device="cpu")  # 3 persons: chunks of 2, the last padded
    _check_oracle_persons(hmr2.predict(image, BOXES), cliff_vectors(BOXES, (W, H)), 0.5, 1e-5)


def test_generic_output_names_are_bound_by_shape(tmp_path: Path, image: np.ndarray) -> None:
    names = {"mhr_params": "output_3", "shape_params": "output_0", "cam_trans": "output_4",
             "joints_2d": "output_1", "joints_3d": "output_2"}  # fmt: skip
    model = with_output_names(build_oracle(), names)
    order = sorted(model.graph.output, key=lambda v: v.name)  # positions shuffled too
    del model.graph.output[:]
    model.graph.output.extend(order)
    hmr = HMRModel(_save(model, tmp_path / "generic.onnx"), device="cpu")
    assert hmr.signature.bound_by == "shape" and hmr.signature.outputs == names
    _check_oracle_persons(hmr.predict(image, BOXES), cliff_vectors(BOXES, (W, H)), 0.5, 1e-5)


def test_generic_names_with_two_outputs_of_one_shape_are_refused(tmp_path: Path) -> None:
    f = TensorProto.FLOAT
    ins, _ = contract_io()
    outs = [("o0", [N, 204], f), ("o1", [N, 45], f), ("o2", [N, 3], f), ("o3", [N, 3], f),
            ("o4", [N, 70, 3], f)]  # fmt: skip
    with pytest.raises(ContractError) as err:
        HMRModel(_save(build_io_model(ins, outs), tmp_path / "g.onnx"), device="cpu")
    msg = str(err.value)
    assert "outputs 'o2' and 'o3' both have the shape of 'cam_trans'" in msg
    assert "no output has the shape of 'joints_2d' (N, 70, 2)" in msg


def test_cliff_focal_and_image_size_metadata(tmp_path: Path, image: np.ndarray) -> None:
    model = with_metadata(build_oracle(size=288), cliff_focal="1", image_size="288")
    path = _save(model, tmp_path / "focal288.onnx")
    hmr = HMRModel(path, device="cpu")
    assert hmr.image_size == 288 and hmr.cliff_focal
    batch = hmr.prepare(image, BOXES)
    assert batch.image.shape == (3, 3, 288, 288)
    default_f = 1.05 * np.hypot(W, H)
    np.testing.assert_allclose(batch.cliff_cond, focal_cliff_vectors(BOXES, (W, H), default_f))
    persons = hmr.predict(image, BOXES)
    # the oracle's cam_trans is cliff_cond + (0, 0, 5): the graph got the focal-aware vector
    _check_oracle_persons(persons, focal_cliff_vectors(BOXES, (W, H), default_f), 0.5, 1e-5)
    assert all(p.focal_length == pytest.approx(default_f) for p in persons)
    known = HMRModel(path, device="cpu", focal=900.0)
    persons = known.predict(image, BOXES)
    _check_oracle_persons(persons, focal_cliff_vectors(BOXES, (W, H), 900.0), 0.5, 1e-5)
    assert {p.focal_length for p in persons} == {900.0}
    assert persons[0].intrinsics[0, 0] == 900.0


def test_image_size_metadata_on_dynamic_spatial_axes(tmp_path: Path, image: np.ndarray) -> None:
    ins, outs = contract_io()
    ins[0] = ("image", [N, 3, "H", "W"], TensorProto.FLOAT)
    model = with_metadata(build_io_model(ins, outs), image_size="[256, 256]")
    hmr = HMRModel(_save(model, tmp_path / "dyn.onnx"), device="cpu")
    assert hmr.image_size == 256 and not hmr.cliff_focal
    assert hmr.prepare(image, BOXES).image.shape == (3, 3, 256, 256)
    assert len(hmr.predict(image, BOXES)) == 3


def test_focal_is_refused_for_a_pixel_conditioned_file(tmp_path: Path) -> None:
    path = _save(build_oracle(), tmp_path / "pixel.onnx")
    with pytest.raises(UnsupportedModelError, match="pixel-conditioned model"):
        HMRModel(path, device="cpu", focal=900.0, warmup=False)
    with pytest.raises(ValueError, match="positive"):
        HMRModel(path, device="cpu", focal=-3.0, warmup=False)


def test_mhr_only_layout_is_refused_without_a_rig_and_runs_with_one(
    tmp_path: Path, image: np.ndarray
) -> None:
    path = _save(without_output(build_oracle(), "joints_3d"), tmp_path / "mhr_only.onnx")
    with pytest.raises(UnsupportedModelError) as err:
        HMRModel(path, device="cpu")
    msg = str(err.value)
    assert "mhr_only.onnx is an InstantHMR 'MHR-only' file" in msg
    assert "no joints_3d" in msg and "instanthmr[mhr]" in msg and "mhr_rig=" in msg

    def rig(mhr_params: np.ndarray, shape_params: np.ndarray) -> np.ndarray:
        # a stand-in for Meta's rig: a known function of the parameters it is given
        return np.repeat(mhr_params[:, :3, None], 70, axis=2).transpose(0, 2, 1) * 0.01

    hmr = HMRModel(path, device="cpu", mhr_rig=rig)
    assert hmr.signature.mhr_only
    persons = hmr.predict(image, BOXES)
    exp = oracle_expected(cliff_vectors(BOXES, (W, H)).astype(np.float64))
    for i, p in enumerate(persons):
        np.testing.assert_allclose(p.joints_3d_local, np.tile(exp["mhr_params"][i, :3] * 0.01,
                                                              (70, 1)), rtol=1e-4, atol=1e-6)
    bad = HMRModel(path, device="cpu", mhr_rig=lambda m, s: np.zeros((len(m), 17, 3)))
    with pytest.raises(ValueError, match=r"mhr_rig returned shape \(3, 17, 3\); expected"):
        bad.predict(image, BOXES)


@pytest.mark.parametrize(
    ("props", "expected"),
    [
        ({"image_size": "big"}, "metadata image_size='big' is not a square crop size"),
        ({"image_size": "256"}, "is 224 px square but metadata image_size says 256"),
        ({"image_size": "288,256"}, "is not a square crop size"),
    ],
)
def test_a_wrong_file_lists_its_differences(tmp_path: Path, props, expected: str) -> None:
    path = _save(with_metadata(build_oracle(), **props), tmp_path / "wrong.onnx")
    with pytest.raises(ContractError, match=expected):
        HMRModel(path, device="cpu", warmup=False)


def test_every_variant_at_once(tmp_path: Path, image: np.ndarray) -> None:
    names = {n: f"out{i}" for i, n in enumerate(["mhr_params", "shape_params", "cam_trans",
                                                 "joints_2d", "joints_3d"])}  # fmt: skip
    model = with_output_names(build_oracle(size=288), names)
    model = with_metadata(with_fixed_batch(with_float16_io(model), 1),
                          cliff_focal="true", image_size="288")  # fmt: skip
    hmr = HMRModel(_save(model, tmp_path / "all.onnx"), device="cpu", focal=700.0)
    sig = hmr.signature
    assert (sig.batch, sig.image_size, sig.cliff_focal, sig.bound_by) == (1, 288, True, "shape")
    cliff = focal_cliff_vectors(BOXES, (W, H), 700.0)
    _check_oracle_persons(hmr.predict(image, BOXES), cliff, 1.5, 2e-2)
