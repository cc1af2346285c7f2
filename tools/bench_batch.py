"""Batch throughput, side by side: local 1 worker, local 2 workers, Ray local.

    python tools/bench_batch.py --model M.onnx --detector-model D.onnx [--videos 4]
        [--frames 24] [--rounds 2] --source vtest.avi

Cuts ``--videos`` clips of ``--frames`` frames from ``--source`` (real footage) into a
temporary folder, then runs the same batch with every configuration once per round, in
turn (A B C A B C ...), each into a fresh output folder, and prints the medians: wall-clock
videos per hour and frames per second (worker start and model load included, as a user
sees them), the model load time and resident memory of one worker, and Ray's start-up
time (timed apart: ``ray.init`` here, then ``run_batch`` on that instance).

With random-init exports (``instanthmr export --random-init``, ``instanthmr
export-detector --random-init``) the compute is real and the poses are meaningless; the
detector then runs with ``--det-confidence 0 --max-persons 2`` so HMR sees people.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import cv2

from instanthmr.batch import BatchOptions, run_batch
from instanthmr.evaluation.speed import machine_info

CONFIGS = (("local, 1 worker", "local", 1), ("local, 2 workers", "local", 2),
           ("Ray local, 2 actors", "ray", 2))  # fmt: skip


def cut_clips(source: Path, folder: Path, videos: int, frames: int) -> list[Path]:
    """``videos`` consecutive MJPG clips of ``frames`` frames from ``source``."""
    cap = cv2.VideoCapture(str(source))
    if not cap.isOpened():
        raise SystemExit(f"cannot open {source}")
    fps = cap.get(cv2.CAP_PROP_FPS) or 10.0
    paths = []
    for v in range(videos):
        path = folder / f"clip{v:02d}.avi"
        writer = None
        for _ in range(frames):
            ok, image = cap.read()
            if not ok:
                raise SystemExit(f"{source} has fewer than {videos * frames} frames")
            if writer is None:
                size = (image.shape[1], image.shape[0])
                writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, size)
            writer.write(image)
        assert writer is not None
        writer.release()
        paths.append(path)
    cap.release()
    return paths


def one_run(name: str, engine: str, workers: int, clips: list[Path], out: Path,
            options: BatchOptions) -> dict[str, float]:  # fmt: skip
    """Run one configuration; returns its timings and one worker's load time and RSS."""
    ray_init = 0.0
    if engine == "ray":
        import ray

        t0 = time.perf_counter()
        ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR")
        ray_init = time.perf_counter() - t0
    try:
        t0 = time.perf_counter()
        report = run_batch([str(p) for p in clips], out, options, engine=engine,
                           workers=workers, progress=False)  # fmt: skip
        wall = time.perf_counter() - t0
    finally:
        if engine == "ray":
            ray.shutdown()
    if report.exit_code:
        raise SystemExit(f"{name}: {report.table()}")
    info = report.worker_info[0]
    return {
        "wall": wall, "ray_init": ray_init, "frames": report.frames,
        "videos": len(report.records), "threads": report.threads,
        "load": info["load_seconds"], "rss_load": info["rss_mb"],
        "rss_after": max(r["rss_mb"] for r in report.records),
    }  # fmt: skip


def main() -> None:
    """Parse the flags, run the rounds, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="InstantHMR ONNX (random-init is fine)")
    parser.add_argument("--detector-model", required=True, help="RF-DETR ONNX export")
    parser.add_argument("--source", required=True, type=Path, help="a video, e.g. vtest.avi")
    parser.add_argument("--videos", type=int, default=4)
    parser.add_argument("--frames", type=int, default=24)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    options = BatchOptions(model=args.model, detector_model=args.detector_model,
                           detector_backend="onnx", device="cpu", det_confidence=0.0,
                           max_persons=2)  # fmt: skip
    runs: dict[str, list[dict[str, float]]] = {name: [] for name, _, _ in CONFIGS}
    with tempfile.TemporaryDirectory(prefix="bench-batch-") as tmp:
        clips = cut_clips(args.source, Path(tmp), args.videos, args.frames)
        for r in range(args.rounds):
            for name, engine, workers in CONFIGS:
                out = Path(tmp) / f"out-{engine}-{workers}-{r}"
                runs[name].append(one_run(name, engine, workers, clips, out, options))
                print(f"round {r + 1}: {name}: {runs[name][-1]['wall']:.1f} s", flush=True)
    uptime = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    info = machine_info()
    print(f"\n{info['cpu']}, {info['cores_usable']} cores, load: {uptime}")
    print(f"{args.videos} clips x {args.frames} frames of {args.source.name}, "
          f"{args.rounds} rounds, medians\n")  # fmt: skip
    print(
        "| configuration | threads/worker | wall s | videos/hour | frames/s | ratio to 1 worker "
        "| model load s | worker RSS MiB (loaded / after) | Ray init s |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    base = None
    for name, _, _ in CONFIGS:
        rows = runs[name]

        def med(key: str, rows: list[dict[str, float]] = rows) -> float:
            return statistics.median(row[key] for row in rows)

        fps = med("frames") / med("wall")
        base = base or fps
        print(f"| {name} | {int(med('threads'))} | {med('wall'):.1f} | "
              f"{med('videos') / med('wall') * 3600:.0f} | {fps:.2f} | {fps / base:.2f} | "
              f"{med('load'):.1f} | {med('rss_load'):.0f} / {med('rss_after'):.0f} | "
              f"{med('ray_init'):.1f} |")  # fmt: skip


if __name__ == "__main__":
    main()
