"""The browser app in a real browser: Debian's Chromium driven by Playwright.

A live uvicorn server (on a free loopback port, in a thread) serves ``create_app`` around a
pipeline with the analytic oracle HMR model and :class:`BlobDetector`. Chromium's fake
camera plays a generated clip (a bright disc moving across a dark frame, written as Y4M),
so the detector finds one "person" per frame. The oracle is given a standing-figure
template for its 2D offsets and its 3D joints, so the skeletons look like a person; they
are the template moved with the disc, not a pose estimate. Skips when Chromium is absent.

The screenshot goes to the test's temporary folder; ``INSTANTHMR_UPDATE_SCREENSHOTS=1``
also copies it to ``docs/img/app.png`` (how the one in ``docs/app.md`` was made).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import onnx
import pytest
from onnx import helper, numpy_helper
from onnx_builders import build_oracle
from test_pipeline import BlobDetector

from instanthmr.pipeline import PosePipeline
from instanthmr.skeleton import JOINT_INDEX, JOINT_NAMES
from instanthmr.webapp import AppConfig, create_app

CHROMIUM = os.environ.get("INSTANTHMR_CHROMIUM", "/usr/bin/chromium")
ROOT = Path(__file__).resolve().parents[1]
SCREENSHOT = ROOT / "docs" / "img" / "app.png"

pytestmark = pytest.mark.skipif(
    not (Path(CHROMIUM).is_file() or shutil.which(CHROMIUM)),
    reason=f"Chromium not found at {CHROMIUM} (Debian: apt-get install -y chromium)",
)

_BODY = {  # metres, camera axes (X right, Y down, Z forward), a person facing the camera
    "nose": (0, -0.72, -0.08), "left_eye": (0.03, -0.76, -0.06), "right_eye": (-0.03, -0.76, -0.06),
    "left_ear": (0.07, -0.74, 0), "right_ear": (-0.07, -0.74, 0), "neck": (0, -0.58, 0),
    "left_shoulder": (0.19, -0.52, 0), "right_shoulder": (-0.19, -0.52, 0),
    "left_elbow": (0.32, -0.28, -0.05), "right_elbow": (-0.30, -0.26, 0.02),
    "left_wrist": (0.46, -0.10, -0.15), "right_wrist": (-0.34, 0.0, 0.0),
    "left_hip": (0.11, 0.0, 0), "right_hip": (-0.11, 0.0, 0),
    "left_knee": (0.14, 0.42, -0.04), "right_knee": (-0.12, 0.42, 0.02),
    "left_ankle": (0.16, 0.84, 0.02), "right_ankle": (-0.12, 0.84, 0.04),
    "left_heel": (0.16, 0.88, 0.06), "right_heel": (-0.12, 0.88, 0.08),
    "left_big_toe_tip": (0.15, 0.9, -0.12), "left_small_toe_tip": (0.2, 0.9, -0.1),
    "right_big_toe_tip": (-0.11, 0.9, -0.1), "right_small_toe_tip": (-0.16, 0.9, -0.08),
}  # fmt: skip


def figure() -> np.ndarray:
    """(70, 3) standing figure: body joints from _BODY, hand and arm extras near their joint."""
    out = np.zeros((70, 3), np.float32)
    for i, name in enumerate(JOINT_NAMES):
        if name in _BODY:
            out[i] = _BODY[name]
            continue
        side = "left" if name.startswith("left") else "right"
        anchor = {"olecranon": "elbow", "cubital": "elbow", "acromion": "shoulder"}
        key = next((v for k, v in anchor.items() if k in name), "wrist")
        out[i] = _BODY[f"{side}_{key}"]
        if key == "wrist":  # fingers: a small fan below the wrist
            finger = ("thumb", "index", "middle", "ring", "pinky").index(name.split("_")[1])
            part = ("third_joint", "second_joint", "first_joint", "tip").index(
                name.split("_", 2)[2]
            )
            sign = 1 if side == "left" else -1
            out[i] += (sign * (0.01 * finger - 0.02), 0.025 * (part + 1), 0)
    assert out[JOINT_INDEX["neck"]][1] < 0
    return out


def figure_oracle() -> onnx.ModelProto:
    """The oracle with the figure as 2D offsets (crop units) and as its 3D joints."""
    fig = figure()
    model = build_oracle(offsets=fig[:, :2] * 0.7)
    g = model.graph
    for init in g.initializer:
        if init.name == "w_j3d":
            init.CopyFrom(numpy_helper.from_array(np.zeros((3, 210), np.float32), "w_j3d"))
    node = next(n for n in g.node if n.output[0] == "joints_3d")
    node.output[0] = "joints_3d_zero"
    g.initializer.append(numpy_helper.from_array(fig[None], "c_figure"))
    g.node.append(helper.make_node("Add", ["joints_3d_zero", "c_figure"], ["joints_3d"]))
    onnx.checker.check_model(model)
    return model


def write_y4m(path: Path, n: int = 60, size: tuple[int, int] = (640, 480)) -> None:
    """A clip Chromium's fake camera can play: a red disc going left and right."""
    w, h = size
    with open(path, "wb") as fh:
        fh.write(f"YUV4MPEG2 W{w} H{h} F15:1 Ip A1:1 C420jpeg\n".encode())
        for i in range(n):
            x = int(w * (0.3 + 0.4 * abs(i / (n / 2) - 1)))
            bgr = np.full((h, w, 3), 30, np.uint8)
            cv2.circle(bgr, (x, h // 2 - 30), 18, (40, 40, 255), -1)
            fh.write(b"FRAME\n" + cv2.cvtColor(bgr, cv2.COLOR_BGR2YUV_I420).tobytes())


def chromium_args(fake_ui: bool, clip: Path) -> list[str]:
    """Headless Chromium with a fake camera playing ``clip`` and software WebGL.

    ``fake_ui`` accepts the camera permission prompt; without it the prompt is refused.
    """
    args = [
        "--use-fake-device-for-media-stream", f"--use-file-for-fake-video-capture={clip}",
        "--no-sandbox", "--disable-gpu", "--enable-unsafe-swiftshader", "--use-angle=swiftshader",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--no-first-run",
    ]  # fmt: skip
    return [*args, "--use-fake-ui-for-media-stream"] if fake_ui else args


def _serve(pipe: PosePipeline, tmp: Path) -> Iterator[tuple]:
    """Serve ``create_app(pipe)`` on a free loopback port; yields (url, camera clip, server)."""
    import uvicorn

    app = create_app(pipe, AppConfig(max_fps=15))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    write_y4m(tmp / "camera.y4m")
    yield f"http://127.0.0.1:{port}", tmp / "camera.y4m", server
    server.should_exit = True
    thread.join(10)


@pytest.fixture
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple]:
    tmp = tmp_path_factory.mktemp("browser")
    onnx.save(figure_oracle(), tmp / "figure-oracle.onnx")
    pipe = PosePipeline(tmp / "figure-oracle.onnx", device="cpu", detector=BlobDetector(pad=110))
    yield from _serve(pipe, tmp)


@pytest.fixture
def standin_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple]:
    """The app around the stand-in model shipped in the package."""
    tmp = tmp_path_factory.mktemp("browser-standin")
    yield from _serve(PosePipeline("standin", device="cpu", detector=BlobDetector()), tmp)


def test_page_streams_the_camera_and_draws_3d(live_server) -> None:
    sync_api = pytest.importorskip("playwright.sync_api")
    url, clip, server = live_server
    args = chromium_args(fake_ui=True, clip=clip)
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=args)
        try:
            # bypass_csp: the page forbids eval, which wait_for_function("...") uses
            page = browser.new_page(viewport={"width": 1280, "height": 720}, bypass_csp=True)
            problems: list[str] = []
            page.on("pageerror", lambda e: problems.append(str(e)))
            page.goto(url + "/")
            hook_js = "window.__instanthmr"
            page.wait_for_function(f"{hook_js} && {hook_js}.ready", timeout=30000)
            assert page.locator("#banner").is_hidden()  # the oracle is not marked random-init
            assert page.locator("#model-info").inner_text().startswith("figure-oracle.onnx")
            upload = '#errors [data-kind="upload"]'
            page.set_input_files(
                "#file-input",
                files=[  # a bad upload: its error shows
                    {"name": "x.jpg", "mimeType": "image/jpeg", "buffer": b"not an image"}
                ],
            )
            page.wait_for_selector(upload, timeout=20000)
            assert "not a decodable" in page.locator(upload).inner_text()
            still = np.full((480, 640, 3), 30, np.uint8)
            cv2.circle(still, (300, 200), 18, (40, 40, 255), -1)
            png = cv2.imencode(".png", still)[1].tobytes()
            page.set_input_files(
                "#file-input", files=[{"name": "disc.png", "mimeType": "image/png", "buffer": png}]
            )
            page.wait_for_function(f"{hook_js}.personsSeen >= 1", timeout=30000)
            assert "1 persons" in page.locator("#upload-info").inner_text()
            assert page.locator(upload).count() == 0  # a good upload clears the error
            clip_mp4 = clip.with_name("walk.mp4")
            writer = cv2.VideoWriter(str(clip_mp4), cv2.VideoWriter_fourcc(*"mp4v"), 10, (320, 240))
            for i in range(6):
                frame = np.full((240, 320, 3), 30, np.uint8)
                cv2.circle(frame, (100 + 10 * i, 120), 12, (40, 40, 255), -1)
                writer.write(frame)
            writer.release()
            page.set_input_files("#file-input", files=[str(clip_mp4)])
            page.wait_for_function(
                "document.querySelector('#upload-info').textContent.includes('6 frames')",
                timeout=30000,
            )
            with page.expect_download(timeout=30000) as download:
                page.click("#export-jsonl")
            first = Path(download.value.path()).read_text().splitlines()[0]
            assert '"instanthmr-results"' in first and download.value.suggested_filename.endswith(
                ".jsonl"
            )

            page.click("#camera-start")
            page.wait_for_function(
                f"{hook_js}.framesReceived >= 15 && {hook_js}.skeletonsDrawn > 1",
                timeout=90000,
            )
            hook = page.evaluate("window.__instanthmr")
            assert hook["framesSent"] >= hook["framesReceived"] >= 15
            assert hook["personsSeen"] > 15 and len(hook["errors"]) == 1  # the bad upload
            assert hook["lastLatency"]["hmr"] > 0 and hook["lastLatency"]["roundTrip"] > 0
            assert float(page.locator("#ms-hmr").inner_text()) > 0  # the readout updates
            assert float(page.locator("#fps").inner_text()) > 0
            assert page.locator("#conn").inner_text() == "live"
            assert problems == []
            page.wait_for_timeout(1500)
            shot = clip.with_name("app.png")
            page.screenshot(path=str(shot))
            assert shot.stat().st_size > 10_000
            if os.environ.get("INSTANTHMR_UPDATE_SCREENSHOTS") == "1":  # refresh the docs' copy
                shutil.copyfile(shot, SCREENSHOT)

            server.should_exit = True  # the server goes away: the page says so
            page.wait_for_selector('#errors [data-kind="server"]', timeout=30000)
            assert "server is gone" in page.locator('#errors [data-kind="server"]').inner_text()
            assert page.locator("#conn").inner_text() == "disconnected"
        finally:
            browser.close()


@contextlib.contextmanager
def ready_page(server: tuple, fake_ui: bool = False) -> Iterator[Any]:
    """The app's page in headless Chromium, loaded and ready (no camera permission)."""
    sync_api = pytest.importorskip("playwright.sync_api")
    url, clip, _ = server
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=chromium_args(fake_ui=fake_ui, clip=clip)
        )
        try:
            page = browser.new_context(bypass_csp=True, permissions=[]).new_page()
            page.goto(url + "/")
            page.wait_for_function(
                "window.__instanthmr && window.__instanthmr.ready", timeout=30000
            )
            yield page
        finally:
            browser.close()


def test_page_reports_a_refused_camera(live_server) -> None:
    with ready_page(live_server) as page:
        page.click("#camera-start")
        line = page.wait_for_selector('#errors [data-kind="camera"]', timeout=30000)
        assert "permission denied" in line.inner_text()
        assert page.locator("#camera-start").is_enabled()  # the user can try again
        assert page.evaluate("window.__instanthmr.framesSent") == 0


def test_page_labels_the_stand_in_model(standin_server) -> None:
    """Served with the stand-in, the page's banner says it is not InstantHMR."""
    with ready_page(standin_server) as page:
        banner = page.locator("#banner")
        assert banner.is_visible()
        assert "STAND-IN MODEL, NOT InstantHMR" in banner.inner_text()
