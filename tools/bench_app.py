"""Dev tool: the latency the browser app's web path adds to a direct ``predict()``.

Starts ``instanthmr serve`` as a subprocess on a free loopback port, and in this process
builds a pipeline with the same options. For each frame, interleaved A B A B ...:

- A, direct: ``pipeline.predict(frame)`` on a decoded RGB frame;
- B, web: what the page does: JPEG-encode the frame (quality 0.8, as ``canvas.toBlob``),
  send it over the WebSocket, wait for the JSON answer and parse it.

Reports medians per path and the added milliseconds split into client encode, server
decode, server queue wait, server record building, and the rest (network, WebSocket framing,
JSON text encode and parse). Usage (random-init exports: real compute, meaningless poses)::

    python tools/bench_app.py --model models/instanthmr-random.onnx \\
        --detector-model models/rfdetr-nano.onnx --video vtest.avi
"""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import cv2
import numpy as np

from instanthmr.evaluation.speed import load_average, machine_info, stats, time_calls
from instanthmr.pipeline import PosePipeline
from instanthmr.sources.files import sample_video_path
from instanthmr.webapp.records import LIVE_ARRAYS, frame_record


def frames_from(path: Path, n: int, width: int) -> list[np.ndarray]:
    """The first ``n`` frames of a video, RGB, scaled to ``width`` (as the page sends them)."""
    cap = cv2.VideoCapture(str(path))
    out = []
    while len(out) < n:
        ok, bgr = cap.read()
        if not ok:
            break
        h = round(bgr.shape[0] * width / bgr.shape[1])
        out.append(cv2.cvtColor(cv2.resize(bgr, (width, h)), cv2.COLOR_BGR2RGB))
    cap.release()
    if not out:
        raise SystemExit(f"no frames read from {path}")
    return out


def codec_costs(rgb: np.ndarray, result: object, repeats: int = 200) -> dict[str, dict]:
    """CPU cost of each conversion on the web path, alone (least disturbed by load)."""
    jpg = cv2.imencode(".jpg", rgb[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 80])[1]
    text = json.dumps(frame_record(result, LIVE_ARRAYS, 4))
    calls = {
        "jpeg_encode": lambda: cv2.imencode(".jpg", rgb[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 80]),
        "jpeg_decode": lambda: cv2.cvtColor(cv2.imdecode(jpg, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB),
        "record_and_json_dumps": lambda: json.dumps(frame_record(result, LIVE_ARRAYS, 4)),
        "json_loads": lambda: json.loads(text),
    }
    return {k: stats(time_calls(fn, repeats)) for k, fn in calls.items()}


def start_server(
    args: argparse.Namespace, port: int, extra: tuple[str, ...] = ()
) -> subprocess.Popen:
    """``instanthmr serve`` with the benchmark's model flags (plus ``extra``), once it answers."""
    cmd = [sys.executable, "-m", "instanthmr.cli", "serve", "--port", str(port),
           "--model", args.model, "--detector-model", args.detector_model,
           "--detector-backend", "onnx", "--device", "cpu",
           "--det-confidence", str(args.det_confidence), "--max-persons", str(args.max_persons),
           "--max-fps", "1000", *extra]  # fmt: skip
    proc = subprocess.Popen(cmd)
    deadline = time.monotonic() + 180
    while True:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2).close()
            return proc
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise SystemExit("instanthmr serve did not start") from None
            time.sleep(0.5)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--detector-model", required=True)
    ap.add_argument("--video", default=str(sample_video_path()))
    ap.add_argument("--frames", type=int, default=40)
    ap.add_argument("--width", type=int, default=640)
    ap.add_argument("--det-confidence", type=float, default=0.0)
    ap.add_argument("--max-persons", type=int, default=3)
    ap.add_argument("--out", help="write the raw numbers as JSON here")
    args = ap.parse_args(argv)
    from websockets.sync.client import connect

    frames = frames_from(Path(args.video), args.frames, args.width)
    pipe = PosePipeline(args.model, device="cpu", detector_backend="onnx",
                        detector_model=args.detector_model, det_confidence=args.det_confidence,
                        max_persons=args.max_persons, smoothing=True)  # fmt: skip
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = start_server(args, port)
    rows = []
    try:
        with connect(f"ws://127.0.0.1:{port}/ws", max_size=None) as ws:
            json.loads(ws.recv())  # hello
            for warm in frames[:3]:  # warm both paths
                pipe.predict(warm)
                ws.send(cv2.imencode(".jpg", warm[..., ::-1])[1].tobytes())
                ws.recv()
            pipe.reset()  # the measured frames start a new sequence
            for i, rgb in enumerate(frames):
                t0 = time.perf_counter()
                direct = pipe.predict(rgb, frame_index=i, timestamp=i / 30)
                a_ms = (time.perf_counter() - t0) * 1e3
                t0 = time.perf_counter()
                _, buf = cv2.imencode(".jpg", rgb[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 80])
                t1 = time.perf_counter()
                ws.send(buf.tobytes())
                text = ws.recv()
                t2 = time.perf_counter()
                msg = json.loads(text)
                t3 = time.perf_counter()
                srv = msg["server"]
                rtt = (t2 - t1) * 1e3
                server_ms = (
                    srv["queue_ms"] + srv["decode_ms"] + srv["predict_ms"] + srv["encode_ms"]
                )
                rows.append({
                    "direct_ms": a_ms, "web_ms": (t3 - t0) * 1e3,
                    "server_predict_ms": srv["predict_ms"],
                    "client_encode_ms": (t1 - t0) * 1e3, "server_decode_ms": srv["decode_ms"],
                    "server_queue_ms": srv["queue_ms"], "server_record_ms": srv["encode_ms"],
                    "network_json_ms": rtt - server_ms + (t3 - t2) * 1e3,
                    "persons": len(direct), "jpeg_kb": len(buf) / 1e3, "json_kb": len(text) / 1e3,
                })  # fmt: skip
    finally:
        proc.terminate()
        proc.wait(20)
    costs = codec_costs(frames[-1], direct)
    med = {k: statistics.median(r[k] for r in rows) for k in rows[0]}
    added = statistics.median(r["web_ms"] - r["direct_ms"] for r in rows)
    overhead = statistics.median(r["web_ms"] - r["server_predict_ms"] for r in rows)
    print(f"machine: {machine_info().get('cpu')}, load: {load_average()}")
    print(f"{len(rows)} frames of {frames[0].shape[1]}x{frames[0].shape[0]}, interleaved")
    for k, v in med.items():
        print(f"  median {k:<20} {v:8.2f}")
    print(f"  median web - direct (same frame)   {added:8.2f} ms")
    print(f"  median web - server predict        {overhead:8.2f} ms  (the web path itself)")
    print("alone (p50 / min ms):")
    for k, v in costs.items():
        print(f"  {k:<24} {v['p50']:8.2f} {v['min']:8.2f}")
    if args.out:
        Path(args.out).write_text(json.dumps({"rows": rows, "median": med, "added_ms": added,
                                              "web_overhead_ms": overhead, "alone": costs},
                                             indent=1))  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
