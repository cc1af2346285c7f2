"""What the app tells clients about itself: ``/health`` and the skeleton layout."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .. import __version__
from ..skeleton import (
    BODY_EDGES,
    FULL_EDGE_GROUPS,
    FULL_EDGES,
    GROUP_COLORS,
    JOINT_NAMES,
    edge_colors,
    joint_colors,
)


def health_info(pipeline: Any) -> dict[str, Any]:
    """What ``GET /health`` reports: version, provider, model file name, the model's kind and
    notice (:mod:`instanthmr.hmr.kinds`: None for InstantHMR), random-init flags, and the
    detector (its name, file name, provider and why it was chosen)."""
    from ..detector.choice import describe_detector

    hmr = pipeline.hmr
    detector = describe_detector(pipeline.detector)  # file names only: no server paths leak
    return {
        "status": "ok",
        "version": __version__,
        "provider": hmr.provider,
        "model": Path(hmr.model_path).name,  # the name only: no server paths leak
        "random_init": bool(hmr.random_init),
        "model_kind": hmr.model_kind.name,
        "model_notice": hmr.model_kind.notice,
        "detector": detector,
    }


def skeleton_info() -> dict[str, Any]:
    """The MHR70 layout for drawing, from :mod:`instanthmr.skeleton` (one source of truth)."""
    return {
        "joint_names": list(JOINT_NAMES),
        "edges": [list(e) for e in FULL_EDGES],
        "edge_groups": list(FULL_EDGE_GROUPS),
        "edge_colors": edge_colors(full=True).tolist(),
        "body_edges": [list(e) for e in BODY_EDGES],
        "joint_colors": joint_colors().tolist(),
        "group_colors": {k: list(v) for k, v in GROUP_COLORS.items()},
    }
