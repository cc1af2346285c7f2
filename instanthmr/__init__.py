"""InstantHMR: real-time 3D human pose and MHR body-model parameters, ONNX-first.

The public API is imported lazily, so ``import instanthmr`` is cheap and never pulls in
torch, rerun or the detector until they are used.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "PosePipeline": "instanthmr.pipeline",
    "ConcurrentUseError": "instanthmr.pipeline",
    "HMRModel": "instanthmr.hmr",
    "Runtime": "instanthmr.runtime",
    "ProviderError": "instanthmr.runtime",
    "ContractError": "instanthmr.contract",
    "PersonResult": "instanthmr.results",
    "FrameResult": "instanthmr.results",
    "StageTimings": "instanthmr.results",
    "resolve_model": "instanthmr.weights",
}

__all__ = [
    "ConcurrentUseError",
    "ContractError",
    "FrameResult",
    "HMRModel",
    "PersonResult",
    "PosePipeline",
    "ProviderError",
    "Runtime",
    "StageTimings",
    "resolve_model",
]

if TYPE_CHECKING:
    from .contract import ContractError
    from .hmr import HMRModel
    from .pipeline import ConcurrentUseError, PosePipeline
    from .results import FrameResult, PersonResult, StageTimings
    from .runtime import ProviderError, Runtime
    from .weights import resolve_model


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'instanthmr' has no attribute {name!r}")
