"""IO binding on the CPU provider, GPU provider options, and session-option construction.

No GPU is lent to this project's CI: the CUDA graph and TensorRT paths are checked for the
options they pass and for the refusals that need no GPU; IO binding itself runs for real on
the CPU provider against the analytic oracle (tests/onnx_builders.py).
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx_builders import build_oracle

from instanthmr.hmr.model import OUTPUT_NAMES, HMRModel
from instanthmr.runtime import session as R  # noqa: N812
from instanthmr.runtime.io_binding import BoundRunner
from instanthmr.runtime.session import CUDA, TENSORRT, Runtime, providers_for


@pytest.fixture(scope="module")
def oracle_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("bind") / "oracle.onnx"
    onnx.save(build_oracle(), path)
    return path


def _feeds(n: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "image": rng.uniform(-2, 2, (n, 3, 224, 224)).astype(np.float32),
        "cliff_cond": rng.uniform(-1, 1, (n, 3)).astype(np.float32),
    }


def test_io_binding_equals_the_plain_run(oracle_path: Path) -> None:
    model = Runtime("cpu").load(oracle_path)
    runner = BoundRunner(model, OUTPUT_NAMES)
    assert runner.device == "cpu"
    first = runner.run(_feeds(2, 0))
    for n, seed in ((2, 1), (3, 2), (2, 3)):
        feeds = _feeds(n, seed)
        bound, plain = runner.run(feeds), model.run(feeds)
        assert set(bound) == set(OUTPUT_NAMES)
        for name in OUTPUT_NAMES:
            np.testing.assert_array_equal(bound[name], plain[name])
    assert runner.bound_batch_sizes == [2, 3]  # one buffer set per size, reused
    # returned arrays are copies: later runs on the same buffers do not change them
    np.testing.assert_array_equal(first["joints_2d"], model.run(_feeds(2, 0))["joints_2d"])


def test_io_binding_is_thread_safe(oracle_path: Path) -> None:
    model = Runtime("cpu").load(oracle_path)
    runner = BoundRunner(model)
    feeds = [_feeds(2, s) for s in range(6)]
    expected = [model.run(f)["joints_3d"] for f in feeds]
    errors: list[str] = []

    def work(k: int) -> None:
        for _ in range(5):
            got = runner.run(feeds[k])["joints_3d"]
            if not np.array_equal(got, expected[k]):
                errors.append(f"thread {k} got another thread's outputs")

    threads = [threading.Thread(target=work, args=(k,)) for k in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


def test_io_binding_refusals(oracle_path: Path) -> None:
    model = Runtime("cpu").load(oracle_path)
    with pytest.raises(ValueError, match="cuda_graph needs the CUDA or TensorRT provider"):
        BoundRunner(model, cuda_graph=True, batch_sizes=[4])
    fixed = BoundRunner(model, batch_sizes=[4])
    with pytest.raises(ValueError, match=r"batch size 2 is not one of the bound sizes \(4,\)"):
        fixed.run(_feeds(2, 0))
    with pytest.raises(ValueError, match="missing model inputs"):
        fixed.run({"image": _feeds(4, 0)["image"]})


def test_hmr_model_io_binding_matches(oracle_path: Path) -> None:
    bound = HMRModel(oracle_path, device="cpu", io_binding=True, pad_batch=4)
    plain = HMRModel(oracle_path, device="cpu", io_binding=False, pad_batch=4)
    assert bound.runner is not None and plain.runner is None
    assert bound.runner.bound_batch_sizes == [4]  # warm-up went through the runner
    f = _feeds(5, 7)
    a, b = bound.infer(f["image"], f["cliff_cond"]), plain.infer(f["image"], f["cliff_cond"])
    for name in OUTPUT_NAMES:
        assert a[name].shape[0] == 5
        np.testing.assert_array_equal(a[name], b[name])
    assert HMRModel(oracle_path, device="cpu").runner is None  # default off on CPU


def test_gpu_provider_options() -> None:
    cuda = dict(providers_for("cuda", cuda_graph=True, device_id=1)[0][1])
    assert cuda["enable_cuda_graph"] is True and cuda["device_id"] == 1
    assert "enable_cuda_graph" not in providers_for("cuda")[0][1]
    trt_list = providers_for("tensorrt", "/tmp/engines", cuda_graph=True)
    name, trt = trt_list[0]
    assert name == TENSORRT and trt_list[1][0] == CUDA
    assert trt["trt_fp16_enable"] is True and trt["trt_engine_cache_enable"] is True
    assert trt["trt_engine_cache_path"] == "/tmp/engines"
    assert trt["trt_timing_cache_enable"] is True and trt["trt_cuda_graph_enable"] is True
    assert providers_for("tensorrt", fp16=False)[0][1]["trt_fp16_enable"] is False


def test_session_threads_follow_onnxruntime_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(R, "usable_cpus", lambda: os.cpu_count() or 1)
    free = Runtime("cpu")
    so = free.session_options()
    # not limited: the thread count is left to onnxruntime (0), which pins its threads
    assert so.intra_op_num_threads == 0
    assert so.graph_optimization_level.name == "ORT_ENABLE_ALL"
    assert so.execution_mode.name == "ORT_SEQUENTIAL"
    assert free.threads == min(R.physical_cores(), os.cpu_count() or 1)
    assert Runtime("cpu", threads=3).session_options().intra_op_num_threads == 3
    monkeypatch.setattr(R, "usable_cpus", lambda: 1)
    monkeypatch.setattr(R.os, "cpu_count", lambda: 4)
    limited = Runtime("cpu")  # a process pinned to 1 of 4 CPUs: a fixed count of 1
    assert limited.session_options().intra_op_num_threads == 1 and limited.threads == 1
    quiet = Runtime("cpu").session_options(spin=False)
    assert quiet.get_session_config_entry("session.intra_op.allow_spinning") == "0"
