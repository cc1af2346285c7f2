"""``instanthmr quantize``: an int8 copy of an InstantHMR or RF-DETR ONNX file, with parity.

Examples::

    instanthmr quantize --model instanthmr.onnx            # the release (fp16) works too
    instanthmr quantize --model models/rfdetr-nano.onnx --video my_clip.mp4
    instanthmr quantize --model m.onnx --method auto --json report.json

The int8 file goes beside the source as ``<stem>.int8.onnx``, where ``--precision auto``
and ``--precision int8`` look for it. Its parity against the fp32 file (HMR: joints_2d
pixels on the 224 crop and joints_3d mm; detector: box IoU and score difference) and the
speed of both on this machine are printed and stored in the file. Exit status 1 when the
parity is out of tolerance (the file is written, and ``--precision int8`` refuses it).
No torch needed.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from .errors import CommandParser, command
from .options import int_at_least


def build_parser() -> argparse.ArgumentParser:
    """The command line."""
    p = CommandParser(
        command="quantize",
        description=__doc__.splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="\n".join(__doc__.splitlines()[2:]),
    )
    p.add_argument("--model", required=True, type=Path, help="fp32 or fp16 ONNX file")
    p.add_argument("--output", type=Path, help="int8 file (default <stem>.int8.onnx beside it)")
    p.add_argument("--method", default="static", choices=["static", "dynamic", "auto"],
                   help="static QDQ (default), dynamic, or auto: both, keep the faster "
                   "one within tolerance")  # fmt: skip
    p.add_argument("--video", type=Path,
                   help="calibration footage, ideally like your own (default: the embedded "
                   "sample clip)")  # fmt: skip
    p.add_argument("--calibration-frames", type=int_at_least(1), default=8)
    p.add_argument("--eval-frames", type=int_at_least(1), default=4,
                   help="held-out frames for parity")  # fmt: skip
    p.add_argument("--speed-rounds", type=int_at_least(0), default=10,
                   help="interleaved fp32/int8 timing rounds (0: skip)")  # fmt: skip
    p.add_argument("--threads", type=int_at_least(1), help="CPU intra-op threads")
    p.add_argument("--json", dest="json_path", type=Path, help="also write the report here")
    return p


@command("quantize")
def main(argv: Sequence[str] | None = None) -> int:
    """Quantise; returns 0 (within tolerance), 1 (out of tolerance) or 2 (bad input)."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    from ..runtime.quantize import quantize_model
    from ..runtime.session import Runtime

    result = quantize_model(
        args.model, args.output, method=args.method, video=args.video,
        calibration_frames=args.calibration_frames, eval_frames=args.eval_frames,
        speed_rounds=args.speed_rounds, runtime=Runtime("cpu", threads=args.threads),
        echo=print,
    )  # fmt: skip
    print(json.dumps(result.report, indent=2))
    if args.json_path:
        args.json_path.write_text(json.dumps(result.report, indent=2))
    if not result.within_tolerance:
        print(f"quantize: {result.path} is OUT OF TOLERANCE: " + "; ".join(
            result.report["violations"]), file=sys.stderr)  # fmt: skip
        return 1
    return 0
