"""install.py: nvidia-smi parsing, the decision table, --dry-run output and the index fallback.

The recorded ``nvidia-smi`` outputs in tests/fixtures/nvidia_smi/ are in the exact format of
``nvidia-smi --query-gpu=name,compute_cap,driver_version --format=csv,noheader`` (the K80 one
in the two-column format of drivers that do not know ``compute_cap``).
"""

from __future__ import annotations

import http.server
import importlib.util
import shlex
import subprocess
import sys
import threading
from importlib import metadata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SMI = Path(__file__).resolve().parent / "fixtures" / "nvidia_smi"
_spec = importlib.util.spec_from_file_location("instanthmr_install", ROOT / "install.py")
assert _spec is not None and _spec.loader is not None
install = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = install  # dataclasses look their module up by name
_spec.loader.exec_module(install)

PY = "/py"
GPU_ORT = "onnxruntime-gpu[cuda,cudnn]"
CUDA12_ORT = "onnxruntime-gpu[cuda,cudnn]<1.27"
PLATFORMS = [
    "linux-x86_64",
    "linux-arm64",
    "darwin-arm64",
    "darwin-x86_64",
    "windows-x86_64",
    "windows-arm64",
]
FIXTURES = [
    "none",
    "turing_t4",
    "ampere_rtx3090",
    "hopper_h100x2",
    "blackwell_rtx5090",
    "blackwell_driver570",
    "pascal_gtx1080ti",
    "kepler_old_driver",
    "gh200_aarch64",
]
# fixture -> (onnxruntime requirement, torch index tag) on x86_64 Linux and Windows
X86 = {
    "none": ("onnxruntime", "cpu"),
    "turing_t4": (CUDA12_ORT, "cu126"),  # driver 535: CUDA 12 only
    "ampere_rtx3090": (CUDA12_ORT, "cu128"),  # driver 570
    "hopper_h100x2": (GPU_ORT, "cu130"),  # driver 580
    "blackwell_rtx5090": (GPU_ORT, "cu132"),  # driver 595
    "blackwell_driver570": (CUDA12_ORT, "cu128"),  # sm_120 needs cu128+, torch >= 2.7
    "pascal_gtx1080ti": (CUDA12_ORT, "cu126"),  # CUDA 13 dropped sm_61
    "kepler_old_driver": ("onnxruntime", "cpu"),  # driver 470: too old
    "gh200_aarch64": (GPU_ORT, "cu130"),
}
# fixture -> torch index tag on Linux aarch64 (the ONNX path is always the CPU build there)
ARM = {**{k: v[1] for k, v in X86.items()}, "turing_t4": "cpu", "pascal_gtx1080ti": "cpu"}
DEPS = ["numpy>=1.24", "onnxruntime>=1.18", "onnx>=1.16"]


def machine(fixture: str, plat: str, **kw: object):
    os_, arch = install.parse_platform(plat)
    gpus = install.parse_nvidia_smi((SMI / f"{fixture}.txt").read_text())
    return install.Machine(os_, arch, python=(3, 11), gpus=gpus, **kw)  # type: ignore[arg-type]


def plan_for(m, opts=None, deps=DEPS, reachable=lambda _u: True):
    return install.build_plan(
        m, opts or install.Options(), python=PY, reachable=reachable, project_deps=deps
    )


def pip_installs(plan) -> list[list[str]]:
    return [c[3:] for c in plan.commands if c[3] == "install"]


def torch_cmd(plan) -> list[str] | None:
    cmds = [c for c in pip_installs(plan) if any(a.startswith("torch") for a in c[:3])]
    assert len(cmds) <= 1
    return cmds[0] if cmds else None


# ----------------------------------------------------------------------------- parsing
def test_parse_nvidia_smi_recorded_outputs():
    none = install.parse_nvidia_smi((SMI / "none.txt").read_text())
    h100 = install.parse_nvidia_smi((SMI / "hopper_h100x2.txt").read_text())
    k80 = install.parse_nvidia_smi((SMI / "kepler_old_driver.txt").read_text())
    assert none == ()
    assert len(h100) == 2
    assert h100[0].name == "NVIDIA H100 80GB HBM3"
    assert h100[0].compute_capability == (9, 0)
    assert h100[0].driver == (580, 95, 5) and h100[0].driver_text == "580.95.05"
    assert k80[0].name == "Tesla K80" and k80[0].compute_capability is None
    assert k80[0].driver == (470, 256, 2)


def test_parse_nvidia_smi_skips_messages_and_na():
    text = (
        "NVIDIA-SMI has failed because it couldn't communicate with the driver.\nX, [N/A], 550.1\n"
    )
    (gpu,) = install.parse_nvidia_smi(text)
    assert gpu.name == "X" and gpu.compute_capability is None and gpu.driver == (550, 1)


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("linux-x86_64", ("linux", "x86_64")),
        ("Windows-AMD64", ("windows", "x86_64")),
        ("darwin-arm64", ("darwin", "arm64")),
        ("linux-aarch64", ("linux", "arm64")),
    ],
)
def test_parse_platform(spec, expected):
    assert install.parse_platform(spec) == expected


def test_parse_platform_rejects_unknown():
    with pytest.raises(ValueError, match="linux-x86_64"):
        install.parse_platform("solaris-sparc")


# ----------------------------------------------------------------------------- decision table
@pytest.mark.parametrize("plat", PLATFORMS)
@pytest.mark.parametrize("fixture", FIXTURES)
def test_decision_table(fixture, plat):
    m = machine(fixture, plat)
    plan = plan_for(m)
    installs = pip_installs(plan)
    ort = [a for c in installs for a in c if install.requirement_name(a) in install.ORT_BUILDS]
    assert ort == [plan.onnxruntime]  # exactly one onnxruntime build, installed once
    assert all(c[:3] == [PY, "-m", "pip"] for c in plan.commands)
    torch = torch_cmd(plan)
    if m.os == "darwin":
        assert plan.onnxruntime == "onnxruntime"
        assert any("CoreML" in n for n in plan.notes)
        if m.arch == "x86_64":
            assert torch is None and plan.commands[-1][-1] == "."  # no export extra
        else:
            assert torch is not None and "--index-url" not in torch
        return
    if m.os == "windows" and m.arch == "arm64":
        expected_ort, tag = "onnxruntime", "cpu"
    elif m.arch == "arm64":
        expected_ort, tag = "onnxruntime", ARM[fixture]
    else:
        expected_ort, tag = X86[fixture]
    assert plan.onnxruntime == expected_ort
    assert torch is not None
    assert torch[-2:] == ["--index-url", f"https://download.pytorch.org/whl/{tag}"]


@pytest.mark.parametrize("fixture", ["blackwell_rtx5090", "blackwell_driver570"])
@pytest.mark.parametrize("plat", ["linux-x86_64", "windows-x86_64", "linux-arm64"])
def test_blackwell_gets_sm120_builds(fixture, plat):
    torch = torch_cmd(plan_for(machine(fixture, plat)))
    assert torch is not None
    assert torch[-1].rsplit("/", 1)[-1] in ("cu128", "cu130", "cu132")  # never cu126
    spec = torch[2]
    assert spec.startswith("torch>=") and tuple(map(int, spec[7:].split("."))) >= (2, 7)


def test_gpu_plan_keeps_cpu_onnxruntime_out():
    m = machine("hopper_h100x2", "linux-x86_64", installed={"onnxruntime": "1.31.1"})
    plan = plan_for(m)
    assert plan.commands[0] == [PY, "-m", "pip", "uninstall", "-y", "onnxruntime"]
    # pyproject's `onnxruntime` requirement is installed without onnxruntime, the project
    # itself with --no-deps, so pip never brings the CPU build back next to onnxruntime-gpu
    assert plan.commands[-2] == [PY, "-m", "pip", "install", "numpy>=1.24", "onnx>=1.16"]
    assert plan.commands[-1] == [PY, "-m", "pip", "install", "--no-deps", "-e", "."]


def test_cpu_plan_removes_gpu_build_and_installs_project_with_extras():
    m = machine("none", "linux-x86_64", installed={"onnxruntime-gpu": "1.20.0"})
    plan = plan_for(m, install.Options(dev=True))
    assert plan.commands[0] == [PY, "-m", "pip", "uninstall", "-y", "onnxruntime-gpu"]
    assert plan.commands[1] == [PY, "-m", "pip", "install", "--upgrade", "onnxruntime"]
    assert plan.commands[-1] == [PY, "-m", "pip", "install", "-e", ".[export,dev]"]


def test_no_uninstall_when_the_other_build_is_absent():
    plan = plan_for(machine("hopper_h100x2", "linux-x86_64"))
    assert not any("uninstall" in c for c in plan.commands)


@pytest.mark.parametrize("fixture", ["none", "hopper_h100x2"])
def test_runtime_only_has_no_torch(fixture):
    m = machine(fixture, "linux-x86_64")
    plan = install.build_plan(
        m,
        install.Options(runtime_only=True),
        python=PY,
        reachable=lambda _u: pytest.fail("no index to probe"),
    )
    names = {install.requirement_name(a) for c in pip_installs(plan) for a in c}
    assert not names & {"torch", "torchvision"}
    assert plan.torch == "none"
    assert plan.commands[-1][-1] == "."  # no export extra


@pytest.mark.parametrize("plat", ["linux-x86_64", "darwin-arm64", "windows-x86_64"])
def test_run_on_a_cpu_machine_installs_no_torch(plat):
    """`install.py run` without a CUDA onnxruntime: the embedded detector, no torch."""
    plan = install.build_plan(
        machine("none", plat), install.task_options("run", False, []), python=PY,
        reachable=lambda _u: pytest.fail("no torch index to probe"), project_deps=DEPS,
    )  # fmt: skip
    names = {install.requirement_name(a) for c in pip_installs(plan) for a in c}
    assert not names & {"torch", "torchvision"} and plan.torch == "none"
    assert plan.commands[-1] == [PY, "-m", "pip", "install", "-e", "."]  # no export extra
    assert any("YOLOX-nano" in n and "no torch" in n for n in plan.notes)


def test_run_keeps_torch_where_it_is_used():
    """On a CUDA machine the run exports RF-DETR once; --random-init exports the HMR model;
    `install.py test` always has torch and the export extra."""
    gpu = plan_for(machine("hopper_h100x2", "linux-x86_64"), install.task_options("run", False, []))
    assert torch_cmd(gpu) is not None and gpu.torch.endswith("/cu130")
    cpu = machine("none", "linux-x86_64")
    rand = plan_for(cpu, install.task_options("run", False, ["--random-init"]))
    assert torch_cmd(rand) is not None and rand.commands[-1][-1] == ".[export]"
    hopper = machine("hopper_h100x2", "linux-x86_64")
    forced = plan_for(hopper, install.task_options("run", True, []))
    assert torch_cmd(forced) is None  # --force-cpu: a CPU run
    test = plan_for(cpu, install.task_options("test", False, []))
    assert torch_cmd(test) is not None and test.commands[-1][-1] == ".[export,dev]"


def test_force_cpu_ignores_the_gpu():
    plan = plan_for(machine("hopper_h100x2", "linux-x86_64"), install.Options(force_cpu=True))
    assert plan.onnxruntime == "onnxruntime"
    assert torch_cmd(plan)[-1].endswith("/cpu")  # type: ignore[index]
    assert any("--force-cpu" in n for n in plan.notes)


def test_unreachable_index_falls_back_to_default_and_says_so():
    asked: list[str] = []

    def unreachable(url: str) -> bool:
        asked.append(url)
        return False

    plan = plan_for(machine("hopper_h100x2", "linux-x86_64"), reachable=unreachable)
    assert asked == ["https://download.pytorch.org/whl/cu130/torch/"]
    torch = torch_cmd(plan)
    assert torch is not None and "--index-url" not in torch
    note = next(n for n in plan.notes if "could not be reached" in n)
    assert "https://download.pytorch.org/whl/cu130" in note and "default index" in note
    assert plan.torch == "default index"


def test_wrong_torch_build_is_replaced_and_right_one_kept():
    wrong = plan_for(machine("hopper_h100x2", "linux-x86_64", installed={"torch": "2.14.1+cpu"}))
    right = plan_for(machine("hopper_h100x2", "linux-x86_64", installed={"torch": "2.14.1+cu130"}))
    assert [PY, "-m", "pip", "uninstall", "-y", "torch", "torchvision"] in wrong.commands
    assert not any("torch" in c for c in right.commands if "uninstall" in c)


def test_jetson_gets_cpu_builds_and_jetpack_note():
    orin = install.Gpu("Orin (nvgpu)", (8, 7), (540, 4, 0), "540.4.0")
    m = install.Machine("linux", "arm64", gpus=(orin,), jetson=True)
    plan = plan_for(m)
    assert plan.onnxruntime == "onnxruntime"
    assert torch_cmd(plan)[-1].endswith("/cpu")  # type: ignore[index]
    assert any("JetPack" in n for n in plan.notes)


def test_python310_note_for_cuda13_onnxruntime():
    m = install.Machine(
        "linux", "x86_64", python=(3, 10), gpus=install.parse_nvidia_smi("H100, 9.0, 580.95.05")
    )
    assert any("Python >= 3.11" in n for n in plan_for(m).notes)


def test_old_driver_note_says_what_to_update():
    gpu = install.Gpu("NVIDIA GeForce RTX 5080", (12, 0), (565, 57, 1), "565.57.01")
    plan = plan_for(install.Machine("linux", "x86_64", gpus=(gpu,)))
    note = next(n for n in plan.notes if n.startswith("torch:"))
    assert ">= 570.26" in note and "565.57.01" in note
    assert torch_cmd(plan)[-1].endswith("/cpu")  # type: ignore[index]


def test_maxwell_keeps_torch_cu126_but_onnxruntime_cpu():
    gpu = install.Gpu("NVIDIA GeForce GTX 980", (5, 2), (580, 95, 5), "580.95.05")
    plan = plan_for(install.Machine("linux", "x86_64", gpus=(gpu,)))
    assert plan.onnxruntime == "onnxruntime"
    assert any("compute capability 5.2" in n and "too old" in n for n in plan.notes)
    assert torch_cmd(plan)[-1].endswith("/cu126")  # type: ignore[index]


def test_intel_mac_dev_skips_export_extra():
    plan = plan_for(install.Machine("darwin", "x86_64"), install.Options(dev=True))
    assert torch_cmd(plan) is None
    assert plan.commands[-1] == [PY, "-m", "pip", "install", "-e", ".[dev]"]


def test_project_requirements_reads_pyproject():
    reqs = install.project_requirements(["export"])
    names = {install.requirement_name(r) for r in reqs}
    assert {"numpy", "torch"} <= names
    assert "torch" not in {install.requirement_name(r) for r in install.project_requirements([])}


def test_index_reachable_probes_with_head():
    methods: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_HEAD(self):
            methods.append(self.command)
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/whl/cu130"
    try:
        assert install.index_reachable(url, timeout=2.0)
    finally:
        server.shutdown()
        server.server_close()
    assert methods == ["HEAD"]
    assert not install.index_reachable(url, timeout=1.0)  # nothing listens any more


# ----------------------------------------------------------------------------- CLI
def dry_run(*args: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, str(ROOT / "install.py"), "--dry-run", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60, cwd=ROOT)


def commands_of(stdout: str) -> list[list[str]]:
    return [shlex.split(line[2:]) for line in stdout.splitlines() if line.startswith("$ ")]


def _installed(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def project_lines(extras: list[str], gpu: bool) -> list[list[str]]:
    deps = install.project_requirements(extras)
    pip = [sys.executable, "-m", "pip", "install"]
    if gpu and any(install.requirement_name(d) == "onnxruntime" for d in deps):
        keep = [d for d in deps if install.requirement_name(d) not in install.ORT_BUILDS]
        return [pip + keep, pip + ["--no-deps", "-e", "."]]
    return [pip + ["-e", "." + (f"[{','.join(extras)}]" if extras else "")]]


def test_dry_run_apple_silicon_exact_commands():
    res = dry_run("--platform", "darwin-arm64", "--nvidia-smi-output", str(SMI / "none.txt"))
    assert res.returncode == 0, res.stderr
    pip = [sys.executable, "-m", "pip"]
    uninstall = (
        [pip + ["uninstall", "-y", "onnxruntime-gpu"]] if _installed("onnxruntime-gpu") else []
    )
    assert commands_of(res.stdout) == [
        *uninstall,
        pip + ["install", "--upgrade", "onnxruntime"],
        pip + ["install", "--upgrade", "torch>=2.4", "torchvision"],
        *project_lines(["export"], gpu=False),
    ]
    assert "nothing was run" in res.stdout


def test_dry_run_linux_hopper_exact_commands():
    res = dry_run(
        "--platform",
        "linux-x86_64",
        "--assume-index",
        "reachable",
        "--nvidia-smi-output",
        str(SMI / "hopper_h100x2.txt"),
    )
    assert res.returncode == 0, res.stderr
    pip = [sys.executable, "-m", "pip"]
    expected = [pip + ["uninstall", "-y", "onnxruntime"]] if _installed("onnxruntime") else []
    expected.append(pip + ["install", "--upgrade", GPU_ORT])
    torch = _installed("torch")
    if torch is not None and install.torch_label(torch) != "cu130":
        expected.append(pip + ["uninstall", "-y", "torch", "torchvision"])
    expected.append(
        pip
        + [
            "install",
            "--upgrade",
            "torch>=2.9",
            "torchvision",
            "--index-url",
            "https://download.pytorch.org/whl/cu130",
        ]
    )
    assert commands_of(res.stdout) == expected + project_lines(["export"], gpu=True)
    assert "NVIDIA H100 80GB HBM3 (compute capability 9.0, driver 580.95.05)" in res.stdout


def test_dry_run_windows_runtime_only_dev():
    res = dry_run(
        "--platform",
        "windows-x86_64",
        "--runtime-only",
        "--dev",
        "--nvidia-smi-output",
        str(SMI / "turing_t4.txt"),
    )
    assert res.returncode == 0, res.stderr
    cmds = commands_of(res.stdout)
    assert [sys.executable, "-m", "pip", "install", "--upgrade", CUDA12_ORT] in cmds
    assert not any(install.requirement_name(a) in ("torch", "torchvision") for c in cmds for a in c)
    assert cmds[-len(project_lines(["dev"], gpu=True)) :] == project_lines(["dev"], gpu=True)


def test_dry_run_unreachable_index_message():
    res = dry_run(
        "--platform",
        "linux-x86_64",
        "--assume-index",
        "unreachable",
        "--nvidia-smi-output",
        str(SMI / "none.txt"),
    )
    assert res.returncode == 0, res.stderr
    torch = next(c for c in commands_of(res.stdout) if "torchvision" in c)
    assert "--index-url" not in torch
    assert "https://download.pytorch.org/whl/cpu could not be reached" in res.stdout
    assert "default index" in res.stdout


def test_help_documents_injection_options():
    res = subprocess.run(
        [sys.executable, str(ROOT / "install.py"), "--help"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert res.returncode == 0
    for flag in ("--nvidia-smi-output", "--platform", "--dry-run", "--runtime-only", "--doctor"):
        assert flag in res.stdout


def test_bad_platform_exits_2_with_reason():
    res = dry_run("--platform", "plan9-mips")
    assert res.returncode == 2
    assert "linux-x86_64" in res.stderr


# ----------------------------------------------------------------------------- run / test
def test_dev_extra_expands_the_projects_own_extras():
    """`dev` pulls `instanthmr[app,ray,eval]`: their requirements, never the project itself
    (pip would look for `instanthmr` on the package index in the GPU plan)."""
    names = {install.requirement_name(r) for r in install.project_requirements(["dev"])}
    assert {"fastapi", "uvicorn", "ray", "pycocotools", "pytest", "ruff"} <= names
    assert "instanthmr" not in names


def test_venv_python_per_platform(monkeypatch, tmp_path):
    monkeypatch.setattr(sys, "platform", "win32")
    assert install.venv_python(tmp_path) == tmp_path / "Scripts" / "python.exe"
    monkeypatch.setattr(sys, "platform", "darwin")
    assert install.venv_python(tmp_path) == tmp_path / "bin" / "python"


def test_install_is_skipped_when_the_stamp_matches(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(sys, "prefix", str(tmp_path))
    opts = install.Options(dev=True)
    plan = install.build_plan(install.detect_machine(), opts, reachable=lambda _u: False)
    monkeypatch.setattr(install, "index_reachable", lambda *_a, **_k: False)
    (tmp_path / (install.STAMP + "-dev")).write_text(install.install_stamp(plan) + "\n")
    assert install.install_here(opts, reinstall=False) == 0
    assert "up to date" in capsys.readouterr().out
    other = install.Plan([*plan.commands, ["x"]], [], plan.onnxruntime, plan.torch)
    assert install.install_stamp(other) != install.install_stamp(plan)


def test_test_task_fails_when_pytest_collects_nothing(capsys):
    code = install.run_tests(["tests/test_cli.py", "-k", "no_test_has_this_name"])
    assert code == install.EXIT_NO_TESTS
    assert "collected no tests" in capsys.readouterr().err


@pytest.mark.parametrize(("task", "says"), [("run", "demo"), ("test", "pytest")])
def test_task_help(task, says):
    res = subprocess.run(
        [sys.executable, str(ROOT / "install.py"), task, "--help"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert res.returncode == 0 and f"install.py {task}" in res.stdout
    assert says in res.stdout and "--reinstall" in res.stdout and "--venv" in res.stdout
