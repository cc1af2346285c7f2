"""Helpers shared by the real-browser tests of the app (tests/test_app_browser*.py).

- a live uvicorn server around ``create_app`` on a free loopback port, in a thread;
- the analytic oracle HMR model given a standing-figure template (its 2D offsets and 3D
  joints), so skeletons look like a person; they are the template moved with the marker,
  not a pose estimate;
- :class:`RedDetector`: a real if simple OpenCV detector of saturated red marks (a red
  disc painted on footage), counting its calls;
- footage clips: frames of real footage (``vtest.avi`` beside the checkout when present,
  else the package's sample clip) with a red disc moving across, written as AVI, MOV or
  MP4, and as a Y4M for Chromium's fake camera;
- Chromium's command line (fake camera, software WebGL) and the Playwright launch.

Every wait in these tests is on a condition with a generous timeout: the machine may be
loaded.
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from fractions import Fraction
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import onnx
import pytest
import supervision as sv
from conftest import SHARED_DATA
from onnx import helper, numpy_helper
from onnx_builders import build_oracle

from instanthmr.skeleton import JOINT_INDEX, JOINT_NAMES

CHROMIUM = os.environ.get("INSTANTHMR_CHROMIUM", "/usr/bin/chromium")
ROOT = Path(__file__).resolve().parents[1]
DOCS_IMG = ROOT / "docs" / "img"
WAIT_MS = 90_000
"""The longest a browser test waits for a condition (a loaded 2-core machine is slow)."""

needs_chromium = pytest.mark.skipif(
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


def figure_oracle(random_init: bool = False) -> onnx.ModelProto:
    """The oracle with the figure as 2D offsets (crop units) and as its 3D joints.

    ``random_init`` marks it as a random-init export (the page then shows its banner).
    """
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
    if random_init:
        helper.set_model_props(model, {"instanthmr_random_init": "true"})
    onnx.checker.check_model(model)
    return model


class RedDetector:
    """Saturated red marks (red well above green and blue) -> person boxes, padded.

    Real footage has no large saturated-red areas, so it finds the disc the tests paint.
    ``calls`` counts every detection; ``delay`` makes each call that much slower.
    """

    def __init__(self, pad: float = 60.0, min_area: int = 300, delay: float = 0.0) -> None:
        self.pad = pad
        self.min_area = min_area
        self.delay = delay
        self.calls = 0
        self._lock = threading.Lock()

    def detect(self, image_rgb: np.ndarray) -> sv.Detections:
        with self._lock:
            self.calls += 1
        if self.delay:
            time.sleep(self.delay)
        rgb = image_rgb.astype(np.int16)
        redness = rgb[..., 0] - np.maximum(rgb[..., 1], rgb[..., 2])
        mask = (redness > 100).astype(np.uint8)
        n, _, st, _ = cv2.connectedComponentsWithStats(mask)
        keep = [i for i in range(1, n) if st[i, cv2.CC_STAT_AREA] >= self.min_area]
        if not keep:
            return sv.Detections.empty()
        x, y, w, h = (st[keep, i].astype(np.float64) for i in range(4))
        xyxy = np.stack([x - self.pad, y - self.pad * 2, x + w + self.pad, y + h + self.pad * 2], 1)
        return sv.Detections(xyxy=xyxy, confidence=np.full(len(xyxy), 0.9),
                             class_id=np.zeros(len(xyxy), int))  # fmt: skip


def footage(n: int, size: tuple[int, int] = (320, 240)) -> list[np.ndarray]:
    """``n`` RGB frames of real footage at ``size``, with a red disc moving left to right.

    The footage is ``vtest.avi`` (beside the checkout) when present, else the package's
    sample clip (looped when short).
    """
    from instanthmr.sources.files import sample_video_path

    source = SHARED_DATA / "vtest.avi"
    cap = cv2.VideoCapture(str(source if source.is_file() else sample_video_path()), cv2.CAP_FFMPEG)
    raw: list[np.ndarray] = []
    while len(raw) < n:
        ok, bgr = cap.read()
        if not ok:
            assert raw, "the footage has no frames"
            cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
            continue
        raw.append(cv2.resize(bgr, size, interpolation=cv2.INTER_AREA))
    cap.release()
    w, h = size
    out = []
    for i, bgr in enumerate(raw):
        x = int(w * (0.3 + 0.4 * i / max(n - 1, 1)))
        cv2.circle(bgr, (x, h // 2), max(10, h // 16), (30, 30, 235), -1)
        out.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    return out


def write_clip(path: Path, frames: list[np.ndarray], fps: float = 10.0) -> Path:
    """Write RGB frames the way cameras and tools do, by suffix: ``.avi`` MJPEG (OpenCV),
    ``.mp4`` MPEG-4 Part 2 (OpenCV's ``mp4v``), ``.mov`` HEVC in QuickTime as a phone
    records it (PyAV's ``libx265``; MPEG-4 Part 2 where a PyAV build lacks it). None of
    these plays in Debian's Chromium as it is."""
    h, w = frames[0].shape[:2]
    if path.suffix == ".mov":
        import av

        try:
            av.codec.Codec("libx265", "w")
            codec, options = "libx265", {"x265-params": "log-level=error"}
        except ValueError:  # UnknownCodecError
            codec, options = "mpeg4", {}
        with av.open(str(path), "w", format="mov") as container:
            rate = Fraction(fps).limit_denominator(1001)
            stream = container.add_stream(codec, rate=rate, options=options)
            stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
            for rgb in frames:
                container.mux(stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")))
            container.mux(stream.encode(None))
        return path
    fourcc = {".avi": "MJPG", ".mp4": "mp4v"}[path.suffix]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, (w, h))
    assert writer.isOpened(), f"OpenCV cannot write {path.suffix}"
    for rgb in frames:
        writer.write(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    writer.release()
    return path


def write_y4m(path: Path, frames: list[np.ndarray], fps: int = 15) -> Path:
    """A clip Chromium's fake camera plays (``--use-file-for-fake-video-capture``)."""
    h, w = frames[0].shape[:2]
    with open(path, "wb") as fh:
        fh.write(f"YUV4MPEG2 W{w} H{h} F{fps}:1 Ip A1:1 C420jpeg\n".encode())
        for rgb in frames:
            fh.write(b"FRAME\n" + cv2.cvtColor(rgb, cv2.COLOR_RGB2YUV_I420).tobytes())
    return path


def camera_clip(folder: Path) -> Path:
    """The fake camera's Y4M: footage with the red disc going left and right (looped)."""
    frames = footage(24, (640, 480))
    return write_y4m(folder / "camera.y4m", frames + frames[::-1])


def chromium_args(clip: Path, fake_ui: bool = True, webgl: bool = True) -> list[str]:
    """Headless Chromium with a fake camera playing ``clip`` and software WebGL.

    ``fake_ui`` accepts the camera permission prompt (without it the prompt is refused);
    ``webgl=False`` turns WebGL off as on a browser without it.
    """
    args = [
        "--use-fake-device-for-media-stream", f"--use-file-for-fake-video-capture={clip}",
        "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run",
        "--autoplay-policy=no-user-gesture-required",
    ]  # fmt: skip
    if webgl:
        args += ["--enable-unsafe-swiftshader", "--use-angle=swiftshader"]
    else:
        args += ["--disable-webgl", "--disable-3d-apis"]
    return [*args, "--use-fake-ui-for-media-stream"] if fake_ui else args


@contextmanager
def serve(app: Any) -> Iterator[tuple[str, Any]]:
    """Run ``app`` on uvicorn on a free loopback port; yields (base URL, server)."""
    import uvicorn

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}", server
    finally:
        server.should_exit = True
        thread.join(20)


@contextmanager
def browser(clip: Path, **kwargs: Any) -> Iterator[Any]:
    """A headless Chromium (Playwright) with :func:`chromium_args`; closed on exit."""
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True,
                              args=chromium_args(clip, **kwargs))  # fmt: skip
        try:
            yield b
        finally:
            b.close()


def open_page(b: Any, url: str, **context: Any) -> tuple[Any, list[str]]:
    """A page at ``url`` once the app is ready; also the list its page errors go to.

    ``bypass_csp``: the page forbids eval, which ``wait_for_function("...")`` uses.
    """
    ctx = b.new_context(bypass_csp=True, accept_downloads=True, **context)
    page = ctx.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.goto(url + "/")
    page.wait_for_function("window.__instanthmr && window.__instanthmr.ready", timeout=WAIT_MS)
    return page, problems


def wait_js(page: Any, expression: str, timeout: int = WAIT_MS) -> None:
    """Wait until ``expression`` (JavaScript, ``H`` is the page's test hook) is true."""
    page.wait_for_function(f"(() => {{ const H = window.__instanthmr; return {expression}; }})()",
                           timeout=timeout)  # fmt: skip


def save_screenshot(page: Any, tmp: Path, name: str) -> Path:
    """JPEG screenshot to ``tmp/name``; also to ``docs/img/name`` when
    ``INSTANTHMR_UPDATE_SCREENSHOTS=1`` (how the ones in docs/app.md are made)."""
    shot = tmp / name
    page.screenshot(path=str(shot), type="jpeg", quality=82)
    assert shot.stat().st_size > 10_000
    if os.environ.get("INSTANTHMR_UPDATE_SCREENSHOTS") == "1":
        DOCS_IMG.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, DOCS_IMG / name)
    return shot
