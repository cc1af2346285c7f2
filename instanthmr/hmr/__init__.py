"""The HMR stage: the InstantHMR model's pre- and post-processing, and its weights.

- ``model``: :class:`HMRModel` (crops, one batched run, results);
- ``weights``: :func:`resolve_model` (a local path or the Hugging Face Hub).
"""

from __future__ import annotations

from .. import lazy_exports

_EXPORTS = {
    "HMRModel": "instanthmr.hmr.model",
    "resolve_model": "instanthmr.hmr.weights",
}

__getattr__ = lazy_exports("instanthmr.hmr", _EXPORTS)
