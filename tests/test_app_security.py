"""The browser app's security: size limits, content checks, token, origin, host, static files.

Real components: FastAPI's TestClient around ``create_app`` with the oracle HMR model and
a blob detector (see tests/app_helpers.py).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from app_helpers import blob_image, jpeg, make_client, save_oracle
from starlette.websockets import WebSocketDisconnect


@pytest.fixture(scope="module")
def oracle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_oracle(tmp_path_factory.mktemp("app-security"))


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


def test_cross_origin_and_foreign_host_are_refused(oracle: Path) -> None:
    data = jpeg(blob_image([(100, 100)]))
    with make_client(oracle) as client:
        evil = {"origin": "http://evil.example"}
        assert client.post("/api/predict", content=data, headers=evil).status_code == 403
        ok = {"origin": "http://testserver"}
        assert client.post("/api/predict", content=data, headers=ok).status_code == 200
        with pytest.raises(WebSocketDisconnect) as err:
            with client.websocket_connect("/ws", headers=evil) as ws:
                ws.receive_json()
        assert err.value.code == 1008
    with make_client(oracle, allowed_hosts=("testserver",)) as client:
        assert client.get("/health").status_code == 200
        assert client.get("/health", headers={"host": "rebound.example"}).status_code == 400
