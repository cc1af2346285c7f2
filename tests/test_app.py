"""The browser app's server: routes, uploads, WebSocket sessions, backpressure, security.

Real components throughout: FastAPI's TestClient, onnxruntime running the analytic oracle
HMR model (its joints sit on the bright blob in each crop, see tests/onnx_builders.py) and
:class:`BlobDetector`, a real if simple OpenCV detector, so persons appear where the test
draws them. The pipeline given to ``create_app`` is the one ``instanthmr serve`` would
build, only with these two models.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest
from fastapi.testclient import TestClient
from onnx_builders import build_oracle
from starlette.websockets import WebSocketDisconnect
from test_pipeline import BlobDetector

from instanthmr.app import AppConfig, InferenceWorker, QueueFullError, create_app
from instanthmr.pipeline import PosePipeline
from instanthmr.sinks.exporters import read_results
from instanthmr.sinks.formats_common import PERSON_ARRAYS, PERSON_SCALARS


class SlowBlobDetector(BlobDetector):
    """BlobDetector that takes ``delay`` seconds per call (a slow model, for backpressure)."""

    def __init__(self, delay: float) -> None:
        super().__init__()
        self.delay = delay

    def detect(self, image_rgb: np.ndarray):
        time.sleep(self.delay)
        return super().detect(image_rgb)


def blob_image(centres: list[tuple[int, int]], size: tuple[int, int] = (320, 240)) -> np.ndarray:
    """RGB image, black with a bright red disc (radius 10) at each centre."""
    img = np.zeros((size[1], size[0], 3), np.uint8)
    for c in centres:
        cv2.circle(img, c, 10, (255, 0, 0), -1)
    return cv2.GaussianBlur(img, (9, 9), 3)


def jpeg(image_rgb: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(image_rgb, cv2.COLOR_RGB2BGR))
    assert ok
    return buf.tobytes()


@pytest.fixture(scope="module")
def oracle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("app") / "oracle.onnx"
    onnx.save(build_oracle(), path)
    return path


def make_client(oracle: Path, detector=None, **config) -> TestClient:
    pipe = PosePipeline(oracle, device="cpu", detector=detector or BlobDetector())
    return TestClient(create_app(pipe, AppConfig(**config)))


def test_health_skeleton_and_page(oracle: Path, tmp_path: Path) -> None:
    with make_client(oracle) as client:
        h = client.get("/health").json()
        assert h["provider"] == "CPUExecutionProvider" and h["model"] == "oracle.onnx"
        assert h["random_init"] is False and h["version"] and h["token_required"] is False
        assert h["detector"]["name"] == "BlobDetector"
        sk = client.get("/api/skeleton").json()
        assert len(sk["joint_names"]) == 70 and len(sk["edges"]) == len(sk["edge_colors"])
        page = client.get("/")
        assert page.status_code == 200 and "js/main.js" in page.text
        assert "default-src 'self'" in page.headers["content-security-policy"]
        js = client.get("/static/vendor/three/three.module.min.js")
        assert js.status_code == 200 and "javascript" in js.headers["content-type"]
    marked = build_oracle()  # an export that says it is random-init
    onnx.helper.set_model_props(marked, {"instanthmr_random_init": "true"})
    onnx.save(marked, tmp_path / "random.onnx")
    with make_client(tmp_path / "random.onnx") as client:
        assert client.get("/health").json()["random_init"] is True


def test_predict_image_multipart_and_raw(oracle: Path) -> None:
    centres = [(80, 100), (240, 120)]
    data = jpeg(blob_image(centres))
    with make_client(oracle) as client:
        r = client.post("/api/predict", files={"file": ("x.bin", data, "text/plain")})
        assert r.status_code == 200, r.text
        rec = r.json()
        assert rec["type"] == "frame" and rec["num_persons"] == 2
        assert rec["image_size"] == [320, 240]
        assert set(rec["timings"]) >= {"detect", "hmr", "total"}
        p = sorted(rec["persons"], key=lambda q: q["bbox"][0])
        assert set(PERSON_SCALARS) | set(PERSON_ARRAYS) <= set(p[0])
        for person, (x, y) in zip(p, centres, strict=True):
            assert np.allclose(np.mean(person["joints_2d"], axis=0), [x, y], atol=2.0)
            assert np.asarray(person["joints_3d_cam"]).shape == (70, 3)
        raw = client.post("/api/predict", content=data, headers={"content-type": "image/jpeg"})
        assert raw.status_code == 200 and raw.json()["num_persons"] == 2


def test_predict_real_photo(oracle: Path, shared_data: Path) -> None:
    photo = shared_data / "messi5.jpg"
    h, w = cv2.imread(str(photo)).shape[:2]
    with make_client(oracle) as client:
        r = client.post("/api/predict", files={"file": ("messi5.jpg", photo.read_bytes())})
    assert r.status_code == 200, r.text
    rec = r.json()
    assert rec["image_size"] == [w, h] and rec["num_persons"] == len(rec["persons"]) > 0


def _write_clip(path: Path, n: int) -> list[int]:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10.0, (320, 240))
    xs = [60 + 8 * i for i in range(n)]
    for x in xs:
        writer.write(cv2.cvtColor(blob_image([(x, 120)]), cv2.COLOR_RGB2BGR))
    writer.release()
    return xs


def test_predict_video_cap_and_exports(oracle: Path, tmp_path: Path) -> None:
    clip = tmp_path / "walk.mp4"
    xs = _write_clip(clip, 8)
    data = clip.read_bytes()
    with make_client(oracle, max_video_frames=5) as client:
        r = client.post("/api/predict", files={"file": ("walk.mp4", data, "video/mp4")})
        assert r.status_code == 200, r.text
        out = r.json()
        assert out["type"] == "video" and out["truncated"] is True and out["frames_in_file"] == 8
        frames = out["frames"]
        assert [f["frame_index"] for f in frames] == [0, 1, 2, 3, 4]
        assert [f["persons"][0]["track_id"] for f in frames] == [1] * 5
        for f, x in zip(frames, xs, strict=False):  # smoothed: lags a moving blob a little
            assert abs(np.mean(f["persons"][0]["joints_2d"], axis=0)[0] - x) < 6.0
        ts = [f["timestamp"] for f in frames]
        assert ts == sorted(ts) and ts[1] == pytest.approx(0.1, abs=1e-3)
        for kind in ("jsonl", "npz"):
            r = client.post(f"/api/predict?export={kind}", content=data)
            assert r.status_code == 200 and "attachment" in r.headers["content-disposition"]
            (tmp_path / f"out.{kind}").write_bytes(r.content)
            back = read_results(tmp_path / f"out.{kind}")
            assert len(back) == 5 and back[0].persons[0].track_id == 1
            np.testing.assert_allclose(
                back[2].persons[0].joints_2d, frames[2]["persons"][0]["joints_2d"], atol=1e-4
            )
        assert client.post("/api/predict?export=exe", content=data).status_code == 400


def test_sample_clip_runs(oracle: Path) -> None:
    from instanthmr.sources import sample_video_path

    with make_client(oracle, max_video_frames=4) as client:
        r = client.post("/api/predict", content=sample_video_path().read_bytes())
    assert r.status_code == 200 and len(r.json()["frames"]) == 4


def test_size_limit_and_bad_uploads(oracle: Path) -> None:
    with make_client(oracle, max_upload_bytes=2000) as client:
        r = client.post("/api/predict", content=b"x" * 5000)
        assert r.status_code == 413 and "--max-upload-mb" in r.json()["detail"]

        def chunks():  # no Content-Length: the limit is enforced while reading
            for _ in range(10):
                yield b"y" * 500

        r = client.post("/api/predict", content=chunks())
        assert r.status_code == 413
        for bad in (
            b"\x00\x01garbage" * 10,
            b"\xff\xd8\xff\xe0" + b"\x00" * 200,  # a JPEG header, then nothing
            b"#EXTM3U\n#EXTINF:1,\nfile:///etc/passwd\n",  # an HLS playlist: FFmpeg would open
            b"\x00\x00\x00\x18ftypisom" + b"\x00" * 300,  # an MP4 signature, no video in it
        ):
            r = client.post("/api/predict", content=bad)
            assert r.status_code == 400, bad
            detail = r.json()["detail"]
            assert "video" in detail or "image" in detail
        r = client.post("/api/predict", files={"notes": (None, "hello")})
        assert r.status_code == 400 and "file part" in r.json()["detail"]


def test_token_required_when_set(oracle: Path) -> None:
    with make_client(oracle, token="s3cret") as client:
        assert client.get("/").status_code == 200  # the page itself holds no data
        assert client.get("/health").status_code == 401
        assert client.get("/health?token=nope").status_code == 401
        assert client.get("/health?token=s3cret").json()["token_required"] is True
        assert client.get("/health", headers={"Authorization": "Bearer s3cret"}).status_code == 200
        data = jpeg(blob_image([(100, 100)]))
        assert client.post("/api/predict", content=data).status_code == 401
        assert client.post("/api/predict?token=s3cret", content=data).status_code == 200
        with pytest.raises(WebSocketDisconnect) as err, client.websocket_connect("/ws") as ws:
            ws.receive_json()
        assert err.value.code == 1008
        with client.websocket_connect("/ws?token=s3cret") as ws:
            assert ws.receive_json()["type"] == "hello"


def test_no_file_outside_the_static_folder(oracle: Path) -> None:
    with make_client(oracle) as client:
        for path in (
            "/static/../pipeline.py",
            "/static/%2e%2e/%2e%2e/pipeline.py",
            "/static/..%2f..%2fpipeline.py",
            "/static/%2e%2e%2f%2e%2e%2f%2e%2e%2fpipeline.py",
            "/static//etc/passwd",
            "/static/js/../../server.py",
        ):
            r = client.get(path)
            assert r.status_code in (400, 404), path
            assert "PosePipeline" not in r.text and "root:" not in r.text
        assert client.get("/static/js/../js/main.js").status_code == 200  # inside: fine


def test_websocket_round_trip_and_bad_frame(oracle: Path) -> None:
    with make_client(oracle) as client, client.websocket_connect("/ws") as ws:
        hello = ws.receive_json()
        assert hello["type"] == "hello" and hello["model"] == "oracle.onnx"
        ws.send_bytes(jpeg(blob_image([(120, 90)])))
        msg = ws.receive_json()
        assert msg["type"] == "frame" and msg["seq"] == 1 and msg["dropped"] == 0
        (p,) = msg["persons"]
        assert p["track_id"] == 1 and np.allclose(np.mean(p["joints_2d"], 0), [120, 90], atol=2)
        assert {"queue_ms", "decode_ms", "predict_ms", "encode_ms"} <= set(msg["server"])
        assert "mhr_params" not in p  # the live stream sends what the page draws
        ws.send_bytes(b"not a jpeg")
        err = ws.receive_json()
        assert err["type"] == "error" and "JPEG" in err["error"] and err["seq"] == 2
        ws.send_text("hello?")
        assert "binary" in ws.receive_json()["error"]
        ws.send_bytes(jpeg(blob_image([(124, 90)])))
        msg = ws.receive_json()
        assert msg["seq"] == 3 and msg["persons"][0]["track_id"] == 1


def test_backpressure_keeps_the_newest_frame(oracle: Path) -> None:
    frames = [jpeg(blob_image([(100 + 4 * i, 100)])) for i in range(6)]
    client = make_client(oracle, SlowBlobDetector(0.3))
    with client, client.websocket_connect("/ws") as ws:
        ws.receive_json()
        for f in frames:
            ws.send_bytes(f)
        answers = []
        while not answers or answers[-1]["seq"] != 6:
            answers.append(ws.receive_json())
    assert all(a["type"] == "frame" for a in answers)
    assert len(answers) < 6 and answers[-1]["dropped"] == 6 - len(answers)
    assert answers[-1]["received"] == 6
    assert abs(np.mean(answers[-1]["persons"][0]["joints_2d"], 0)[0] - 120) < 2  # the newest


def test_sessions_have_independent_tracks(oracle: Path) -> None:
    two = jpeg(blob_image([(60, 60), (250, 180)]))
    one = jpeg(blob_image([(160, 120)]))
    with (
        make_client(oracle) as client,
        client.websocket_connect("/ws") as a,
        client.websocket_connect("/ws") as b,
    ):
        a.receive_json()
        b.receive_json()
        for _ in range(2):
            a.send_bytes(two)
            assert sorted(p["track_id"] for p in a.receive_json()["persons"]) == [1, 2]
            b.send_bytes(one)
            assert [p["track_id"] for p in b.receive_json()["persons"]] == [1]


def test_full_queue_answers_503_and_ws_error(oracle: Path) -> None:
    started, release = threading.Event(), threading.Event()

    def blocker() -> None:
        started.set()
        assert release.wait(20)

    with make_client(oracle, max_queue=1, retry_after_s=2) as client:
        worker = client.app.state.worker
        worker.submit(blocker)
        assert started.wait(10)
        worker.submit(lambda: None)  # fills the one queue slot
        try:
            t0 = time.monotonic()
            r = client.post("/api/predict", content=jpeg(blob_image([(50, 50)])))
            assert r.status_code == 503 and r.headers["retry-after"] == "2"
            assert "queue is full" in r.json()["detail"] and time.monotonic() - t0 < 5
            with client.websocket_connect("/ws") as ws:
                ws.receive_json()
                ws.send_bytes(jpeg(blob_image([(50, 50)])))
                msg = ws.receive_json()
                assert msg["type"] == "error" and msg["busy"] and msg["retry_after"] == 2
        finally:
            release.set()
        r = client.post("/api/predict", content=jpeg(blob_image([(50, 50)])))
        assert r.status_code == 200


def test_worker_runs_in_order_and_refuses_when_full() -> None:
    worker = InferenceWorker(max_queue=2)
    gate = threading.Event()
    first = worker.submit(gate.wait)
    time.sleep(0.05)
    a, b = worker.submit(lambda: "a"), worker.submit(lambda: 1 / 0)
    with pytest.raises(QueueFullError, match="--max-queue"):
        worker.submit(lambda: "c")
    gate.set()
    assert first.result(5) is True and a.result(5) == "a"
    with pytest.raises(ZeroDivisionError):
        b.result(5)
    worker.stop()
    assert worker.completed == 3 and worker.rejected == 1
    with pytest.raises(RuntimeError, match="stopped"):
        worker.submit(lambda: None)
    with pytest.raises(ValueError, match="max_queue"):
        InferenceWorker(0)
