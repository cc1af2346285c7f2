"""Export an RF-DETR detector to ONNX with rfdetr's own exporter, plus provenance metadata.

The graph is rfdetr's (``model.export``): input ``input`` (1, 3, R, R), outputs ``dets``
(1, 300, 4) and ``labels`` (1, 300, 91). This module adds the provenance the runtime reads
(variant, resolution, random-init flag, source) to the ONNX metadata and moves the file
into place atomically, so a crash never leaves half a model at ``output``.

Needs the ``export`` extra (torch, rfdetr, onnx).
"""

from __future__ import annotations

import importlib.metadata
import logging
import os
import shutil
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

from ..detector.base import (
    META_DETECTOR_RESOLUTION,
    META_DETECTOR_SOURCE,
    META_DETECTOR_VARIANT,
    get_variant,
)
from ..errors import OptionError
from ..fileio import atomic_path
from ..runtime.contract import META_RANDOM_INIT

log = logging.getLogger(__name__)


def _rfdetr_version() -> str:
    try:
        return importlib.metadata.version("rfdetr")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def _add_metadata(src: Path, dst: Path, props: dict[str, str]) -> None:
    """Copy the ONNX file ``src`` to ``dst`` with ``props`` set in its metadata."""
    import onnx

    proto = onnx.load(str(src))
    existing = {p.key: p for p in proto.metadata_props}
    for key, value in props.items():
        if key in existing:
            existing[key].value = value
        else:
            entry = proto.metadata_props.add()
            entry.key, entry.value = key, value
    onnx.save(proto, str(dst))


def export_rfdetr_onnx(
    variant: str,
    output: str | os.PathLike[str],
    *,
    random_init: bool = False,
    checkpoint: str | os.PathLike[str] | None = None,
    model: Any = None,
    opset: int = 17,
    seed: int = 0,
) -> Path:
    """Export RF-DETR ``variant`` to the ONNX file ``output`` and return its path.

    Args:
        variant: ``nano``, ``small``, ``medium``, ``base`` or ``large``.
        output: the ``.onnx`` file to write (parent folders are created); replaced atomically.
        random_init: random weights (``pretrain_weights=None``): same graph and compute,
            meaningless detections, recorded in the metadata so the runtime warns loudly.
            Without it (and without ``checkpoint``) rfdetr downloads its COCO checkpoint.
        checkpoint: a local rfdetr ``.pth`` checkpoint for this variant.
        model: an rfdetr model object that is already built (e.g. to export the very
            weights a test also runs in torch); ``random_init`` then only describes it.
        opset: ONNX opset (rfdetr's default is 17).

    Raises:
        ImportError: torch or rfdetr is not installed.
        ValueError: unknown variant, ``random_init`` together with ``checkpoint``, or a
            ``model`` whose resolution is not the variant's.

    ``seed`` seeds torch before a random-init build, so such exports are reproducible.
    """
    from ..detector.torch_backend import build_rfdetr, require_rfdetr

    require_rfdetr()
    spec = get_variant(variant)
    if random_init and checkpoint is not None:
        raise ValueError("random_init=True and checkpoint are exclusive; pass one of them")
    output = Path(output)
    if output.suffix.lower() != ".onnx":
        raise OptionError(f"output must be an .onnx file, got {output}")
    start = time.perf_counter()
    if model is None:
        if random_init:
            import torch

            torch.manual_seed(seed)  # the same random weights on every export
        model = build_rfdetr(spec.name, random_init=random_init, checkpoint=checkpoint)
    resolution = int(model.model_config.resolution)
    if resolution != spec.resolution:
        raise ValueError(
            f"the rfdetr model runs at {resolution}, but variant {spec.name!r} runs at "
            f"{spec.resolution}"
        )
    import torch

    output.parent.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix=".rfdetr-export-", dir=output.parent))
    try:
        with warnings.catch_warnings():
            # Tracing RF-DETR emits dozens of TracerWarnings about constant shapes; the
            # graph is exported at a fixed resolution, so they are expected.
            warnings.simplefilter("ignore", torch.jit.TracerWarning)
            warnings.simplefilter("ignore", FutureWarning)
            # rfdetr 1.11 uses torch's legacy TorchScript ONNX exporter, which warns so.
            warnings.simplefilter("ignore", DeprecationWarning)
            exported = Path(
                model.export(output_dir=str(workdir), verbose=False, opset_version=opset)
            )
        props = {
            META_DETECTOR_VARIANT: spec.name,
            META_DETECTOR_RESOLUTION: str(resolution),
            META_RANDOM_INIT: "true" if random_init else "false",
            META_DETECTOR_SOURCE: (
                f"rfdetr {_rfdetr_version()} {spec.class_name}"
                + (f" checkpoint={Path(checkpoint).name}" if checkpoint is not None else "")
                + (" random-init" if random_init else "")
            ),
        }
        with atomic_path(output) as staged:
            _add_metadata(exported, staged, props)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    log.info(
        "exported RF-DETR %s (%dx%d%s) to %s in %.1f s",
        spec.name, resolution, resolution, ", RANDOM INIT" if random_init else "",
        output, time.perf_counter() - start,
    )  # fmt: skip
    return output
