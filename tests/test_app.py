"""The browser app's server: routes, uploads, WebSocket sessions, backpressure, the CLI.

Real components throughout: FastAPI's TestClient, onnxruntime running the analytic oracle
HMR model (its joints sit on the bright blob in each crop, see tests/onnx_builders.py) and
:class:`BlobDetector`, a real if simple OpenCV detector, so persons appear where the test
draws them. The pipeline given to ``create_app`` is the one ``instanthmr serve`` would
build, only with these two models.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest
from app_helpers import SlowBlobDetector, blob_image, jpeg, make_client, save_oracle
from onnx_builders import build_oracle

from instanthmr.results import FrameResult, PersonResult
from instanthmr.sinks.exporters import read_results
from instanthmr.sinks.formats_common import PERSON_ARRAYS, PERSON_SCALARS
from instanthmr.webapp import InferenceWorker, QueueFullError
from instanthmr.webapp.records import LIVE_ARRAYS, frame_record


@pytest.fixture(scope="module")
def oracle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_oracle(tmp_path_factory.mktemp("app"))


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
    from instanthmr.sources.files import sample_video_path

    with make_client(oracle, max_video_frames=4) as client:
        r = client.post("/api/predict", content=sample_video_path().read_bytes())
    assert r.status_code == 200 and len(r.json()["frames"]) == 4


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


@dataclass(frozen=True)
class _WorldPerson(PersonResult):
    """A PersonResult with the world fields another part of the project adds."""

    joints_3d_world: np.ndarray | None = None
    root_world: np.ndarray | None = None


def test_records_carry_world_fields_and_the_camera_pose() -> None:
    rng = np.random.default_rng(3)
    local = rng.normal(scale=0.3, size=(70, 3))
    cam_t = np.array([0.2, -0.1, 4.0])
    angle = 0.3  # camera pitched down: world Y up = camera -Y, rotated about X
    rot = np.array(
        [[1, 0, 0], [0, -np.cos(angle), np.sin(angle)], [0, -np.sin(angle), -np.cos(angle)]]
    )
    position = np.array([0.0, 1.6, 0.0])
    world = (local + cam_t) @ rot.T + position
    base = dict(
        bbox=[0, 0, 10, 10], score=0.9, joints_2d=np.zeros((70, 2)), joints_3d_local=local,
        cam_trans=cam_t, mhr_params=np.zeros(204), shape_params=np.zeros(45),
        focal_length=500.0, principal_point=[5, 5], image_size=(10, 10), track_id=4,
    )  # fmt: skip
    p = _WorldPerson(**base, joints_3d_world=world, root_world=world[9])
    frame = FrameResult(persons=[p], image_size=(10, 10))
    rec = frame_record(frame, LIVE_ARRAYS, decimals=6)
    person = rec["persons"][0]
    assert np.allclose(person["joints_3d_world"], world, atol=1e-5)
    assert np.allclose(person["root_world"], world[9], atol=1e-5)
    assert np.allclose(rec["camera_world"]["rotation"], rot, atol=1e-4)
    assert np.allclose(rec["camera_world"]["position"], position, atol=1e-4)
    plain = frame_record(FrameResult(persons=[PersonResult(**base)], image_size=(10, 10)))
    assert "joints_3d_world" not in plain["persons"][0] and "camera_world" not in plain
    assert set(plain["persons"][0]) == {*PERSON_SCALARS, *PERSON_ARRAYS, "image_size"}


def test_serve_command_line(capsys: pytest.CaptureFixture[str]) -> None:
    from instanthmr.cli import main as cli_main
    from instanthmr.commands.serve import build_parser, exposure_warning, is_loopback

    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("example.org")
    assert exposure_warning("127.0.0.1", None) is None
    warn = exposure_warning("0.0.0.0", None)
    assert warn is not None and "--token" in warn and "0.0.0.0" in warn
    assert "--token" not in exposure_warning("0.0.0.0", "abc")
    args = build_parser().parse_args(["--model", "m.onnx", "--detector-stride", "2"])
    assert args.host == "127.0.0.1" and args.port == 8000 and args.detector_stride == 2
    assert args.preview is True and args.keep_results_min == 30 and args.max_recording_mb == 100
    args = build_parser().parse_args(["--no-preview", "--max-recording-mb", "5",
                                      "--keep-results-min", "2", "--max-results-mb", "50"])
    assert not args.preview and args.max_recording_mb == 5 and args.keep_results_min == 2
    for argv in (["serve", "--help"], ["demo", "--serve-app", "--help"]):
        with pytest.raises(SystemExit) as done:
            cli_main(argv)
        assert done.value.code == 0
        out = capsys.readouterr().out
        assert "--max-upload-mb" in out and "--detector-model" in out and "--video" not in out
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--max-upload-mb", "0"])


@pytest.mark.slow
def test_instanthmr_serve_process(hmr_card_onnx: Path, detector_onnx: Path) -> None:
    """The real command, on random-init exports of both models, as a user would start it."""
    import subprocess
    import sys
    import urllib.error
    import urllib.request

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [sys.executable, "-m", "instanthmr.cli", "serve", "--model", str(hmr_card_onnx),
           "--detector-model", str(detector_onnx), "--detector-backend", "onnx",
           "--device", "cpu", "--port", str(port)]  # fmt: skip
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, proc.stderr.read()
            try:
                with urllib.request.urlopen(base + "/health", timeout=5) as r:
                    health = json.load(r)
                break
            except OSError:
                assert time.monotonic() < deadline, "instanthmr serve did not answer"
                time.sleep(0.5)
        assert health["random_init"] is True and health["detector"]["random_init"] is True
        assert health["model"] == hmr_card_onnx.name
        with urllib.request.urlopen(base + "/", timeout=5) as r:
            assert b"InstantHMR" in r.read()
        req = urllib.request.Request(base + "/api/predict", data=jpeg(blob_image([(90, 90)])))
        with urllib.request.urlopen(req, timeout=60) as r:
            assert json.load(r)["image_size"] == [320, 240]
        rebound = urllib.request.Request(base + "/health", headers={"Host": "evil.example"})
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(rebound, timeout=5)
        assert err.value.code == 400  # loopback binding: foreign host names are refused
    finally:
        proc.terminate()
        proc.wait(20)
    err = proc.stderr.read()
    assert "open http://127.0.0.1:" in err
    assert proc.returncode == 143 and "Traceback" not in err, err  # SIGTERM: a graceful stop


def test_every_static_file_ships_in_the_wheel() -> None:
    """pyproject's package-data globs cover every file of the page (no build step)."""
    import fnmatch

    tomllib = pytest.importorskip("tomllib")  # Python >= 3.11

    root = Path(__file__).resolve().parents[1]
    conf = tomllib.loads((root / "pyproject.toml").read_text())
    globs = conf["tool"]["setuptools"]["package-data"]["instanthmr"]
    static = root / "instanthmr" / "webapp" / "static"
    files = [
        p.relative_to(root / "instanthmr").as_posix() for p in static.rglob("*") if p.is_file()
    ]
    assert len(files) > 10
    missing = [f for f in files if not any(fnmatch.fnmatchcase(f, g) for g in globs)]
    assert not missing, f"add these to [tool.setuptools.package-data]: {missing}"
