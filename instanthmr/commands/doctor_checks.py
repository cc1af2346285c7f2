"""The doctor's checks of the install (no model run): the report line, log and nvidia-smi
parsing, the onnxruntime build and its GPU libraries, the NVIDIA GPU and torch's kernels for it.

:mod:`instanthmr.commands.doctor` runs them (with the timed model run) and re-exports every
public name here.
"""

from __future__ import annotations

import ctypes
import importlib.util
import json
import platform
import re
import shutil
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

OK, WARN, FAIL, SKIP = "ok", "warn", "fail", "skip"
ORT_DISTRIBUTIONS = (
    "onnxruntime",
    "onnxruntime-gpu",
    "onnxruntime-directml",
    "onnxruntime-openvino",
    "onnxruntime-qnn",
)
REINSTALL = "run `python install.py` (it picks the onnxruntime build for this machine)"


@dataclass
class Check:
    """One line of the report. ``status`` is ok, warn, fail or skip; only fail fails."""

    name: str
    status: str
    detail: str
    fix: str = ""
    data: dict[str, Any] = field(default_factory=dict)


# ----------------------------------------------------------------------------- parsing
_PLACED = re.compile(r"(?:All nodes|Node\(s\)) placed on \[(\w+)\]\. Number of nodes: (\d+)")
_COREML = re.compile(
    r"number of partitions supported by CoreML:\s*(\d+)\s*number of nodes in the graph:\s*(\d+)"
    r"\s*number of nodes supported by CoreML:\s*(\d+)"
)


def parse_node_placements(log: str) -> dict[str, int]:
    """Provider -> node count from onnxruntime's verbose "Node placements" session log.

    The CoreML/TensorRT providers appear with their fused partitions (one node each).
    Empty when the log has no placement lines (session log severity above VERBOSE).
    """
    return {m[1]: int(m[2]) for m in _PLACED.finditer(log)}


def parse_coreml_capability(log: str) -> dict[str, int] | None:
    """CoreML's own summary: ``partitions``, ``nodes`` in the graph, ``supported`` and
    ``cpu`` (nodes left to the CPU provider); None when the log has no such line.

    The CoreML provider logs it while partitioning (warning level when there are several
    partitions, info otherwise); the last line wins when a graph was partitioned twice.
    """
    found = _COREML.findall(log)
    if not found:
        return None
    partitions, nodes, supported = (int(x) for x in found[-1])
    return {
        "partitions": partitions,
        "nodes": nodes,
        "supported": supported,
        "cpu": nodes - supported,
    }


def placement_problem(
    expected: str, provider: str, placements: dict[str, int], coreml: dict[str, int] | None
) -> str:
    """Why the work did not land on the provider that was asked for ('' when it did)."""
    if provider != expected:
        return f"asked for {expected} but {provider} ran it"
    if expected != "CPUExecutionProvider" and placements and not placements.get(expected):
        return f"{expected} is active but no node was placed on it"
    if coreml is not None and coreml["supported"] == 0:
        return "CoreML took none of the nodes: everything ran on the CPU"
    return ""


def parse_nvidia_smi(text: str) -> list[dict[str, Any]]:
    """``name, compute_cap, driver_version`` CSV lines -> dicts (compute capability or None)."""
    gpus = []
    for line in text.splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) >= 3 and re.fullmatch(r"\d+(\.\d+)+", parts[-1]):
            m = re.fullmatch(r"(\d+)\.(\d+)", parts[-2])
            cc = (int(m[1]), int(m[2])) if m else None
            gpus.append(
                {"name": ", ".join(parts[:-2]), "compute_capability": cc, "driver": parts[-1]}
            )
    return gpus


def arch_covered(cc: tuple[int, int], arch_list: Sequence[str]) -> bool:
    """Does a build with these CUDA targets (``sm_86``, ``sm_90a``, ``compute_120``) run on ``cc``?

    Kernels (``sm_XY``) run on the same major version with an equal or higher minor; the
    architecture-specific ``sm_XYa`` only on exactly X.Y; PTX (``compute_XY``) is compiled
    at load time for X.Y or any newer GPU (``compute_XYf``: the same major version only).
    """
    for arch in arch_list:
        m = re.fullmatch(r"(sm|compute)_(\d+)([af]?)", arch.strip())
        if not m:
            continue
        target = divmod(int(m[2]), 10)
        if m[3] == "a":
            hit = target == cc
        elif m[1] == "compute" and not m[3]:
            hit = target <= cc
        else:  # sm_XY, sm_XYf, compute_XYf: same major, equal or higher minor
            hit = target[0] == cc[0] and target[1] <= cc[1]
        if hit:
            return True
    return False


# ----------------------------------------------------------------------------- the install
def check_python() -> Check:
    """Python and the platform."""
    data = {
        "python": platform.python_version(),
        "implementation": sys.implementation.name,
        "executable": sys.executable,
        "platform": platform.platform(),
        "machine": platform.machine(),
    }
    detail = "Python {python} ({implementation}, {executable}) on {platform} ({machine})"
    return Check("python", OK, detail.format(**data), data=data)


def _cuda_version(ort: Any) -> str:
    """The CUDA version this onnxruntime build was made with ('' for non-CUDA builds)."""
    return getattr(ort, "cuda_version", "") or ""


def check_onnxruntime() -> tuple[Check, Any]:
    """The onnxruntime build, its version and providers; returns the module (None on failure)."""
    dists = {}
    for name in ORT_DISTRIBUTIONS:
        try:
            dists[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    if len(dists) > 1:
        detail = f"several onnxruntime builds installed {dists}: they overwrite each other's files"
        fix = f"`pip uninstall -y {' '.join(dists)}`, then {REINSTALL}"
        return Check("onnxruntime", FAIL, detail, fix=fix), None
    try:
        import onnxruntime as ort
    except ImportError as exc:
        return Check("onnxruntime", FAIL, f"cannot import onnxruntime: {exc}", fix=REINSTALL), None
    cuda = _cuda_version(ort)
    data = {"version": ort.__version__, "distributions": dists, "cuda_version": cuda,
            "providers": ort.get_available_providers()}  # fmt: skip
    build = ", ".join(dists) or "unknown package"
    detail = f"{ort.__version__} ({build}{', built with CUDA ' + cuda if cuda else ''}); "
    return Check("onnxruntime", OK, detail + "providers: " + ", ".join(data["providers"]),
                 data=data), ort  # fmt: skip


def _library_names(cuda_major: str, tensorrt: bool) -> dict[str, list[str]]:
    if sys.platform == "win32":
        names = {
            "CUDA runtime": [f"cudart64_{cuda_major}.dll"],
            "cuBLAS": [f"cublas64_{cuda_major}.dll", f"cublasLt64_{cuda_major}.dll"],
            "cuDNN": ["cudnn64_9.dll"],
        }
        trt = ["nvinfer_10.dll"]
    else:
        names = {
            "CUDA runtime": [f"libcudart.so.{cuda_major}"],
            "cuBLAS": [f"libcublas.so.{cuda_major}", f"libcublasLt.so.{cuda_major}"],
            "cuDNN": ["libcudnn.so.9"],
        }
        trt = ["libnvinfer.so.10"]
    return {**names, "TensorRT": trt} if tensorrt else names


def _loaded_from(name: str) -> str:
    """Where a loaded shared library lives (Linux: /proc/self/maps), else ''."""
    try:
        maps = Path("/proc/self/maps").read_text()
    except OSError:
        return ""
    hits = [ln.split()[-1] for ln in maps.splitlines() if ln.rstrip().endswith(name)]
    return hits[0] if hits else ""


def _preload_dlls(ort: Any) -> str:
    """Call ``onnxruntime.preload_dlls()`` where it exists; says what happened."""
    if not hasattr(ort, "preload_dlls"):
        return "onnxruntime.preload_dlls() not available (onnxruntime < 1.21)"
    try:
        ort.preload_dlls()
    except (OSError, RuntimeError) as exc:
        return f"onnxruntime.preload_dlls() failed: {exc}"
    return "after onnxruntime.preload_dlls()"


def check_gpu_libraries(ort: Any, device: str, hint: str = "") -> list[Check]:
    """preload_dlls(), then load the CUDA runtime, cuBLAS, cuDNN (and TensorRT) with ctypes.

    Missing libraries fail for ``--device cuda``/``tensorrt`` and warn otherwise."""
    needed = device in ("cuda", "tensorrt")
    cuda = _cuda_version(ort)
    if sys.platform == "darwin" or not cuda:
        why = "macOS" if sys.platform == "darwin" else "this onnxruntime build has no CUDA"
        status, fix = (FAIL, hint or REINSTALL) if needed else (SKIP, "")
        return [Check("gpu libs", status, f"not checked: {why}", fix=fix)]
    preload = _preload_dlls(ort)
    major = cuda.split(".")[0]
    checks = []
    for what, names in _library_names(major, device == "tensorrt").items():
        errors = []
        for name in names:
            try:
                ctypes.CDLL(name)
            except OSError as exc:
                errors.append(f"{name}: {exc}")
        if errors:
            fix = (
                f"`pip install 'onnxruntime-gpu[cuda,cudnn]'` brings CUDA {major}, cuBLAS and "
                "cuDNN 9 as pip packages; or install them system-wide and add their lib "
                "folders to LD_LIBRARY_PATH (Linux) / PATH (Windows)"
            )
            if what == "TensorRT":
                fix = f"`pip install tensorrt-cu{major}` (TensorRT 10 for CUDA {major})"
            checks.append(Check(what, FAIL if needed else WARN, "; ".join(errors), fix=fix))
        else:
            where = _loaded_from(names[0])
            detail = f"{', '.join(names)} load ({preload})" + (f"; {where}" if where else "")
            checks.append(Check(what, OK, detail))
    return checks


# ----------------------------------------------------------------------------- GPU and torch
def query_gpus() -> tuple[list[dict[str, Any]], str]:
    """NVIDIA GPUs from nvidia-smi and, when there are none, why."""
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return [], "nvidia-smi not found (no NVIDIA driver)"
    query = ["--query-gpu=name,compute_cap,driver_version", "--format=csv,noheader"]
    try:
        res = subprocess.run([exe, *query], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return [], f"nvidia-smi could not run: {exc}"
    gpus = parse_nvidia_smi(res.stdout) if res.returncode == 0 else []
    return gpus, "" if gpus else (res.stdout + res.stderr).strip()[:200] or "no GPU reported"


TORCH_PROBE = """
import json, torch
info = {"version": torch.__version__, "cuda": torch.version.cuda, "available": False,
        "arch_list": []}
try:
    info["available"] = torch.cuda.is_available()
    info["arch_list"] = torch.cuda.get_arch_list()
    if not info["arch_list"] and torch.version.cuda and hasattr(torch._C, "_cuda_getArchFlags"):
        info["arch_list"] = torch._C._cuda_getArchFlags().split()
except Exception as exc:
    info["error"] = str(exc)
print(json.dumps(info))
"""


def probe_torch(timeout: float = 180.0) -> dict[str, Any] | None:
    """torch's version, CUDA build and CUDA targets, from a subprocess; None without torch."""
    if importlib.util.find_spec("torch") is None:
        return None
    try:
        res = subprocess.run(
            [sys.executable, "-c", TORCH_PROBE], capture_output=True, text=True, timeout=timeout
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return {"error": f"probing torch failed: {exc}"}
    lines = res.stdout.strip().splitlines()
    if res.returncode != 0 or not lines:
        return {"error": (res.stderr.strip().splitlines() or ["import failed"])[-1]}
    return json.loads(lines[-1])


def check_gpu(gpus: list[dict[str, Any]], why: str) -> Check:
    """The first NVIDIA GPU (name, compute capability, driver) or why there is none."""
    if not gpus:
        return Check("nvidia gpu", SKIP, why)
    g, more = gpus[0], f" + {len(gpus) - 1} more" if len(gpus) > 1 else ""
    cc = ".".join(map(str, g["compute_capability"] or ())) or "unknown"
    detail = f"{g['name']} (compute capability {cc}, driver {g['driver']}){more}"
    return Check("nvidia gpu", OK, detail, data={"gpus": gpus})


def check_torch(gpus: list[dict[str, Any]], torch: dict[str, Any] | None) -> Check:
    """Whether torch (optional: only the export needs it) has kernels for the GPU."""
    if torch is None:
        return Check("torch", SKIP, "not installed (only the export extra needs it)")
    if "version" not in torch:
        return Check("torch", WARN, f"import failed: {torch.get('error')}", fix=REINSTALL)
    desc = f"{torch['version']} ({'CUDA ' + torch['cuda'] if torch.get('cuda') else 'CPU build'})"
    cc, archs = (gpus[0]["compute_capability"] if gpus else None), torch.get("arch_list") or []
    status, fix = WARN, REINSTALL + " (Blackwell needs cu128 or newer, torch >= 2.7)"
    if not gpus:
        status, fix = OK, ""
    elif not torch.get("cuda"):
        desc += ": torch will not use the GPU"
    elif cc is None or not archs:
        desc += f"; CUDA available: {torch.get('available')}; cannot tell the GPU's coverage"
    elif arch_covered(tuple(cc), archs):
        status, fix = OK, ""
        desc += f" has kernels for sm_{cc[0]}{cc[1]} ({' '.join(archs)})"
    else:
        desc += f" has no kernels for sm_{cc[0]}{cc[1]} (only {' '.join(archs)})"
    return Check("torch", status, desc, fix=fix, data=torch)
