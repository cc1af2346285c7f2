"""The doctor: log and CSV parsing, the provider verdict, and real runs on this CPU machine.

Model runs use the ``hmr_onnx`` session fixture (a random-init export: real shapes and
compute, meaningless poses) and, where a small model is enough, the analytic oracle graph
from tests/onnx_builders.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from argparse import Namespace
from pathlib import Path

import onnx
import pytest
from onnx_builders import build_oracle

from instanthmr.commands import doctor

ROOT = Path(__file__).resolve().parents[1]
SMI = Path(__file__).resolve().parent / "fixtures" / "nvidia_smi"

# Recorded on this machine (onnxruntime 1.31.1, session log severity VERBOSE).
CPU_LOG = """\
2026-11-22 04:00:37.283357628 [I:onnxruntime:, graph_transformer.cc:15 Apply] GraphTransformer MemcpyTransformer modified: 0 with status: OK
2026-11-22 04:00:37.283369430 [V:onnxruntime:, session_state.cc:1578 VerifyEachNodeIsAssignedToAnEp] Node placements
2026-11-22 04:00:37.283373428 [V:onnxruntime:, session_state.cc:1581 VerifyEachNodeIsAssignedToAnEp]  All nodes placed on [CPUExecutionProvider]. Number of nodes: 2
2026-11-22 04:00:37.283391131 [V:onnxruntime:, session_state.cc:193 CreateGraphInfo] SaveMLValueNameIndexMapping
"""  # noqa: E501
# A CoreML session on macOS: the provider's GetCapability summary (coreml_execution_provider.cc)
# and the placement block that follows (session_state.cc), one fused node per CoreML partition.
COREML_LOG = """\
2026-09-11 23:44:44.229 python[47531:15855406] 2026-09-11 23:44:44.229603 [W:onnxruntime:, coreml_execution_provider.cc:137 GetCapability] CoreMLExecutionProvider::GetCapability, number of partitions supported by CoreML: 3 number of nodes in the graph: 327 number of nodes supported by CoreML: 212
2026-09-11 23:44:44.301 python[47531:15855406] 2026-09-11 23:44:44.301112 [V:onnxruntime:, session_state.cc:1578 VerifyEachNodeIsAssignedToAnEp] Node placements
2026-09-11 23:44:44.301 python[47531:15855406] 2026-09-11 23:44:44.301120 [V:onnxruntime:, session_state.cc:1581 VerifyEachNodeIsAssignedToAnEp]  Node(s) placed on [CoreMLExecutionProvider]. Number of nodes: 3
2026-09-11 23:44:44.301 python[47531:15855406] 2026-09-11 23:44:44.301125 [V:onnxruntime:, session_state.cc:1583 VerifyEachNodeIsAssignedToAnEp]   CoreML_6315428918312548211_0 (CoreMLExecutionProvider_CoreML_6315428918312548211_0_0)
2026-09-11 23:44:44.301 python[47531:15855406] 2026-09-11 23:44:44.301131 [V:onnxruntime:, session_state.cc:1581 VerifyEachNodeIsAssignedToAnEp]  Node(s) placed on [CPUExecutionProvider]. Number of nodes: 115
2026-09-11 23:44:44.301 python[47531:15855406] 2026-09-11 23:44:44.301140 [V:onnxruntime:, session_state.cc:1583 VerifyEachNodeIsAssignedToAnEp]   Gather (/blocks.0/attn/Gather)
"""  # noqa: E501


# ----------------------------------------------------------------------------- parsing
def test_node_placements_from_recorded_logs():
    assert doctor.parse_node_placements(CPU_LOG) == {"CPUExecutionProvider": 2}
    assert doctor.parse_node_placements(COREML_LOG) == {
        "CoreMLExecutionProvider": 3,
        "CPUExecutionProvider": 115,
    }
    assert doctor.parse_node_placements("no verbose log here") == {}


def test_coreml_capability_from_recorded_log():
    got = doctor.parse_coreml_capability(COREML_LOG)
    assert got == {"partitions": 3, "nodes": 327, "supported": 212, "cpu": 115}
    assert doctor.parse_coreml_capability(CPU_LOG) is None
    again = (
        "CoreMLExecutionProvider::GetCapability, number of partitions supported by CoreML: 1 "
        "number of nodes in the graph: 327 number of nodes supported by CoreML: 327\n"
    )
    assert doctor.parse_coreml_capability(COREML_LOG + again)["cpu"] == 0  # type: ignore[index]


@pytest.mark.parametrize(
    ("expected", "provider", "placements", "coreml", "verdict"),
    [
        ("CPUExecutionProvider", "CPUExecutionProvider", {"CPUExecutionProvider": 9}, None, ""),
        ("CUDAExecutionProvider", "CPUExecutionProvider", {}, None, "but CPUExecutionProvider ran"),
        (
            "CUDAExecutionProvider",
            "CUDAExecutionProvider",
            {"CUDAExecutionProvider": 500, "CPUExecutionProvider": 12},
            None,
            "",
        ),
        (
            "CUDAExecutionProvider",
            "CUDAExecutionProvider",
            {"CPUExecutionProvider": 512},
            None,
            "no node was placed",
        ),
        (
            "CoreMLExecutionProvider",
            "CoreMLExecutionProvider",
            {},
            {"partitions": 0, "nodes": 10, "supported": 0, "cpu": 10},
            "CoreML took none",
        ),
        (
            "CoreMLExecutionProvider",
            "CoreMLExecutionProvider",
            {"CoreMLExecutionProvider": 1},
            {"partitions": 1, "nodes": 10, "supported": 10, "cpu": 0},
            "",
        ),
    ],
)
def test_placement_problem(expected, provider, placements, coreml, verdict):
    got = doctor.placement_problem(expected, provider, placements, coreml)
    assert (verdict in got and got) if verdict else got == ""


@pytest.mark.parametrize(
    ("cc", "archs", "covered"),
    [
        ((12, 0), ["sm_50", "sm_60", "sm_70", "sm_75", "sm_80", "sm_86", "sm_90"], False),  # cu126
        ((12, 0), ["sm_75", "sm_80", "sm_86", "sm_90", "sm_100", "sm_120"], True),  # cu128
        ((8, 9), ["sm_80", "sm_86"], True),  # same major, lower minor kernels run
        ((8, 0), ["sm_86"], False),  # but not a higher minor
        ((9, 0), ["sm_90a"], True),
        ((10, 0), ["sm_90a"], False),  # arch-specific kernels run on exactly 9.0
        ((12, 0), ["sm_80", "compute_90"], True),  # PTX is compiled for newer GPUs
        ((7, 0), ["sm_75", "sm_80", "compute_80"], False),
        ((6, 1), [], False),
    ],
)
def test_arch_covered(cc, archs, covered):
    assert doctor.arch_covered(cc, archs) is covered


def test_parse_nvidia_smi_fixtures():
    gpus = doctor.parse_nvidia_smi((SMI / "blackwell_rtx5090.txt").read_text())
    assert gpus == [
        {"name": "NVIDIA GeForce RTX 5090", "compute_capability": (12, 0), "driver": "595.71.05"}
    ]
    assert doctor.parse_nvidia_smi((SMI / "none.txt").read_text()) == []
    assert len(doctor.parse_nvidia_smi((SMI / "hopper_h100x2.txt").read_text())) == 2


# ----------------------------------------------------------------------------- checks
BLACKWELL = doctor.parse_nvidia_smi((SMI / "blackwell_rtx5090.txt").read_text())
CU126 = {
    "version": "2.10.0+cu126",
    "cuda": "12.6",
    "available": True,
    "arch_list": ["sm_50", "sm_60", "sm_70", "sm_75", "sm_80", "sm_86", "sm_90"],
}
CU128 = {
    **CU126,
    "version": "2.11.0+cu128",
    "cuda": "12.8",
    "arch_list": ["sm_75", "sm_80", "sm_86", "sm_90", "sm_100", "sm_120"],
}
CPU_TORCH = {"version": "2.14.1+cpu", "cuda": None, "available": False, "arch_list": []}


def test_check_torch_against_the_gpu():
    bad = doctor.check_torch(BLACKWELL, CU126)
    assert bad.status == doctor.WARN and "no kernels for sm_120" in bad.detail
    assert "cu128" in bad.fix
    assert doctor.check_torch(BLACKWELL, CU128).status == doctor.OK
    assert doctor.check_torch(BLACKWELL, CPU_TORCH).status == doctor.WARN
    assert doctor.check_torch([], CPU_TORCH).status == doctor.OK
    assert doctor.check_torch(BLACKWELL, None).status == doctor.SKIP


def test_gpu_check_names_the_gpu_or_the_reason():
    assert "compute capability 12.0" in doctor.check_gpu(BLACKWELL, "").detail
    none = doctor.check_gpu([], "nvidia-smi not found (no NVIDIA driver)")
    assert none.status == doctor.SKIP and "not found" in none.detail


def test_two_onnxruntime_builds_fail(monkeypatch):
    versions = {"onnxruntime": "1.31.1", "onnxruntime-gpu": "1.31.1"}

    def fake_version(name: str) -> str:
        if name in versions:
            return versions[name]
        raise doctor.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(doctor.metadata, "version", fake_version)
    check, ort = doctor.check_onnxruntime()
    assert check.status == doctor.FAIL and ort is None
    assert "pip uninstall -y onnxruntime onnxruntime-gpu" in check.fix


def test_native_stderr_captures_file_descriptor_2():
    with doctor.native_stderr() as out:
        os.write(2, b"from C++\n")
    assert out == ["from C++\n"]
    os.write(2, b"")  # fd 2 is usable again


def test_report_fails_when_one_check_fails(tmp_path):
    report = doctor.Report(
        [doctor.Check("a", doctor.OK, "fine"), doctor.Check("b", doctor.FAIL, "broken", fix="do X")]
    )
    assert not report.ok
    text = report.format()
    assert "fix: do X" in text and "FAILED (b)" in text
    assert json.loads(json.dumps(report.to_dict()))["ok"] is False


# ----------------------------------------------------------------------------- model runs
@pytest.fixture(scope="module")
def oracle_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("oracle") / "oracle.onnx"
    onnx.save(build_oracle(), path)
    return path


def test_model_run_on_cpu_reports_provider_placement_and_time(oracle_path):
    check = doctor.check_model("hmr model", str(oracle_path), "cpu", runs=2)
    assert check.status == doctor.OK, check.detail
    assert check.data["provider"] == "CPUExecutionProvider"
    assert check.data["placements"].get("CPUExecutionProvider", 0) > 0  # verbose log was read
    assert check.data["ms_per_call"] > 0 and check.data["runs"] == 2


def test_work_on_another_provider_fails(oracle_path, monkeypatch):
    from instanthmr.runtime.session import Runtime

    # a runtime that quietly runs on the CPU while the doctor was asked for CUDA
    monkeypatch.setattr(doctor, "_verbose_runtime", lambda device, verbose=True: Runtime("cpu"))
    check = doctor.check_model("hmr model", str(oracle_path), "cuda", runs=1)
    assert check.status == doctor.FAIL
    assert "asked for CUDAExecutionProvider but CPUExecutionProvider ran it" in check.detail


def test_missing_model_fails_with_the_reason(tmp_path):
    check = doctor.check_model("hmr model", str(tmp_path / "nope.onnx"), "cpu")
    assert check.status == doctor.FAIL and "nope.onnx" in check.detail


def run_doctor(*args: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, str(ROOT / "install.py"), "--doctor", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=ROOT)


@pytest.mark.slow
def test_install_doctor_cpu_exits_0(hmr_onnx, tmp_path):
    out = tmp_path / "doctor.json"
    res = run_doctor("--model", str(hmr_onnx), "--device", "cpu", "--runs", "2", "--json", str(out))
    assert res.returncode == 0, res.stdout + res.stderr
    assert "CPUExecutionProvider" in res.stdout
    report = json.loads(out.read_text())
    hmr = next(c for c in report["checks"] if c["name"] == "hmr model")
    assert report["ok"] is True and hmr["data"]["provider"] == "CPUExecutionProvider"
    assert hmr["data"]["random_init"] is True  # the fixture is a random-init export


@pytest.mark.slow
def test_install_doctor_cuda_fails_loudly_without_a_gpu(hmr_onnx):
    import onnxruntime as ort

    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("this machine has a CUDA build of onnxruntime")
    res = run_doctor("--model", str(hmr_onnx), "--device", "cuda", "--runs", "1")
    assert res.returncode != 0
    assert "CUDAExecutionProvider is not in this onnxruntime build" in res.stdout
    assert "fix:" in res.stdout and "Result: FAILED" in res.stdout


def test_instanthmr_doctor_command_without_model(tmp_path, monkeypatch):
    from instanthmr import cli

    monkeypatch.setattr(doctor, "probe_torch", lambda: None)  # keep it fast: no torch import
    out = tmp_path / "d.json"
    args = Namespace(device="cpu", model=None, detector_model=None, runs=1, no_model=True, json=out)
    report = doctor.run_checks(args)
    assert report.ok and [c.name for c in report.checks][:2] == ["python", "onnxruntime"]
    assert cli.main(["doctor", "--no-model", "--json", str(out)]) == 0
    assert json.loads(out.read_text())["ok"] is True


@pytest.mark.slow
def test_detector_run_on_cpu(detector_onnx):
    check = doctor.check_model("detector", str(detector_onnx), "cpu", runs=1)
    assert check.status == doctor.OK, check.detail
    assert check.data["provider"] == "CPUExecutionProvider"
