"""Build the stand-in HMR model the package ships: ``instanthmr/assets/standin-blazepose.onnx``.

MediaPipe's BlazePose GHUM 3D landmark model wrapped in the InstantHMR contract. It is NOT
InstantHMR (see :mod:`instanthmr.hmr.standin` and :mod:`instanthmr.export.standin`).

    python tools/make_standin.py --source PATH/TO/blazepose_landmark_full.onnx
    python tools/make_standin.py --source ... --fp32 --out /tmp/standin-fp32.onnx

The source is ``mediapipe/modules/pose_landmark/pose_landmark_full.tflite`` from the
``mediapipe`` 0.10.14 wheel on PyPI, converted to ONNX with ``tflite2onnx`` 0.4.1. The
licence notice is ``instanthmr/assets/standin-blazepose.NOTICE.txt``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from instanthmr.export.standin import build_standin
from instanthmr.hmr.standin import ASSET

DEFAULT_OUT = Path(__file__).resolve().parents[1] / "instanthmr" / "assets" / ASSET


def main(argv: list[str] | None = None) -> int:
    """Build, check and write the stand-in."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, required=True,
                        help="BlazePose's pose_landmark_full as ONNX")  # fmt: skip
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output .onnx path")
    parser.add_argument("--fp32", action="store_true",
                        help="store the weights as float32 (default: float16 storage)")  # fmt: skip
    args = parser.parse_args(argv)
    try:
        r = build_standin(args.source, args.out, fp16=not args.fp32)
    except (ValueError, FileNotFoundError) as exc:
        print(f"make_standin: error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {r.path} ({r.bytes / 1e6:.1f} MB) from source sha256 {r.source_sha256[:16]}: "
          f"batch vs single {r.batch_max_diff:.1e}, fp16 vs fp32 weights {r.fp16_max_px:.3f} px "
          f"and {r.fp16_max_m:.4f} m")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
