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
  For the HMR model it also names the architecture, parameters, GFLOP and precision of the
  file it found, and whether that file is the pinned published one
  (:func:`~instanthmr.hmr.identity.model_facts`).

The exit status is 0 only when every check that was asked for passed. The checks of the
install live in :mod:`instanthmr.commands.doctor_checks` (re-exported here); this module adds the
timed model run, the report and the command line.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from importlib import metadata as metadata  # re-exported: tests patch ``doctor.metadata``
from pathlib import Path
from typing import Any

from instanthmr.commands.doctor_checks import (
    FAIL,
    OK,
    ORT_DISTRIBUTIONS,
    REINSTALL,
    SKIP,
    TORCH_PROBE,
    WARN,
    Check,
    arch_covered,
    check_gpu,
    check_gpu_libraries,
    check_onnxruntime,
    check_python,
    check_torch,
    parse_coreml_capability,
    parse_node_placements,
    parse_nvidia_smi,
    placement_problem,
    probe_torch,
    query_gpus,
)
from instanthmr.commands.errors import CommandParser, command
from instanthmr.commands.options import int_at_least

__all__ = [
    "DEVICE_CHOICES",
    "FAIL",
    "OK",
    "ORT_DISTRIBUTIONS",
    "REINSTALL",
    "SKIP",
    "TORCH_PROBE",
    "WARN",
    "Check",
    "Report",
    "arch_covered",
    "check_gpu",
    "check_gpu_libraries",
    "check_model",
    "check_onnxruntime",
    "check_python",
    "check_torch",
    "main",
    "native_stderr",
    "parse_coreml_capability",
    "parse_node_placements",
    "parse_nvidia_smi",
    "parser",
    "placement_problem",
    "probe_torch",
    "query_gpus",
    "run_checks",
]

DEVICE_CHOICES = ("auto", "cpu", "cuda", "tensorrt", "coreml")


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


# ----------------------------------------------------------------------------- model run
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


def _verbose_runtime(device: str, verbose: bool = True) -> Any:
    """The doctor's Runtime: with ``verbose`` its sessions log at VERBOSE, so node
    placements can be read (too slow to time); without, a plain Runtime for the timed runs."""
    from instanthmr.runtime.session import Runtime

    if not verbose:
        return Runtime(device)

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


def _load(kind: str, model: str | None, runtime: Any) -> tuple[Any, Callable[[], object]]:
    image, boxes = _test_frame()
    if kind == "detector":
        from instanthmr.detector import create_detector

        det = create_detector(model_path=model, backend="onnx", runtime=runtime)  # RF-DETR/YOLOX
        return det.model_session, lambda: det.detect(image)  # type: ignore[attr-defined]
    from instanthmr.hmr.model import HMRModel

    hmr = HMRModel(model, runtime=runtime)
    return hmr.model_session, lambda: hmr.predict(image, boxes)


def _placement_text(placements: dict[str, int], coreml: dict[str, int] | None) -> str:
    """The report's words for the node placement ('' when the log had none)."""
    text = ""
    if placements:
        text += "; nodes: " + ", ".join(f"{p} {n}" for p, n in placements.items())
    if coreml:
        text += (
            f"; CoreML took {coreml['supported']} of {coreml['nodes']} nodes "
            f"({coreml['partitions']} partitions), {coreml['cpu']} fell back to CPU"
        )
    return text


def check_model(
    kind: str, model: str | None, device: str, runs: int = 5, gpu_hint: str = ""
) -> Check:
    """Load ``kind`` ("hmr model" or "detector") on ``device``, time ``runs`` calls (after
    one untimed call) and check which provider ran it and where its nodes were placed."""
    from instanthmr.evaluation.speed import time_calls
    from instanthmr.runtime.session import ProviderError, providers_for

    first = providers_for(device)[0]
    expected = first if isinstance(first, str) else first[0]
    fix = gpu_hint or REINSTALL  # for failures of the provider or the run
    try:
        with native_stderr() as log:  # the sessions' verbose log: node placements
            _load(kind, model, _verbose_runtime(device))
        # timed on a normal session: verbose logging would slow every call several-fold
        session, call = _load(kind, model, _verbose_runtime(device, verbose=False))
    except ProviderError as exc:
        return Check(kind, FAIL, f"--device {device}: {exc}", fix=fix)
    except Exception as exc:  # missing file, bad export, Hub or onnxruntime failure: report it
        load_fix = "pass --model PATH to a valid export, or check the network for the Hub"
        detail = f"could not load {model or 'the default model'}: {exc}"
        return Check(kind, FAIL, detail, fix=load_fix)
    try:
        times = time_calls(call, max(1, runs), warmup=1)  # untimed first call: allocations
    except Exception as exc:  # onnxruntime raises its own Fail/EPFail types (not RuntimeError)
        detail = f"loaded on {session.provider}, but a run failed: {type(exc).__name__}: {exc}"
        return Check(kind, FAIL, detail, fix=fix)
    ms, text = statistics.median(times), "".join(log)
    placements, coreml = parse_node_placements(text), parse_coreml_capability(text)
    data = {"provider": session.provider, "expected": expected, "ms_per_call": ms,
            "runs": len(times), "placements": placements, "coreml": coreml,
            "random_init": session.random_init, "path": str(session.source_path)}  # fmt: skip
    detail = (f"ran on {session.provider} (asked: --device {device} -> {expected}), "
              f"{ms:.1f} ms per call (median of {len(times)})")  # fmt: skip
    detail += _placement_text(placements, coreml)
    if kind == "hmr model":
        from instanthmr.hmr.identity import model_facts

        facts = model_facts(session.source_path, session.metadata)
        data["model"] = facts.as_dict()
        detail += f"; {facts.line()}; runs {session.precision}"
    if session.random_init:
        detail += "; RANDOM-INIT weights (outputs meaningless)"
    elif kind == "hmr model":
        from instanthmr.hmr.kinds import kind_of

        model_kind = kind_of(session.metadata)
        data["model_kind"] = model_kind.name
        if not model_kind.is_instanthmr:
            detail += f"; {model_kind.tag} model ({model_kind.title}): NOT InstantHMR"
    problem = placement_problem(expected, session.provider, placements, coreml)
    if problem:
        return Check(kind, FAIL, f"{problem}; {detail}", fix=fix, data=data)
    return Check(kind, OK, detail, data=data)


# ----------------------------------------------------------------------------- CLI
def parser() -> argparse.ArgumentParser:
    """Command-line options of the doctor."""
    p = CommandParser(
        command="doctor",
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
    p.add_argument("--detector-model", metavar="PATH",
                   help="also run this detector ONNX export (RF-DETR or YOLOX)")  # fmt: skip
    p.add_argument("--runs", type=int_at_least(1), default=5,
                   help="timed calls per model (median reported)")  # fmt: skip
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
        models = [("hmr model", args.model)]
        if args.detector_model:
            models.append(("detector", args.detector_model))
        report.checks += [check_model(k, m, args.device, args.runs, hint) for k, m in models]
    return report


def check_model_files(args: argparse.Namespace) -> None:
    """Refuse (a user error, exit 2) a --model or --detector-model file that is missing,
    empty or not ONNX: a bad file given on the command line is the user's input, not a
    finding about this install. Hub names and hf:// addresses are checked by the run."""
    from instanthmr.runtime.precision import check_model_file

    check_model_file(args.model, "--model")
    check_model_file(args.detector_model, "--detector-model")


@command("doctor")
def main(argv: Sequence[str] | None = None) -> int:
    """Run the doctor; 0 only when everything asked for works."""
    args = parser().parse_args(argv)
    if not args.no_model:
        check_model_files(args)
    report = run_checks(args)
    print(report.format())
    if args.json:
        args.json.write_text(json.dumps(report.to_dict(), indent=2, default=str) + "\n")
    return 0 if report.ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
