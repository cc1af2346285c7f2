"""IO binding with pre-allocated buffers, and CUDA graphs at fixed batch sizes.

:class:`BoundRunner` runs a :class:`~instanthmr.runtime.session.ModelSession` through onnxruntime's
IO binding. For each batch size it allocates the input and output buffers once, on the
session's device (``cuda`` for the CUDA and TensorRT providers, ``cpu`` otherwise), binds
them, and from then on only copies the new inputs into them and the outputs out of them:
no per-call allocation, and on a GPU exactly one host-to-device copy per input and one
device-to-host copy per output.

With ``cuda_graph=True`` (the session must have been built by a
:class:`~instanthmr.runtime.session.Runtime` with ``cuda_graph=True``) each batch size gets its
own graph id (run option ``gpu_graph_id``): onnxruntime captures the graph on the first
run of that size and replays it afterwards, which requires the fixed buffer addresses this
class provides. Only the sizes in ``batch_sizes`` are allowed then (pad batches to them).

Thread safety: the buffers are shared state, so every run holds this runner's lock; model
wrappers using it stay re-entrant (docs/pipeline.md, "Threads and streams").
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import onnxruntime as ort

from .session import CUDA, TENSORRT, ModelSession

GPU_PROVIDERS = (CUDA, TENSORRT)
_DTYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16}


@dataclass
class _Slot:
    inputs: dict[str, ort.OrtValue]
    outputs: dict[str, ort.OrtValue]
    binding: ort.IOBinding
    run_options: ort.RunOptions


def _per_sample_shapes(args: Sequence[object]) -> dict[str, tuple[int, ...]]:
    shapes = {}
    for arg in args:
        dims = list(arg.shape)[1:]  # type: ignore[attr-defined]
        if not all(isinstance(d, int) for d in dims):
            raise ValueError(
                f"IO binding needs fixed non-batch dimensions; {arg.name!r} has shape "  # type: ignore[attr-defined]
                f"{list(arg.shape)}"  # type: ignore[attr-defined]
            )
        shapes[arg.name] = tuple(dims)  # type: ignore[attr-defined]
    return shapes


class BoundRunner:
    """Runs a model through IO binding with buffers allocated once per batch size.

    Args:
        model: the loaded session (its provider decides the buffer device).
        output_names: outputs to bind and return (default: all).
        cuda_graph: give each batch size a CUDA graph id (GPU providers only).
        batch_sizes: the allowed batch sizes; required with ``cuda_graph``.
        device_id: the GPU the buffers live on.
    """

    def __init__(
        self,
        model: ModelSession,
        output_names: Sequence[str] | None = None,
        *,
        cuda_graph: bool = False,
        batch_sizes: Sequence[int] | None = None,
        device_id: int = 0,
    ) -> None:
        self.model = model
        self.device = "cuda" if model.provider in GPU_PROVIDERS else "cpu"
        if cuda_graph and self.device != "cuda":
            raise ValueError(
                f"cuda_graph needs the CUDA or TensorRT provider; this model runs on "
                f"{model.provider}"
            )
        if cuda_graph and not batch_sizes:
            raise ValueError("cuda_graph needs fixed batch sizes: set pad_batch (e.g. 4)")
        self.cuda_graph = cuda_graph
        self.batch_sizes = tuple(batch_sizes) if batch_sizes else None
        self.device_id = device_id
        session = model.session
        self._in_shapes = _per_sample_shapes(session.get_inputs())
        outs = _per_sample_shapes(session.get_outputs())
        names = list(output_names) if output_names is not None else list(outs)
        self._out_shapes = {n: outs[n] for n in names}
        self._dtypes = {a.name: _DTYPES.get(a.type, np.float32)
                        for a in (*session.get_inputs(), *session.get_outputs())}  # fmt: skip
        self._slots: dict[int, _Slot] = {}
        self._lock = threading.Lock()

    def _alloc(self, name: str, shape: tuple[int, ...]) -> ort.OrtValue:
        return ort.OrtValue.ortvalue_from_shape_and_type(
            shape, self._dtypes[name], self.device, self.device_id
        )

    def _slot(self, n: int) -> _Slot:
        slot = self._slots.get(n)
        if slot is not None:
            return slot
        if self.batch_sizes is not None and n not in self.batch_sizes:
            raise ValueError(
                f"batch size {n} is not one of the bound sizes {self.batch_sizes}; pad the batch"
            )
        inputs = {k: self._alloc(k, (n, *s)) for k, s in self._in_shapes.items()}
        outputs = {k: self._alloc(k, (n, *s)) for k, s in self._out_shapes.items()}
        binding = self.model.session.io_binding()
        for name, value in inputs.items():
            binding.bind_ortvalue_input(name, value)
        for name, value in outputs.items():
            binding.bind_ortvalue_output(name, value)
        options = ort.RunOptions()
        if self.cuda_graph:  # ids start at 1 (0 is onnxruntime's own)
            options.add_run_config_entry("gpu_graph_id", str(len(self._slots) + 1))
        slot = _Slot(inputs, outputs, binding, options)
        self._slots[n] = slot
        return slot

    @property
    def bound_batch_sizes(self) -> list[int]:
        """The batch sizes that have buffers now."""
        return sorted(self._slots)

    def run(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Copy ``feeds`` into the bound buffers, run, return copies of the outputs."""
        missing = set(self._in_shapes) - set(feeds)
        if missing:
            raise ValueError(f"missing model inputs {sorted(missing)}")
        n = len(next(iter(feeds.values())))
        with self._lock:
            slot = self._slot(n)
            for name, value in slot.inputs.items():
                arr = np.ascontiguousarray(feeds[name], dtype=self._dtypes[name])
                if arr.shape != (n, *self._in_shapes[name]):
                    raise ValueError(
                        f"input {name!r} has shape {arr.shape}; expected "
                        f"{(n, *self._in_shapes[name])}"
                    )
                value.update_inplace(arr)
            self.model.session.run_with_iobinding(slot.binding, slot.run_options)
            return {k: np.array(v.numpy(), copy=True) for k, v in slot.outputs.items()}
