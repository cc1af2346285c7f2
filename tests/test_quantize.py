"""Int8 quantisation: parity with tolerances on the random-init exports, and the metrics.

The HMR and RF-DETR files here are random-init exports (tests/conftest.py): real graphs and
compute, meaningless outputs, and value ranges unlike trained weights, so the parity checked
here is a plumbing check of the quantisation recipe, not an accuracy claim. Calibration uses
a few frames of the embedded sample clip.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest

from instanthmr.runtime import parity as P  # noqa: N812
from instanthmr.runtime.contract import HMR_INPUTS, HMR_OUTPUTS
from instanthmr.runtime.precision import file_sha256
from instanthmr.runtime.quantize import quantize_model
from instanthmr.runtime.session import Runtime


def _hmr_feeds(n: int = 3) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(5)
    return {
        "image": rng.normal(size=(n, 3, 224, 224)).astype(np.float32),
        "cliff_cond": rng.uniform(-1, 1, (n, 3)).astype(np.float32),
    }


@pytest.fixture(scope="module")
def hmr_int8(hmr_onnx: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("q") / "instanthmr-random.int8.onnx"
    quantize_model(hmr_onnx, out, calibration_frames=3, eval_frames=2, speed_rounds=2)
    return out


def test_hmr_int8_parity_within_tolerance(hmr_onnx: Path, hmr_int8: Path) -> None:
    report = P.read_report(hmr_int8)
    assert report is not None and report["kind"] == "hmr" and report["method"] == "static"
    assert report["random_init"] is True  # the plumbing-check caveat travels with the file
    assert report["source"]["sha256"] == file_sha256(hmr_onnx)
    par = report["parity"]
    assert report["within_tolerance"] and P.violations("hmr", par) == []
    # quantised for real: not a copy of the fp32 graph (some error), and within tolerance
    assert 0.0 < par["joints_2d_px_p99"] <= par["joints_2d_px_max"] <= 8.0
    assert 0.0 < par["joints_3d_mm_p99"] <= par["joints_3d_mm_max"] <= 80.0
    model = onnx.load(hmr_int8)
    assert P.is_quantized(model)
    ops = {n.op_type for n in model.graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    speed = report["speed"]["CPUExecutionProvider"]
    assert speed["fp32_ms"] > 0 and speed["int8_ms"] > 0 and speed["rounds"] == 2
    # the int8 file keeps the contract and, run on new inputs, stays near fp32
    rt = Runtime("cpu")
    q = rt.load(hmr_int8, inputs=HMR_INPUTS, outputs=HMR_OUTPUTS)
    assert q.precision == "int8"
    ref = rt.load(hmr_onnx, precision="fp32").run(_hmr_feeds())
    again = P.hmr_parity(ref, q.run(_hmr_feeds()))
    assert again["joints_2d_px_max"] < 3 * P.TOLERANCES["hmr"]["joints_2d_px_max"]


@pytest.mark.slow
def test_detector_int8_parity(detector_onnx: Path, tmp_path: Path) -> None:
    from instanthmr.detector import OnnxPersonDetector

    out = tmp_path / "rfdetr-nano-random.int8.onnx"
    result = quantize_model(detector_onnx, out, calibration_frames=2, eval_frames=2,
                            speed_rounds=1)  # fmt: skip
    report = result.report
    assert report["kind"] == "detector" and result.within_tolerance
    par = report["parity"]
    assert par["frames"] == 2 and par["top_k"] == 10
    assert 0.0 < par["score_diff_max"] <= P.TOLERANCES["detector"]["score_diff_max"]
    # random-init RF-DETR scores every query about equally: no confident box to compare
    assert par["compared"] == 0 and par["box_iou_mean"] is None
    det = OnnxPersonDetector(out, confidence=0.0, device="cpu")
    assert det.model_session.precision == "int8" and det.variant == "nano"
    frame = np.zeros((240, 320, 3), np.uint8)
    assert len(det.detect(frame)) > 0


def test_hmr_parity_units() -> None:
    ref = {k: np.zeros((2, 70, 2 if k == "joints_2d" else 3), np.float32)
           for k in ("joints_2d", "joints_3d")}  # fmt: skip
    ref["cam_trans"] = np.zeros((2, 3), np.float32)
    test = {k: v.copy() for k, v in ref.items()}
    test["joints_2d"][0, 5, 0] = 2.0 / 224  # one pixel on the 224 crop
    test["joints_3d"][1, 7] = [0.003, 0.004, 0.0]  # 5 mm
    m = P.hmr_parity(ref, test)
    assert m["joints_2d_px_max"] == pytest.approx(1.0, rel=1e-4)
    assert m["joints_3d_mm_max"] == pytest.approx(5.0, rel=1e-4)
    assert m["joints_2d_px_p99"] < 1.0  # 1 of 140 joints is off
    test["joints_2d"][:, :, 1] += 10.0 / 112  # 10 px everywhere: out of tolerance
    bad = P.violations("hmr", P.hmr_parity(ref, test))
    assert any("joints_2d_px_p99" in b and "limit 4 px" in b for b in bad)


def _dets(boxes: list[list[float]], person_logits: list[float]) -> tuple[np.ndarray, np.ndarray]:
    q = 20
    b = np.full((1, q, 4), 0.05, np.float32)
    b[0, :, :2] = np.linspace(0.1, 0.9, q)[:, None]
    b[0, : len(boxes)] = boxes
    logits = np.full((1, q, 91), -8.0, np.float32)
    logits[0, : len(person_logits), 1] = person_logits
    return b, logits


def test_detector_parity_matches_by_box_not_query() -> None:
    ref = _dets([[0.3, 0.5, 0.2, 0.6], [0.7, 0.5, 0.2, 0.6]], [4.0, 3.0])
    swapped = _dets([[0.7, 0.5, 0.2, 0.6], [0.3, 0.5, 0.2, 0.6]], [3.0, 4.0])  # other order
    m = P.detector_parity([ref], [swapped], top_k=5)
    assert m["compared"] == 2 and m["box_iou_min"] == pytest.approx(1.0)
    assert m["matched_score_diff_max"] == pytest.approx(0.0, abs=1e-6)
    moved = _dets([[0.4, 0.5, 0.2, 0.6], [0.7, 0.5, 0.2, 0.6]], [4.0, 3.0])
    m2 = P.detector_parity([ref], [moved], top_k=5)
    # a 0.1 shift of a 0.2-wide box: overlap 0.1 / union 0.3
    assert m2["box_iou_min"] == pytest.approx(1 / 3, rel=1e-3)
    bad = P.violations("detector", m2)
    assert any("box_iou_mean" in v for v in bad) and any("box_iou_min" in v for v in bad)


def test_auto_names_both_failures_when_both_methods_fail(
    hmr_onnx: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both recipes fail (here: forced, as onnxruntime's quantiser does on odd graphs): the
    error names each method's reason, not "min() arg is an empty sequence"."""
    import instanthmr.runtime.quantize as Q  # noqa: N812

    def broken(prepared: Path, out: Path, method: str, calib: list) -> None:
        raise RuntimeError(f"{method} recipe refused this graph")

    monkeypatch.setattr(Q, "_quantize", broken)
    with pytest.raises(ValueError, match="every method failed") as info:
        quantize_model(hmr_onnx, tmp_path / "x.int8.onnx", method="auto",
                       calibration_frames=2, eval_frames=1, speed_rounds=0)  # fmt: skip
    assert "static: RuntimeError: static recipe" in str(info.value)
    assert "dynamic: RuntimeError: dynamic recipe" in str(info.value)
    assert not (tmp_path / "x.int8.onnx").exists()
