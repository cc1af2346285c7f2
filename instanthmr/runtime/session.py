"""The one place that owns onnxruntime sessions: providers, precision, validation, warm-up.

Model code (``hmr.py``, ``detector/``) only does pre- and post-processing and calls
:meth:`ModelSession.run`. Everything about execution providers lives here:

- device names map to provider lists (:data:`DEVICES`);
- ``onnxruntime.preload_dlls()`` is called before a GPU session where it exists, so the
  CUDA, cuDNN and cuBLAS libraries from pip wheels are found;
- after a session is built its active providers are checked: if the requested one is not
  active, :class:`ProviderError` is raised with the reason and the fix, unless
  ``fallback=True``, which allows CPU with a logged warning. Nothing falls back silently;
- ``precision`` (``auto``, ``fp32``, ``fp16``, ``int8``) picks the file a provider runs: a
  model with fp16 weights runs as fp32 on the CPU provider (converted once and cached, see
  :mod:`instanthmr.runtime.precision`) and stays fp16 on GPU providers; an int8 file (made by
  ``instanthmr quantize``, see :mod:`instanthmr.runtime.parity`) is used by ``auto`` only on a
  provider where its stored report measured it faster and within tolerance, and ``int8``
  refuses a file whose report is missing or out of tolerance. The choice is logged;
- CPU sessions leave the intra-op thread count to onnxruntime (physical cores, with its
  thread affinity) unless the process is limited to fewer CPUs or ``threads`` is given:
  our options are then the defaults, so never slower than them (docs/performance.md).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np
import onnxruntime as ort

from ..errors import ModelFileError, OptionError, UserError
from .contract import META_RANDOM_INIT, TensorSpec, check_io
from .precision import PRECISIONS, FileChoice, choose_file, load_onnx

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


class ProviderError(UserError, RuntimeError):
    """The requested execution provider is not available or did not activate."""


def usable_cpus() -> int:
    """Logical CPUs this process may run on (its affinity mask where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def default_threads() -> int:
    """Intra-op threads: the CPU cores this process may use, capped at 8."""
    return max(1, min(usable_cpus(), 8))


def providers_for(
    device: str,
    cache_dir: str | os.PathLike[str] | None = None,
    *,
    cuda_graph: bool = False,
    fp16: bool = True,
    device_id: int = 0,
) -> list:
    """Provider list for a device name (``auto`` picks the best one this build offers).

    Args:
        device: ``auto``, ``cpu``, ``cuda``, ``tensorrt`` or ``coreml``.
        cache_dir: TensorRT engine and timing cache folder (default
            ``~/.cache/instanthmr/trt``); engines are built once per model and shape range.
        cuda_graph: capture the model in a CUDA graph (``enable_cuda_graph`` on CUDA,
            ``trt_cuda_graph_enable`` on TensorRT). Needs IO binding with fixed input
            shapes and addresses: :class:`instanthmr.runtime.io_binding.BoundRunner` with
            padded batches.
        fp16: let TensorRT build fp16 engines (``trt_fp16_enable``); off for ``fp32``.
        device_id: the GPU both models run on (one device: no copies between them).
    """
    device = device.lower()
    if device not in DEVICES:
        raise OptionError(f"unknown device {device!r}; choose one of {', '.join(DEVICES)}")
    if device == "auto":
        available = ort.get_available_providers()
        device = "cuda" if CUDA in available else "coreml" if COREML in available else "cpu"
    if device == "cpu":
        return [CPU]
    cuda = {"device_id": device_id, "cudnn_conv_algo_search": "HEURISTIC"}
    if cuda_graph:
        cuda["enable_cuda_graph"] = True
    if device == "cuda":
        return [(CUDA, cuda), CPU]
    if device == "coreml":
        return [(COREML, {"ModelFormat": "MLProgram", "MLComputeUnits": "ALL"}), CPU]
    trt_cache = Path(cache_dir or Path.home() / ".cache" / "instanthmr" / "trt")
    trt = {
        "device_id": device_id,
        "trt_fp16_enable": fp16,
        "trt_engine_cache_enable": True,
        "trt_engine_cache_path": str(trt_cache),
        "trt_timing_cache_enable": True,
        "trt_timing_cache_path": str(trt_cache),
    }
    if cuda_graph:
        trt["trt_cuda_graph_enable"] = True
    return [(TENSORRT, trt), (CUDA, {"device_id": device_id}), CPU]


def _name(provider: str | tuple[str, dict]) -> str:
    return provider if isinstance(provider, str) else provider[0]


class Runnable(Protocol):
    """Anything with ``run(feeds) -> outputs``: a ModelSession or a BoundRunner."""

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]: ...


@dataclass
class ModelSession:
    """An onnxruntime session with what was asked for and what actually runs it."""

    session: ort.InferenceSession
    source_path: Path
    path: Path
    provider: str
    providers: list[str]
    metadata: dict[str, str] = field(default_factory=dict)
    precision: str = "fp32"  # what runs: fp32, fp16, int8 (or keep: the file as it is)

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


class SessionBacked:
    """What every model wrapper holding a :class:`ModelSession` (``model_session``) reports
    the same way: the provider that runs it and its random-init flag."""

    model_session: ModelSession

    @property
    def provider(self) -> str:
        """The onnxruntime execution provider that actually runs the model."""
        return self.model_session.provider

    @property
    def random_init(self) -> bool:
        """True for a random-init export: its outputs are meaningless."""
        return self.model_session.random_init


def physical_cores() -> int:
    """Physical CPU cores (what onnxruntime's default intra-op thread count uses)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return os.cpu_count() or 1
    cores, phys = set(), "0"
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "physical id":
            phys = value.strip()
        elif key.strip() == "core id":
            cores.add((phys, value.strip()))
    return len(cores) or os.cpu_count() or 1


class Runtime:
    """Owns every onnxruntime session of a pipeline and the provider choice behind them.

    Args:
        device: ``auto``, ``cpu``, ``cuda``, ``tensorrt`` or ``coreml``.
        threads: intra-op threads for the CPU provider. None: onnxruntime's own default
            (physical cores, threads pinned), or the CPUs this process may use when its
            affinity mask is smaller than the machine.
        fallback: allow CPU when the requested provider is not active (with a warning).
            Off by default: a silent fallback is how a GPU benchmark ends up on the CPU.
        cuda_graph: capture GPU runs in CUDA graphs (see :func:`providers_for`); the model
            must then be run through IO binding at fixed batch sizes.
        device_id: the GPU both models use.
        trt_cache: TensorRT engine cache folder (default ``~/.cache/instanthmr/trt``).
    """

    def __init__(
        self,
        device: str = "auto",
        threads: int | None = None,
        fallback: bool = False,
        *,
        cuda_graph: bool = False,
        device_id: int = 0,
        trt_cache: str | os.PathLike[str] | None = None,
    ):
        self.device = device.lower()
        if self.device not in DEVICES:
            raise OptionError(f"unknown device {device!r}; choose one of {', '.join(DEVICES)}")
        if threads is not None and threads < 1:
            raise OptionError(f"threads must be >= 1, got {threads}")
        limited = usable_cpus() < (os.cpu_count() or 1)
        self._intra_threads = threads or (default_threads() if limited else 0)
        self.threads = self._intra_threads or min(physical_cores(), usable_cpus())
        self.fallback = fallback
        self.cuda_graph = cuda_graph
        self.device_id = device_id
        self.trt_cache = trt_cache

    def session_options(self, spin: bool = True) -> ort.SessionOptions:
        """Options shared by every session: onnxruntime's defaults, plus what we know better.

        Thread count: onnxruntime's default unless ``threads`` was given or the process is
        limited to fewer CPUs than the machine has (a fixed count turns off onnxruntime's
        thread pinning; measured in docs/performance.md, "Int8, session options and GPU").

        ``spin=False`` stops the session's idle threads from spin-waiting after a run. Use
        it for a model that runs now and then (the detector every Nth frame): its spinning
        threads otherwise take the cores from the next HMR call, which then takes about
        twice as long (measured in docs/performance.md).
        """
        so = ort.SessionOptions()
        if not spin:
            so.add_session_config_entry("session.intra_op.allow_spinning", "0")
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        so.intra_op_num_threads = self._intra_threads
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        so.log_severity_level = 3
        return so

    def _preload(self, requested: str) -> None:
        if requested in (CUDA, TENSORRT) and hasattr(ort, "preload_dlls"):
            try:
                ort.preload_dlls()
            except (OSError, RuntimeError) as exc:
                log.warning("onnxruntime.preload_dlls() failed: %s", exc)

    def _providers(self, precision: str) -> list:
        return providers_for(
            self.device, self.trt_cache, cuda_graph=self.cuda_graph,
            fp16=precision != "fp32", device_id=self.device_id,
        )  # fmt: skip

    def _create(self, path: Path, providers: list, spin: bool) -> ort.InferenceSession:
        try:
            return ort.InferenceSession(
                str(path), sess_options=self.session_options(spin), providers=providers
            )
        except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph types
            raise ModelFileError(f"onnxruntime could not load {path}: {exc}") from exc

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
            precision: ``auto`` (int8 where its report measured it faster and within
                tolerance, else fp16 weights become fp32 on CPU and stay fp16 on GPU),
                ``fp32`` (always convert), ``fp16`` (the fp16 weights as they are, or a
                TensorRT fp16 engine), ``int8`` (the quantised file, refused without a
                good parity report) or ``keep`` (the file as it is, no choice made).
            inputs, outputs: when given, the model's I/O is checked against these specs and
                a :class:`~instanthmr.runtime.contract.ContractError` lists every difference.
            spin: let idle CPU threads spin-wait (see :meth:`session_options`).
        """
        if precision not in (*PRECISIONS, "keep"):
            raise OptionError(
                f"precision must be one of {', '.join(PRECISIONS)} (or keep), got {precision!r}"
            )
        source = Path(path)
        if not source.is_file():
            raise FileNotFoundError(f"model file not found: {source}")
        proto = load_onnx(source)  # clear error for truncated or non-ONNX files
        metadata = {p.key: p.value for p in proto.metadata_props}
        del proto
        providers = self._providers(precision)
        requested = _name(providers[0])
        available = ort.get_available_providers()
        if requested not in available:
            self._refuse(requested, f"{requested} is not in this onnxruntime build ({available})")
            providers, requested = [CPU], CPU
        self._preload(requested)
        if precision == "keep":
            choice = FileChoice(source, "keep", "asked to keep the file as it is")
        else:
            choice = choose_file(source, precision, requested)
        session = self._create(choice.path, providers, spin)
        active = session.get_providers()
        if active[0] != requested:
            self._refuse(requested, f"{requested} did not activate; active providers: {active}")
            if precision != "keep":
                choice = choose_file(source, precision, CPU)
                session = self._create(choice.path, [CPU], spin)
            active = session.get_providers()
        model = ModelSession(session, source, choice.path, active[0], list(active), metadata,
                             choice.precision)  # fmt: skip
        if inputs is not None or outputs is not None:
            check_io(str(source), session.get_inputs(), session.get_outputs(),
                     inputs or (), outputs or ())  # fmt: skip
        if model.random_init:
            log.warning(
                "!!! %s is a RANDOM-INIT export: its outputs are meaningless. Use it for "
                "plumbing and speed tests only. !!!", source.name,
            )  # fmt: skip
        log.info("loaded %s on %s as %s (file %s): %s", source.name, model.provider,
                 choice.precision, choice.path.name, choice.reason)  # fmt: skip
        return model

    def save_optimized(
        self,
        source: str | os.PathLike[str],
        dest: str | os.PathLike[str],
        *,
        level: str = "basic",
        disabled_optimizers: Sequence[str] = (),
    ) -> Path:
        """Write ``source`` after onnxruntime's graph optimiser (CPU provider) to ``dest``.

        ``basic`` folds constants (weights become plain initializers, which the
        quantisation tools need); ``extended`` also fuses Gelu, LayerNorm and similar.
        ``disabled_optimizers`` names onnxruntime fusions to skip (e.g. the Conv+activation
        fusion, whose contrib op the quantiser cannot quantise).
        """
        levels = {"basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
                  "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED}  # fmt: skip
        if level not in levels:
            raise ValueError(f"level must be basic or extended, got {level!r}")
        so = ort.SessionOptions()
        so.graph_optimization_level = levels[level]
        so.optimized_model_filepath = os.fspath(dest)
        so.log_severity_level = 3
        try:
            ort.InferenceSession(os.fspath(source), so, providers=[CPU],
                                 disabled_optimizers=list(disabled_optimizers))  # fmt: skip
        except Exception as exc:  # onnxruntime's own error types
            raise ValueError(f"onnxruntime could not optimise {source}: {exc}") from exc
        return Path(dest)

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
        model: Runnable,
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
