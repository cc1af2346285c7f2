"""InstantHMR PyTorch definition and ONNX export (needs the ``export`` extra: torch, timm).

Every model here is a random init (seeded): real shapes and compute, meaningless poses.
The tests check the graph's contract, metadata, parity with PyTorch, fp16 conversion,
checkpoint loading and RepViT fusion, never pose quality. The fp32 export is the session
fixture ``hmr_onnx`` from conftest.py (``export_hmr_onnx(path, random_init=True, seed=0)``);
the fp16 and checkpoint exports are made once per module.
"""

from __future__ import annotations

import copy
import hashlib
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("timm")
onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from instanthmr.export import hmr_export  # noqa: E402
from instanthmr.export.hmr_export import (  # noqa: E402
    FP16_TOLERANCE,
    FP32_TOLERANCE,
    CheckpointError,
    ParityError,
    export_hmr_onnx,
    load_checkpoint,
    relative_errors,
)
from instanthmr.export.model import (  # noqa: E402
    build_model,
    count_flops,
    count_params,
    example_inputs,
    is_reparameterized,
    reparameterize,
)
from instanthmr.runtime.contract import (  # noqa: E402
    CONTRACT_VERSION,
    HMR_INPUTS,
    HMR_OUTPUTS,
    META_CONTRACT_VERSION,
    META_RANDOM_INIT,
    META_SOURCE_HASH,
    check_io,
)

REPO = Path(__file__).resolve().parents[1]
OUTPUT_NAMES = [s.name for s in HMR_OUTPUTS]


_SESSIONS: dict[Path, ort.InferenceSession] = {}


@pytest.fixture(scope="module", autouse=True)
def _release_sessions():
    """Sessions are cached per file for this module's tests and dropped afterwards."""
    yield
    _SESSIONS.clear()


def _session(path: Path) -> ort.InferenceSession:
    """One CPU session per exported file, shared by the tests of this module."""
    if path not in _SESSIONS:
        _SESSIONS[path] = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return _SESSIONS[path]


def _run_ort(session: ort.InferenceSession, image, cliff) -> dict[str, np.ndarray]:
    outs = session.run(OUTPUT_NAMES, {"image": image.numpy(), "cliff_cond": cliff.numpy()})
    return dict(zip(OUTPUT_NAMES, outs, strict=True))


def _run_torch(model, image, cliff) -> dict[str, np.ndarray]:
    with torch.no_grad():
        outs = model(image, cliff)
    return {n: t.numpy() for n, t in zip(OUTPUT_NAMES, outs, strict=True)}


@pytest.fixture(scope="module")
def fused_seed0():
    """The PyTorch model that the seed-0 random-init export was made from (fused)."""
    return reparameterize(build_model(0))


@pytest.fixture(scope="module")
def fp16_export(tmp_path_factory: pytest.TempPathFactory):
    path = tmp_path_factory.mktemp("fp16") / "instanthmr-random-fp16.onnx"
    return export_hmr_onnx(path, random_init=True, seed=0, fp16=True)


@pytest.fixture(scope="module")
def checkpoint_export(tmp_path_factory: pytest.TempPathFactory):
    """A checkpoint of a seed-7 model (un-fused state_dict), exported with seed=0."""
    folder = tmp_path_factory.mktemp("ckpt")
    model = build_model(7)
    ckpt = folder / "model.pth"
    torch.save(model.state_dict(), ckpt)
    report = export_hmr_onnx(folder / "from-ckpt.onnx", checkpoint=ckpt, seed=0)
    return ckpt, reparameterize(model), report


# --- the PyTorch definition -------------------------------------------------------------


def test_param_count_and_flops_match_the_contract():
    model = build_model(0)
    params = count_params(model)
    assert 15e6 < params < 18e6, params
    assert 4.3 < count_flops(model) < 4.9  # contract: about 4.6 GFLOP per person at 224


def test_forward_shapes_and_only_cam_reads_cliff():
    model = build_model(0)
    image, cliff = example_inputs(2)
    out = _run_torch(model, image, cliff)
    for spec in HMR_OUTPUTS:
        assert out[spec.name].shape == (2, *spec.shape[1:]), spec.name
    moved = _run_torch(model, image, cliff + 0.5)
    assert not np.allclose(moved["cam_trans"], out["cam_trans"])
    for name in ("mhr_params", "shape_params", "joints_2d", "joints_3d"):
        np.testing.assert_array_equal(moved[name], out[name])


def test_reparameterize_keeps_outputs_and_fuses_every_branch():
    model = build_model(3)  # random BatchNorm statistics: fusion has real work to do
    fused = reparameterize(copy.deepcopy(model))
    assert not is_reparameterized(model) and is_reparameterized(fused)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in fused.backbone.modules())
    assert count_params(fused) < count_params(model)
    image, cliff = example_inputs(2, seed=11)
    errors = relative_errors(_run_torch(model, image, cliff), _run_torch(fused, image, cliff))
    assert max(errors.values()) < 1e-5, errors
    with pytest.raises(RuntimeError, match="eval"):
        reparameterize(build_model(0).train())


def test_seed_makes_the_random_init_reproducible():
    a, b, c = build_model(5).state_dict(), build_model(5).state_dict(), build_model(6).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)


def test_relative_error_definition():
    ref = {"x": np.array([2.0, -4.0])}
    assert relative_errors(ref, {"x": np.array([2.0, -3.0])}) == {"x": 0.25}
    with pytest.raises(ParityError, match="shape"):
        relative_errors(ref, {"x": np.zeros(3)})


# --- checkpoints --------------------------------------------------------------------------


@pytest.mark.parametrize("wrap", ["state_dict", "model", "module."])
def test_load_checkpoint_accepts_nested_and_prefixed(tmp_path, wrap):
    source = build_model(9)
    state = source.state_dict()
    if wrap == "module.":
        obj = {f"module.{k}": v for k, v in state.items()}
    else:
        obj = {wrap: state, "epoch": 3}
    torch.save(obj, tmp_path / "c.pth")
    target = build_model(0)
    load_checkpoint(target, tmp_path / "c.pth")
    loaded = target.state_dict()
    assert loaded.keys() == state.keys()
    assert all(torch.equal(v, loaded[k]) for k, v in state.items())


def test_load_checkpoint_accepts_a_fused_state_dict(tmp_path):
    fused = reparameterize(build_model(9))
    torch.save(fused.state_dict(), tmp_path / "fused.pth")
    target = build_model(0)
    load_checkpoint(target, tmp_path / "fused.pth")
    assert is_reparameterized(target)
    loaded, expected = target.state_dict(), fused.state_dict()
    assert loaded.keys() == expected.keys()
    assert all(torch.equal(v, loaded[k]) for k, v in expected.items())


def test_wrong_key_is_named_and_existing_file_survives(tmp_path):
    state = build_model(0).state_dict()
    state["input_proj.weigth"] = state.pop("input_proj.weight")
    state["cam_head.1.bias"] = torch.zeros(7)
    torch.save(state, tmp_path / "bad.pth")
    target = tmp_path / "user.onnx"
    target.write_bytes(b"the user's model")
    with pytest.raises(CheckpointError) as info:
        export_hmr_onnx(target, checkpoint=tmp_path / "bad.pth")
    message = str(info.value)
    assert "missing keys" in message and "input_proj.weight" in message
    assert "unexpected keys" in message and "input_proj.weigth" in message
    assert "cam_head.1.bias: checkpoint (7,), model (256,)" in message
    assert target.read_bytes() == b"the user's model"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.pth", "user.onnx"]


def test_not_a_state_dict_is_rejected(tmp_path):
    torch.save([1, 2, 3], tmp_path / "list.pth")
    with pytest.raises(CheckpointError, match="no state_dict"):
        load_checkpoint(build_model(0), tmp_path / "list.pth")


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({}, "exactly one"),
        ({"random_init": True, "checkpoint": "x.pth"}, "exactly one"),
        ({"random_init": True, "opset": 12}, "opset"),
    ],
)
def test_bad_arguments(tmp_path, kwargs, match):
    with pytest.raises(ValueError, match=match):
        export_hmr_onnx(tmp_path / "m.onnx", **kwargs)
    assert not (tmp_path / "m.onnx").exists()


# --- the fp32 export (conftest's hmr_onnx) -------------------------------------------------


def test_fp32_graph_is_valid_and_matches_the_contract(hmr_onnx: Path):
    proto = onnx.load(str(hmr_onnx))
    onnx.checker.check_model(proto, full_check=True)
    assert {o.domain: o.version for o in proto.opset_import}[""] == 17
    assert [i.name for i in proto.graph.input] == [s.name for s in HMR_INPUTS]
    assert [o.name for o in proto.graph.output] == OUTPUT_NAMES
    for value in [*proto.graph.input, *proto.graph.output]:
        assert value.type.tensor_type.shape.dim[0].dim_param == "N", value.name
    session = _session(hmr_onnx)
    check_io(str(hmr_onnx), session.get_inputs(), session.get_outputs())  # raises if not
    meta = session.get_modelmeta().custom_metadata_map
    assert meta[META_CONTRACT_VERSION] == CONTRACT_VERSION
    assert meta[META_SOURCE_HASH] == "random-init:seed=0"
    assert meta[META_RANDOM_INIT] == "true"


@pytest.mark.parametrize("batch", [1, 3])
def test_fp32_parity_with_torch(hmr_onnx: Path, fused_seed0, batch: int):
    image, cliff = example_inputs(batch, seed=20 + batch)
    ort_out = _run_ort(_session(hmr_onnx), image, cliff)
    for spec in HMR_OUTPUTS:
        assert ort_out[spec.name].shape == (batch, *spec.shape[1:])
    errors = relative_errors(_run_torch(fused_seed0, image, cliff), ort_out)
    assert max(errors.values()) < FP32_TOLERANCE, errors
    # rows are independent: person 0 alone gives what it gave in the batch
    single = _run_ort(_session(hmr_onnx), image[:1], cliff[:1])
    np.testing.assert_allclose(single["joints_3d"], ort_out["joints_3d"][:1], atol=1e-5)


@pytest.mark.slow
def test_parity_failure_raises_and_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(hmr_export, "FP32_TOLERANCE", 0.0)
    target = tmp_path / "user.onnx"
    target.write_bytes(b"keep me")
    with pytest.raises(ParityError, match="fp32"):
        export_hmr_onnx(target, random_init=True)
    assert target.read_bytes() == b"keep me"
    assert [p.name for p in tmp_path.iterdir()] == ["user.onnx"]


# --- fp16 ---------------------------------------------------------------------------------


@pytest.mark.slow
def test_fp16_has_fp16_weights_float_io_and_metadata(fp16_export, hmr_onnx: Path):
    proto = onnx.load(str(fp16_export.path))
    onnx.checker.check_model(proto, full_check=True)
    float_types = {onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16}
    weights = [i for i in proto.graph.initializer if i.data_type in float_types]
    assert weights and all(i.data_type == onnx.TensorProto.FLOAT16 for i in weights)
    session = _session(fp16_export.path)
    check_io(str(fp16_export.path), session.get_inputs(), session.get_outputs())
    meta = session.get_modelmeta().custom_metadata_map
    assert meta[META_SOURCE_HASH] == "random-init:seed=0" and meta[META_RANDOM_INIT] == "true"
    assert fp16_export.fp16 and fp16_export.tolerance == FP16_TOLERANCE
    assert fp16_export.path.stat().st_size < 0.55 * hmr_onnx.stat().st_size


@pytest.mark.slow
def test_fp16_outputs_close_to_fp32(fp16_export, hmr_onnx: Path):
    image, cliff = example_inputs(3, seed=31)
    fp32 = _run_ort(_session(hmr_onnx), image, cliff)
    fp16 = _run_ort(_session(fp16_export.path), image, cliff)
    errors = relative_errors(fp32, fp16)
    assert max(errors.values()) < FP16_TOLERANCE, errors
    assert max(errors.values()) > 0  # really computed at reduced precision
    assert max(fp16_export.max_rel_error.values()) < FP16_TOLERANCE
    assert max(fp16_export.fp32_max_rel_error.values()) < FP32_TOLERANCE


# --- export from a checkpoint ---------------------------------------------------------------


@pytest.mark.slow
def test_checkpoint_export_hash_and_weights(checkpoint_export, fused_seed0):
    ckpt, model, report = checkpoint_export
    digest = hashlib.sha256(ckpt.read_bytes()).hexdigest()
    meta = _session(report.path).get_modelmeta().custom_metadata_map
    assert meta[META_SOURCE_HASH] == digest == report.source_hash
    assert meta[META_RANDOM_INIT] == "false" and not report.random_init
    image, cliff = example_inputs(2, seed=41)
    ort_out = _run_ort(_session(report.path), image, cliff)
    errors = relative_errors(_run_torch(model, image, cliff), ort_out)
    assert max(errors.values()) < FP32_TOLERANCE, errors
    # the checkpoint's weights, not the seed-0 init the exporter started from
    other = relative_errors(_run_torch(fused_seed0, image, cliff), ort_out)
    assert max(other.values()) > 1e-2
    assert 15e6 < report.params < 18e6 and 4.3 < report.gflop < 4.9


# --- the command-line tool ----------------------------------------------------------------


@pytest.mark.slow
def test_cli_random_init(tmp_path):
    target = tmp_path / "cli.onnx"
    proc = subprocess.run(
        [sys.executable, str(REPO / "tools" / "export_onnx.py"), "--random-init",
         "--output", str(target), "--seed", "2"],
        capture_output=True, text=True, timeout=300, cwd=REPO, check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "meaningless" in proc.stdout and "WARNING" in proc.stdout
    assert "M, 4." in proc.stdout and "GFLOP" in proc.stdout and "parity" in proc.stdout
    meta = _session(target).get_modelmeta().custom_metadata_map
    assert meta[META_SOURCE_HASH] == "random-init:seed=2"


def test_cli_rejects_both_sources(tmp_path):
    proc = subprocess.run(
        [sys.executable, str(REPO / "tools" / "export_onnx.py"), "--random-init",
         "--checkpoint", "x.pth", "--output", str(tmp_path / "m.onnx")],
        capture_output=True, text=True, timeout=120, cwd=REPO, check=False,
    )
    assert proc.returncode == 2 and "not allowed with" in proc.stderr
