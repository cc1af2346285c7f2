"""--precision auto|fp32|fp16|int8: which file a provider runs, and int8 refusals.

The int8 file is the analytic oracle (tests/onnx_builders.py) quantised by the real
``instanthmr quantize`` recipe, so its report is a real one; tests then edit the report
to make it missing, out of tolerance or stale.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path
from typing import Any

import onnx
import pytest
from onnx_builders import build_oracle
from onnxruntime.transformers.float16 import convert_float_to_float16

from instanthmr.runtime import parity as P  # noqa: N812
from instanthmr.runtime.precision import choose_file
from instanthmr.runtime.quantize import quantize_model
from instanthmr.runtime.session import CPU, CUDA, Runtime

INT8_NAME = "oracle.int8.onnx"


@pytest.fixture(scope="module")
def quantised(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("oracle")
    src = folder / "oracle.onnx"
    onnx.save(build_oracle(), src)
    quantize_model(src, calibration_frames=2, eval_frames=1, speed_rounds=1)
    assert (folder / INT8_NAME).is_file()
    return folder


@pytest.fixture()
def models(quantised: Path, tmp_path: Path) -> Path:
    """A fresh copy of the source and its int8 sibling, free to edit."""
    for name in ("oracle.onnx", INT8_NAME):
        shutil.copy(quantised / name, tmp_path / name)
    return tmp_path


def _edit_report(path: Path, **changes: Any) -> None:
    model = onnx.load(path)
    report = P.report_of(model)
    assert report is not None
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(report.get(key), dict):
            report[key].update(value)
        else:
            report[key] = value
    P.set_report(model, report)
    onnx.save(model, path)


def _set_speed(path: Path, ratio: float) -> None:
    _edit_report(path, speed={CPU: {"fp32_ms": 10.0, "int8_ms": 10.0 * ratio, "ratio": ratio}})


def test_int8_loads_the_quantised_sibling(models: Path) -> None:
    model = Runtime("cpu").load(models / "oracle.onnx", precision="int8")
    assert model.precision == "int8" and model.path.name == INT8_NAME
    assert model.source_path.name == "oracle.onnx"


def test_int8_refuses_a_file_without_report(models: Path) -> None:
    q = onnx.load(models / INT8_NAME)
    kept = [p for p in q.metadata_props if p.key != P.META_INT8_REPORT]
    del q.metadata_props[:]
    q.metadata_props.extend(kept)
    onnx.save(q, models / INT8_NAME)
    with pytest.raises(P.ParityError, match=r"oracle\.int8\.onnx has no parity report"):
        Runtime("cpu").load(models / "oracle.onnx", precision="int8")
    with pytest.raises(P.ParityError, match="instanthmr quantize"):
        Runtime("cpu").load(models / INT8_NAME, precision="int8")  # the int8 file itself


def test_int8_refuses_out_of_tolerance_naming_file_and_error(models: Path) -> None:
    _edit_report(models / INT8_NAME, parity={"joints_2d_px_p99": 12.5})
    with pytest.raises(P.ParityError) as err:
        Runtime("cpu").load(models / "oracle.onnx", precision="int8")
    msg = str(err.value)
    assert INT8_NAME in msg and "out of tolerance" in msg
    assert "joints_2d_px_p99 = 12.5 px (limit 4 px)" in msg


def test_int8_refuses_a_stale_file(models: Path) -> None:
    src = onnx.load(models / "oracle.onnx")
    src.doc_string = "retrained"
    onnx.save(src, models / "oracle.onnx")
    with pytest.raises(P.ParityError, match="measured against another source"):
        Runtime("cpu").load(models / "oracle.onnx", precision="int8")


def test_int8_without_a_quantised_file_names_the_command(tmp_path: Path) -> None:
    src = tmp_path / "m.onnx"
    onnx.save(build_oracle(), src)
    with pytest.raises(FileNotFoundError, match=r"instanthmr quantize --model .*m\.onnx"):
        Runtime("cpu").load(src, precision="int8")


def test_auto_uses_int8_only_where_it_measured_faster(
    models: Path, caplog: pytest.LogCaptureFixture
) -> None:
    src = models / "oracle.onnx"
    _set_speed(models / INT8_NAME, 0.6)
    with caplog.at_level(logging.INFO, logger="instanthmr.runtime.session"):
        model = Runtime("cpu").load(src)
    assert model.precision == "int8" and model.path.name == INT8_NAME
    assert any("as int8" in r.message and "0.60x" in r.message for r in caplog.records)
    # on a GPU provider the CPU measurement does not count: the file as exported
    gpu = choose_file(src, "auto", CUDA)
    assert gpu.path == src and gpu.precision == "fp32"
    _set_speed(models / INT8_NAME, 1.3)  # slower: auto stays fp32 and says why
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="instanthmr.runtime.precision"):
        slow = Runtime("cpu").load(src)
    assert slow.precision == "fp32" and slow.path == src
    assert any("did not measure faster" in r.message for r in caplog.records)
    assert Runtime("cpu").load(src, precision="fp32").path == src  # explicit fp32


def test_auto_skips_a_bad_int8_file_with_a_warning(
    models: Path, caplog: pytest.LogCaptureFixture
) -> None:
    _set_speed(models / INT8_NAME, 0.5)
    _edit_report(models / INT8_NAME, parity={"joints_3d_mm_max": 500.0})
    with caplog.at_level(logging.WARNING, logger="instanthmr.runtime.precision"):
        model = Runtime("cpu").load(models / "oracle.onnx")
    assert model.precision == "fp32"
    assert any("joints_3d_mm_max = 500 mm" in r.message for r in caplog.records)


def test_fp16_and_fp32_requests(models: Path, tmp_path: Path) -> None:
    rt = Runtime("cpu")
    with pytest.raises(ValueError, match="has fp32 weights"):
        rt.load(models / "oracle.onnx", precision="fp16")
    with pytest.raises(ValueError, match="is an int8 model"):
        rt.load(models / INT8_NAME, precision="fp32")
    with pytest.raises(ValueError, match="precision must be one of auto, fp32, fp16, int8"):
        rt.load(models / "oracle.onnx", precision="bf16")
    half = tmp_path / "half.onnx"
    onnx.save(convert_float_to_float16(build_oracle(), keep_io_types=True), half)
    kept = rt.load(half, precision="fp16")
    assert kept.path == half and kept.precision == "fp16"
    assert rt.load(half).precision == "fp32"  # auto on CPU: converted
    trt = choose_file(half, "auto", "TensorrtExecutionProvider")
    assert trt.path == half and trt.precision == "fp16"


def test_quantize_takes_fp16_weights_like_the_release(tmp_path: Path) -> None:
    half = tmp_path / "release-like.onnx"
    onnx.save(convert_float_to_float16(build_oracle(), keep_io_types=True), half)
    result = quantize_model(half, calibration_frames=2, eval_frames=1, speed_rounds=0)
    assert result.path == tmp_path / "release-like.int8.onnx"
    assert result.report["source"]["weights"] == "fp16" and result.within_tolerance
    assert result.report["speed"] == {}  # not measured: auto will not pick it
    model = Runtime("cpu").load(half, precision="int8")
    assert model.precision == "int8" and model.path == result.path
    assert Runtime("cpu").load(half).precision == "fp32"  # auto: no speed measured, no int8
    with pytest.raises(ValueError, match="already quantised"):
        quantize_model(result.path)


def test_quantize_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from instanthmr.cli import main

    src = tmp_path / "m.onnx"
    onnx.save(build_oracle(), src)
    report = tmp_path / "r.json"
    args = ["quantize", "--model", str(src), "--calibration-frames", "2", "--eval-frames", "1",
            "--speed-rounds", "1", "--json", str(report)]  # fmt: skip
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "joints_2d_px_p99" in out and (tmp_path / "m.int8.onnx").is_file()
    assert (
        P.read_report(tmp_path / "m.int8.onnx")["parity"]
        == json.loads(report.read_text())["parity"]
    )
    assert main(["quantize", "--model", str(tmp_path / "missing.onnx")]) == 2
    assert "model file not found" in capsys.readouterr().err
