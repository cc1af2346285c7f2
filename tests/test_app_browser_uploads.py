"""Uploads in a real browser (Debian's Chromium via Playwright): shown, kept, cancelled.

Clips are made here from real footage (``vtest.avi`` beside the checkout, else the
package's sample clip) with a red disc moving across, written as cameras, phones and tools
write them: AVI (MJPEG), MOV (HEVC) and MP4 (MPEG-4 Part 2), none of which Debian's
Chromium plays as it is. The
server re-encodes each into a preview the browser plays, and the page draws the skeletons of
the frame on screen. Downloads come from the kept results: the detector's call count does
not move. Helpers: tests/browser_helpers.py. Skips when Chromium is absent.
"""

from __future__ import annotations

from pathlib import Path

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
    write_clip,
)

from instanthmr.pipeline import PosePipeline
from instanthmr.sinks.exporters import read_results
from instanthmr.webapp import AppConfig, create_app
from instanthmr.world import WorldFrame

pytestmark = [needs_chromium, pytest.mark.slow]  # drives a browser

FRAMES = 12

VIDEO_TEXTURE = """(() => { const v = document.getElementById('video');
  const c = document.createElement('canvas'); c.width = v.videoWidth; c.height = v.videoHeight;
  const g = c.getContext('2d'); g.drawImage(v, 0, 0);
  const d = g.getImageData(0, 0, c.width, c.height).data;
  let s = 0, s2 = 0, n = 0;
  for (let i = 0; i < d.length; i += 4) {
    const y = (d[i] + d[i+1] + d[i+2]) / 3; s += y; s2 += y*y; n++; }
  const m = s / n; return Math.sqrt(s2 / n - m * m); })()"""
"""Standard deviation of the grey levels of the video frame on screen (0 for a flat frame)."""


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("uploads")
    onnx.save(figure_oracle(), tmp / "figure-oracle.onnx")
    camera_clip(tmp)
    frames = footage(FRAMES)
    for suffix in (".avi", ".mov", ".mp4"):
        write_clip(tmp / f"street{suffix}", frames)
    write_clip(tmp / "long.avi", footage(40))
    return tmp


def make_app(folder: Path, detector: RedDetector, **config):
    pipe = PosePipeline(folder / "figure-oracle.onnx", device="cpu", detector=detector,
                        world=WorldFrame.from_camera(1.6, 15.0))  # fmt: skip
    return create_app(pipe, AppConfig(**config))


def upload(page, path: Path) -> None:
    page.set_input_files("#file-input", files=[str(path)])


def test_avi_mov_mp4_are_shown_and_downloads_do_not_rerun(folder: Path, tmp_path: Path) -> None:
    detector = RedDetector()
    with serve(make_app(folder, detector)) as (url, _), browser(folder / "camera.y4m") as b:
        page, problems = open_page(b, url, viewport={"width": 1280, "height": 760})
        page.set_input_files("#file-input", files=[  # a bad upload: its error shows
            {"name": "x.jpg", "mimeType": "image/jpeg", "buffer": b"not an image"}])
        bad = page.wait_for_selector('#errors [data-kind="upload"]', timeout=WAIT_MS)
        assert "not a decodable" in bad.inner_text()
        assert page.locator("#conn").inner_text() == "ready"
        for suffix in (".avi", ".mov", ".mp4"):
            calls = detector.calls
            upload(page, folder / f"street{suffix}")
            wait_js(page, f"H.upload.name === 'street{suffix}' && H.upload.shown && "
                    "H.upload.framesShown >= 3 && H.overlayPersons > 0")  # fmt: skip
            assert detector.calls - calls == FRAMES  # every frame through the models once
            hook = page.evaluate("window.__instanthmr.upload")
            assert hook["preview"] == "video/mp4" and hook["width"] == 320, hook
            assert page.evaluate("document.getElementById('video').error") is None
            assert page.evaluate(VIDEO_TEXTURE) > 15  # the footage is on screen, not grey
            assert page.locator("#conn").inner_text() == "upload"
            assert page.locator('#errors [data-kind="upload"]').count() == 0
            assert f"street{suffix}: {FRAMES} frames" in page.locator("#upload-info").inner_text()
            # the readout shows this upload's own timings, not a network round trip
            assert page.locator("#readout-mode").inner_text() == "upload"
            assert page.locator("#server-label").inner_text() == "pipeline"
            assert float(page.locator("#ms-hmr").inner_text()) > 0
            assert float(page.locator("#ms-server").inner_text()) > 0
            assert float(page.locator("#fps").inner_text()) > 0
            view = page.evaluate("window.__instanthmr.view3d()")
            assert view["grid"] and view["note"] == ""  # the world frame is known
        calls = detector.calls
        for fmt, name in (("jsonl", "street.jsonl"), ("npz", "street.npz"),
                          ("bvh", "street.track1.bvh"), ("glb", "street.glb")):  # fmt: skip
            with page.expect_download(timeout=WAIT_MS) as dl:
                page.click(f'#export-controls button[data-format="{fmt}"]')
            assert dl.value.suggested_filename == name
            dl.value.save_as(tmp_path / name)
        assert detector.calls == calls  # downloads come from the kept results
        downloads = page.evaluate("window.__instanthmr.downloads")
        assert [d["name"] for d in downloads][-4:] == ["street.jsonl", "street.npz",
                                                       "street.track1.bvh", "street.glb"]
        for name in ("street.jsonl", "street.npz"):
            frames = read_results(tmp_path / name)
            assert len(frames) == FRAMES and frames[0].persons[0].track_id == 1
        assert (tmp_path / "street.track1.bvh").read_text().startswith("HIERARCHY")
        page.check("#solid")  # the solid body, for the screenshot
        wait_js(page, "H.view3d().solid && H.view3d().people > 0")
        page.click("#recenter")
        save_screenshot(page, tmp_path, "app.jpg")
        assert problems == []


def test_cancel_stops_the_servers_work(folder: Path) -> None:
    detector = RedDetector(delay=0.2)  # 40 frames: 8 s of work at least
    app = make_app(folder, detector)
    with serve(app) as (url, _), browser(folder / "camera.y4m") as b:
        page, problems = open_page(b, url)
        upload(page, folder / "long.avi")
        progress = "document.getElementById('progress-text').textContent"
        wait_js(page, f"H.upload.state === 'processing' && /long.avi: [2-9]/.test({progress})")
        assert page.locator("#progress").is_visible()
        assert "processing" in page.locator("#conn").inner_text()
        page.click("#cancel")
        wait_js(page, "H.upload.state === 'cancelled' && H.state === 'ready'")
        assert page.locator("#progress").is_hidden()
        assert "server stopped" in page.evaluate("window.__instanthmr.infos")[-1]
        # the server's job ends without reading the rest of the video
        page.wait_for_function(f"fetch('{url}/health').then(r => r.json()).then(h => "
                               "h.uploads_running === 0 && h.results_kept === 0)",
                               timeout=WAIT_MS)  # fmt: skip
        assert 2 <= detector.calls < 40  # the job ended: nothing more can run
        assert page.locator("#export-controls").is_hidden()
        assert problems == []


def test_without_a_preview_the_page_says_why(folder: Path, tmp_path: Path) -> None:
    with serve(make_app(folder, RedDetector(), preview=False)) as (url, _), \
            browser(folder / "camera.y4m") as b:  # fmt: skip
        page, problems = open_page(b, url)
        upload(page, folder / "street.avi")
        note = page.wait_for_selector("#stage-note", state="visible", timeout=WAIT_MS)
        text = note.inner_text()
        assert "Cannot show street.avi" in text and "--no-preview" in text
        assert "download them below" in text
        with page.expect_download(timeout=WAIT_MS) as dl:
            page.click('#export-controls button[data-format="npz"]')
        dl.value.save_as(tmp_path / "street.npz")
        assert len(read_results(tmp_path / "street.npz")) == FRAMES
        assert problems == []
