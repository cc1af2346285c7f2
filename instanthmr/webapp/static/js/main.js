// The InstantHMR page: wires the camera, the live stream, uploads, the overlay and the 3D view.
//
// Test hook: window.__instanthmr = {framesSent, framesReceived, skeletonsDrawn, lastLatency,
// errors, ready} (read by tests/test_app_browser.py).

import { getJSON, LiveClient } from "./api.js";
import { Camera, cameraErrorMessage } from "./camera.js";
import { drawOverlay } from "./overlay.js";
import { clearError, FpsCounter, latencyOf, setConnection, showError, showHealth, showReadout } from "./ui.js";
import { Uploads } from "./upload.js";
import { View3D } from "./view3d.js";

const $ = (id) => document.getElementById(id);
const hook = {
  framesSent: 0, framesReceived: 0, skeletonsDrawn: 0, personsSeen: 0, lastLatency: null,
  errors: [], ready: false,
};
window.__instanthmr = hook;

async function boot() {
  let health, skeleton;
  try {
    [health, skeleton] = await Promise.all([getJSON("/health"), getJSON("/api/skeleton")]);
  } catch (err) {
    setConnection("down");
    showError(`Cannot reach the InstantHMR server: ${err.message}`, "server");
    setTimeout(boot, 3000);
    return;
  }
  clearError("server");
  showHealth(health);
  const view = new View3D($("view3d"), skeleton);
  const camera = new Camera($("video"), $("camera-select"));
  const fps = new FpsCounter();
  const overlay = $("overlay");

  const show = (frame, media, rttMs) => {
    const w = media.videoWidth || media.naturalWidth;
    const h = media.videoHeight || media.naturalHeight;
    drawOverlay(overlay, frame, skeleton, w, h);
    view.update(frame);
    hook.skeletonsDrawn = view.skeletonsDrawn;
    hook.personsSeen += frame.persons.length;
    const lat = latencyOf(frame, rttMs);
    hook.lastLatency = lat;
    showReadout(lat, fps.tick(), frame);
  };

  const live = new LiveClient({
    grab: async () => {
      const blob = await camera.grab();
      if (blob) hook.framesSent += 1;
      return blob;
    },
    onHello: (msg) => {
      clearError("server");
      showHealth(msg);
    },
    onFrame: (frame, rtt) => {
      hook.framesReceived += 1;
      clearError("busy");
      if (camera.live) show(frame, $("video"), rtt);
    },
    onError: (message, kind) => showError(message, kind),
    onState: setConnection,
  });

  const uploads = new Uploads({
    onStart: () => stopCamera(),
    onFrame: (frame, media, rtt) => {
      clearError("upload");
      show(frame, media, rtt);
    },
    onError: (message) => showError(message, "upload"),
  });

  const stopCamera = () => {
    live.stop();
    camera.stop();
    $("camera-start").disabled = false;
    $("camera-stop").disabled = true;
  };

  $("camera-start").onclick = async () => {
    uploads.reset();
    $("drop-hint").hidden = true;
    try {
      await camera.start();
      clearError("camera");
    } catch (err) {
      showError(err.name ? cameraErrorMessage(err) : err.message, "camera");
      $("drop-hint").hidden = false;
      return;
    }
    $("camera-start").disabled = true;
    $("camera-stop").disabled = false;
    live.start();
  };
  $("camera-stop").onclick = stopCamera;
  $("camera-select").onchange = () => { if (camera.live) $("camera-start").onclick(); };
  $("recenter").onclick = () => view.recenter();
  $("stage").addEventListener("drop", () => { $("drop-hint").hidden = true; });
  $("file-input").addEventListener("change", () => { $("drop-hint").hidden = true; });
  camera.listCameras().catch(() => {});
  hook.ready = true;
  if (new URLSearchParams(window.location.search).has("autostart")) $("camera-start").onclick();
}

boot();
