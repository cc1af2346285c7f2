"""What to say when no person detector can be built here: the missing file and the ways forward.

One place for the wording, so every command says the same thing and a new way forward
(say, a detector shipped inside the package) is one more line in :data:`WAYS_FORWARD`.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import DetectorUnavailableError, MissingDependencyError
from .base import export_command

WAYS_FORWARD: tuple[str, ...] = (
    "use the detector shipped in the package, no download: --detector-variant yolox-nano "
    "(--detector-variant auto picks it when no RF-DETR file is here)",
    "export RF-DETR on a machine with network access (`{export}`) and copy {path} here",
    "pass --detector-model FILE with a detector ONNX export you already have",
)
"""The ways to get a detector, in order of preference; ``{export}`` and ``{path}`` are
filled in."""


def ways_forward(variant: str, path: Path) -> str:
    """The ways forward as one line: ``ways forward: (1) ...; (2) ...``."""
    items = [w.format(export=export_command(variant, path), path=path) for w in WAYS_FORWARD]
    return "ways forward: " + "; ".join(f"({n}) {w}" for n, w in enumerate(items, start=1))


def detector_unavailable(variant: str, path: Path, why: str) -> DetectorUnavailableError:
    """No detector file at ``path`` and none can be made here (``why``): the user error."""
    err = DetectorUnavailableError(
        f"no person detector: the RF-DETR {variant} file {path} does not exist (looked "
        f"relative to {Path.cwd()}), and {why}"
    )
    err.fix = ways_forward(variant, path)
    return err


def torch_backend_missing(variant: str, path: Path, reason: str) -> MissingDependencyError:
    """No detector file and no torch backend to fall back on (``reason``)."""
    err = MissingDependencyError(
        f"no RF-DETR ONNX file at {path}, and the torch backend is not available ({reason})"
    )
    err.fix = ways_forward(variant, path)
    return err
