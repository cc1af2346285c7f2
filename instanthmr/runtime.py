"""The one place that owns onnxruntime sessions: providers, precision, validation, warm-up.

Model code (``hmr.py``, ``detector/``) only does pre- and post-processing and calls
:meth:`ModelSession.run`. Everything about execution providers lives here:

- device names map to provider lists (:data:`DEVICES`);
- ``onnxruntime.preload_dlls()`` is called before a GPU session where it exists, so the
  CUDA, cuDNN and cuBLAS libraries from pip wheels are found;
- after a session is built its active providers are checked: if the requested one is not
  active, :class:`ProviderError` is raised with the reason and the fix, unless
  ``fallback=True``, which allows CPU with a logged warning. Nothing falls back silently;
- a model with fp16 weights runs as fp32 on the CPU provider (converted once and cached, see
  :mod:`instanthmr.precision`) and stays fp16 on GPU providers.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnxruntime as ort

from .contract import META_RANDOM_INIT, TensorSpec, check_io
from .precision import ensure_fp32, has_fp16_weights, load_onnx

log = logging.getLogger(__name__)

CPU = "CPUExecutionProvider"
CUDA = "CUDAExecutionProvider"
TENSORRT = "TensorrtExecutionProvider"
COREML = "CoreMLExecutionProvider"

DEVICES: tuple[str, ...] = ("auto", "cpu", "cuda", "tensorrt", "coreml")

_FIXES = {
    CUDA: (
        "install the GPU build (`pip uninstall onnxruntime && "
        "pip install 'onnxruntime-gpu[cuda,cudnn]'`, or `python install.py`) "
        "and make sure CUDA 12/13, cuDNN 9 and cuBLAS load "
        "(`python install.py --doctor` checks each)"
    ),
    TENSORRT: (
        "install onnxruntime-gpu and TensorRT (`pip install tensorrt`) with matching CUDA; "
        "`python install.py --doctor` checks the libraries"
    ),
    COREML: "the CoreML provider needs macOS and the standard `onnxruntime` wheel",
}


class ProviderError(RuntimeError):
    """The requested execution provider is not available or did not activate."""


def default_threads() -> int:
    """Intra-op threads: the CPU cores this process may use, capped at 8."""
    try:
        n = len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        n = os.cpu_count() or 1
    return max(1, min(n, 8))


def providers_for(device: str, cache_dir: str | os.PathLike[str] | None = None) -> list:
    """Provider list for a device name (``auto`` picks the best one this build offers)."""
    device = device.lower()
    if device not in DEVICES:
        raise ValueError(f"unknown device {device!r}; choose one of {', '.join(DEVICES)}")
    if device == "auto":
        available = ort.get_available_providers()
        device = "cuda" if CUDA in available else "coreml" if COREML in available else "cpu"
    if device == "cpu":
        return [CPU]
    if device == "cuda":
        return [(CUDA, {"cudnn_conv_algo_search": "HEURISTIC"}), CPU]
    if device == "coreml":
        return [(COREML, {"ModelFormat": "MLProgram", "MLComputeUnits": "ALL"}), CPU]
    trt_cache = Path(cache_dir or Path.home() / ".cache" / "instanthmr" / "trt")
    trt = {
        "trt_fp16_enable": True,
        "trt_engine_cache_enable": True,
        "trt_engine_cache_path": str(trt_cache),
    }
    return [(TENSORRT, trt), (CUDA, {}), CPU]


def _name(provider: str | tuple[str, dict]) -> str:
    return provider if isinstance(provider, str) else provider[0]


@dataclass
class ModelSession:
    """An onnxruntime session with what was asked for and what actually runs it."""

    session: ort.InferenceSession
    source_path: Path
    path: Path
    provider: str
    providers: list[str]
    metadata: dict[str, str] = field(default_factory=dict)

    @property
    def random_init(self) -> bool:
        """True when the export recorded random weights (poses/detections are meaningless)."""
        flags = (self.metadata.get(META_RANDOM_INIT, ""), self.metadata.get("random_init", ""))
        return any(v.lower() == "true" for v in flags)

    @property
    def input_names(self) -> list[str]:
        """Input names of the graph."""
        return [i.name for i in self.session.get_inputs()]

    @property
    def output_names(self) -> list[str]:
        """Output names of the graph."""
        return [o.name for o in self.session.get_outputs()]

    def run(
        self, feeds: dict[str, np.ndarray], output_names: Sequence[str] | None = None
    ) -> dict[str, np.ndarray]:
        """Run once; inputs and outputs are bound by name, never by position."""
        names = list(output_names) if output_names is not None else self.output_names
        return dict(zip(names, self.session.run(names, feeds), strict=True))


class Runtime:
    """Owns every onnxruntime session of a pipeline and the provider choice behind them.

    Args:
        device: ``auto``, ``cpu``, ``cuda``, ``tensorrt`` or ``coreml``.
        threads: intra-op threads for the CPU provider (default :func:`default_threads`).
        fallback: allow CPU when the requested provider is not active (with a warning).
            Off by default: a silent fallback is how a GPU benchmark ends up on the CPU.
    """

    def __init__(self, device: str = "auto", threads: int | None = None, fallback: bool = False):
        self.device = device.lower()
        if self.device not in DEVICES:
            raise ValueError(f"unknown device {device!r}; choose one of {', '.join(DEVICES)}")
        if threads is not None and threads < 1:
            raise ValueError(f"threads must be >= 1, got {threads}")
        self.threads = threads or default_threads()
        self.fallback = fallback

    def session_options(self, spin: bool = True) -> ort.SessionOptions:
        """Options shared by every session: full graph optimisation, fixed thread count.

        ``spin=False`` stops the session's idle threads from spin-waiting after a run. Use
        it for a model that runs now and then (the detector every Nth frame): its spinning
        threads otherwise take the cores from the next HMR call, which then takes about
        twice as long (measured in docs/performance.md).
        """
        so = ort.SessionOptions()
        if not spin:
            so.add_session_config_entry("session.intra_op.allow_spinning", "0")
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        so.intra_op_num_threads = self.threads
        so.inter_op_num_threads = 1
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        so.log_severity_level = 3
        return so

    def _preload(self, requested: str) -> None:
        if requested in (CUDA, TENSORRT) and hasattr(ort, "preload_dlls"):
            try:
                ort.preload_dlls()
            except (OSError, RuntimeError) as exc:
                log.warning("onnxruntime.preload_dlls() failed: %s", exc)

    def _create(self, path: Path, providers: list, spin: bool) -> ort.InferenceSession:
        try:
            return ort.InferenceSession(
                str(path), sess_options=self.session_options(spin), providers=providers
            )
        except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph types
            raise ValueError(f"onnxruntime could not load {path}: {exc}") from exc

    def load(
        self,
        path: str | os.PathLike[str],
        *,
        precision: str = "auto",
        inputs: Sequence[TensorSpec] | None = None,
        outputs: Sequence[TensorSpec] | None = None,
        spin: bool = True,
    ) -> ModelSession:
        """Build a session for ``path`` on this runtime's device.

        Args:
            path: the ONNX file.
            precision: ``auto`` (fp16 weights become fp32 on CPU, stay fp16 on GPU),
                ``fp32`` (always convert) or ``keep`` (never convert).
            inputs, outputs: when given, the model's I/O is checked against these specs and
                a :class:`~instanthmr.contract.ContractError` lists every difference.
            spin: let idle CPU threads spin-wait (see :meth:`session_options`).
        """
        if precision not in ("auto", "fp32", "keep"):
            raise ValueError(f"precision must be auto, fp32 or keep, got {precision!r}")
        source = Path(path)
        if not source.is_file():
            raise FileNotFoundError(f"model file not found: {source}")
        proto = load_onnx(source)  # clear error for truncated or non-ONNX files
        fp16 = has_fp16_weights(proto)
        metadata = {p.key: p.value for p in proto.metadata_props}
        del proto
        providers = providers_for(self.device)
        requested = _name(providers[0])
        available = ort.get_available_providers()
        if requested not in available:
            self._refuse(requested, f"{requested} is not in this onnxruntime build ({available})")
            providers, requested = [CPU], CPU
        self._preload(requested)
        to_fp32 = fp16 and (precision == "fp32" or (precision == "auto" and requested == CPU))
        run_path = ensure_fp32(source) if to_fp32 else source
        session = self._create(run_path, providers, spin)
        active = session.get_providers()
        if active[0] != requested:
            self._refuse(requested, f"{requested} did not activate; active providers: {active}")
            if fp16 and precision == "auto" and run_path == source:
                run_path = ensure_fp32(source)
                session = self._create(run_path, [CPU], spin)
            active = session.get_providers()
        model = ModelSession(session, source, Path(run_path), active[0], list(active), metadata)
        if inputs is not None or outputs is not None:
            check_io(str(source), session.get_inputs(), session.get_outputs(),
                     inputs or (), outputs or ())  # fmt: skip
        if model.random_init:
            log.warning(
                "!!! %s is a RANDOM-INIT export: its outputs are meaningless. Use it for "
                "plumbing and speed tests only. !!!", source.name,
            )  # fmt: skip
        log.info("loaded %s on %s (file %s)", source.name, model.provider, run_path.name)

        return model

    def _refuse(self, requested: str, reason: str) -> None:
        fix = _FIXES.get(requested, "")
        if self.device == "auto":
            log.warning("%s; falling back to CPUExecutionProvider", reason)
            return
        if not self.fallback:
            raise ProviderError(
                f"device {self.device!r} asked for {requested}, but {reason}. Fix: {fix}. "
                "Or pass fallback=True (--fallback) to run on CPU instead."
            )
        log.warning("%s; fallback=True, so running on CPUExecutionProvider", reason)

    @staticmethod
    def warmup(
        model: ModelSession,
        make_feeds: Callable[[int], dict[str, np.ndarray]],
        batch_sizes: Iterable[int],
        runs: int = 1,
    ) -> None:
        """Run each batch size ``runs`` times so allocations and kernel choices happen now."""
        for n in batch_sizes:
            feeds = make_feeds(n)
            for _ in range(runs):
                model.run(feeds)


def naive_session(path: str | os.PathLike[str], device: str = "cpu") -> ort.InferenceSession:
    """A session the naive way, for benchmarks only: the file as it is (no fp16 -> fp32),
    default session options, the device's providers. Compare :meth:`Runtime.load` with it."""
    return ort.InferenceSession(os.fspath(path), providers=providers_for(device))
