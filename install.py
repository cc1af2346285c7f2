#!/usr/bin/env python3
"""Hardware-aware installer for InstantHMR (standard library only: runs before any install).

It looks at the machine (OS, CPU architecture, NVIDIA GPU via ``nvidia-smi``, Apple Silicon),
picks the onnxruntime build and the PyTorch wheel index that fit, prints the exact ``pip``
commands and runs them with this Python (``sys.executable -m pip``). The decision table is a
set of pure functions over :class:`Machine` -> :class:`Plan`; see docs/install.md.

    python3 install.py run                        # fresh clone: .venv, install, weights, demo
                                                  # (no torch on a CPU machine)
    python3 install.py run --random-init          # the same without network (MEANINGLESS poses)
    python3 install.py test                       # fresh clone: .venv, install, ruff, pytest
    python install.py --dry-run                   # show the plan and the commands, run nothing
    python install.py                             # install (onnxruntime, torch, the project)
    python install.py --runtime-only              # ONNX path only, no torch
    python install.py --doctor --device cuda      # check an existing install

``run`` and ``test`` create (or reuse) a virtual environment, ``.venv`` beside this file
unless one is active, re-run themselves with its Python, install the plan for this machine
there (skipped when nothing changed since the last install) and then start the demo
(``instanthmr start``) or the checks CI runs (``ruff check .`` and ``pytest -q``).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import re
import shlex
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

if sys.version_info < (3, 10):  # noqa: UP036 (a clear message before newer syntax fails)
    sys.exit("InstantHMR needs Python >= 3.10; run install.py with a newer Python.")

ROOT = Path(__file__).resolve().parent
TORCH_INDEX = "https://download.pytorch.org/whl/"
SMI_QUERY = ["--query-gpu=name,compute_cap,driver_version", "--format=csv,noheader"]
SMI_QUERY_OLD = ["--query-gpu=name,driver_version", "--format=csv,noheader"]  # drivers < 510
ORT_BUILDS = ("onnxruntime", "onnxruntime-gpu")
CC = tuple[int, int]
Version = tuple[int, ...]


@dataclass(frozen=True)
class Gpu:
    """One NVIDIA GPU as ``nvidia-smi`` reports it (compute capability None on old drivers)."""

    name: str
    compute_capability: CC | None
    driver: Version | None
    driver_text: str = ""  # as printed, e.g. "580.95.05"

    def describe(self) -> str:
        """``NAME (compute capability X.Y, driver D)``."""
        cc = ".".join(map(str, self.compute_capability)) if self.compute_capability else "unknown"
        return f"{self.name} (compute capability {cc}, driver {self.driver_text or 'unknown'})"


@dataclass(frozen=True)
class Machine:
    """What the decision table looks at. ``installed`` maps distribution names to versions."""

    os: str  # linux | darwin | windows
    arch: str  # x86_64 | arm64
    python: tuple[int, int] = (sys.version_info[0], sys.version_info[1])
    gpus: tuple[Gpu, ...] = ()
    jetson: bool = False
    rosetta: bool = False
    installed: Mapping[str, str] = field(default_factory=dict)
    gpu_note: str = ""  # why no GPU was seen (nvidia-smi missing or failing)


@dataclass(frozen=True)
class Options:
    """The user's choices: ``--force-cpu``, ``--runtime-only``, ``--dev``.

    ``for_run``: the install is for ``install.py run`` (the demo): torch only where the run
    uses it, i.e. where onnxruntime gets a CUDA build (RF-DETR is exported there once). On
    other machines the embedded YOLOX-nano detects people and no torch is installed.
    """

    force_cpu: bool = False
    runtime_only: bool = False
    dev: bool = False
    for_run: bool = False


@dataclass
class Plan:
    """Exact commands (argv lists, run in order from the repository root) and notes."""

    commands: list[list[str]]
    notes: list[str]
    onnxruntime: str  # the requirement installed, e.g. "onnxruntime-gpu[cuda,cudnn]"
    torch: str  # "none", "default index", or the wheel index URL


@dataclass(frozen=True)
class Build:
    """A CUDA build line: minimum driver per OS and the compute capabilities it has kernels for."""

    tag: str
    cuda: str
    requirement: str
    min_driver: Mapping[str, Version]
    cc: Mapping[str, tuple[CC, CC]]  # arch -> [lowest, highest) compute capability


# Minimum drivers: NVIDIA CUDA release notes (toolkit GA drivers; the CUDA 12.x minor-version
# compatibility floor is 525.60.13 on Linux and 528.33 on Windows, CUDA 13.x needs >= 580).
_DRV_13 = {"linux": (580, 65, 6), "windows": (580, 0)}
_DRV_12 = {"linux": (525, 60, 13), "windows": (528, 33)}
# Compute capabilities with kernels, per arch: [lowest, highest). 12.0+PTX runs on newer GPUs.
_TURING_UP = {"x86_64": ((7, 5), (99, 0)), "arm64": ((8, 0), (99, 0))}
_TO_BLACKWELL = {"x86_64": ((7, 5), (13, 0)), "arm64": ((8, 0), (13, 0))}
_TO_HOPPER = {"x86_64": ((5, 0), (10, 0)), "arm64": ((8, 0), (10, 0))}
# PyTorch CUDA lines, newest first (pytorch RELEASE.md "PyTorch CUDA Support Matrix"; torch
# 2.12-2.14 publish cu126, cu130 and cu132, torch <= 2.11 also cu128).
TORCH_BUILDS = (
    Build("cu132", "13.2", "torch>=2.12", {"linux": (595, 45, 4), "windows": (595, 0)}, _TURING_UP),
    Build("cu130", "13.0", "torch>=2.9", _DRV_13, _TURING_UP),
    Build("cu128", "12.8", "torch>=2.7", {"linux": (570, 26), "windows": (570, 65)}, _TO_BLACKWELL),
    Build("cu126", "12.6", "torch>=2.6", _DRV_12, _TO_HOPPER),
)
# onnxruntime-gpu on PyPI (x86_64 Linux and Windows only): >= 1.27 is built with CUDA 13 and
# cuDNN 9 (sm_75 and newer), 1.19-1.26 with CUDA 12 and cuDNN 9 (sm_60 and newer).
_ORT = "onnxruntime-gpu[cuda,cudnn]"
ORT_GPU_BUILDS = (
    Build("cuda13", "13.x", _ORT, _DRV_13, {"x86_64": ((7, 5), (99, 0))}),
    Build("cuda12", "12.x", _ORT + "<1.27", _DRV_12, {"x86_64": ((6, 0), (99, 0))}),
)
CU126_GA = {"linux": (560, 28, 3), "windows": (560, 76)}


# ----------------------------------------------------------------------------- detection
def parse_version(text: str) -> Version | None:
    """``"580.95.05"`` -> ``(580, 95, 5)``; None when it is not a dotted number."""
    text = text.strip()
    return tuple(int(p) for p in text.split(".")) if re.fullmatch(r"\d+(\.\d+)*", text) else None


def parse_nvidia_smi(text: str) -> tuple[Gpu, ...]:
    """GPUs from ``--query-gpu=name,compute_cap,driver_version --format=csv,noheader`` output.

    Also accepts the two-column ``name,driver_version`` output of drivers that do not know
    ``compute_cap``; lines that are messages ("No devices were found") are skipped.
    """
    gpus = []
    for line in text.splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) < 2 or (driver := parse_version(parts[-1])) is None:
            continue
        cc = parse_version(parts[-2]) if len(parts) >= 3 else None
        name = ", ".join(parts[:-2] if len(parts) >= 3 else parts[:-1])
        gpus.append(Gpu(name, cc[:2] if cc and len(cc) >= 2 else None, driver, parts[-1]))  # type: ignore[arg-type]
    return tuple(gpus)


def query_nvidia_smi() -> tuple[str, str]:
    """Run ``nvidia-smi``; returns ``(output, problem)`` where problem is "" on success."""
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return "", "nvidia-smi not found (no NVIDIA driver)"
    for query in (SMI_QUERY, SMI_QUERY_OLD):
        try:
            res = subprocess.run([exe, *query], capture_output=True, text=True, timeout=20)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return "", f"nvidia-smi could not run: {exc}"
        if res.returncode == 0:
            return res.stdout, ""
        if "compute_cap" not in res.stdout + res.stderr:
            return "", f"nvidia-smi failed: {(res.stdout + res.stderr).strip()[:200]}"
    return "", "nvidia-smi failed"


def parse_platform(spec: str) -> tuple[str, str]:
    """``"linux-x86_64"`` -> ``("linux", "x86_64")``; accepts aarch64/amd64 spellings."""
    m = re.fullmatch(r"(linux|darwin|macos|windows)-(x86_64|amd64|arm64|aarch64)", spec.lower())
    if not m:
        raise ValueError(
            f"--platform {spec!r}: use {{linux,darwin,windows}}-{{x86_64,arm64}}, e.g. linux-x86_64"
        )
    os_ = "darwin" if m[1] == "macos" else m[1]
    return os_, "x86_64" if m[2] in ("x86_64", "amd64") else "arm64"


def this_platform() -> tuple[str, str]:
    """(os, arch) of the running interpreter."""
    os_ = {"Linux": "linux", "Darwin": "darwin", "Windows": "windows"}.get(platform.system())
    if os_ is None:
        raise SystemExit(
            f"unsupported OS {platform.system()!r}: InstantHMR supports Linux, "
            "macOS and Windows (use --platform to plan for one of them)"
        )
    mach = platform.machine().lower()
    return os_, "arm64" if mach in ("arm64", "aarch64") else "x86_64"


def _rosetta() -> bool:
    try:
        out = subprocess.run(
            ["sysctl", "-n", "sysctl.proc_translated"], capture_output=True, text=True, timeout=5
        ).stdout
    except (OSError, subprocess.TimeoutExpired):
        return False
    return out.strip() == "1"


def _jetson() -> bool:
    model = Path("/proc/device-tree/model")
    try:
        text = model.read_text(errors="replace") if model.exists() else ""
    except OSError:
        text = ""
    return Path("/etc/nv_tegra_release").exists() or "jetson" in text.lower()


def installed_packages() -> dict[str, str]:
    """Distributions installed in this interpreter (normalised name -> version)."""
    from importlib import metadata

    out = {}
    for dist in metadata.distributions():
        name = dist.metadata.get("Name")
        if name:
            out[canonical(name)] = dist.version
    return out


def detect_machine(platform_spec: str | None = None, smi_output: str | None = None) -> Machine:
    """The running machine, or a recorded one (``--platform``, ``--nvidia-smi-output``)."""
    os_, arch = parse_platform(platform_spec) if platform_spec else this_platform()
    note = ""
    if smi_output is None and os_ != "darwin":
        smi_output, note = query_nvidia_smi()
    gpus = parse_nvidia_smi(smi_output or "")
    if not gpus and not note:
        note = "nvidia-smi reports no GPU" if os_ != "darwin" else ""
    jetson = any(re.search(r"orin|xavier|jetson", g.name, re.I) for g in gpus)
    if not platform_spec:
        jetson = jetson or (os_ == "linux" and arch == "arm64" and _jetson())
    rosetta = not platform_spec and os_ == "darwin" and arch == "x86_64" and _rosetta()
    return Machine(
        os_,
        arch,
        gpus=gpus,
        jetson=jetson,
        rosetta=rosetta,
        installed=installed_packages(),
        gpu_note=note,
    )


def index_reachable(url: str, timeout: float = 5.0) -> bool:
    """A short HEAD request: does this page of a wheel index answer (status < 400)?"""
    try:
        req = urllib.request.Request(url, method="HEAD")
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status < 400
    except (urllib.error.URLError, OSError, ValueError):
        return False


# ----------------------------------------------------------------------------- decisions
def canonical(name: str) -> str:
    """PEP 503 normalised distribution name."""
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_name(req: str) -> str:
    """The distribution name of a requirement string (``"onnx>=1.16"`` -> ``"onnx"``)."""
    m = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", req)
    return canonical(m[1]) if m else ""


def choose(builds: Iterable[Build], machine: Machine, gpu: Gpu) -> Build | None:
    """The first (newest) build the driver supports and that has kernels for the GPU."""
    cc = gpu.compute_capability or (7, 5)  # unknown capability: judged by the driver alone
    for b in builds:
        lo_hi = b.cc.get(machine.arch)
        floor = b.min_driver.get(machine.os)
        if lo_hi and floor and gpu.driver and gpu.driver >= floor and lo_hi[0] <= cc < lo_hi[1]:
            return b
    return None


def _why_none(builds: Sequence[Build], m: Machine, gpu: Gpu, what: str) -> str:
    """Why no CUDA build fits: the driver (fixable) or the GPU (too old or unknown)."""
    cc = gpu.compute_capability or (7, 5)
    fits = [b for b in builds if (r := b.cc.get(m.arch)) and r[0] <= cc < r[1]]
    if not fits:
        cap = ".".join(map(str, gpu.compute_capability or ()))
        return (
            f"no current {what} CUDA wheel has kernels for compute capability {cap} "
            "(GPU too old); using the CPU build."
        )
    need = ".".join(map(str, fits[-1].min_driver[m.os]))
    return (
        f"{what} CUDA {fits[-1].cuda} wheels for this GPU need an NVIDIA driver >= {need} "
        f"(>= 580 for CUDA 13), this one is {gpu.driver_text or 'unknown'}: update the driver "
        "and rerun install.py. Using the CPU build meanwhile."
    )


def gpu_choices(m: Machine, opts: Options) -> tuple[Build | None, Build | None, bool, list[str]]:
    """(onnxruntime GPU build, torch CUDA build, torch wanted, notes) for this machine."""
    gpu = m.gpus[0] if m.gpus else None
    notes: list[str] = []
    if len({(g.name, g.compute_capability) for g in m.gpus}) > 1:
        notes.append(f"several different GPUs; planning for GPU 0: {gpu.describe()}")  # type: ignore[union-attr]
    if m.os == "darwin":
        notes.append("macOS: onnxruntime with the CoreML provider (--device coreml) and CPU.")
        if gpu:
            notes.append("an NVIDIA GPU on macOS is not supported by CUDA wheels; ignoring it.")
        if m.arch == "x86_64":
            notes.append(
                "Intel Mac: PyTorch stopped at 2.2 (Python <= 3.12) and onnxruntime at "
                "1.23, so torch and the export extra are skipped (export needs "
                "torch >= 2.4); the ONNX runtime path works."
            )
        if m.rosetta:
            notes.append(
                "this Python runs under Rosetta on Apple Silicon: use an arm64 Python "
                "for the CoreML provider and current wheels."
            )
        return None, None, m.arch == "arm64", notes
    if gpu is None:
        if m.gpu_note:
            notes.append(f"no NVIDIA GPU: {m.gpu_note}; CPU builds.")
        return None, None, True, notes
    if opts.force_cpu:
        notes.append(f"--force-cpu: CPU builds although {gpu.describe()} is present.")
        return None, None, True, notes
    notes.append(f"GPU: {gpu.describe()}")
    if m.arch == "arm64" and m.os == "windows":
        notes.append("Windows on Arm has no CUDA wheels; CPU builds.")
        return None, None, True, notes
    if m.arch == "arm64" and m.jetson and (gpu.compute_capability or (0, 0)) < (11, 0):
        notes.append(
            "Jetson: PyPI has no onnxruntime-gpu or torch CUDA wheels for JetPack; "
            "installing CPU builds. For the GPU, install NVIDIA's JetPack wheels of "
            "onnxruntime-gpu and torch matching your L4T release "
            "(https://pypi.jetson-ai-lab.io) after this, then run --doctor."
        )
        return None, None, True, notes
    ort = choose(ORT_GPU_BUILDS, m, gpu)
    if m.arch == "arm64":
        notes.append(
            "Linux aarch64 (e.g. GH200): PyPI has no onnxruntime-gpu wheel for "
            "aarch64, so the ONNX path runs on the CPU build; torch gets CUDA."
        )
    elif ort is None:
        notes.append("onnxruntime: " + _why_none(ORT_GPU_BUILDS, m, gpu, "onnxruntime"))
    else:
        notes.append(
            f"onnxruntime-gpu built with CUDA {ort.cuda} and cuDNN 9; the [cuda,cudnn] "
            "extras bring the CUDA runtime, cuBLAS and cuDNN as pip packages."
        )
        if ort.tag == "cuda12" and (gpu.compute_capability or (7, 5)) < (7, 5):
            notes.append(
                "CUDA 13 dropped GPUs below compute capability 7.5; keeping the CUDA 12 "
                "builds (onnxruntime-gpu < 1.27, torch cu126)."
            )
        if ort.tag == "cuda13" and m.python < (3, 11):
            notes.append(
                "onnxruntime-gpu >= 1.25 needs Python >= 3.11: pip will pick 1.23 "
                "(CUDA 12), which also runs on this driver."
            )
    torch = choose(TORCH_BUILDS, m, gpu)
    if torch is None:
        notes.append("torch: " + _why_none(TORCH_BUILDS, m, gpu, "PyTorch"))
    elif torch.tag == "cu126" and gpu.driver and gpu.driver < CU126_GA.get(m.os, (0,)):
        notes.append(
            "torch cu126 runs on this driver through CUDA minor-version "
            "compatibility; a driver >= 560 is recommended."
        )
    if gpu.compute_capability and gpu.compute_capability >= (10, 0) and torch is not None:
        notes.append(
            f"Blackwell needs sm_100/sm_120 kernels: {torch.tag} with {torch.requirement}."
        )
    return (None if m.arch == "arm64" else ort), torch, True, notes


def pip_cmd(python: str, *args: str) -> list[str]:
    """``python -m pip ...`` as an argv list."""
    return [python, "-m", "pip", *args]


def torch_label(version: str | None) -> str:
    """Local version label of a torch version (``"2.7.1+cu128"`` -> ``"cu128"``, none -> "")."""
    return version.split("+", 1)[1] if version and "+" in version else ""


def build_plan(
    machine: Machine,
    opts: Options = Options(),
    *,
    python: str = sys.executable,
    reachable: Callable[[str], bool] = index_reachable,
    project_deps: Sequence[str] | None = None,
) -> Plan:
    """The decision table: which packages, from which index, in which order.

    ``project_deps`` are the project's requirements for the chosen extras (read from
    pyproject.toml when None); ``reachable`` is asked about the torch page of the preferred
    PyTorch index (``<index>/torch/``) and a False answer falls back to the default index.
    """
    ort, torch, torch_ok, notes = gpu_choices(machine, opts)
    commands: list[list[str]] = []
    ort_req = ort.requirement if ort else "onnxruntime"
    other = "onnxruntime" if ort else "onnxruntime-gpu"
    present = [n for n in (other, "onnxruntime-directml") if n in machine.installed]
    if present:  # both builds share the `onnxruntime` package folder: never keep two
        commands.append(pip_cmd(python, "uninstall", "-y", *present))
    commands.append(pip_cmd(python, "install", "--upgrade", ort_req))
    torch_desc = "none"
    want_torch = torch_ok and not opts.runtime_only
    if want_torch and opts.for_run and ort is None:
        want_torch = False
        notes.append(
            "run: no torch here. The demo runs on onnxruntime with the YOLOX-nano detector "
            "shipped in the package (no detector download); `install.py test` and the export "
            "tools (`pip install -e .[export]`) install torch."
        )
    if want_torch:
        index: str | None = None
        if torch is not None:
            index, label = TORCH_INDEX + torch.tag, torch.tag
        elif machine.os in ("linux", "windows"):
            index, label = TORCH_INDEX + "cpu", "cpu"
        if index and not reachable(f"{index}/torch/"):  # the page pip fetches first
            notes.append(
                f"NOTE: the PyTorch wheel index {index} could not be reached; installing torch "
                "from the default index instead. That wheel may be a different build (on "
                "Windows a CPU-only one, on Linux a CUDA 13 one); run "
                "`python install.py --doctor` afterwards, or rerun when the index is reachable."
            )
            index = None
        installed = machine.installed.get("torch")
        if index and installed is not None and torch_label(installed) != label:
            notes.append(f"replacing the installed torch {installed} with the {label} build.")
            commands.append(pip_cmd(python, "uninstall", "-y", "torch", "torchvision"))
        req = torch.requirement if torch else "torch>=2.4"
        cmd = pip_cmd(python, "install", "--upgrade", req, "torchvision")
        commands.append(cmd + (["--index-url", index] if index else []))
        torch_desc = index or "default index"
    elif opts.runtime_only:
        notes.append("--runtime-only: no torch, no export extra; the ONNX path only.")
    extras = (["export"] if want_torch else []) + (["dev"] if opts.dev else [])
    target = "." + (f"[{','.join(extras)}]" if extras else "")
    deps = list(project_deps) if project_deps is not None else project_requirements(extras)
    if ort and any(requirement_name(d) == "onnxruntime" for d in deps):
        # pip does not count onnxruntime-gpu as onnxruntime: install the other requirements
        # explicitly and the project without dependencies, so the CPU build never comes back.
        keep = [d for d in deps if requirement_name(d) not in ORT_BUILDS]
        notes.append(
            "pyproject.toml requires `onnxruntime`; the project is installed with "
            "--no-deps after its other requirements so onnxruntime-gpu stays alone."
        )
        commands.append(pip_cmd(python, "install", *keep))
        commands.append(pip_cmd(python, "install", "--no-deps", "-e", "."))
    else:
        commands.append(pip_cmd(python, "install", "-e", target))
    return Plan(commands, notes, ort_req, torch_desc)


def _load_toml(path: Path) -> dict:
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10: pip vendors the same parser
        from pip._vendor import tomli as tomllib  # type: ignore[no-redef]
    with path.open("rb") as f:
        return tomllib.load(f)


def project_requirements(
    extras: Sequence[str], pyproject: Path = ROOT / "pyproject.toml"
) -> list[str]:
    """The project's dependencies plus those of ``extras``, from pyproject.toml."""
    project = _load_toml(pyproject).get("project", {})
    name = canonical(project.get("name", ""))
    optional = project.get("optional-dependencies", {})
    reqs = list(project.get("dependencies", []))
    todo, seen = list(extras), set()
    while todo:  # an extra may pull others: "instanthmr[app,ray,eval]" in dev
        extra = todo.pop(0)
        if extra in seen:
            continue
        seen.add(extra)
        for req in optional.get(extra, []):
            m = re.fullmatch(r"\s*([A-Za-z0-9._-]+)\[([^\]]*)\]\s*", req)
            if m and canonical(m[1]) == name:
                todo += [e.strip() for e in m[2].split(",") if e.strip()]
            else:
                reqs.append(req)
    return list(dict.fromkeys(reqs))


# ----------------------------------------------------------------------------- CLI
def show(cmd: Sequence[str]) -> str:
    """A command as it would be typed in this machine's shell."""
    return subprocess.list2cmdline(cmd) if sys.platform == "win32" else shlex.join(cmd)


def report(machine: Machine, plan: Plan) -> str:
    """The plan as printed by ``--dry-run`` and before an install."""
    gpu = machine.gpus[0].describe() if machine.gpus else "no NVIDIA GPU"
    py = ".".join(map(str, machine.python))
    lines = [
        f"Machine: {machine.os} {machine.arch}, Python {py}, {gpu}",
        f"onnxruntime: {plan.onnxruntime}",
        f"torch: {plan.torch}",
        "Notes:",
        *[f"  - {n}" for n in plan.notes or ["none"]],
        f"Commands (run from {ROOT}):",
        *[f"$ {show(c)}" for c in plan.commands],
    ]
    return "\n".join(lines)


def parser() -> argparse.ArgumentParser:
    """Command-line options of install.py."""
    p = argparse.ArgumentParser(
        description="Install InstantHMR with the onnxruntime and torch builds that fit this "
        "machine. Other options given with --doctor (--model, --device, --detector-model, "
        "--json, --runs) are passed to the doctor; see `python install.py --doctor --help`.",
    )
    add = p.add_argument
    add("--dry-run", action="store_true", help="print the plan and the exact commands; run nothing")
    add("--force-cpu", action="store_true", help="CPU builds even when an NVIDIA GPU is present")
    add(
        "--runtime-only",
        action="store_true",
        help="no torch at all: onnxruntime(-gpu) and the project without the export extra",
    )
    add(
        "--dev",
        action="store_true",
        help="also the test tools and the export extra: pip install -e .[export,dev]",
    )
    add(
        "--doctor",
        action="store_true",
        help="run the doctor (checks an existing install) instead of installing",
    )
    add(
        "--nvidia-smi-output",
        metavar="FILE",
        type=Path,
        help="use this recorded output of `nvidia-smi --query-gpu=name,compute_cap,"
        "driver_version --format=csv,noheader` instead of running nvidia-smi",
    )
    add(
        "--platform",
        metavar="OS-ARCH",
        help="plan for {linux,darwin,windows}-{x86_64,arm64} instead of this machine",
    )
    add(
        "--assume-index",
        choices=("probe", "reachable", "unreachable"),
        default="probe",
        help="is the PyTorch wheel index reachable? probe it with a short HEAD request "
        "(default) or assume an answer (tests, offline planning)",
    )
    return p


def _doctor(argv: list[str]) -> int:
    sys.path.insert(0, str(ROOT))
    try:
        from instanthmr.commands.doctor import main as doctor_main
    except ImportError as exc:
        print(
            f"The doctor needs the project installed (`python install.py`): {exc}", file=sys.stderr
        )
        return 2
    return doctor_main(argv)


# ----------------------------------------------------------------------------- run / test
TASKS = ("run", "test")
STAMP = ".instanthmr-install"  # in the venv: what was installed there last
EXIT_NO_TESTS = 5  # pytest: no tests were collected


def venv_python(venv: Path) -> Path:
    """The interpreter of a virtual environment (``Scripts\\python.exe`` on Windows)."""
    if sys.platform == "win32":
        return venv / "Scripts" / "python.exe"
    return venv / "bin" / "python"


def default_venv() -> Path:
    """The active virtual environment, else ``.venv`` beside install.py."""
    return Path(sys.prefix) if sys.prefix != sys.base_prefix else ROOT / ".venv"


def task_parser(task: str) -> argparse.ArgumentParser:
    """Options of ``install.py run`` / ``install.py test``; the rest goes to the demo / pytest."""
    what = (
        "set up, get the models and run the demo on the sample clip; other options go to "
        "`instanthmr start` / `instanthmr demo`"
        if task == "run"
        else "set up with the test tools, then run `ruff check .` and `pytest -q` (what CI "
        "runs); other options go to pytest"
    )
    p = argparse.ArgumentParser(prog=f"install.py {task}", description=what)
    p.add_argument(
        "--venv",
        type=Path,
        default=None,
        help="virtual environment to create or reuse (default: the active one, else .venv)",
    )
    p.add_argument(
        "--reinstall",
        action="store_true",
        help="install again even when nothing changed since the last install",
    )
    p.add_argument("--force-cpu", action="store_true", help="CPU builds even with an NVIDIA GPU")
    return p


def make_venv(venv: Path) -> int:
    """Create ``venv`` (with an up-to-date pip) unless it exists; returns an exit status."""
    if venv_python(venv).is_file():
        return 0
    print(f">>> creating the virtual environment {venv}", flush=True)
    code = subprocess.run([sys.executable, "-m", "venv", str(venv)]).returncode
    if code != 0 or not venv_python(venv).is_file():
        print(
            f"install.py: could not create a virtual environment at {venv}. On Debian or "
            "Ubuntu install the venv module first: sudo apt install python3-venv",
            file=sys.stderr,
        )
        return code or 1
    pip = [str(venv_python(venv)), "-m", "pip", "install", "--upgrade", "pip"]
    if subprocess.run(pip).returncode != 0:
        print("install.py: note: pip could not be upgraded; going on with the bundled one")
    return 0


def install_stamp(plan: Plan) -> str:
    """What an install depends on: the commands, pyproject.toml and install.py itself."""
    h = hashlib.sha256(json.dumps(plan.commands).encode())
    for f in (ROOT / "pyproject.toml", Path(__file__).resolve()):
        h.update(f.read_bytes())
    return h.hexdigest()


def run_commands(commands: list[list[str]]) -> int:
    """Run the plan's commands in order, echoing each; the first failure's exit status, or 0."""
    for cmd in commands:
        print(f"\n>>> {show(cmd)}", flush=True)
        code = subprocess.run(cmd, cwd=ROOT).returncode
        if code != 0:
            print(
                f"install.py: command failed with exit status {code}: {show(cmd)}", file=sys.stderr
            )
            return code
    return 0


def install_here(opts: Options, reinstall: bool) -> int:
    """Run this machine's plan in the running interpreter's environment (once per change)."""
    machine = detect_machine()
    plan = build_plan(machine, opts, reachable=lambda url: index_reachable(url))
    stamp_file = Path(sys.prefix) / (STAMP + ("-dev" if opts.dev else ""))
    stamp = install_stamp(plan)
    try:
        done = stamp_file.read_text().strip() == stamp
    except OSError:
        done = False
    if done and not reinstall:
        print(f"install.py: {sys.prefix} is up to date (--reinstall to install again)")
        return 0
    print(report(machine, plan), flush=True)
    code = run_commands(plan.commands)
    if code != 0:
        return code
    stamp_file.write_text(stamp + "\n")
    return 0


def run_tests(pytest_args: Sequence[str]) -> int:
    """What CI runs: ``ruff check .`` then ``pytest -q``; pytest's exit 5 (nothing ran) fails."""
    env = {**os.environ, "RERUN_ANALYTICS": "0", "PYTHONUNBUFFERED": "1"}
    for cmd in (
        [sys.executable, "-m", "ruff", "check", "."],
        [sys.executable, "-m", "pytest", "-q", *pytest_args],
    ):
        print(f"\n>>> {show(cmd)}", flush=True)
        code = subprocess.run(cmd, cwd=ROOT, env=env).returncode
        if code == EXIT_NO_TESTS and "pytest" in cmd:
            print(
                "install.py: pytest collected no tests (exit 5); an empty run is a failure: "
                "check the pytest arguments and that tests/ is there",
                file=sys.stderr,
            )
        if code != 0:
            return code
    return 0


def task_options(task: str, force_cpu: bool, rest: Sequence[str]) -> Options:
    """The install options of a task: ``test`` gets the test tools and torch (the export
    extra); ``run`` gets what the demo needs (:attr:`Options.for_run`), and torch with it
    when ``--random-init`` asks for random-init models to be exported here."""
    if task == "test":
        return Options(force_cpu=force_cpu, dev=True)
    return Options(force_cpu=force_cpu, for_run="--random-init" not in rest)


def run_task(task: str, argv: Sequence[str]) -> int:
    """``install.py run|test``: venv, install, then the demo or the checks."""
    args, rest = task_parser(task).parse_known_args(argv)
    if rest[:1] == ["--"]:
        rest = rest[1:]
    venv = (args.venv or default_venv()).absolute()
    if Path(sys.prefix).absolute() != venv:  # set up the venv, then continue inside it
        code = make_venv(venv)
        if code:
            return code
        cmd = [str(venv_python(venv)), str(Path(__file__).resolve()), task, "--venv", str(venv)]
        return subprocess.run([*cmd, *argv], cwd=ROOT).returncode
    code = install_here(task_options(task, args.force_cpu, rest), args.reinstall)
    if code:
        return code
    print(f"install.py: environment ready at {time.strftime('%H:%M:%S')}", flush=True)
    if task == "test":
        return run_tests(rest)
    start = [sys.executable, "-m", "instanthmr.cli", "start", *rest]
    print(f"\n>>> {show(start)}", flush=True)
    return subprocess.run(start, cwd=ROOT).returncode


def main(argv: Sequence[str] | None = None) -> int:
    """Plan and (unless --dry-run) run the install; ``--doctor`` runs the doctor instead;
    ``run`` / ``test`` set up a virtual environment and run the demo / the checks."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    if args_list[:1] and args_list[0] in TASKS:
        return run_task(args_list[0], args_list[1:])
    if "--doctor" in args_list:
        return _doctor([a for a in args_list if a != "--doctor"])
    args = parser().parse_args(args_list)
    try:
        smi = args.nvidia_smi_output.read_text() if args.nvidia_smi_output else None
        machine = detect_machine(args.platform, smi)
    except (OSError, ValueError) as exc:
        print(f"install.py: {exc}", file=sys.stderr)
        return 2
    reach = {
        "probe": index_reachable,
        "reachable": lambda _u: True,
        "unreachable": lambda _u: False,
    }
    plan = build_plan(
        machine,
        Options(args.force_cpu, args.runtime_only, args.dev),
        reachable=reach[args.assume_index],
    )
    print(report(machine, plan), flush=True)
    if args.dry_run:
        print("(dry run: nothing was run)")
        return 0
    code = run_commands(plan.commands)
    if code != 0:
        return code
    print("\nDone. Check the install with: python install.py --doctor --device <cpu|cuda|coreml>")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
