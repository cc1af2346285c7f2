"""The runtime: the one place that owns onnxruntime sessions, and the model files' precision.

- ``session``: :class:`Runtime` (device → providers, session options, warm-up);
- ``io_binding``: IO binding and CUDA graphs on GPU providers;
- ``contract``: the model contract and its validation;
- ``precision``: fp16 → fp32 and the choice of file per provider;
- ``parity`` and ``quantize``: int8 files, their parity and speed.
"""

from __future__ import annotations

from .. import lazy_exports

_EXPORTS = {
    "Runtime": "instanthmr.runtime.session",
    "ProviderError": "instanthmr.runtime.session",
    "ContractError": "instanthmr.runtime.contract",
}

__getattr__ = lazy_exports("instanthmr.runtime", _EXPORTS)
