"""RF-DETR person detector: numpy decoding, pre-processing, both backends, export, selection.

Every RF-DETR model built here uses random initialisation (``pretrain_weights=None``): the
network and its compute are real, its detections are meaningless. Tests on it check that the
numpy path reproduces rfdetr's own path exactly, never detection quality.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import numpy as np
import onnx
import pytest
import supervision as sv
from onnx import TensorProto, helper, numpy_helper

from instanthmr.detector import (
    PERSON_CLASS_ID,
    VARIANTS,
    DetectorContractError,
    OnnxPersonDetector,
    PersonDetector,
    create_detector,
    torch_backend,
)
from instanthmr.detector.base import NUM_LOGITS, NUM_QUERIES, default_model_path
from instanthmr.detector.decode import decode, preprocess, select_topk

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
HAS_RFDETR = all(importlib.util.find_spec(m) is not None for m in ("torch", "rfdetr"))
needs_rfdetr = pytest.mark.skipif(not HAS_RFDETR, reason="needs the export extra (torch, rfdetr)")


def logit(p: float) -> float:
    return float(np.log(p / (1 - p)))


def raw_outputs(entries: list[tuple[int, int, float, tuple[float, float, float, float]]]):
    """(1, 300, 4) boxes and (1, 300, 91) logits: all scores ~0 except the given entries.

    Each entry is (query, class slot, probability, normalised cx, cy, w, h box).
    """
    boxes = np.tile(np.array([0.5, 0.5, 0.1, 0.1], np.float32), (1, NUM_QUERIES, 1))
    logits = np.full((1, NUM_QUERIES, NUM_LOGITS), -12.0, np.float32)
    for query, cls, prob, box in entries:
        logits[0, query, cls] = logit(prob)
        boxes[0, query] = box
    return boxes, logits


def real_image() -> np.ndarray:
    """messi5.jpg from ../shared/data as RGB, or a generated image when it is absent."""
    path = SHARED_DATA / "messi5.jpg"
    if path.is_file():
        import cv2

        return np.ascontiguousarray(cv2.imread(str(path))[..., ::-1])
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, size=(342, 548, 3), dtype=np.uint8)


# ---------------------------------------------------------------- decoding (synthetic)


def test_decode_known_boxes_order_and_class_filter():
    boxes, logits = raw_outputs(
        [
            (5, PERSON_CLASS_ID, 0.95, (0.5, 0.25, 0.2, 0.5)),
            (7, 3, 0.99, (0.1, 0.1, 0.1, 0.1)),  # a car scoring higher: dropped
            (9, PERSON_CLASS_ID, 0.75, (0.25, 0.5, 0.1, 0.2)),
            (11, PERSON_CLASS_ID, 0.40, (0.8, 0.8, 0.1, 0.1)),  # below threshold
        ]
    )
    det = decode(boxes, logits, image_size=(200, 100), threshold=0.5)
    assert isinstance(det, sv.Detections)
    assert len(det) == 2
    np.testing.assert_allclose(det.confidence, [0.95, 0.75], rtol=1e-5)
    np.testing.assert_allclose(det.xyxy[0], [80, 0, 120, 50], atol=1e-4)
    np.testing.assert_allclose(det.xyxy[1], [40, 40, 60, 60], atol=1e-4)
    assert det.class_id.tolist() == [PERSON_CLASS_ID] * 2
    assert det.xyxy.dtype == np.float32 and det.confidence.dtype == np.float32


def test_decode_clamps_boxes_to_the_image():
    boxes, logits = raw_outputs([(0, PERSON_CLASS_ID, 0.9, (0.05, 0.95, 0.3, 0.3))])
    det = decode(boxes, logits, image_size=(640, 480), threshold=0.5)
    np.testing.assert_allclose(det.xyxy[0], [0, 384, 128, 480], atol=1e-3)


def test_decode_threshold_and_empty_result_type():
    boxes, logits = raw_outputs([(3, PERSON_CLASS_ID, 0.6, (0.5, 0.5, 0.2, 0.2))])
    assert len(decode(boxes, logits, (100, 100), threshold=0.5)) == 1
    empty = decode(boxes, logits, (100, 100), threshold=0.7)
    assert isinstance(empty, sv.Detections) and len(empty) == 0
    assert empty.xyxy.shape == (0, 4) and empty.confidence.shape == (0,)


def test_decode_ranks_queries_by_person_score_so_other_classes_cannot_crowd_persons_out():
    """rfdetr's top-300 pairs over all classes could miss this person; we rank person scores."""
    boxes, logits = raw_outputs(
        [(q, 2, 0.99, (0.5, 0.5, 0.1, 0.1)) for q in range(3)]
        + [(10, PERSON_CLASS_ID, 0.9, (0.5, 0.5, 0.1, 0.1))]
    )
    assert len(decode(boxes, logits, (100, 100), 0.5, num_select=1)) == 1
    # a query whose other class scores higher still yields its person score
    logits[0, 10, 5] = logit(0.999)
    out = decode(boxes, logits, (100, 100), 0.5)
    assert len(out) == 1 and out.confidence[0] == pytest.approx(0.9, rel=1e-5)
    # num_select limits how many queries are ranked
    boxes, logits = raw_outputs([(q, PERSON_CLASS_ID, 0.6 + q / 100, (0.5, 0.5, 0.1, 0.1))
                                 for q in range(5)])  # fmt: skip
    assert len(decode(boxes, logits, (100, 100), 0.5, num_select=3)) == 3


def test_select_topk_breaks_ties_by_index_like_a_stable_sort():
    rng = np.random.default_rng(1)
    scores = rng.integers(0, 20, size=(300, 91)).astype(np.float32) / 20  # many ties
    top = select_topk(scores, 300)
    flat = scores.reshape(-1)
    reference = np.lexsort((np.arange(flat.size), -flat))[:300]
    np.testing.assert_array_equal(top, reference)


@needs_rfdetr
def test_decode_matches_rfdetr_postprocess():
    import torch
    from rfdetr.models.postprocess import PostProcess

    rng = np.random.default_rng(2)
    logits = rng.normal(-4, 2.5, size=(1, NUM_QUERIES, NUM_LOGITS)).astype(np.float32)
    logits[..., PERSON_CLASS_ID] += 3.0  # enough persons inside the top 300 pairs
    boxes = rng.uniform(0.05, 0.9, size=(1, NUM_QUERIES, 4)).astype(np.float32)
    ref = PostProcess(num_select=300)(
        {"pred_logits": torch.from_numpy(logits), "pred_boxes": torch.from_numpy(boxes)},
        target_sizes=torch.tensor([[480, 640]]),
    )[0]
    keep = (ref["labels"] == PERSON_CLASS_ID) & (ref["scores"] > 0.2)
    s300 = float(ref["scores"].min())  # rfdetr's 300th (query, class) pair
    ours = decode(boxes, logits, (640, 480), threshold=0.2)
    # a superset: rfdetr's persons plus persons scoring below its 300th pair
    assert len(ours) >= int(keep.sum()) > 10
    assert (ours.confidence[int(keep.sum()):] <= s300).all()
    same = decode(boxes, logits, (640, 480), threshold=max(0.2, s300))
    assert len(same) == int(keep.sum())
    np.testing.assert_allclose(same.confidence, ref["scores"][keep].numpy(), rtol=1e-6)
    np.testing.assert_allclose(same.xyxy, ref["boxes"][keep].numpy(), rtol=1e-6, atol=1e-4)


# ---------------------------------------------------------------- variants


@needs_rfdetr
def test_variant_resolutions_match_installed_rfdetr():
    import rfdetr

    for v in VARIANTS.values():
        cls = getattr(rfdetr, v.class_name)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # RFDETRBase is deprecated
            config = cls.get_model_config(cls)  # class attributes only; builds no network
        assert config.resolution == v.resolution, v.name
        assert config.num_queries == NUM_QUERIES and config.num_select == NUM_QUERIES


def test_unknown_variant_and_backend_are_refused():
    with pytest.raises(ValueError, match="nano, small"):
        create_detector("tiny")
    with pytest.raises(ValueError, match="backend"):
        create_detector("nano", backend="tflite")


# ---------------------------------------------------------------- a tiny stand-in ONNX graph


def tiny_graph(
    path: Path,
    resolution: int = 384,
    queries: int = NUM_QUERIES,
    classes: int = NUM_LOGITS,
    names: tuple[str, str, str] = ("input", "dets", "labels"),
) -> Path:
    """An ONNX file shaped like an rfdetr export with constant outputs: one person (query 0,
    p=0.9, box cx 0.5 cy 0.5 w 0.2 h 0.4) and one car (query 1, p=0.95)."""
    boxes, logits = raw_outputs(
        [
            (0, PERSON_CLASS_ID, 0.9, (0.5, 0.5, 0.2, 0.4)),
            (1, 3, 0.95, (0.2, 0.2, 0.1, 0.1)),
        ]
    )
    boxes, logits = boxes[:, :queries], logits[:, :queries, :classes]
    graph = helper.make_graph(
        [
            helper.make_node("Identity", ["c_boxes"], [names[1]]),
            helper.make_node("Identity", ["c_logits"], [names[2]]),
        ],
        "tiny_rfdetr",
        [
            helper.make_tensor_value_info(
                names[0], TensorProto.FLOAT, [1, 3, resolution, resolution]
            )
        ],
        [
            helper.make_tensor_value_info(names[1], TensorProto.FLOAT, list(boxes.shape)),
            helper.make_tensor_value_info(names[2], TensorProto.FLOAT, list(logits.shape)),
        ],
        [numpy_helper.from_array(boxes, "c_boxes"), numpy_helper.from_array(logits, "c_logits")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def test_onnx_backend_end_to_end_on_a_stand_in_graph(tmp_path):
    det = OnnxPersonDetector(tiny_graph(tmp_path / "tiny.onnx"), device="cpu", confidence=0.5)
    assert isinstance(det, PersonDetector)
    assert (det.variant, det.resolution, det.backend) == ("nano", 384, "onnx")
    assert det.provider == "CPUExecutionProvider"
    out = det.detect(np.zeros((480, 640, 3), np.uint8))
    np.testing.assert_allclose(out.xyxy, [[256, 144, 384, 336]], atol=1e-3)
    assert out.class_id.tolist() == [PERSON_CLASS_ID]
    high = OnnxPersonDetector(tmp_path / "tiny.onnx", device="cpu", confidence=0.95)
    assert len(high.detect(np.zeros((48, 64, 3), np.uint8))) == 0
    with pytest.raises(TypeError, match="uint8"):
        det.detect(np.zeros((48, 64, 3), np.float32))


def test_wrong_onnx_file_is_refused_with_every_difference(tmp_path):
    path = tiny_graph(tmp_path / "bad.onnx", resolution=320, queries=100,
                      names=("input", "dets", "scores"))  # fmt: skip
    with pytest.raises(DetectorContractError) as info:
        OnnxPersonDetector(path, variant="nano", device="cpu")
    diffs = "\n".join(info.value.differences)
    assert "resolution is 320" in diffs and "'nano' runs at 384" in diffs
    assert "output 'dets' axis 1 is 100, expected 300" in diffs
    assert "missing output 'labels'" in diffs
    assert "unexpected output 'scores'" in diffs
    assert len(info.value.differences) == 4
    assert "tools/export_detector.py" in str(info.value)


# ---------------------------------------------------------------- create_detector


def test_create_detector_finds_the_default_file_relative_to_cwd(tmp_path, monkeypatch, caplog):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FileNotFoundError, match=r"tools/export_detector\.py --variant nano"):
        create_detector("nano", backend="onnx")
    with pytest.raises(FileNotFoundError, match="not found"):
        create_detector("nano", model_path=tmp_path / "missing.onnx")
    (tmp_path / "models").mkdir()
    tiny_graph(tmp_path / default_model_path("nano"))
    det = create_detector("nano", backend="auto", device="cpu", confidence=0.3)
    assert isinstance(det, OnnxPersonDetector) and det.confidence == 0.3
    # an explicit file decides the variant; a contradicting request is logged, not fatal
    with caplog.at_level(logging.WARNING, logger="instanthmr.detector"):
        det = create_detector("small", model_path=default_model_path("nano"), device="cpu")
    assert (det.variant, det.resolution) == ("nano", 384)
    assert "not the requested 'small'" in caplog.text


def test_create_detector_refuses_a_file_of_the_wrong_kind(tmp_path):
    onnx_file, pth = tiny_graph(tmp_path / "d.onnx"), tmp_path / "c.pth"
    pth.write_bytes(b"not used")
    with pytest.raises(ValueError, match="torch backend takes"):
        create_detector("nano", backend="torch", model_path=onnx_file)
    with pytest.raises(ValueError, match="onnx backend runs"):
        create_detector("nano", backend="onnx", model_path=pth)


def test_create_detector_without_file_or_torch_explains_the_fix(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    real = importlib.util.find_spec
    monkeypatch.setattr(
        torch_backend.importlib.util, "find_spec",
        lambda name, *a: None if name in ("torch", "rfdetr") else real(name, *a),
    )  # fmt: skip
    with pytest.raises(ImportError, match=r"export_detector\.py") as info:
        create_detector("small", backend="auto")
    assert "models/rfdetr-small.onnx" in str(info.value)
    with pytest.raises(ImportError, match=r"instanthmr\[export\]"):
        create_detector("small", backend="torch")


# ---------------------------------------------------------------- torch backend (fake model)


class _FakeRFDETR:
    """Stands in for an rfdetr model: predict returns fixed COCO detections."""

    class model_config:  # noqa: N801
        resolution = 384

    class model:  # noqa: N801
        device = "cpu"

    @staticmethod
    def predict(image, threshold, include_source_image):
        return sv.Detections(
            xyxy=np.array([[0, 0, 5, 5], [1, 1, 9, 9], [2, 2, 4, 4]], np.float32),
            confidence=np.array([0.9, 0.6, 0.8], np.float32),
            class_id=np.array([3, 1, 1]),
            data={"class_name": np.array(["car", "person", "person"])},
        )


@needs_rfdetr
def test_torch_backend_keeps_persons_only_sorted():
    det = torch_backend.TorchPersonDetector("nano", model=_FakeRFDETR(), confidence=0.5)
    assert det.provider == "torch-cpu" and isinstance(det, PersonDetector)
    out = det.detect(np.zeros((10, 10, 3), np.uint8))
    np.testing.assert_allclose(out.confidence, [0.8, 0.6])
    np.testing.assert_allclose(out.xyxy, [[2, 2, 4, 4], [1, 1, 9, 9]])
    assert out.class_id.tolist() == [1, 1] and out.data == {}


def test_export_tool_refuses_random_init_with_checkpoint():
    spec = importlib.util.spec_from_file_location(
        "export_detector", ROOT / "tools/export_detector.py"
    )
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    with pytest.raises(SystemExit):
        tool.main(["--random-init", "--checkpoint", "x.pth"])


# ---------------------------------------------------------------- real rfdetr export


def test_export_records_provenance(detector_onnx):
    """The lead's session fixture: a random-init nano export (meaningless detections)."""
    det = OnnxPersonDetector(detector_onnx, device="cpu", confidence=0.99)
    assert (det.variant, det.resolution) == ("nano", 384)
    meta = det.model_session.metadata
    assert meta["instanthmr_detector_variant"] == "nano"
    assert meta["instanthmr_detector_resolution"] == "384"
    assert det.random_init is True
    empty = det.detect(np.zeros((240, 320, 3), np.uint8))  # random-init scores are ~0.05
    assert isinstance(empty, sv.Detections) and len(empty) == 0


def test_onnx_backend_never_imports_torch(detector_onnx):
    code = textwrap.dedent(
        f"""
        import sys
        import numpy as np
        from instanthmr.detector import create_detector
        det = create_detector("nano", backend="onnx", model_path={str(detector_onnx)!r},
                              device="cpu", confidence=0.0)
        out = det.detect(np.full((120, 160, 3), 128, np.uint8))
        assert det.backend == "onnx", det.backend
        bad = [m for m in ("torch", "rfdetr", "torchvision") if m in sys.modules]
        assert not bad, bad
        print("ok", len(out))
        """
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert res.returncode == 0, res.stderr[-2000:]
    assert res.stdout.startswith("ok")


@pytest.fixture(scope="module")
def paired_nano(tmp_path_factory):
    """One random-init rfdetr nano model and its ONNX export: the SAME weights in both."""
    pytest.importorskip("rfdetr")
    import torch

    from instanthmr.export.detector_export import export_rfdetr_onnx

    torch.manual_seed(0)
    model = torch_backend.build_rfdetr("nano", random_init=True, device="cpu")
    path = tmp_path_factory.mktemp("det-pair") / "rfdetr-nano-paired.onnx"
    export_rfdetr_onnx("nano", path, random_init=True, model=model)
    return model, path


@pytest.mark.slow
@needs_rfdetr
def test_preprocess_matches_rfdetr_predict_input(paired_nano):
    """The tensor rfdetr's predict feeds its network equals our numpy/cv2 pre-processing."""
    model, _ = paired_nano
    seen = []
    hook = model.model.model.register_forward_pre_hook(lambda m, args: seen.append(args[0]))
    image = real_image()
    try:
        model.predict(image, threshold=0.5, include_source_image=False)
    finally:
        hook.remove()
    ref = seen[0].detach().cpu().numpy()
    ours = preprocess(image, 384)
    assert ours.shape == ref.shape == (1, 3, 384, 384)
    np.testing.assert_allclose(ours, ref, atol=2e-4)


@pytest.mark.slow
@needs_rfdetr
def test_onnx_and_torch_backends_agree(paired_nano):
    """Same random-init weights in torch and ONNX: same person boxes and scores.

    The detections themselves are meaningless (random weights), so a threshold of 0 is
    used. A random head puts only a few persons (sometimes none) among rfdetr's top 300
    query/class pairs, so the comparison is also made with every pair ranked on both sides.
    """
    model, path = paired_nano
    image = real_image()
    torch_det = torch_backend.TorchPersonDetector("nano", model=model, confidence=0.0)
    onnx_det = OnnxPersonDetector(path, variant="nano", device="cpu", confidence=0.0)
    a, b = torch_det.detect(image), onnx_det.detect(image)
    # rfdetr ranks (query, class) pairs, we rank person scores: ours is a superset whose
    # first len(a) detections are rfdetr's (see instanthmr.detector.decode)
    assert len(b) >= len(a)
    b_top = b[: len(a)]
    post = model.model.postprocess
    post.num_select = NUM_QUERIES * NUM_LOGITS
    try:
        wide_a = torch_det.detect(image)
    finally:
        post.num_select = 300
    assert len(wide_a) == len(b) == NUM_QUERIES  # each query has a person score
    for ta, tb in ((a, b_top), (wide_a, b)):
        np.testing.assert_allclose(tb.confidence, ta.confidence, rtol=1e-3)
        np.testing.assert_allclose(tb.xyxy, ta.xyxy, rtol=1e-3, atol=1e-2)
