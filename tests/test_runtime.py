"""The runtime: provider mapping and checks, fallback, precision per provider, warm-up."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx_builders import build_oracle
from onnxruntime.transformers.float16 import convert_float_to_float16

from instanthmr.runtime.contract import HMR_INPUTS, HMR_OUTPUTS, META_RANDOM_INIT
from instanthmr.runtime.precision import has_fp16_weights
from instanthmr.runtime.session import CPU, ProviderError, Runtime, providers_for


@pytest.fixture()
def oracle_path(tmp_path: Path) -> Path:
    path = tmp_path / "oracle.onnx"
    onnx.save(build_oracle(), path)
    return path


def _feeds(n: int = 2) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(1)
    img = rng.normal(size=(n, 3, 224, 224)).astype(np.float32)
    return {"image": img, "cliff_cond": rng.uniform(-1, 1, (n, 3)).astype(np.float32)}


def test_device_names_map_to_provider_lists() -> None:
    assert providers_for("cpu") == [CPU]
    assert providers_for("cuda")[0][0] == "CUDAExecutionProvider"
    assert providers_for("cuda")[-1] == CPU
    trt = providers_for("tensorrt")
    assert [p if isinstance(p, str) else p[0] for p in trt] == [
        "TensorrtExecutionProvider", "CUDAExecutionProvider", CPU,
    ]  # fmt: skip
    assert providers_for("coreml")[0][0] == "CoreMLExecutionProvider"
    with pytest.raises(ValueError, match="choose one of auto, cpu, cuda, tensorrt, coreml"):
        providers_for("gpu")


@pytest.mark.parametrize("device", ["cuda", "tensorrt", "coreml"])
def test_missing_provider_raises_with_reason_and_fix(oracle_path: Path, device: str) -> None:
    with pytest.raises(ProviderError) as err:
        Runtime(device).load(oracle_path)
    msg = str(err.value)
    assert "not in this onnxruntime build" in msg
    assert "fallback=True" in msg


def test_fallback_runs_on_cpu_and_warns(
    oracle_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="instanthmr.runtime.session"):
        model = Runtime("cuda", fallback=True).load(oracle_path)
    assert model.provider == CPU
    assert any("CUDAExecutionProvider" in r.message and "CPU" in r.message for r in caplog.records)


def test_cpu_session_options() -> None:
    so = Runtime("cpu", threads=1).session_options()
    assert so.intra_op_num_threads == 1
    assert Runtime("cpu").threads >= 1
    quiet = Runtime("cpu").session_options(spin=False)
    assert quiet.get_session_config_entry("session.intra_op.allow_spinning") == "0"
    with pytest.raises(ValueError, match="threads"):
        Runtime("cpu", threads=0)


def test_fp16_model_runs_as_cached_fp32_on_cpu(oracle_path: Path, tmp_path: Path) -> None:
    fp16 = convert_float_to_float16(build_oracle(), keep_io_types=True)
    src = tmp_path / "oracle16.onnx"
    onnx.save(fp16, src)
    assert has_fp16_weights(onnx.load(src))
    rt = Runtime("cpu")
    m32 = rt.load(src, inputs=HMR_INPUTS, outputs=HMR_OUTPUTS)
    assert m32.path != src and ".fp32-" in m32.path.name and m32.path.parent == src.parent
    converted = onnx.load(m32.path)
    assert not has_fp16_weights(converted)
    # the fp16 casts became float -> float no-ops, rewritten as Identity for onnxruntime
    ops = [n.op_type for n in converted.graph.node]
    assert "Cast" not in ops and ops.count("Identity") >= 7  # 2 input + 5 output casts
    mtime = m32.path.stat().st_mtime_ns
    again = rt.load(src)
    assert again.path == m32.path and m32.path.stat().st_mtime_ns == mtime  # cached, not redone
    kept = rt.load(src, precision="keep")
    assert kept.path == src
    ref = rt.load(oracle_path).run(_feeds())
    out = m32.run(_feeds())
    for name, value in ref.items():
        scale = max(np.abs(value).max(), 1e-6)
        assert np.abs(out[name] - value).max() / scale < 2e-3, name  # fp16 weight rounding


def test_changed_source_gets_a_new_cache(tmp_path: Path) -> None:
    src = tmp_path / "m.onnx"
    onnx.save(convert_float_to_float16(build_oracle(), keep_io_types=True), src)
    first = Runtime("cpu").load(src).path
    model = onnx.load(src)
    model.doc_string = "changed"
    onnx.save(model, src)
    assert Runtime("cpu").load(src).path != first


def test_random_init_is_flagged_loudly(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    model = build_oracle()
    onnx.helper.set_model_props(model, {META_RANDOM_INIT: "true"})
    path = tmp_path / "random.onnx"
    onnx.save(model, path)
    with caplog.at_level(logging.WARNING, logger="instanthmr.runtime.session"):
        loaded = Runtime("cpu").load(path)
    assert loaded.random_init
    assert any("RANDOM-INIT" in r.message for r in caplog.records)


def test_warmup_runs_each_batch_size(oracle_path: Path) -> None:
    model = Runtime("cpu").load(oracle_path)
    seen: list[int] = []

    def make(n: int) -> dict[str, np.ndarray]:
        seen.append(n)
        return _feeds(n)

    Runtime.warmup(model, make, [1, 4, 8])
    assert seen == [1, 4, 8]


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"nope\.onnx"):
        Runtime("cpu").load(tmp_path / "nope.onnx")


def test_fp32_copy_of_a_hub_file_goes_to_the_user_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    snap = tmp_path / "hub" / "models--momolesang--InstantHMR" / "snapshots" / "abc"
    snap.mkdir(parents=True)
    src = snap / "instanthmr.onnx"
    onnx.save(convert_float_to_float16(build_oracle(), keep_io_types=True), src)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    loaded = Runtime("cpu").load(src)
    assert loaded.path.parent == tmp_path / "xdg" / "instanthmr"
    assert sorted(p.name for p in snap.iterdir()) == ["instanthmr.onnx"]
