// The InstantHMR page: wires the camera, the live stream, recording, uploads, the overlay
// and the 3D view, and keeps the status pill, readout and overlays true to the real state.
//
// Test hook: window.__instanthmr (read by tests/test_app_browser*.py): framesSent,
// framesReceived, skeletonsDrawn, personsSeen, lastLatency, errors, ready, state (the
// pill), overlayPersons (persons in the overlay now), overlayDraws, upload, recording,
// downloads, infos, view3d() (the 3D view's state).

import { getJSON, LiveClient } from "./api.js";
import { Camera, cameraErrorMessage } from "./camera.js";
import { drawOverlay } from "./overlay.js";
import { Recorder } from "./record.js";
import { ResultsBar } from "./results.js";
import {
  clearError, clearReadout, FpsCounter, latencyOf, setPill, showError, showHealth, showReadout,
} from "./ui.js";
import { Uploads } from "./upload.js";
import { createView } from "./view3d.js";

const $ = (id) => document.getElementById(id);
const HEALTH_MS = 5000; // how often the idle page checks that the server is there
const hook = {
  framesSent: 0, framesReceived: 0, skeletonsDrawn: 0, personsSeen: 0, lastLatency: null,
  errors: [], infos: [], ready: false, state: "connecting", overlayPersons: 0, overlayDraws: 0,
  upload: {}, recording: null, downloads: [],
};
window.__instanthmr = hook;
window.addEventListener("error", (ev) => showError(`Page error: ${ev.message}`, "page"));
window.addEventListener("unhandledrejection", (ev) =>
  showError(`Page error: ${ev.reason && ev.reason.message ? ev.reason.message : ev.reason}`, "page"));

const touch = window.matchMedia("(pointer: coarse)").matches || navigator.maxTouchPoints > 0;
if (touch) {
  $("view-hint").textContent = "Drag to orbit, pinch to zoom, two-finger drag to pan.";
  $("drop-hint").textContent = "Tap Start camera, or Upload a photo or a short video";
}

// What the page is doing; the pill is computed from it (never set directly elsewhere).
const state = { server: "unknown", mode: "idle", live: "off", detail: "" };

function refreshPill() {
  if (state.mode === "live") return setPill(state.live === "open" ? "live" : state.live === "down" ? "down" : "connecting");
  if (state.mode === "uploading" || state.mode === "processing") return setPill(state.mode, state.detail);
  if (state.server === "down") return setPill("down");
  if (state.mode === "upload") return setPill("upload");
  return setPill(state.server === "up" ? "ready" : "connecting");
}

function setMode(mode, detail = "") {
  Object.assign(state, { mode, detail });
  refreshPill();
}

async function loadServer() {
  for (let wait = 1000; ; wait = Math.min(wait * 2, 8000)) {
    try {
      const [health, skeleton] = await Promise.all([getJSON("/health"), getJSON("/api/skeleton")]);
      return { health, skeleton };
    } catch (err) {
      state.server = "down";
      refreshPill();
      showError(`Cannot reach the InstantHMR server: ${err.message}. Retrying…`, "server");
      await new Promise((r) => setTimeout(r, wait));
    }
  }
}

async function checkHealth() {
  if (state.mode !== "live") {
    try {
      await getJSON("/health");
      if (state.server === "down") clearError("server");
      state.server = "up";
    } catch (err) {
      state.server = "down";
      showError(`The InstantHMR server is not answering: ${err.message}. Uploads and the camera need it.`, "server");
    }
    refreshPill();
  }
  setTimeout(checkHealth, HEALTH_MS);
}

async function boot() {
  const { health, skeleton } = await loadServer();
  state.server = "up";
  clearError("server");
  showHealth(health);
  refreshPill();
  const view = createView($("view3d"), skeleton);
  hook.view3d = () => view.state();
  const camera = new Camera($("video"), $("camera-select"));
  const fps = new FpsCounter();
  const overlay = $("overlay");

  const draw = (frame, media) => {
    const w = media ? media.videoWidth || media.naturalWidth : 0;
    const h = media ? media.videoHeight || media.naturalHeight : 0;
    hook.overlayPersons = drawOverlay(overlay, frame, skeleton, w, h);
    if (hook.overlayPersons > 0) hook.overlayDraws += 1;
    view.update(frame);
    hook.skeletonsDrawn = view.skeletonsDrawn;
    if (frame) hook.personsSeen += frame.persons.length;
  };

  /** Nothing is shown: blank overlay, 3D view and readout. */
  const clearShown = () => {
    draw(null, null);
    fps.reset();
    clearReadout();
  };

  const results = new ResultsBar({
    onError: (message) => showError(message, "download"),
    onDownload: (saved) => {
      clearError("download");
      hook.downloads.push(saved);
    },
  });

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
      if (!camera.live) return; // an answer that arrived after Stop
      draw(frame, $("video"));
      const lat = latencyOf(frame, rtt);
      hook.lastLatency = lat;
      showReadout("live", { ...lat, fps: fps.tick(), persons: frame.persons.length, dropped: frame.dropped });
      if (frame.recording) recorder.update(frame.recording);
    },
    onRecording: (msg) => recorder.update(msg),
    onError: (message, kind) => showError(message, kind),
    onState: (s) => {
      state.live = s === "live" ? "open" : "down";
      state.server = s === "live" ? "up" : state.server;
      if (s !== "live") recorder.interrupted();
      recorder.setAvailable(s === "live");
      refreshPill();
    },
  });

  const recorder = new Recorder({
    live, results,
    onError: (message) => showError(message, "recording"),
    onChange: (status) => { hook.recording = status; },
  });

  const stopCamera = async () => {
    if (recorder.active) await recorder.stop(); // the server keeps it; downloads appear
    live.stop();
    camera.stop();
    recorder.setAvailable(false);
    $("camera-start").disabled = false;
    $("camera-stop").disabled = true;
    state.live = "off";
    clearShown();
    $("drop-hint").hidden = false;
    setMode("idle");
  };

  const uploads = new Uploads({
    results,
    onStart: async () => {
      if (camera.live) await stopCamera();
      clearError("upload");
      clearShown();
      $("drop-hint").hidden = true;
    },
    onState: (s, detail) => {
      if (s === "idle") {
        clearShown();
        $("drop-hint").hidden = false;
      }
      setMode(s, detail);
    },
    onFrame: (frame, media, extra) => {
      draw(frame, media);
      const t = frame.timings;
      showReadout("upload", {
        detect: t.detect, hmr: t.hmr, server: t.total, network: extra.uploadMs, fps: extra.fps,
        persons: frame.persons.length,
      });
    },
    onError: (message) => showError(message, "upload"),
    onInfo: (message) => {
      hook.infos.push(message);
      showError(message, "upload", "info");
    },
  });

  $("camera-start").onclick = async () => {
    uploads.reset();
    clearError("upload");
    clearShown();
    $("drop-hint").hidden = true;
    try {
      await camera.start();
      clearError("camera");
    } catch (err) {
      showError(err.name ? cameraErrorMessage(err) : err.message, "camera");
      $("drop-hint").hidden = false;
      setMode("idle");
      return;
    }
    $("camera-start").disabled = true;
    $("camera-stop").disabled = false;
    state.live = "connecting";
    setMode("live");
    live.start();
  };
  $("camera-stop").onclick = stopCamera;
  $("camera-select").onchange = () => { if (camera.live) $("camera-start").onclick(); };
  $("recenter").onclick = () => view.recenter();
  $("solid").onchange = (ev) => view.setSolid(ev.target.checked);
  camera.listCameras().catch(() => {});
  setTimeout(checkHealth, HEALTH_MS);
  hook.ready = true;
  if (new URLSearchParams(window.location.search).has("autostart")) $("camera-start").onclick();
}

refreshPill();
boot();
