"""A real client: three.js 0.170's GLTFLoader in Debian's Chromium (Playwright) loads the .glb.

The vendored three.js (``instanthmr/webapp/static/vendor/three``) and a small page are served
through Playwright's request routing. The page loads the export, finds a ``SkinnedMesh``
with a ``Skeleton`` per track, plays the clip with an ``AnimationMixer`` and reports the
bones' world positions at two times; they must match the walker's forward kinematics.
``INSTANTHMR_UPDATE_SCREENSHOTS=1`` copies the rendered frame to docs/img/animation_threejs.png.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from animation_synth import frames_from, mhr70_from_points, walker

from instanthmr.animation import rig
from instanthmr.animation.exporter import GlbExporter

CHROMIUM = os.environ.get("INSTANTHMR_CHROMIUM", "/usr/bin/chromium")
ROOT = Path(__file__).resolve().parents[1]
VENDOR = ROOT / "instanthmr" / "webapp" / "static" / "vendor" / "three"
SCREENSHOT = ROOT / "docs" / "img" / "animation_threejs.png"
ORIGIN = "http://glb.test"
pytestmark = pytest.mark.skipif(
    not (Path(CHROMIUM).is_file() or shutil.which(CHROMIUM)),
    reason=f"Chromium not found at {CHROMIUM} (Debian: apt-get install -y chromium)",
)

PAGE = """<!doctype html><html><body style="margin:0;background:#20242a">
<script type="module">
import * as THREE from "/three/three.module.min.js";
import { GLTFLoader } from "/three/GLTFLoader.js";
const out = window.__result = { done: false };
try {
  const gltf = await new GLTFLoader().loadAsync("/run.glb");
  const scene = new THREE.Scene();
  scene.add(gltf.scene);
  const skinned = [];
  gltf.scene.traverse(o => { if (o.isSkinnedMesh) skinned.push(o); });
  out.skinned = skinned.map(m => ({ name: m.name, bones: m.skeleton.bones.length,
                                    skeleton: m.skeleton instanceof THREE.Skeleton }));
  out.clips = gltf.animations.map(c => ({ name: c.name, tracks: c.tracks.length,
                                          duration: c.duration }));
  const mixer = new THREE.AnimationMixer(gltf.scene);
  mixer.clipAction(gltf.animations[0]).play();
  const bones = (t) => {
    mixer.setTime(t);
    gltf.scene.updateMatrixWorld(true);
    const res = {};
    for (const m of skinned) {
      res[m.name] = Object.fromEntries(m.skeleton.bones.map(b =>
        [b.name, b.getWorldPosition(new THREE.Vector3()).toArray()]));
    }
    return res;
  };
  out.t0 = bones(0.2);
  out.t1 = bones(1.0);
  const renderer = new THREE.WebGLRenderer({ antialias: true });
  renderer.setSize(640, 480);
  document.body.appendChild(renderer.domElement);
  scene.add(new THREE.HemisphereLight(0xffffff, 0x404040, 2.5));
  const sun = new THREE.DirectionalLight(0xffffff, 2.0);
  sun.position.set(2, 4, 3);
  scene.add(sun);
  const grid = new THREE.GridHelper(10, 20, 0x888888, 0x444444);
  scene.add(grid);
  const camera = new THREE.PerspectiveCamera(40, 640 / 480, 0.1, 50);
  camera.position.set(1.6, 1.7, 6.5);
  camera.lookAt(1.4, 0.9, 3.0);
  renderer.render(scene, camera);
  out.done = true;
} catch (e) { out.error = String(e && e.stack || e); out.done = true; }
</script></body></html>"""


def _route(glb: Path):
    def handle(route) -> None:
        path = route.request.url.removeprefix(ORIGIN)
        if path == "/":
            route.fulfill(status=200, content_type="text/html", body=PAGE)
        elif path == "/run.glb":
            route.fulfill(status=200, content_type="model/gltf-binary", body=glb.read_bytes())
        elif path.startswith("/three/") and (VENDOR / path[7:]).is_file():
            body = (VENDOR / path[7:]).read_bytes()
            route.fulfill(status=200, content_type="text/javascript", body=body)
        else:
            route.fulfill(status=404, body="not found")

    return handle


def test_threejs_loads_skinned_meshes_and_the_mixer_plays(tmp_path) -> None:
    sync_api = pytest.importorskip("playwright.sync_api")
    truth = walker(45)
    pts = truth.positions()
    cams = {7: rig.camera_to_yup(mhr70_from_points(pts, truth.global_rotations()))}
    with GlbExporter(tmp_path / "run.glb", rig="mixamo") as ex:
        for f in frames_from(cams, 45, fps=30.0):
            ex.write(f)
    args = ["--no-sandbox", "--disable-gpu", "--enable-unsafe-swiftshader",
            "--use-angle=swiftshader", "--no-first-run"]  # fmt: skip
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=args)
        try:
            page = browser.new_page(viewport={"width": 640, "height": 480})
            page.route(f"{ORIGIN}/**", _route(ex.written[0]))
            page.goto(f"{ORIGIN}/")
            page.wait_for_function("window.__result && window.__result.done", timeout=60_000)
            result = json.loads(page.evaluate("JSON.stringify(window.__result)"))
            page.screenshot(path=str(tmp_path / "threejs.png"))
        finally:
            browser.close()
    assert "error" not in result, result.get("error")
    assert result["skinned"] == [{"name": "track7_body", "bones": 25, "skeleton": True}]
    assert result["clips"][0]["name"] == "instanthmr" and result["clips"][0]["tracks"] == 22
    names = [f"mixamorig{n}" for n in rig.JOINT_NAMES]  # three.js drops the ":" in names
    for key, frame in (("t0", 6), ("t1", 30)):  # 0.2 s and 1.0 s at 30 FPS
        got = np.array([result[key]["track7_body"][n] for n in names])
        assert np.abs(got - pts[frame, : len(names)]).max() < 1e-3, key
    if os.environ.get("INSTANTHMR_UPDATE_SCREENSHOTS"):
        SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(tmp_path / "threejs.png", SCREENSHOT)
