"""Dev tool: what an upload costs in the browser app, and what a download costs after it.

Starts ``instanthmr serve`` (the models given, as :mod:`bench_app` does) with
``--max-video-frames N`` and, as the page does:

1. ``POST /api/uploads`` of the video, then follows ``GET /api/results/{key}`` until done:
   the processing time (with the H.264 preview made alongside), and the preview's size;
2. each download from the kept results (``/api/results/{key}/export/FORMAT``), repeated:
   median milliseconds per format;
3. for comparison, the old way: ``POST /api/predict?export=jsonl``, which runs the models
   over the same frames again for every download.

Then, in this process, the preview encoder alone on the same frames at the video's own size
(:class:`instanthmr.webapp.preview.VideoPreview`): milliseconds per frame. Usage (random-init
exports: real compute, meaningless poses)::

    python tools/bench_app_uploads.py --model models/instanthmr-random.onnx \\
        --detector-model models/rfdetr-nano.onnx --video vtest.avi --frames 30
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import tempfile
import time
import urllib.request
from pathlib import Path

import cv2
from bench_app import start_server

from instanthmr.evaluation.speed import machine_info
from instanthmr.sources.files import sample_video_path
from instanthmr.webapp.preview import VideoPreview

FORMATS = ("jsonl", "npz", "bvh", "glb")


def request(url: str, data: bytes | None = None, method: str | None = None) -> tuple[bytes, float]:
    """The answer's body and the seconds it took."""
    t0 = time.perf_counter()
    with urllib.request.urlopen(urllib.request.Request(url, data=data, method=method),
                                timeout=3600) as r:  # fmt: skip
        body = r.read()
    return body, time.perf_counter() - t0


def encode_alone(video: Path, frames: int) -> tuple[float, int, tuple[int, int]]:
    """Preview encoding of the first ``frames`` frames: ms per frame, file bytes, size."""
    cap = cv2.VideoCapture(str(video), cv2.CAP_FFMPEG)
    images = []
    while len(images) < frames:
        ok, bgr = cap.read()
        if not ok:
            break
        images.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    cap.release()
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        writer = VideoPreview(Path(tmp) / "p", fps=10.0)
        for image in images:
            writer.add(image)
        path = writer.finish()
        ms = (time.perf_counter() - t0) * 1e3 / len(images)
        if path is None:
            raise SystemExit(f"no preview: {writer.error}")
        return ms, path.stat().st_size, images[0].shape[1::-1]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--detector-model", required=True)
    ap.add_argument("--video", default=str(sample_video_path()))
    ap.add_argument("--frames", type=int, default=30, help="--max-video-frames of the server")
    ap.add_argument("--repeats", type=int, default=5, help="downloads per format")
    ap.add_argument("--det-confidence", type=float, default=0.0)
    ap.add_argument("--max-persons", type=int, default=3)
    ap.add_argument("--out", help="write the numbers as JSON here")
    args = ap.parse_args(argv)
    video = Path(args.video)
    data = video.read_bytes()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    base = f"http://127.0.0.1:{port}"
    proc = start_server(args, port, ("--max-video-frames", str(args.frames)))
    out: dict[str, object] = {"load_before": os.getloadavg()}
    try:
        body, _ = request(f"{base}/api/uploads?name={video.name}", data)
        key = json.loads(body)["key"]
        while True:
            status = json.loads(request(f"{base}/api/results/{key}")[0])
            if status["state"] != "processing":
                break
            time.sleep(0.2)
        if status["state"] != "done":
            raise SystemExit(f"the upload failed: {status['error']}")
        preview, _ = request(f"{base}/api/results/{key}/preview")
        out["upload"] = {"frames": status["frames_done"], "processing_s": status["elapsed_s"],
                         "preview_kb": len(preview) / 1e3}  # fmt: skip
        downloads = {}
        for fmt in FORMATS:
            times = [request(f"{base}/api/results/{key}/export/{fmt}")[1] * 1e3
                     for _ in range(args.repeats)]  # fmt: skip
            downloads[fmt] = statistics.median(times)
        out["download_ms"] = downloads
        _, rerun_s = request(f"{base}/api/predict?export=jsonl", data)
        out["rerun_jsonl_s"] = rerun_s
    finally:
        proc.terminate()
        proc.wait(20)
    ms, size, (w, h) = encode_alone(video, args.frames)
    out["encode_alone"] = {"ms_per_frame": ms, "kb": size / 1e3, "size": [w, h]}
    out["load_after"] = os.getloadavg()
    print(f"machine: {machine_info().get('cpu')}, load before/after: "
          f"{out['load_before']} / {out['load_after']}")  # fmt: skip
    up = out["upload"]
    print(f"upload of {video.name}: {up['frames']} frames processed in {up['processing_s']:.1f} s "
          f"with the preview ({up['preview_kb']:.0f} kB)")  # fmt: skip
    for fmt, t in downloads.items():
        print(f"  download {fmt:<5} from the kept results: median {t:8.1f} ms")
    print(f"  the old way (POST /api/predict?export=jsonl, models again): {rerun_s:.1f} s")
    print(f"preview encoder alone, {w}x{h}: {ms:.1f} ms per frame, {size / 1e3:.0f} kB")
    if args.out:
        Path(args.out).write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
