"""Peak memory of one ``predict`` with many caller boxes, chunked (MAX_BATCH) or in one call.

    python tools/bench_many_boxes.py --model models/instanthmr-random.onnx --boxes 400

Each variant runs in its own process (peak RSS is per process); the numbers back the
sentence in docs/pipeline.md about ``MAX_BATCH``. Memory only: timings under load mean
little, and the chunked and the single call do the same work.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time


def _child(model: str, boxes: int, unbounded: bool) -> dict:
    import numpy as np

    import instanthmr.hmr.model as hmr_model
    from instanthmr.pipeline import PosePipeline

    if unbounded:
        hmr_model.MAX_BATCH = 10**9  # one model call for every box, as before the chunking
    pipe = PosePipeline(model, device="cpu", detector=None)
    image = np.random.default_rng(0).integers(0, 255, (720, 1280, 3), dtype=np.uint8)
    rng = np.random.default_rng(1)
    x, y = rng.uniform(0, 1100, boxes), rng.uniform(0, 500, boxes)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    t0 = time.perf_counter()
    result = pipe.predict(image, boxes=np.stack([x, y, x + 150, y + 200], axis=1))
    return {
        "variant": "one call" if unbounded else f"chunks of {hmr_model.MAX_BATCH}",
        "persons": len(result), "seconds": round(time.perf_counter() - t0, 1),
        "rss_before_mib": round(before), "peak_rss_mib":
        round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }  # fmt: skip


def main() -> int:
    """Run both variants in child processes and print their peak RSS."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", required=True, help="an InstantHMR ONNX file")
    p.add_argument("--boxes", type=int, default=400)
    p.add_argument("--child", choices=("bounded", "unbounded"), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        print(json.dumps(_child(args.model, args.boxes, args.child == "unbounded")))
        return 0
    for variant in ("unbounded", "bounded"):
        cmd = [sys.executable, __file__, "--model", args.model, "--boxes", str(args.boxes),
               "--child", variant]  # fmt: skip
        out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
        print(out.strip().splitlines()[-1])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
