"""Export InstantHMR to ONNX (release format: opset 17, dynamic batch, contract names).

Examples (from the repository root, with the ``export`` extra installed)::

    python tools/export_onnx.py --checkpoint instanthmr.pth --output instanthmr.onnx --fp16
    python tools/export_onnx.py --random-init --output /tmp/instanthmr-random.onnx
    instanthmr export --random-init --output /tmp/instanthmr-random.onnx

``--random-init`` gives a model with the real shapes and compute but meaningless poses:
use it for plumbing tests and timing only. ``--arch`` picks the network (default
``released``, the published file's; ``card`` is the model card's smaller one); the file's
metadata records the architecture, its parameter count and GFLOP per person.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from ..errors import MissingDependencyError
from .errors import CommandParser, command, error_line

_BANNER = "!" * 78


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface."""
    parser = CommandParser(
        command="export",
        description="Export the InstantHMR PyTorch model to ONNX and check it against PyTorch.",
    )
    parser.add_argument("--output", required=True, type=Path, help="ONNX file to write")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--checkpoint", type=Path, help="trained state_dict (.pth) to export")
    source.add_argument(
        "--random-init",
        action="store_true",
        help="export random weights (real shapes and compute, MEANINGLESS poses)",
    )
    from ..export.architectures import ARCHITECTURES, DEFAULT_ARCHITECTURE

    parser.add_argument(
        "--arch", choices=tuple(ARCHITECTURES), default=DEFAULT_ARCHITECTURE,
        help="network to build (default %(default)s): "
        + "; ".join(f"{k}: {a.summary}" for k, a in ARCHITECTURES.items()),
    )  # fmt: skip
    parser.add_argument("--image-size", type=int, metavar="PX",
                        help="crop size (a multiple of 32; default 224), written as metadata "
                             "image_size")  # fmt: skip
    parser.add_argument("--cliff-focal", action="store_true",
                        help="mark the file as trained on the focal-aware CLIFF vector "
                             "(metadata cliff_focal)")  # fmt: skip
    parser.add_argument(
        "--fp16", action="store_true", help="fp16 weights with float32 inputs/outputs"
    )
    parser.add_argument("--opset", type=int, default=17, help="ONNX opset (default 17)")
    parser.add_argument(
        "--seed", type=int, default=0, help="seed of the random init and the parity inputs"
    )
    parser.add_argument("--no-check", action="store_true", help="skip the onnxruntime parity check")
    parser.add_argument(
        "--int8", action="store_true",
        help="also write <output stem>.int8.onnx (instanthmr quantize) with its parity report",
    )  # fmt: skip
    return parser


@command("export")
def main(argv: Sequence[str] | None = None) -> int:
    """Run the export; returns the process exit code (2 a bad flag or checkpoint, 1 the
    exported file failed its parity check against PyTorch)."""
    args = build_parser().parse_args(argv)
    try:
        from ..export.hmr_export import ParityError, export_hmr_onnx
    except ImportError as exc:
        raise MissingDependencyError(
            f"the export extra is missing ({exc}); install it with: pip install -e '.[export]'"
        ) from None
    if args.random_init:
        print(_BANNER)
        print("WARNING: --random-init exports RANDOM weights. Poses, shapes and camera")
        print("from this model are meaningless; use it only for plumbing tests and timing.")
        print(_BANNER)
    try:
        export_hmr_onnx(
            args.output,
            checkpoint=args.checkpoint,
            random_init=args.random_init,
            fp16=args.fp16,
            opset=args.opset,
            seed=args.seed,
            check=not args.no_check,
            verbose=True,
            arch=args.arch,
            image_size=args.image_size,
            cliff_focal=args.cliff_focal,
        )
    except ParityError as exc:  # the file was written but does not match PyTorch
        print(error_line("export", exc), file=sys.stderr)
        return 1
    if args.random_init:
        print("WARNING: random-init model written; its poses are meaningless.")
    if args.int8:
        from .quantize import main as quantize_main

        return quantize_main(["--model", str(args.output)])
    return 0
