"""Make the demo clip shipped in the package: ``instanthmr/assets/sample.mp4``.

A 10-second cut of OpenCV's sample video ``vtest.avi`` (frames 120-219: pedestrians on a
campus path, 768x576, 10 fps), H.264, about 1 MB. What it is and why: see
:mod:`instanthmr.sources.sample`. The licence notice is ``instanthmr/assets/sample.NOTICE.txt``.

    python tools/make_sample.py --source PATH/TO/vtest.avi            # rewrites the asset
    python tools/make_sample.py --source PATH/TO/vtest.avi --out x.mp4

``vtest.avi`` is in the OpenCV sources (``samples/data/vtest.avi``) and in Debian's
``opencv-doc`` package.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from instanthmr.sources import sample

DEFAULT_OUT = Path(__file__).resolve().parents[1] / "instanthmr" / "assets" / "sample.mp4"


def main(argv: list[str] | None = None) -> int:
    """Cut the clip from ``--source`` and write it to ``--out``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, required=True, help="OpenCV's vtest.avi")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output .mp4 path")
    parser.add_argument("--start", type=int, default=sample.START_FRAME, help="first frame")
    parser.add_argument("--frames", type=int, default=sample.NUM_FRAMES, help="frame count")
    parser.add_argument("--crf", type=int, default=sample.CRF, help="x264 quality (lower: larger)")
    args = parser.parse_args(argv)
    try:
        sample.check_vtest(args.source)
        r = sample.make_sample_clip(
            args.source, args.out, start=args.start, frames=args.frames, crf=args.crf
        )
    except ValueError as exc:
        print(f"make_sample: error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {r.path}: {r.frames} frames, {r.size[0]}x{r.size[1]}, {r.fps:g} fps, "
          f"{r.bytes / 1e6:.2f} MB")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
