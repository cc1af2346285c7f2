"""The browser app in a real browser (Debian's Chromium via Playwright): the live camera.

Chromium's fake camera plays a Y4M made here from real footage with a red disc moving
across; :class:`RedDetector` finds the disc and the oracle HMR model draws a standing
figure there (helpers: tests/browser_helpers.py). Covered: the status pill, readout and
overlays on load, while live, after Stop and when the server goes away; a refused camera;
recording a session and downloading it; a browser without WebGL; a 390x844 phone with
touch. Skips when Chromium is absent.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest
from browser_helpers import (
    WAIT_MS,
    RedDetector,
    browser,
    camera_clip,
    figure_oracle,
    footage,
    needs_chromium,
    open_page,
    save_screenshot,
    serve,
    wait_js,
)

from instanthmr.pipeline import PosePipeline
from instanthmr.sinks.exporters import read_results
from instanthmr.webapp import AppConfig, create_app

pytestmark = [needs_chromium, pytest.mark.slow]  # drives a browser

OVERLAY_INK = """(() => { const c = document.getElementById('overlay');
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  let ink = 0; for (let i = 3; i < d.length; i += 4) ink += d[i] > 0; return ink; })()"""
"""Pixels drawn on the 2D overlay."""


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("browser")
    onnx.save(figure_oracle(), tmp / "figure-oracle.onnx")
    onnx.save(figure_oracle(random_init=True), tmp / "random-figure.onnx")
    camera_clip(tmp)
    return tmp


def make_app(folder: Path, model: str = "figure-oracle.onnx", **config):
    pipe = PosePipeline(folder / model, device="cpu", detector=RedDetector())
    return create_app(pipe, AppConfig(max_fps=15, **config))


def png(frame: np.ndarray) -> bytes:
    return cv2.imencode(".png", cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))[1].tobytes()


def test_pill_readout_and_overlays_follow_the_real_state(folder: Path) -> None:
    with serve(make_app(folder)) as (url, server), browser(folder / "camera.y4m") as b:
        page, problems = open_page(b, url, viewport={"width": 1280, "height": 720})
        wait_js(page, "H.state === 'ready'")  # on load: the server is up, nothing runs
        assert page.locator("#conn").inner_text() == "ready"
        assert page.locator("#banner").is_hidden()  # the oracle is not marked random-init
        assert page.locator("#model-info").inner_text().startswith("figure-oracle.onnx")
        assert page.locator("#ms-hmr").inner_text() == "–"

        page.click("#camera-start")
        wait_js(page, "H.framesReceived >= 10 && H.overlayPersons > 0 && H.view3d().people > 0")
        assert page.locator("#conn").inner_text() == "live"
        assert page.locator("#readout-mode").inner_text() == "live"
        assert float(page.locator("#ms-hmr").inner_text()) > 0
        assert page.evaluate(OVERLAY_INK) > 100
        hook = page.evaluate("window.__instanthmr")
        assert hook["framesSent"] >= hook["framesReceived"] >= 10
        assert hook["lastLatency"]["hmr"] > 0 and hook["lastLatency"]["roundTrip"] > 0
        view = page.evaluate("window.__instanthmr.view3d()")
        assert view["on"] and "without the world stage" in view["note"]  # why there is no grid

        page.click("#camera-stop")  # Stop: nothing live is left on screen
        wait_js(page, "H.state === 'ready'")
        assert page.locator("#conn").inner_text() == "ready"
        assert page.evaluate(OVERLAY_INK) == 0
        assert page.evaluate("window.__instanthmr.view3d().people") == 0
        assert page.locator("#ms-hmr").inner_text() == "–"
        assert page.locator("#persons").inner_text() == "–"
        assert page.locator("#readout-mode").inner_text() == "idle"
        assert page.locator("#drop-hint").is_visible()
        received = page.evaluate("window.__instanthmr.framesReceived")

        page.click("#camera-start")
        wait_js(page, f"H.framesReceived >= {received + 3}")
        assert problems == []
        server.should_exit = True  # the server goes away: the page says so
        page.wait_for_selector('#errors [data-kind="server"]', timeout=WAIT_MS)
        assert "server is gone" in page.locator('#errors [data-kind="server"]').inner_text()
        assert page.locator("#conn").inner_text() == "disconnected"


def test_page_reports_a_refused_camera(folder: Path) -> None:
    with serve(make_app(folder)) as (url, _), browser(folder / "camera.y4m", fake_ui=False) as b:
        page, _ = open_page(b, url, permissions=[])
        page.click("#camera-start")
        line = page.wait_for_selector('#errors [data-kind="camera"]', timeout=WAIT_MS)
        assert "permission denied" in line.inner_text()
        assert page.locator("#camera-start").is_enabled()  # the user can try again
        assert page.evaluate("window.__instanthmr.framesSent") == 0
        assert page.locator("#conn").inner_text() == "ready"


def test_record_a_session_and_download_it(folder: Path, tmp_path: Path) -> None:
    cap = 60_000  # bytes: a few seconds of one person
    with serve(make_app(folder, max_recording_bytes=cap)) as (url, _), \
            browser(folder / "camera.y4m") as b:  # fmt: skip
        page, problems = open_page(b, url)
        assert page.locator("#record").is_disabled()  # nothing to record before the camera
        page.click("#camera-start")
        wait_js(page, "H.framesReceived >= 3 && H.state === 'live'")
        page.click("#record")
        wait_js(page, "H.recording && H.recording.frames >= 4")
        info = page.locator("#record-info").inner_text()
        assert "REC" in info and "left" in info and "0.1 MB" in info  # the cap and what is left
        page.click("#record")  # stop recording
        wait_js(page, "H.recording && H.recording.state === 'done'")
        recorded = page.evaluate("window.__instanthmr.recording.frames")
        assert f"{recorded} frames recorded" in page.locator("#upload-info").inner_text()
        with page.expect_download(timeout=WAIT_MS) as dl:
            page.click('#export-controls button[data-format="jsonl"]')
        name = dl.value.suggested_filename
        assert name.startswith("webcam-") and name.endswith(".jsonl")
        dl.value.save_as(tmp_path / name)
        frames = read_results(tmp_path / name)
        assert len(frames) == recorded and frames[0].frame_index == 0
        assert frames[0].timestamp == 0.0 and frames[-1].timestamp > 0
        assert all(len(f.persons) == 1 for f in frames)

        page.click("#record")  # again, until the size cap stops it
        wait_js(page, "H.recording && H.recording.stop_reason === 'size cap'")
        assert "size cap" in page.locator('#errors [data-kind="recording"]').inner_text()
        with page.expect_download(timeout=WAIT_MS) as dl:
            page.click('#export-controls button[data-format="glb"]')
        assert dl.value.suggested_filename.endswith(".glb")
        dl.value.save_as(tmp_path / "rec.glb")
        gltf = (tmp_path / "rec.glb").read_bytes()
        assert gltf[:4] == b"glTF"
        head = json.loads(gltf[20 : 20 + int.from_bytes(gltf[12:16], "little")])
        assert head["animations"]  # the recorded motion
        assert page.locator("#camera-stop").is_enabled()  # the camera goes on
        assert problems == []


def test_without_webgl_2d_uploads_and_downloads_work(folder: Path, tmp_path: Path) -> None:
    with serve(make_app(folder)) as (url, _), browser(folder / "camera.y4m", webgl=False) as b:
        page, problems = open_page(b, url, viewport={"width": 1280, "height": 720})
        note = page.locator("#view3d-note")
        assert note.is_visible() and "3D view off" in note.inner_text()
        assert "2D overlay, uploads and downloads still work" in note.inner_text()
        assert page.evaluate("window.__instanthmr.view3d().on") is False
        page.set_input_files("#file-input", files=[
            {"name": "street.png", "mimeType": "image/png", "buffer": png(footage(1)[0])}])
        wait_js(page, "H.upload.shown && H.overlayPersons > 0")
        assert page.evaluate(OVERLAY_INK) > 100
        with page.expect_download(timeout=WAIT_MS) as dl:
            page.click('#export-controls button[data-format="jsonl"]')
        assert dl.value.suggested_filename == "street.jsonl"
        dl.value.save_as(tmp_path / "street.jsonl")
        assert len(read_results(tmp_path / "street.jsonl")[0].persons) == 1
        page.click("#camera-start")
        wait_js(page, "H.framesReceived >= 5 && H.overlayPersons > 0")
        save_screenshot(page, tmp_path, "app-no-webgl.jpg")
        assert problems == []


def touch(cdp, path: list[list[tuple[float, float]]]) -> None:
    """A touch gesture through the DevTools protocol: each step is the fingers' positions."""

    def points(step: list[tuple[float, float]]) -> list[dict]:
        return [{"x": x, "y": y, "id": i} for i, (x, y) in enumerate(step)]

    cdp.send("Input.dispatchTouchEvent", {"type": "touchStart", "touchPoints": points(path[0])})
    for step in path[1:]:
        cdp.send("Input.dispatchTouchEvent", {"type": "touchMove", "touchPoints": points(step)})
    cdp.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})


def test_phone_layout_banner_and_touch(folder: Path, tmp_path: Path) -> None:
    app = make_app(folder, model="random-figure.onnx")
    with serve(app) as (url, _), browser(folder / "camera.y4m") as b:
        page, problems = open_page(
            b, url, viewport={"width": 390, "height": 844}, device_scale_factor=2,
            is_mobile=True, has_touch=True,
        )  # fmt: skip

        def in_view(selector: str) -> bool:
            box = page.locator(selector).bounding_box()
            return box is not None and box["y"] >= 0 and box["y"] + box["height"] <= 844

        banner = page.locator("#banner")
        assert banner.is_visible() and "RANDOM-INIT MODEL" in banner.inner_text()
        one_line = banner.bounding_box()["height"]
        assert one_line < 36, one_line  # collapsed to one line
        assert page.locator("#model-info").bounding_box()["height"] < 24
        assert "pinch" in page.locator("#view-hint").inner_text()
        assert "Tap" in page.locator("#drop-hint").inner_text()
        page.click("#camera-start")
        wait_js(page, "H.framesReceived >= 5 && H.view3d().people > 0")
        assert in_view("#stage") and in_view("#view3d")  # both panels on the screen
        assert page.evaluate("window.scrollY") == 0

        box = page.locator("#view3d").bounding_box()
        cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
        cdp = page.context.new_cdp_session(page)
        page.click("#camera-stop")  # hold the view still while gesturing
        wait_js(page, "H.state === 'ready'")
        before = page.evaluate("window.__instanthmr.view3d()")
        steps = [[(cx - 20 - 8 * i, cy), (cx + 20 + 8 * i, cy)] for i in range(8)]
        touch(cdp, steps)  # fingers apart: zoom in
        after = page.evaluate("window.__instanthmr.view3d()")
        assert after["distance"] < before["distance"] * 0.95, (before, after)
        touch(cdp, [[(cx - 60 + 15 * i, cy)] for i in range(9)])  # orbit
        turned = page.evaluate("window.__instanthmr.view3d()")
        assert abs(turned["azimuth"] - after["azimuth"]) > 0.1, (after, turned)
        page.click("#camera-start")
        wait_js(page, "H.framesReceived >= 10 && H.overlayPersons > 0")
        save_screenshot(page, tmp_path, "app-phone.jpg")

        page.click("#banner-summary")  # tap: the details
        wait_js(page, "document.getElementById('banner').open")
        assert banner.bounding_box()["height"] > one_line
        assert "poses are MEANINGLESS" in banner.inner_text()  # the model's own notice
        assert problems == []


def test_page_labels_the_stand_in_model(folder: Path) -> None:
    """Served with the stand-in, the page's banner says it is not InstantHMR."""
    app = create_app(PosePipeline("standin", device="cpu", detector=RedDetector()),
                     AppConfig(max_fps=15))  # fmt: skip
    with serve(app) as (url, _), browser(folder / "camera.y4m") as b:
        page, _ = open_page(b, url)
        wait_js(page, "H.state === 'ready'")
        banner = page.locator("#banner")
        assert banner.is_visible()
        assert "STAND-IN MODEL, NOT InstantHMR" in page.locator("#banner-summary").inner_text()
        page.click("#banner-summary")  # tap: the details
        assert "Never judge or time InstantHMR by it" in banner.inner_text()
