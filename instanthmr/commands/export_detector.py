"""Export an RF-DETR person detector to ONNX for the default (torch-free) detector backend.

Examples:
    python tools/export_detector.py --variant nano
    python tools/export_detector.py --variant medium --output models/rfdetr-medium.onnx
    python tools/export_detector.py --variant nano --random-init   # tests/timing only
    instanthmr export-detector --variant nano

Without ``--random-init`` or ``--checkpoint`` rfdetr downloads its COCO checkpoint first.
Needs the export extra: ``pip install "instanthmr[export]"``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from pathlib import Path

from ..detector.base import VARIANTS, default_model_path
from .errors import CommandParser, command


@command("export-detector")
def main(argv: Sequence[str] | None = None) -> int:
    """Parse arguments, export, print the path and the time taken."""
    parser = CommandParser(command="export-detector", description=__doc__.splitlines()[0])
    parser.add_argument("--variant", default="nano", choices=list(VARIANTS))
    parser.add_argument(
        "--output", type=Path, default=None,
        help="ONNX file to write (default: models/rfdetr-<variant>.onnx, where the "
        "detector looks for it)",
    )  # fmt: skip
    group = parser.add_mutually_exclusive_group()
    group.add_argument(
        "--random-init", action="store_true",
        help="random weights: real graph and speed, meaningless detections",
    )  # fmt: skip
    group.add_argument("--checkpoint", type=Path, default=None, help="local rfdetr .pth file")
    parser.add_argument(
        "--int8", action="store_true",
        help="also write <output stem>.int8.onnx (instanthmr quantize) with its parity report",
    )  # fmt: skip
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    from ..export.detector_export import export_rfdetr_onnx  # needs the export extra

    output = args.output or default_model_path(args.variant)
    start = time.perf_counter()
    path = export_rfdetr_onnx(
        args.variant, output, random_init=args.random_init, checkpoint=args.checkpoint
    )
    size_mb = path.stat().st_size / 1e6
    print(f"wrote {path} ({size_mb:.1f} MB) in {time.perf_counter() - start:.1f} s")
    if args.random_init:
        print("NOTE: random-init weights: detections from this file are meaningless.")
    if args.int8:
        from .quantize import main as quantize_main

        return quantize_main(["--model", str(path)])
    return 0
