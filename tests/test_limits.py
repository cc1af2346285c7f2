"""Resource limits before the work (issue 21, class 4).

- Image uploads, over ``/api/predict`` and the WebSocket: the size is read from the header
  and an image over the pixel limit is refused before it is decoded (one clear error, never
  HTTP 500 or OpenCV's assertion text); the header reader is checked against files encoded
  by OpenCV in each format.
- An aborted upload, against a real uvicorn server: at most one log line, no traceback.
- ``predict`` with 400 boxes runs the HMR model in chunks of at most ``MAX_BATCH``.
- Absurd timestamps for the BVH/glTF writers are normalised, with a warning that counts.
"""

from __future__ import annotations

import logging
import socket
import struct
import threading
import time
import zlib
from pathlib import Path

import cv2
import numpy as np
import pygltflib
import pytest
from animation_synth import frames_from, walker
from app_helpers import blob_image, jpeg, make_client, save_oracle

from instanthmr.animation import rig
from instanthmr.animation.bvh import read_bvh
from instanthmr.animation.exporter import BvhExporter, GlbExporter
from instanthmr.hmr import model as hmr_model
from instanthmr.pipeline import PosePipeline
from instanthmr.webapp import limits, uploads
from instanthmr.webapp.limits import image_dimensions


@pytest.fixture(scope="module")
def oracle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_oracle(tmp_path_factory.mktemp("limits"))


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_declaring(width: int, height: int) -> bytes:
    """A small PNG whose header declares ``width`` x ``height`` RGB pixels: a few rows of
    real compressed data (a decoder allocates the whole image before it finds the rest
    missing), the size of a decompression bomb's header."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    rows = zlib.compress(b"\x00" * (1 + 3 * width) * 4)
    return (limits.PNG_MAGIC + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", rows)
            + _chunk(b"IEND", b""))  # fmt: skip


# ----------------------------------------------------------------------------- the header
@pytest.mark.parametrize(
    ("ext", "params", "kind"),
    [
        (".png", [], "PNG"),
        (".jpg", [], "JPEG"),
        (".jpg", [cv2.IMWRITE_JPEG_PROGRESSIVE, 1], "JPEG"),
        (".webp", [cv2.IMWRITE_WEBP_QUALITY, 80], "WebP"),
        (".webp", [cv2.IMWRITE_WEBP_QUALITY, 101], "WebP"),  # lossless (VP8L)
        (".bmp", [], "BMP"),
        (".tiff", [], "TIFF"),
        (".ppm", [], "PNM"),
        (".pgm", [], "PNM"),
    ],
)
def test_header_gives_the_size_opencv_decodes(ext, params, kind) -> None:
    image = np.random.default_rng(0).integers(0, 255, (123, 321, 3), dtype=np.uint8)
    if ext == ".pgm":
        image = image[..., 0]
    ok, buf = cv2.imencode(ext, image, params)
    assert ok
    data = buf.tobytes()
    assert image_dimensions(data) == (kind, (321, 123))
    decoded = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    assert decoded.shape[:2] == (123, 321)


def test_header_of_a_bomb_and_of_non_images() -> None:
    assert image_dimensions(png_declaring(20000, 20000)) == ("PNG", (20000, 20000))
    assert image_dimensions(b"\x89PNG\r\n\x1a\n\x00\x00") == ("PNG", None)  # damaged
    assert image_dimensions(b"\x00\x00\x00\x18ftypmp42") is None  # an MP4: not an image
    assert image_dimensions(b"RIFF\x00\x00\x00\x00AVI LIST") is None  # an AVI
    assert image_dimensions(b"hello") is None


def _count_decodes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Spy on cv2.imdecode (the real function still runs): one entry per call."""
    calls: list[int] = []
    real = cv2.imdecode

    def spy(buf, flags):
        calls.append(len(buf))
        return real(buf, flags)

    monkeypatch.setattr(uploads.cv2, "imdecode", spy)
    return calls


@pytest.mark.parametrize("side", [20000, 33000])
def test_predict_refuses_a_huge_image_before_decoding(oracle, monkeypatch, side) -> None:
    calls = _count_decodes(monkeypatch)
    client = make_client(oracle)
    client.__enter__()
    try:
        bomb = png_declaring(side, side)
        assert len(bomb) < 2_000_000
        r = client.post("/api/predict", content=bomb)
        assert r.status_code == 400, r.text  # was 500 (33000) or a full decode (20000)
        detail = r.json()["detail"]
        assert f"{side}x{side}" in detail and "over the limit" in detail
        assert "cv::" not in detail and "OpenCV" not in detail
        assert calls == []  # refused from the header: nothing decoded
        r = client.post("/api/predict", content=jpeg(blob_image([(160, 120)])))
        assert r.status_code == 200 and len(calls) == 1  # an ordinary image is decoded
    finally:
        client.__exit__(None, None, None)


def test_websocket_refuses_a_huge_frame_before_decoding(oracle, monkeypatch) -> None:
    calls = _count_decodes(monkeypatch)
    with make_client(oracle) as client, client.websocket_connect("/ws") as ws:
        assert ws.receive_json()["type"] == "hello"
        ws.send_bytes(png_declaring(33000, 33000))
        msg = ws.receive_json()
        assert msg["type"] == "error" and "33000x33000" in msg["error"]
        assert "cv::" not in msg["error"] and calls == []
        ws.send_bytes(jpeg(blob_image([(160, 120)])))
        assert ws.receive_json()["type"] == "frame"


def test_a_damaged_image_is_one_clear_error(oracle) -> None:
    data = jpeg(blob_image([(160, 120)]))
    with make_client(oracle) as client:
        r = client.post("/api/predict", content=data[: len(data) // 3] + b"\x00" * 10)
    assert r.status_code == 400 and "cv::" not in r.text


# ----------------------------------------------------------------------------- aborted uploads
class _Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        text = record.getMessage()
        if record.exc_info:
            text += "\n" + "".join(logging.Formatter().formatException(record.exc_info))
        self.lines += text.splitlines()


def test_aborted_uploads_log_at_most_one_line_each(oracle) -> None:
    import uvicorn

    from instanthmr.webapp import AppConfig, create_app

    pipe = PosePipeline(oracle, device="cpu", detector=None)
    app = create_app(pipe, AppConfig())
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None,
                                           log_level="info", lifespan="on"))  # fmt: skip
    capture = _Capture()
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(capture)
    root.setLevel(logging.INFO)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not server.started:
            assert time.monotonic() < deadline and thread.is_alive(), "server did not start"
            time.sleep(0.05)
        capture.lines.clear()
        aborted = 5
        for _ in range(aborted):
            with socket.create_connection(("127.0.0.1", port)) as c:
                c.sendall(b"POST /api/predict HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                          b"Content-Type: application/octet-stream\r\n"
                          b"Content-Length: 10000000\r\n\r\n" + b"\x00" * 100_000)  # fmt: skip
                time.sleep(0.2)  # the server is reading the body when the client goes
        time.sleep(1.0)
    finally:
        server.should_exit = True
        thread.join(30)
        root.removeHandler(capture)
        root.setLevel(old_level)
    text = "\n".join(capture.lines)
    assert "Traceback" not in text and "Exception in ASGI application" not in text, text
    gone = [line for line in capture.lines if "went away" in line]
    assert len(gone) == aborted, text
    assert len([line for line in capture.lines if "/api/predict" in line]) <= 2 * aborted, text


# ----------------------------------------------------------------------------- 400 boxes
def test_predict_with_400_boxes_runs_bounded_chunks(oracle, monkeypatch) -> None:
    pipe = PosePipeline(oracle, device="cpu", detector=None)
    sizes: list[int] = []
    real = pipe.hmr.model_session.run

    def spy(feeds, names=None):
        sizes.append(len(feeds["image"]))
        return real(feeds, names)

    monkeypatch.setattr(pipe.hmr.model_session, "run", spy)
    image = np.full((480, 640, 3), 120, np.uint8)
    rng = np.random.default_rng(0)
    x, y = rng.uniform(0, 560, 400), rng.uniform(0, 380, 400)
    boxes = np.stack([x, y, x + 80, y + 100], axis=1)
    result = pipe.predict(image, boxes=boxes)
    assert len(result) == 400
    assert sizes and max(sizes) <= hmr_model.MAX_BATCH and sum(sizes) == 400  # was one call
    one_by_one = [pipe.hmr.predict(image, boxes[i : i + 1])[0] for i in (0, 17, 399)]
    for i, p in zip((0, 17, 399), one_by_one, strict=True):
        np.testing.assert_allclose(result.persons[i].joints_2d, p.joints_2d, atol=1e-3)


# ----------------------------------------------------------------------------- timestamps
def _cam_joints(frames: int) -> np.ndarray:
    from animation_synth import mhr70_from_points

    m = walker(frames)
    return rig.camera_to_yup(mhr70_from_points(m.positions(), m.global_rotations()))


def _write_both(tmp_path: Path, frames: list) -> tuple[Path, Path]:
    paths = []
    for cls, name in ((BvhExporter, "t.bvh"), (GlbExporter, "t.glb")):
        with cls(tmp_path / name) as exporter:
            for f in frames:
                exporter.write(f)
        assert exporter.written, name
        paths.append(exporter.written[0])
    return paths[0], paths[1]


def _glb_times(path: Path) -> np.ndarray:
    doc = pygltflib.GLTF2().load(str(path))
    blob = doc.binary_blob()
    out = []
    for sampler in doc.animations[0].samplers:
        acc = doc.accessors[sampler.input]
        view = doc.bufferViews[acc.bufferView]
        start = (view.byteOffset or 0) + (acc.byteOffset or 0)
        out.append(np.frombuffer(blob, np.float32, acc.count, start))
    return np.concatenate(out)


@pytest.mark.parametrize(
    ("case", "retimed", "fps"),
    [("jump-1e9", 2, 25), ("all-equal", 29, 30), ("decreasing", 29, 30), ("nan", 1, 25)],
)  # no increasing steps at all: the exporter's default 30 fps gives the frame time
def test_absurd_timestamps_are_normalised_with_a_count(tmp_path, caplog, case, retimed, fps):
    n = 30
    frames = frames_from({4: _cam_joints(n)}, n, fps=25.0)
    stamps = {
        "jump-1e9": [i / 25 if i != 12 else 1e9 for i in range(n)],
        "all-equal": [3.0] * n,
        "decreasing": [10.0 - i / 25 for i in range(n)],
        "nan": [i / 25 if i != 7 else float("nan") for i in range(n)],
    }[case]
    for f, t in zip(frames, stamps, strict=True):
        f.timestamp = t
    with caplog.at_level(logging.WARNING):
        bvh_path, glb_path = _write_both(tmp_path, frames)  # 1e9: was 28 GiB at close
    warned = [r.getMessage() for r in caplog.records if "retimed" in r.getMessage()]
    assert warned and f"{retimed} of {n} frame times were retimed" in warned[0], warned
    bvh = read_bvh(bvh_path)
    assert len(bvh.values) == n  # all-equal: was 1 frame
    assert bvh.frame_time == pytest.approx(1 / fps)
    times = _glb_times(glb_path)
    assert times.min() >= 0 and times.max() <= n / fps + 1e-3  # decreasing: was negative
