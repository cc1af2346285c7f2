"""InstantHMR: real-time 3D human pose and MHR body-model parameters, ONNX-first.

The public API is imported lazily, so ``import instanthmr`` is cheap and never pulls in
torch, rerun or the detector until they are used.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "PosePipeline": "instanthmr.pipeline",
    "ConcurrentUseError": "instanthmr.pipeline",
    "HMRModel": "instanthmr.hmr.model",
    "Runtime": "instanthmr.runtime.session",
    "ProviderError": "instanthmr.runtime.session",
    "ContractError": "instanthmr.runtime.contract",
    "PersonResult": "instanthmr.results",
    "FrameResult": "instanthmr.results",
    "StageTimings": "instanthmr.results",
    "resolve_model": "instanthmr.hmr.weights",
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
    from .hmr.model import HMRModel
    from .hmr.weights import resolve_model
    from .pipeline import ConcurrentUseError, PosePipeline
    from .results import FrameResult, PersonResult, StageTimings
    from .runtime.contract import ContractError
    from .runtime.session import ProviderError, Runtime


def lazy_exports(package: str, exports: dict[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` (PEP 562) that imports ``exports[name]`` on first use.

    Packages use it so that importing them stays cheap: ``instanthmr.runtime.Runtime``
    imports onnxruntime only when it is first read.
    """

    def __getattr__(name: str) -> Any:  # noqa: N807
        if name in exports:
            return getattr(importlib.import_module(exports[name]), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__


__getattr__ = lazy_exports("instanthmr", _EXPORTS)
