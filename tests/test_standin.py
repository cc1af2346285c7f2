"""The stand-in HMR model shipped in the package: BlazePose GHUM 3D in the InstantHMR contract.

Real footage without ../shared: the embedded sample clip (a cut of vtest.avi) and person
boxes found on it once by YOLOX-nano (tests/fixtures/sample_boxes.json: inputs, so these
tests need no detector). Only the rebuild and the parity with BlazePose's own file need
../shared/data (fixture ``shared_data``).

Tolerances (measured on the sample, 33 persons on 5 frames: per-person median projection
residual 0.6-3.1 px, worst real joint 7.5 px, every joint 8.5 px):
- projection of ``joints_3d + cam_trans`` onto ``joints_2d``: per-person median over the real
  joints <= 4 px, every real joint <= 12 px, on the 4:3 clip and on the clip padded to 16:9;
- 2D joints on the body: >= 90% of each person's real joints inside their box grown by 10%;
- height (heel -> ankle -> knee -> hip -> mid-shoulder -> nose along the skeleton, plus 0.12 m
  for the head above the nose) 1.4-2.0 m.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest

from instanthmr.export import standin as build
from instanthmr.export.standin_joints import JOINTS, LANDMARKS, REAL_JOINTS, joint_matrix
from instanthmr.geometry import (
    cliff_vectors,
    crop_images,
    normalize_crops,
    project_points,
    square_crops,
)
from instanthmr.hmr import standin
from instanthmr.hmr.kinds import STANDIN
from instanthmr.hmr.model import HMRModel, finite_rows
from instanthmr.hmr.weights import resolve_model
from instanthmr.skeleton import FLIP_PERMUTATION, JOINT_INDEX, JOINT_NAMES
from instanthmr.sources.files import open_source, sample_video_path

FIXTURE = Path(__file__).parent / "fixtures" / "sample_boxes.json"
J = JOINT_INDEX
MEDIAN_PX, MAX_PX = 4.0, 12.0
HEAD_ABOVE_NOSE_M = 0.12


@pytest.fixture(scope="module")
def hmr() -> HMRModel:
    return HMRModel("standin", device="cpu")


@pytest.fixture(scope="module")
def sample() -> list[tuple[np.ndarray, np.ndarray]]:
    """(frame RGB, YOLOX boxes) for the fixture's frames of the embedded clip."""
    frames = json.loads(FIXTURE.read_text())["frames"]
    with open_source(video=sample_video_path()) as src:
        images = {f.index: f.image for f in src if str(f.index) in frames}
    assert sorted(images) == sorted(int(k) for k in frames)
    return [(images[int(k)], np.array(v["boxes"])) for k, v in frames.items()]


def _height(j: np.ndarray) -> float:
    def seg(a: str, b: str) -> float:
        return float(np.linalg.norm(j[J[a]] - j[J[b]]))

    legs = np.mean([sum(seg(f"{s}_{a}", f"{s}_{b}") for a, b in
                        (("heel", "ankle"), ("ankle", "knee"), ("knee", "hip")))
                    for s in ("left", "right")])  # fmt: skip
    hips = (j[J["left_hip"]] + j[J["right_hip"]]) / 2
    shoulders = (j[J["left_shoulder"]] + j[J["right_shoulder"]]) / 2
    trunk = np.linalg.norm(shoulders - hips) + np.linalg.norm(j[J["nose"]] - shoulders)
    return float(legs + trunk + HEAD_ABOVE_NOSE_M)


def _residuals(person, real: np.ndarray, cam: np.ndarray | None = None) -> np.ndarray:
    cam = person.cam_trans if cam is None else cam
    proj = project_points(person.joints_3d_local + cam, person.focal_length,
                          person.principal_point)  # fmt: skip
    return np.linalg.norm(proj - person.joints_2d, axis=1)[real]


# ------------------------------------------------------------------------------ the file
def test_the_shipped_file_is_the_stand_in_and_says_so(hmr: HMRModel) -> None:
    path = resolve_model("standin")
    assert path == standin.standin_path() and path.parent.name == "assets"
    assert hmr.model_kind.name == STANDIN and not hmr.model_kind.is_instanthmr
    assert "NOT InstantHMR" in hmr.model_kind.notice
    meta = hmr.model_session.metadata
    assert json.loads(meta[standin.META_REAL_JOINTS]) == list(REAL_JOINTS)
    assert set(json.loads(meta[standin.META_JOINT_SOURCES])) == set(JOINT_NAMES)
    assert meta[standin.META_GRAPH_ASPECT] == "4:3" and "Apache" in meta["licence"]
    assert hmr.real_joints.sum() == len(REAL_JOINTS) == 21
    notice = (path.parent / standin.NOTICE).read_text()
    assert "Apache License, Version 2.0" in notice and "NOT InstantHMR" in notice
    # dynamic batch, and the contract's names: HMRModel checked them at load
    assert [i.shape[0] for i in hmr.model_session.session.get_inputs()] == ["N", "N"]
    proto = onnx.load(str(path))
    fp16 = [t for t in proto.graph.initializer if t.data_type == onnx.TensorProto.FLOAT16]
    assert sum(int(np.prod(t.dims)) for t in fp16) > 3_000_000  # the weights are stored fp16


def test_the_joint_rules() -> None:
    m = joint_matrix()
    assert m.shape == (70, 33)
    np.testing.assert_allclose(m.sum(axis=1), 1.0, atol=1e-6)  # affine: works in px and m
    assert [r.name for r in JOINTS] == list(JOINT_NAMES)
    real = {r.name for r in JOINTS if r.real}
    assert real == set(REAL_JOINTS)
    assert {"neck", "left_olecranon", "right_index_tip", "left_small_toe_tip"}.isdisjoint(real)
    assert {"nose", "left_heel", "right_wrist", "left_big_toe_tip"} <= real
    for r in JOINTS:  # a real joint is exactly one landmark (some single ones are guesses)
        assert np.count_nonzero(m[J[r.name]]) == 1 or not r.real
    np.testing.assert_allclose(m[J["neck"], [11, 12]], [0.5, 0.5])
    # mirror symmetry: swapping the person's left and right landmarks swaps the MHR70 joints
    swap = {"left": "right", "right": "left"}
    flip_lm = [LANDMARKS.index("_".join(swap.get(w, w) for w in n.split("_"))) for n in LANDMARKS]
    np.testing.assert_allclose(m[FLIP_PERMUTATION][:, flip_lm], m, atol=1e-6)


def test_solve_cam_trans_recovers_a_known_translation() -> None:
    rng = np.random.default_rng(1)
    joints = rng.normal(0, 0.4, (3, 70, 3))
    t = np.array([[0.5, -0.2, 8.0], [-3.0, 1.0, 20.0], [0.0, 0.3, 3.5]])
    cam = joints + t[:, None]
    rays = cam[..., :2] / cam[..., 2:]
    weights = np.r_[np.ones(21), np.zeros(49)]
    np.testing.assert_allclose(standin.solve_cam_trans(rays, joints, weights), t, atol=1e-9)


# ------------------------------------------------------------------------------ real footage
def test_persons_on_the_sample_have_joints_on_the_body(hmr: HMRModel, sample) -> None:
    n_boxes = n_persons = 0
    for image, boxes in sample:
        persons = hmr.predict(image, boxes)
        n_boxes, n_persons = n_boxes + len(boxes), n_persons + len(persons)
        for p in persons:
            real = hmr.real_joints
            grow = 0.1 * (p.bbox[2:] - p.bbox[:2])
            inside = ((p.joints_2d >= p.bbox[:2] - grow) & (p.joints_2d <= p.bbox[2:] + grow))
            assert inside.all(axis=1)[real].mean() >= 0.9
            y2, y3 = p.joints_2d[:, 1], p.joints_3d_local[:, 1]  # both Y down
            for y in (y2, y3):
                assert min(y[J["left_ankle"]], y[J["right_ankle"]]) > max(
                    y[J["left_hip"]], y[J["right_hip"]]
                )
                assert y[J["nose"]] < min(y[J["left_shoulder"]], y[J["right_shoulder"]])
            assert 1.4 <= _height(p.joints_3d_local) <= 2.0
            assert not p.mhr_params.any() and not p.shape_params.any()
    assert n_persons >= 0.8 * n_boxes  # the one detector false positive may go


@pytest.mark.parametrize("pad", [0, 256])
def test_joints_3d_plus_cam_trans_project_onto_joints_2d(hmr: HMRModel, sample, pad) -> None:
    """4:3 (the clip) and 16:9 (the clip padded to 1024x576): the graph assumes 4:3, and the
    model code solves cam_trans again for the real frame, so both hold; the graph's own
    cam_trans on the 16:9 frame does not."""
    worst_graph = 0.0
    for image, boxes in sample:
        if pad:
            canvas = np.zeros((image.shape[0], image.shape[1] + pad, 3), np.uint8)
            canvas[:, pad // 2 : pad // 2 + image.shape[1]] = image
            image, boxes = canvas, boxes + [pad // 2, 0, pad // 2, 0]
        batch = hmr.prepare(image, boxes)
        outputs = hmr.infer(batch.image, batch.cliff_cond)
        persons = hmr.postprocess(batch, outputs)
        graph_cam = outputs["cam_trans"][finite_rows(outputs)]
        assert len(persons) == len(graph_cam) > 0
        for p, raw in zip(persons, graph_cam, strict=True):
            err = _residuals(p, hmr.real_joints)
            assert np.median(err) <= MEDIAN_PX and err.max() <= MAX_PX
            worst_graph = max(worst_graph, float(np.median(_residuals(p, hmr.real_joints, raw))))
            if not pad:
                np.testing.assert_allclose(p.cam_trans, raw, rtol=1e-4, atol=1e-4)
    if pad:
        assert worst_graph > 3 * MEDIAN_PX


def test_nobody_in_the_crop_gives_nan_joints_and_the_person_is_left_out(hmr: HMRModel, sample):
    image, boxes = sample[0]
    h, w = image.shape[:2]
    empty = np.zeros_like(image)  # a black frame: nobody anywhere
    batch = hmr.prepare(empty, boxes[:2])
    out = hmr.infer(batch.image, batch.cliff_cond)
    assert np.isnan(out["joints_2d"]).all() and np.isnan(out["joints_3d"]).all()
    assert np.isnan(out["cam_trans"]).all() and not out["mhr_params"].any()
    assert not finite_rows(out).any() and hmr.predict(empty, boxes[:2]) == []
    mixed = hmr.predict(image, np.r_[boxes[:1], [[0, 0, 60, 60]]])  # a person + a corner
    assert len(mixed) == 1 and np.allclose(mixed[0].bbox, boxes[0])
    assert (w, h) == (768, 576)


def test_a_batch_equals_one_run_per_person(hmr: HMRModel, sample) -> None:
    image, boxes = sample[1]
    batch = hmr.prepare(image, boxes[:4])
    singles = [hmr.infer(batch.image[i : i + 1], batch.cliff_cond[i : i + 1]) for i in range(4)]
    for n in (1, 2, 4):
        out = hmr.infer(batch.image[:n], batch.cliff_cond[:n])
        for k, v in out.items():
            want = np.concatenate([s[k] for s in singles[:n]])
            np.testing.assert_allclose(v, want, atol=1e-5, err_msg=f"{k} at N={n}")


# ------------------------------------------------------------------------------ the build
def _crops(sample) -> tuple[np.ndarray, np.ndarray]:
    """Normalised 224 crops of four persons of the clip, and their CLIFF vectors."""
    image, boxes = sample[2]
    boxes = boxes[:4]
    crops = normalize_crops(crop_images(image, square_crops(boxes)))
    return crops, cliff_vectors(boxes, (768, 576))


def _resize_like_the_graph(img: np.ndarray) -> np.ndarray:
    """The graph's own first steps (undo ImageNet, bilinear 224 -> 256) as a tiny ONNX graph."""
    from onnx import TensorProto, helper

    from instanthmr.geometry import IMAGENET_MEAN, IMAGENET_STD

    g = build._Graph()
    rgb = g.op("Add", g.op("Mul", "image", g.const(IMAGENET_STD.reshape(1, 3, 1, 1))),
               g.const(IMAGENET_MEAN.reshape(1, 3, 1, 1)))  # fmt: skip
    empty = g.const(np.zeros(0, np.float32))
    g.op("Resize", rgb, empty, empty, g.const([len(img), 3, 256, 256], np.int64), out="out",
         mode="linear", coordinate_transformation_mode="half_pixel")  # fmt: skip
    graph = helper.make_graph(
        g.nodes, "resize",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, list(img.shape))],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, [len(img), 3, 256, 256])],
        g.inits,
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 11)])
    model.ir_version = 6
    import onnxruntime as ort

    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(["out"], {"image": img})[0]


def test_a_rebuild_from_blazepose_gives_the_shipped_model(shared_data, sample, tmp_path) -> None:
    """tools/make_standin.py rebuilds the shipped file; its fp16 storage loses nothing
    against a float32 build (MediaPipe's weights are float16 values)."""
    source = shared_data / "blazepose_landmark_full.onnx"
    r16 = build.build_standin(source, tmp_path / "fp16.onnx")
    r32 = build.build_standin(source, tmp_path / "fp32.onnx", fp16=False)
    assert r16.bytes < 0.55 * r32.bytes and r16.batch_max_diff < 1e-5
    img, cond = _crops(sample)
    shipped = build._run(onnx.load(str(standin.standin_path())), img, cond)
    fresh = build._run(onnx.load(str(r16.path)), img, cond)
    full = build._run(onnx.load(str(r32.path)), img, cond)
    assert np.isfinite(shipped["joints_2d"]).all()
    for k in shipped:
        np.testing.assert_array_equal(fresh[k], shipped[k], err_msg=k)
        np.testing.assert_allclose(full[k], shipped[k], atol=1e-5, err_msg=k)
    meta = {p.key: p.value for p in onnx.load(str(r16.path)).metadata_props}
    assert meta == {p.key: p.value for p in onnx.load(str(standin.standin_path())).metadata_props}


def test_the_wrapper_gives_blazepose_own_landmarks(shared_data, sample) -> None:
    """Against BlazePose's own file, run on the 256 image the graph makes from the crop: the
    joints are the landmarks through the rules (2D within 0.001 px, 3D within 0.01 mm)."""
    import onnxruntime as ort

    img, cond = _crops(sample)
    ours = build._run(onnx.load(str(standin.standin_path())), img, cond)
    x256 = _resize_like_the_graph(img)
    sess = ort.InferenceSession(str(shared_data / "blazepose_landmark_full.onnx"),
                                providers=["CPUExecutionProvider"])  # fmt: skip
    m = joint_matrix()
    for i, x in enumerate(x256):
        lm, world = sess.run(["Identity", "Identity_4"], {"input_1": x[None]})
        px = m @ lm.reshape(39, 5)[:33, :2]
        want_2d = (px * 224 / 256 - 0.5) / 112 - 1
        np.testing.assert_allclose(ours["joints_2d"][i], want_2d, atol=1e-3 / 112)
        np.testing.assert_allclose(ours["joints_3d"][i], m @ world.reshape(39, 3)[:33], atol=1e-5)
