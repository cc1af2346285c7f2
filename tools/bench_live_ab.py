"""Live-mode A/B in one process: async detector thread counts vs the synchronous pipeline.

Every configuration detects on need with a maximum interval of ``--stride`` frames and one
forced person (``det_confidence=0, max_persons=1``); the configurations run interleaved,
round after round (A B C D A B C D ...), so a change of machine load hits all of them.
Medians over the rounds are printed and written as JSON. Used for docs/performance.md.

    python tools/bench_live_ab.py --model HMR.onnx --detector-model RFDETR.onnx \
        --video vtest640.avi --frames 60 --rounds 3 --json live_ab.json
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

from instanthmr.commands.bench import _frames
from instanthmr.evaluation import speed as B  # noqa: N812
from instanthmr.pipeline import PosePipeline

ASYNC = {"async_detector": True}
CONFIGS: dict[str, dict[str, object]] = {
    "async, detector 2 threads, HMR 2": {**ASYNC, "detector_threads": 2, "threads": 2},
    "async, detector 1 thread, HMR 2": {**ASYNC, "detector_threads": 1, "threads": 2},
    "async, detector 1 thread, HMR 1": {**ASYNC, "detector_threads": 1, "threads": 1},
    "synchronous, HMR and detector 2": {"async_detector": False, "threads": 2},
}
KEYS = ("fps", "frame_ms_p50", "frame_ms_p95", "frame_ms_max", "detector_runs_per_frame")


def main() -> None:
    """Run the A/B and print the medians."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", required=True)
    p.add_argument("--detector-model", required=True)
    p.add_argument("--video", required=True)
    p.add_argument("--stride", type=int, default=30, help="maximum detector interval")
    p.add_argument("--frames", type=int, default=60)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--json", dest="json_path")
    args = p.parse_args()
    _, make = _frames(args.video, None)
    common = {"device": "cpu", "detector_backend": "onnx", "det_confidence": 0.0,
              "detector_model": args.detector_model, "max_persons": 1,
              "detector_stride": args.stride}  # fmt: skip
    pipes = {name: PosePipeline(args.model, **common, **kw) for name, kw in CONFIGS.items()}
    runs: dict[str, list[dict]] = {name: [] for name in CONFIGS}
    for r in range(args.rounds):
        for name, pipe in pipes.items():
            out = B.bench_pipeline_run(pipe, make, max_frames=args.frames, warmup_frames=5)
            runs[name].append(out)
            print(f"round {r} {name}: " + ", ".join(f"{k} {out[k]:.2f}" for k in KEYS)
                  + f", lag {out['detector_latency_frames']}, reasons {out['detect_reasons']}",
                  flush=True)  # fmt: skip
    summary = {
        name: {k: statistics.median(o[k] for o in v) for k in KEYS} for name, v in runs.items()
    }
    for name, s in summary.items():
        print(f"{name}: " + ", ".join(f"{k} {v:.2f}" for k, v in s.items())
              + f", p95/p50 {s['frame_ms_p95'] / s['frame_ms_p50']:.2f}")  # fmt: skip
    if args.json_path:
        data = {"summary": summary, "runs": runs, "machine": B.machine_info()}
        Path(args.json_path).write_text(json.dumps(data, indent=1, default=str))


if __name__ == "__main__":
    main()
