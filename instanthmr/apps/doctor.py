"""``instanthmr doctor``: does this install run the models where you asked, and how fast?

Reached as ``instanthmr doctor``, ``python install.py --doctor`` and :func:`main`. It reports:

- Python and the platform;
- the onnxruntime build (``onnxruntime`` / ``onnxruntime-gpu`` ...), its version and
  ``get_available_providers()``; two builds installed side by side is an error;
- on Linux/Windows GPU builds: ``onnxruntime.preload_dlls()``, then whether the CUDA runtime,
  cuBLAS and cuDNN (and TensorRT for ``--device tensorrt``) load, each with ``ctypes``;
- the NVIDIA GPU (``nvidia-smi``) and whether the installed torch has kernels for its
  compute capability (``torch.cuda.get_arch_list()``, probed in a subprocess so torch stays
  optional and out of this process);
- a run of the HMR model (and of the detector with ``--detector-model``) on ``--device``:
  the provider that actually ran, the node placement from onnxruntime's verbose session log
  (on CoreML: how many nodes the provider took and how many fell back to the CPU) and the
  median time per call. Work landing on another provider than the one asked for fails.

The exit status is 0 only when every check that was asked for passed.
"""

from __future__ import annotations

import argparse
import ctypes
import importlib.util
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

OK, WARN, FAIL, SKIP = "ok", "warn", "fail", "skip"
DEVICE_CHOICES = ("auto", "cpu", "cuda", "tensorrt", "coreml")
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


@dataclass
class Report:
    """Every check, in order."""

    checks: list[Check] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when no check failed."""
        return all(c.status != FAIL for c in self.checks)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (``--json``)."""
        return {"ok": self.ok, "checks": [asdict(c) for c in self.checks]}

    def format(self) -> str:
        """The human-readable report."""
        lines = ["InstantHMR doctor"]
        for c in self.checks:
            lines.append(f"[{c.status:^4}] {c.name:<12} {c.detail}")
            if c.fix and c.status in (FAIL, WARN):
                lines.append(f"{'':19}fix: {c.fix}")
        failed = ", ".join(c.name for c in self.checks if c.status == FAIL)
        lines.append(f"Result: FAILED ({failed})." if failed else "Result: OK, all works.")
        return "\n".join(lines)


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
    at load time for X.Y or any newer GPU.
    """
    for arch in arch_list:
        m = re.fullmatch(r"(sm|compute)_(\d+)([af]?)", arch.strip())
        if not m:
            continue
        target = divmod(int(m[2]), 10)
        if m[3] == "a":
            hit = target == cc
        elif m[1] == "compute":
            hit = target <= cc if not m[3] else target[0] == cc[0] and target[1] <= cc[1]
        else:
            hit = target[0] == cc[0] and target[1] <= cc[1]
        if hit:
            return True
    return False


# ----------------------------------------------------------------------------- checks
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
    cuda = getattr(ort, "cuda_version", "") or ""
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


def check_gpu_libraries(ort: Any, device: str, hint: str = "") -> list[Check]:
    """preload_dlls(), then load the CUDA runtime, cuBLAS, cuDNN (and TensorRT) with ctypes.

    Missing libraries fail for ``--device cuda``/``tensorrt`` and warn otherwise."""
    needed = device in ("cuda", "tensorrt")
    cuda = getattr(ort, "cuda_version", "") or ""
    if sys.platform == "darwin" or not cuda:
        why = "macOS" if sys.platform == "darwin" else "this onnxruntime build has no CUDA"
        status, fix = (FAIL, hint or REINSTALL) if needed else (SKIP, "")
        return [Check("gpu libs", status, f"not checked: {why}", fix=fix)]
    preload = "onnxruntime.preload_dlls() not available (onnxruntime < 1.21)"
    if hasattr(ort, "preload_dlls"):
        try:
            ort.preload_dlls()
            preload = "after onnxruntime.preload_dlls()"
        except (OSError, RuntimeError) as exc:
            preload = f"onnxruntime.preload_dlls() failed: {exc}"
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


@contextmanager
def native_stderr() -> Iterator[list[str]]:
    """Capture file descriptor 2 (where onnxruntime's C++ logger writes); text appended on exit."""
    out: list[str] = []
    sys.stderr.flush()
    try:
        saved = os.dup(2)
    except OSError:
        yield out
        return
    with tempfile.TemporaryFile() as tmp:
        os.dup2(tmp.fileno(), 2)
        try:
            yield out
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            tmp.seek(0)
            out.append(tmp.read().decode("utf-8", "replace"))


def _verbose_runtime(device: str) -> Any:
    """A Runtime whose sessions log at VERBOSE, so node placements can be read."""
    from instanthmr.runtime import Runtime

    class VerboseRuntime(Runtime):
        def session_options(self, spin: bool = True):  # type: ignore[no-untyped-def]
            so = super().session_options(spin)
            so.log_severity_level = 0
            return so

    return VerboseRuntime(device)


def _test_frame() -> tuple[Any, Any]:
    import numpy as np

    image = np.random.default_rng(0).integers(0, 256, (480, 640, 3), dtype=np.uint8)
    return image, np.array([[200.0, 40.0, 440.0, 460.0]])


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


def _load(kind: str, model: str | None, runtime: Any) -> tuple[Any, Callable[[], object]]:
    image, boxes = _test_frame()
    if kind == "detector":
        from instanthmr.detector.onnx_backend import OnnxPersonDetector

        det = OnnxPersonDetector(model, runtime=runtime)  # type: ignore[arg-type]
        return det.model_session, lambda: det.detect(image)
    from instanthmr.hmr import HMRModel

    hmr = HMRModel(model, runtime=runtime)
    return hmr.model_session, lambda: hmr.predict(image, boxes)


def check_model(
    kind: str, model: str | None, device: str, runs: int = 5, gpu_hint: str = ""
) -> Check:
    """Load ``kind`` ("hmr model" or "detector") on ``device``, time ``runs`` calls (after
    one untimed call) and check which provider ran it and where its nodes were placed."""
    from instanthmr.runtime import ProviderError, providers_for

    first = providers_for(device)[0]
    expected = first if isinstance(first, str) else first[0]
    try:
        with native_stderr() as log:  # the sessions' verbose log: node placements
            session, call = _load(kind, model, _verbose_runtime(device))
    except ProviderError as exc:
        return Check(kind, FAIL, f"--device {device}: {exc}", fix=gpu_hint or REINSTALL)
    except Exception as exc:  # missing file, bad export, Hub or onnxruntime failure: report it
        fix = "pass --model PATH to a valid export, or check the network for the Hub"
        return Check(kind, FAIL, f"could not load {model or 'the default model'}: {exc}", fix=fix)
    times = []
    try:
        call()  # untimed: first-call allocations
        for _ in range(max(1, runs)):
            t0 = time.perf_counter()
            call()
            times.append((time.perf_counter() - t0) * 1000.0)
    except Exception as exc:  # onnxruntime raises its own Fail/EPFail types (not RuntimeError)
        detail = f"loaded on {session.provider}, but a run failed: {type(exc).__name__}: {exc}"
        return Check(kind, FAIL, detail, fix=gpu_hint or REINSTALL)
    ms, text = statistics.median(times), "".join(log)
    placements, coreml = parse_node_placements(text), parse_coreml_capability(text)
    data = {"provider": session.provider, "expected": expected, "ms_per_call": ms,
            "runs": len(times), "placements": placements, "coreml": coreml,
            "random_init": session.random_init, "path": str(session.source_path)}  # fmt: skip
    detail = (f"ran on {session.provider} (asked: --device {device} -> {expected}), "
              f"{ms:.1f} ms per call (median of {len(times)})")  # fmt: skip
    if placements:
        detail += "; nodes: " + ", ".join(f"{p} {n}" for p, n in placements.items())
    if coreml:
        detail += (
            f"; CoreML took {coreml['supported']} of {coreml['nodes']} nodes "
            f"({coreml['partitions']} partitions), {coreml['cpu']} fell back to CPU"
        )
    if session.random_init:
        detail += "; RANDOM-INIT weights (outputs meaningless)"
    problem = placement_problem(expected, session.provider, placements, coreml)
    if problem:
        return Check(kind, FAIL, f"{problem}; {detail}", fix=gpu_hint or REINSTALL, data=data)
    return Check(kind, OK, detail, data=data)


# ----------------------------------------------------------------------------- CLI
def parser() -> argparse.ArgumentParser:
    """Command-line options of the doctor."""
    p = argparse.ArgumentParser(
        prog="instanthmr doctor",
        description="Check that this install runs the models on the device you ask for "
        "(providers, GPU libraries, torch kernels, a timed model run). Exit status 0 only "
        "when everything asked for works.",
    )
    p.add_argument(
        "--model",
        help="HMR model: .onnx path, hf:// address or 'instanthmr' "
        "(default: the released model from the Hugging Face Hub)",
    )
    p.add_argument("--device", default="auto", choices=DEVICE_CHOICES, help="default: auto")
    p.add_argument("--detector-model", metavar="PATH", help="also run this RF-DETR ONNX export")
    p.add_argument("--runs", type=int, default=5, help="timed calls per model (median reported)")
    p.add_argument("--no-model", action="store_true", help="check the install only, run no model")
    p.add_argument("--json", metavar="FILE", type=Path, help="also write the report as JSON")
    return p


def run_checks(args: argparse.Namespace) -> Report:
    """All checks for parsed arguments (``parser()``)."""
    gpus, why = query_gpus()
    hint = ""
    if args.device in ("cuda", "tensorrt") and not gpus:
        hint = f"this machine has no usable NVIDIA GPU ({why}): use --device cpu"
    elif args.device == "coreml" and sys.platform != "darwin":
        hint = "CoreML exists only on macOS: use --device cpu (or cuda with an NVIDIA GPU)"
    ort_check, ort = check_onnxruntime()
    report = Report([check_python(), ort_check])
    if ort is not None:
        report.checks += check_gpu_libraries(ort, args.device, hint)
    report.checks += [check_gpu(gpus, why), check_torch(gpus, probe_torch())]
    if ort is not None and not args.no_model:
        report.checks.append(check_model("hmr model", args.model, args.device, args.runs, hint))
        if args.detector_model:
            report.checks.append(
                check_model("detector", args.detector_model, args.device, args.runs, hint)
            )
    return report


def main(argv: Sequence[str] | None = None) -> int:
    """Run the doctor; 0 only when everything asked for works."""
    p = parser()
    args = p.parse_args(argv)
    if args.runs < 1:
        p.error(f"--runs must be >= 1, got {args.runs}")
    report = run_checks(args)
    print(report.format())
    if args.json:
        args.json.write_text(json.dumps(report.to_dict(), indent=2, default=str) + "\n")
    return 0 if report.ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
