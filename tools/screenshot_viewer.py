"""Dev tool: screenshot the Rerun web viewer showing a recording (for docs/img/viewer.png).

Not used by the library or the tests. It serves an ``.rrd`` with the project's ``rerun``
(``rerun --serve-web``, loopback only), opens the web viewer in headless Chromium with
software WebGL (SwiftShader), waits for the wasm viewer to load and render, and writes a PNG
through the Chrome DevTools Protocol.

Requirements (outside the project venv):

* Chromium (Debian: ``apt-get install -y chromium``).
* ``websocket-client`` (DevTools connection) and ``pillow`` (palette compression), e.g.
  ``python3 -m venv /tmp/venv-shot && /tmp/venv-shot/bin/pip install websocket-client pillow``.

Usage (from the repository root)::

    RERUN_ANALYTICS=0 .venv/bin/python demo.py --video vtest.avi \\
        --model models/instanthmr-random.onnx --detector-model models/rfdetr-nano.onnx \\
        --detector-backend onnx --det-confidence 0 --max-persons 3 --max-frames 40 \\
        --headless --save /tmp/shot/out.rrd
    /tmp/venv-shot/bin/python tools/screenshot_viewer.py /tmp/shot/out.rrd --out docs/img/viewer.png

Software rendering is slow: on 2 cores the wasm compile plus first frames take 30-90 s,
hence the long default ``--wait`` (150 s lets the 40-frame recording play to its end).
The PNG is reduced to a 256-colour palette (about 240 KB instead of 800 KB) unless
``--no-compress`` is given.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHROMIUM_FLAGS = [
    "--headless=new",
    "--no-sandbox",
    "--enable-unsafe-swiftshader",
    "--use-angle=swiftshader",
    "--enable-webgl",
    "--ignore-gpu-blocklist",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--no-default-browser-check",
    "--hide-scrollbars",
    "--mute-audio",
]


def _wait_http(url: str, timeout: float) -> None:
    """Poll ``url`` until it answers or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{url} did not answer within {timeout:.0f} s") from None
            time.sleep(0.5)


def _stop(proc: subprocess.Popen) -> None:
    """Terminate ``proc`` and the process group it leads (started with start_new_session)."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


class _CDP:
    """Minimal Chrome DevTools Protocol client over one page target."""

    def __init__(self, ws_url: str) -> None:
        import websocket  # third-party: websocket-client

        self.ws = websocket.create_connection(ws_url, timeout=120, suppress_origin=True)
        self.next_id = 0
        self.console: list[str] = []

    def call(self, method: str, **params: object) -> dict:
        """Send one command and return its result, collecting console events meanwhile."""
        self.next_id += 1
        msg_id = self.next_id
        self.ws.send(json.dumps({"id": msg_id, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == msg_id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})
            self._event(msg)

    def pump(self, seconds: float) -> None:
        """Read events (console output) for ``seconds``."""
        self.ws.settimeout(1.0)
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                self._event(json.loads(self.ws.recv()))
            except Exception as exc:  # websocket timeout: nothing arrived this second
                if type(exc).__name__ != "WebSocketTimeoutException":
                    raise
        self.ws.settimeout(120)

    def _event(self, msg: dict) -> None:
        method = msg.get("method")
        if method == "Runtime.consoleAPICalled":
            args = msg["params"].get("args", [])
            text = " ".join(str(a.get("value", a.get("description", ""))) for a in args)
            self.console.append(f"console.{msg['params'].get('type')}: {text}")
        elif method == "Log.entryAdded":
            entry = msg["params"]["entry"]
            self.console.append(f"log.{entry.get('level')}: {entry.get('text')}")


def _compress(png: Path) -> None:
    """Rewrite ``png`` with a 256-colour palette, keeping the viewer's faint near-white greys."""
    from PIL import Image  # third-party: pillow

    image = Image.open(png).convert("RGB")
    n_grey = 12  # reserve entries for the 3D grid lines (RGB ~244-255), which octree drops
    palette = image.quantize(colors=256 - n_grey, method=Image.Quantize.FASTOCTREE).getpalette()
    palette = palette[: (256 - n_grey) * 3]
    for grey in range(256 - n_grey, 256):
        palette += [grey, grey, grey]
    holder = Image.new("P", (1, 1))
    holder.putpalette(palette)
    image.quantize(palette=holder, dither=Image.Dither.NONE).save(png, optimize=True)


def main() -> None:
    """Serve the recording, open it in headless Chromium, and save a screenshot."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("rrd", type=Path, help="recording to show (.rrd)")
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "img" / "viewer.png")
    ap.add_argument("--rerun", default=str(ROOT / ".venv" / "bin" / "rerun"))
    ap.add_argument("--chromium", default=shutil.which("chromium") or "chromium")
    ap.add_argument("--size", default="1600,1000", help="window size W,H")
    ap.add_argument("--wait", type=float, default=150.0, help="seconds to wait for render")
    ap.add_argument("--renderer", default="webgl", choices=["webgl", "webgpu"])
    ap.add_argument("--no-compress", action="store_true", help="keep the full-colour PNG")
    ap.add_argument("--web-port", type=int, default=9090)
    ap.add_argument("--grpc-port", type=int, default=9876)
    ap.add_argument("--debug-port", type=int, default=9222)
    args = ap.parse_args()
    if not args.rrd.is_file():
        raise SystemExit(f"recording not found: {args.rrd} (make one with demo.py --save)")

    env = dict(os.environ, RERUN_ANALYTICS="0")
    procs: list[subprocess.Popen] = []
    profile = tempfile.mkdtemp(prefix="shot-chromium-")
    try:
        procs.append(
            subprocess.Popen(
                [
                    args.rerun,
                    "--serve-web",
                    "--bind",
                    "127.0.0.1",
                    "--web-viewer-port",
                    str(args.web_port),
                    "--port",
                    str(args.grpc_port),
                    str(args.rrd),
                ],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,  # own group: the rerun wrapper spawns a child
            )
        )
        _wait_http(f"http://127.0.0.1:{args.web_port}/", 30)
        time.sleep(2)
        if procs[0].poll() is not None:
            raise SystemExit(
                f"rerun exited (code {procs[0].returncode}): is port {args.web_port} or "
                f"{args.grpc_port} already in use? Pick others with --web-port/--grpc-port."
            )
        source = f"rerun+http://127.0.0.1:{args.grpc_port}/proxy"
        query = urllib.parse.urlencode({"url": source, "renderer": args.renderer})
        viewer_url = f"http://127.0.0.1:{args.web_port}/?{query}"

        procs.append(
            subprocess.Popen(
                [
                    args.chromium,
                    *CHROMIUM_FLAGS,
                    f"--window-size={args.size}",
                    f"--remote-debugging-port={args.debug_port}",
                    "--remote-debugging-address=127.0.0.1",
                    f"--user-data-dir={profile}",
                    "about:blank",
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,  # own group: the rerun wrapper spawns a child
            )
        )
        _wait_http(f"http://127.0.0.1:{args.debug_port}/json/version", 60)
        with urllib.request.urlopen(f"http://127.0.0.1:{args.debug_port}/json/list") as resp:
            pages = [t for t in json.load(resp) if t.get("type") == "page"]
        cdp = _CDP(pages[0]["webSocketDebuggerUrl"])
        cdp.call("Runtime.enable")
        cdp.call("Log.enable")
        width, height = (int(v) for v in args.size.split(","))
        cdp.call(
            "Emulation.setDeviceMetricsOverride",
            width=width,
            height=height,
            deviceScaleFactor=1,
            mobile=False,
        )
        cdp.call("Page.navigate", url=viewer_url)
        print(f"opened {viewer_url}; waiting {args.wait:.0f} s for the viewer to render")
        cdp.pump(args.wait)
        shot = cdp.call("Page.captureScreenshot", format="png")
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_bytes(base64.b64decode(shot["data"]))
        if not args.no_compress:
            _compress(args.out)
        problems = [m for m in cdp.console if m.split(":", 1)[0].endswith(("error", "warning"))]
        print("\n".join(m[:300] for m in problems[-20:]) or "no console errors or warnings")
        print(f"wrote {args.out} ({args.out.stat().st_size // 1024} KB)")
    finally:
        for proc in reversed(procs):
            _stop(proc)
        shutil.rmtree(profile, ignore_errors=True)


if __name__ == "__main__":
    main()
