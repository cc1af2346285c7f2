"""Kept results: background uploads, previews, downloads from kept frames, cancel, recordings.

Real components: FastAPI's TestClient around ``create_app`` with the oracle HMR model and a
blob detector that counts its calls (tests/app_helpers.py), PyAV encoding and decoding the
previews, the project's exporters for the downloads.
"""

from __future__ import annotations

import io
import json
import socket
import time
import urllib.request
import zipfile
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from app_helpers import SlowBlobDetector, blob_image, jpeg, make_client, save_oracle
from browser_helpers import serve
from test_pipeline import BlobDetector

from instanthmr.pipeline import PosePipeline
from instanthmr.results import FrameResult, PersonResult
from instanthmr.sinks.exporters import read_results
from instanthmr.webapp import AppConfig, create_app
from instanthmr.webapp.downloads import export_download
from instanthmr.webapp.preview import PreviewCodec, VideoPreview, preview_codec, preview_size
from instanthmr.webapp.store import ResultStore, frame_nbytes, safe_stem


@pytest.fixture(scope="module")
def oracle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_oracle(tmp_path_factory.mktemp("app-results"))


def clip(path: Path, n: int, size: tuple[int, int] = (320, 240), blobs: int = 1) -> Path:
    """An MJPEG AVI (as cameras write) with ``blobs`` discs moving right."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, size)
    for i in range(n):
        centres = [(60 + 8 * i, 60 + 100 * k) for k in range(blobs)]
        writer.write(cv2.cvtColor(blob_image(centres, size), cv2.COLOR_RGB2BGR))
    writer.release()
    return path


def wait_done(client, key: str, timeout: float = 120.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        status = client.get(f"/api/results/{key}").json()
        if status["state"] != "processing":
            return status
        assert time.monotonic() < deadline, status
        time.sleep(0.05)


def test_upload_is_kept_previewed_and_downloaded_without_rerunning(
    oracle: Path, tmp_path: Path
) -> None:
    data = clip(tmp_path / "in.avi", 8, blobs=2).read_bytes()
    detector = BlobDetector()
    with make_client(oracle, detector, max_video_frames=6) as client:
        r = client.post("/api/uploads?name=C:%5Cclips%5CMy%20Walk%20(1).avi", content=data)
        assert r.status_code == 202 and r.json()["state"] == "processing"
        key = r.json()["key"]
        status = wait_done(client, key)
        assert status["state"] == "done" and status["kind"] == "video", status
        assert status["name"] == "My_Walk_1" and status["frames_done"] == 6
        assert status["frames_total"] == 6 and status["truncated"] is True
        assert status["preview"] == "video/mp4" and status["preview_fps"] == 10.0
        assert detector.calls == 6

        frames = client.get(f"/api/results/{key}/frames?layout=live").json()
        assert frames["type"] == "video" and len(frames["frames"]) == 6
        assert "mhr_params" not in frames["frames"][0]["persons"][0]  # the page's layout
        full = client.get(f"/api/results/{key}/frames").json()["frames"]
        assert len(full[0]["persons"][0]["mhr_params"]) == 204

        preview = client.get(f"/api/results/{key}/preview")
        assert preview.status_code == 200 and preview.headers["content-type"] == "video/mp4"
        part = client.get(f"/api/results/{key}/preview", headers={"Range": "bytes=0-99"})
        assert part.status_code == 206 and len(part.content) == 100  # Safari seeks by range
        with av.open(io.BytesIO(preview.content)) as container:
            stream = container.streams.video[0]
            assert stream.codec_context.name == "h264"
            assert (stream.width, stream.height) == (320, 240)
            decoded = [f.to_ndarray(format="rgb24") for f in container.decode(stream)]
        assert len(decoded) == 6  # exactly the processed frames, in order
        for i, image in enumerate(decoded):  # frame i shows the blob where frame i found it
            x = np.mean(full[i]["persons"][0]["joints_2d"], axis=0)[0]
            row = image[60, :, 0].astype(float)
            shown = np.average(np.arange(row.size), weights=row)
            assert abs(shown - (60 + 8 * i)) < 2 and abs(x - (60 + 8 * i)) < 8

        for fmt, name in (("jsonl", "My_Walk_1.jsonl"), ("npz", "My_Walk_1.npz"),
                          ("csv", "My_Walk_1.csv"), ("glb", "My_Walk_1.glb"),
                          ("bvh", "My_Walk_1.bvh.zip")):  # fmt: skip  (two tracks: two BVHs)
            t0 = time.monotonic()
            r = client.get(f"/api/results/{key}/export/{fmt}")
            assert r.status_code == 200, r.text
            assert r.headers["content-disposition"] == f'attachment; filename="{name}"'
            assert time.monotonic() - t0 < 30
            (tmp_path / name).write_bytes(r.content)
        assert detector.calls == 6  # no download ran the models
        back = read_results(tmp_path / "My_Walk_1.npz")
        assert len(back) == 6 and sorted(p.track_id for p in back[5].persons) == [1, 2]
        np.testing.assert_allclose(back[3].persons[0].joints_2d,
                                   full[3]["persons"][0]["joints_2d"], atol=1e-4)  # fmt: skip
        with zipfile.ZipFile(tmp_path / "My_Walk_1.bvh.zip") as zf:
            assert sorted(zf.namelist()) == ["My_Walk_1.track1.bvh", "My_Walk_1.track2.bvh"]
        assert client.get(f"/api/results/{key}/export/exe").status_code == 400

        directory = client.app.state.store.get(key).directory
        assert directory.is_dir() and (directory / "preview.mp4").is_file()
        assert client.delete(f"/api/results/{key}").status_code == 204
        assert not directory.exists()  # deleted with its preview
        gone = client.get(f"/api/results/{key}/export/jsonl")
        assert gone.status_code == 404 and "upload the file again" in gone.json()["detail"]
        assert client.delete(f"/api/results/{key}").status_code == 404


def test_image_upload_gets_a_jpeg_preview(oracle: Path) -> None:
    tiff = cv2.imencode(".tiff", cv2.cvtColor(blob_image([(100, 80)]), cv2.COLOR_RGB2BGR))[1]
    with make_client(oracle, preview_max_width=160) as client:
        r = client.post("/api/uploads", files={"file": ("scan.tiff", tiff.tobytes())})
        status = wait_done(client, r.json()["key"])
        assert status["kind"] == "image" and status["name"] == "scan"
        assert status["preview"] == "image/jpeg"  # browsers show no TIFF: the server's JPEG
        shown = client.get(f"/api/results/{status['key']}/preview")
        image = cv2.imdecode(np.frombuffer(shown.content, np.uint8), cv2.IMREAD_COLOR)
        assert image.shape == (120, 160, 3)  # scaled to preview_max_width
        rec = client.get(f"/api/results/{status['key']}/frames").json()
        assert rec["type"] == "image" and rec["frames"][0]["num_persons"] == 1
        bad = client.post("/api/uploads", content=b"not a file at all")
        status = wait_done(client, bad.json()["key"])
        assert status["state"] == "failed" and "not a decodable image or video" in status["error"]
        r = client.get(f"/api/results/{status['key']}/export/jsonl")
        assert r.status_code == 409 and "not a decodable" in r.json()["detail"]
    with make_client(oracle, max_upload_bytes=2000) as client:
        too_big = client.post("/api/uploads", content=b"x" * 5000)
        assert too_big.status_code == 413 and "--max-upload-mb" in too_big.json()["detail"]
        assert len(client.app.state.store) == 0


def test_cancel_stops_the_work_within_a_frame(oracle: Path, tmp_path: Path) -> None:
    data = clip(tmp_path / "long.avi", 30).read_bytes()
    detector = SlowBlobDetector(0.1)
    with make_client(oracle, detector) as client:
        key = client.post("/api/uploads", content=data).json()["key"]
        deadline = time.monotonic() + 60
        while client.get(f"/api/results/{key}").json()["frames_done"] < 2:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        assert client.delete(f"/api/results/{key}").status_code == 204
        jobs = client.app.state.jobs
        while jobs:
            assert time.monotonic() < deadline, "the cancelled job did not end"
            time.sleep(0.02)
        assert 2 <= detector.calls < 30  # the job ended: nothing more can run
        assert client.get(f"/api/results/{key}").status_code == 404
        assert len(client.app.state.store) == 0


def test_record_over_the_websocket(oracle: Path) -> None:
    per_frame = None
    with make_client(oracle, max_recording_bytes=12_000) as client:
        with client.websocket_connect("/ws") as ws:
            assert ws.receive_json()["max_recording_bytes"] == 12_000
            ws.send_text('{"type": "record", "action": "start"}')
            started = ws.receive_json()
            assert started["type"] == "recording" and started["state"] == "recording"
            key = started["key"]
            assert started["name"].startswith("webcam-") and started["limit_bytes"] == 12_000
            for i in range(2):
                ws.send_bytes(jpeg(blob_image([(100 + 5 * i, 100)])))
                msg = ws.receive_json()
                assert msg["recording"]["frames"] == i + 1
            per_frame = msg["recording"]["bytes"] / 2
            ws.send_text('{"type": "record", "action": "stop"}')
            stopped = ws.receive_json()
            assert stopped["state"] == "done" and stopped["frames"] == 2
            assert stopped["stop_reason"] == "stopped"
            ws.send_bytes(jpeg(blob_image([(110, 100)])))
            assert "recording" not in ws.receive_json()  # not recording any more

            ws.send_text('{"type": "record", "action": "start"}')  # until the size cap
            capped_key = ws.receive_json()["key"]
            capped = None
            for i in range(10):
                ws.send_bytes(jpeg(blob_image([(100 + 3 * i, 100)])))
                msg = ws.receive_json()
                if msg["recording"]["state"] != "recording":
                    capped = ws.receive_json()  # and the message that it stopped
                    break
            assert capped is not None and capped["type"] == "recording"
            assert capped["stop_reason"] == "size cap" and capped["bytes"] <= 12_000
            assert capped["frames"] == int(12_000 // per_frame)
            ws.send_text("hello?")
            assert "JSON text" in ws.receive_json()["error"]
            ws.send_text('{"type": "record", "action": "start"}')  # kept when the tab goes
            dropped_key = ws.receive_json()["key"]
            ws.send_bytes(jpeg(blob_image([(100, 100)])))
            ws.receive_json()
        r = client.get(f"/api/results/{key}/export/jsonl")
        assert r.headers["content-disposition"].startswith('attachment; filename="webcam-')
        lines = [line for line in r.text.splitlines() if '"type": "frame"' in line]
        assert len(lines) == 2 and '"frame_index": 0' in lines[0] and '"timestamp": 0.0' in lines[0]
        assert client.get(f"/api/results/{capped_key}").json()["stop_reason"] == "size cap"
        deadline = time.monotonic() + 30
        while client.get(f"/api/results/{dropped_key}").json()["state"] == "recording":
            assert time.monotonic() < deadline
            time.sleep(0.02)
        kept = client.get(f"/api/results/{dropped_key}").json()
        assert kept["state"] == "done" and kept["stop_reason"] == "disconnected"
        assert kept["frames_done"] == 1


def test_an_upload_cut_off_while_sending_keeps_nothing(oracle: Path) -> None:
    app = create_app(PosePipeline(oracle, device="cpu", detector=BlobDetector()), AppConfig())
    with serve(app) as (url, _):
        host, port = url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=10) as sock:
            sock.sendall(b"POST /api/uploads?name=big.avi HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                         b"Content-Length: 1000000\r\n\r\n" + b"RIFF" + b"\0" * 5000)  # fmt: skip
        # the page's Cancel closes the connection mid-body: no job, nothing kept
        deadline = time.monotonic() + 30
        while True:
            with urllib.request.urlopen(url + "/health", timeout=10) as r:
                health = json.load(r)
            if health["uploads_running"] == 0 or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert health["uploads_running"] == 0 and health["results_kept"] == 0
        assert len(app.state.store) == 0


def _frame(i: int, persons: int = 1) -> FrameResult:
    p = PersonResult(
        bbox=[0, 0, 10, 10], score=0.9, joints_2d=np.zeros((70, 2)),
        joints_3d_local=np.zeros((70, 3)), cam_trans=[0, 0, 3], mhr_params=np.zeros(204),
        shape_params=np.zeros(45), focal_length=500.0, principal_point=[5, 5],
        image_size=(10, 10), track_id=1,
    )  # fmt: skip
    return FrameResult(persons=[p] * persons, frame_index=i, image_size=(10, 10))


def test_store_limits_time_and_size() -> None:
    size = frame_nbytes(_frame(0))
    assert size > 70 * 3 * 8  # the arrays are counted
    store = ResultStore(ttl_s=30.0, max_bytes=int(size * 2.5))
    a, b, c = (store.create("video", n) for n in ("a.avi", "b.avi", "c.avi"))
    for e in (a, b):
        assert store.append(e, _frame(0))
        store.finish(e)
    assert store.get(a.key) is not None  # a is used now: b is the least recently used
    assert store.append(c, _frame(0))
    store.finish(c)  # three frames > 2.5: the least recently used finished one goes
    assert store.get(b.key) is None and store.get(a.key) and store.get(c.key)
    assert not b.directory.exists() and b.cancel.is_set()
    huge = store.create("video", "huge.avi")
    for i in range(3):
        store.append(huge, _frame(i))
    store.finish(huge)  # alone over the limit: it fails and says what to do
    assert huge.state == "failed" and "--max-results-mb" in huge.error and huge.frames == []
    capped = store.create("recording", "r", state="recording")
    capped.limit_bytes = size
    assert store.append(capped, _frame(0)) and not store.append(capped, _frame(1))
    assert len(capped.frames) == 1
    assert store.expire() == 0  # all used within the time limit
    a.used -= 60.0  # a: last used longer ago than the limit
    assert store.expire() == 1  # deleted
    assert store.get(a.key) is None and not a.directory.exists() and store.get(c.key)
    assert store.get(capped.key) is not None  # still recording: never expires
    store.close()
    assert len(store) == 0 and not capped.directory.exists()
    with pytest.raises(ValueError, match="ttl_s"):
        ResultStore(0, 1)


def test_file_names_and_exports() -> None:
    assert safe_stem("Megamind.avi") == "Megamind"
    assert safe_stem("../../etc/passwd") == "passwd"
    assert safe_stem("C:\\Users\\me\\clip 1.MOV") == "clip_1"
    assert safe_stem('a"b;c.mp4') == "a_b_c"
    assert safe_stem(".hidden") == "hidden"
    assert safe_stem("..", "upload") == "upload" and safe_stem(None) == "upload"
    assert safe_stem("été.mp4") == "t"
    assert len(safe_stem("x" * 300 + ".avi")) == 80
    empty = [FrameResult(image_size=(10, 10))]
    with pytest.raises(ValueError, match="tracked person"):
        export_download(empty, "bvh", "clip")
    with pytest.raises(ValueError, match="format must be one of"):
        export_download(empty, "exe", "clip")
    one = export_download([_frame(0), _frame(1)], "jsonl", "clip")
    assert one.filename == "clip.jsonl" and one.data.startswith(b'{"type": "header"')


def test_preview_encoder_and_its_failure(tmp_path: Path) -> None:
    codec = preview_codec()
    assert codec is not None and codec.codec == "libx264"  # the PyAV wheel carries x264
    assert preview_size(1920, 1080, 1280) == (1280, 720)
    assert preview_size(320, 240, 1280) == (320, 240) and preview_size(161, 121, 1280) == (162, 122)
    frames = [blob_image([(40 + 10 * i, 60)], (161, 121)) for i in range(5)]  # odd sizes
    writer = VideoPreview(tmp_path / "p", fps=12.5)
    for f in frames:
        writer.add(f)
    path = writer.finish()
    assert path == tmp_path / "p.mp4" and writer.error is None and writer.frames == 5
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        assert (stream.width, stream.height) == (162, 122)
        times = [float(f.time) for f in container.decode(stream)]
    np.testing.assert_allclose(times, np.arange(5) / 12.5, atol=1e-3)  # frame i at i / fps
    bad_options = PreviewCodec("libx264", ".mp4", "video/mp4", {"crf": "not-a-number"})
    broken = VideoPreview(tmp_path / "q", fps=10, codec=bad_options)
    for f in frames:
        broken.add(f)
    assert broken.finish() is None and "preview encoder failed" in broken.error
    cancelled = VideoPreview(tmp_path / "c", fps=10)
    cancelled.add(frames[0])
    cancelled.cancel()
    assert not (tmp_path / "c.mp4").exists()
