// Page furniture: the status pill, the model banner (random-init, stand-in), errors, the
// readout, the FPS counter.

const $ = (id) => document.getElementById(id);

/** Errors shown in the page, one line per kind (a newer message of a kind replaces it).
 *  On phones a line shows its first line only; tapping it shows the rest. */
export function showError(message, kind = "general", level = "error") {
  const box = $("errors");
  let line = box.querySelector(`[data-kind="${kind}"]`);
  if (!line) {
    line = document.createElement("div");
    line.dataset.kind = kind;
    const msg = document.createElement("span");
    msg.className = "msg";
    msg.onclick = () => msg.classList.toggle("open");
    const close = document.createElement("button");
    close.type = "button";
    close.textContent = "dismiss";
    close.onclick = () => line.remove();
    line.append(msg, close);
    box.appendChild(line);
  }
  line.querySelector(".msg").textContent = message;
  line.classList.toggle("info", level === "info");
  if (level === "error") window.__instanthmr.errors.push(message);
}

export function clearError(kind) {
  const line = $("errors").querySelector(`[data-kind="${kind}"]`);
  if (line) line.remove();
}

/** The model line and the random-init banner (one line; the details on tap). */
export function showHealth(health) {
  const det = health.detector ? `, detector ${health.detector.name}` : "";
  const text = `${health.model} on ${health.provider}${det} · v${health.version}`;
  $("model-info").textContent = text;
  $("model-info").title = text;
  const notes = [];
  // A pose model that is not InstantHMR (random-init export, BlazePose stand-in) says what
  // it is: the server sends the same notice the demo, the files and the viewer carry.
  if (health.model_notice) notes.push(health.model_notice);
  if (health.detector && health.detector.random_init)
    notes.push("The person detector is a random-init export: detections are meaningless.");
  $("banner").hidden = notes.length === 0;
  // one line: what the model is (the notice up to its colon), the details on tap
  const parts = [];
  if (health.model_notice) parts.push(health.model_notice.split(":")[0]);
  if (health.detector && health.detector.random_init) parts.push("random-init detector");
  $("banner-summary").textContent = parts.length ? `${parts.join(" · ")} (tap for details)` : "";
  $("banner-text").textContent = notes.join(" ");
}

const PILL_TEXT = {
  connecting: "connecting", ready: "ready", live: "live", uploading: "uploading",
  processing: "processing", upload: "upload", down: "disconnected",
};

/** The status pill: connecting, ready, live, uploading, processing, upload or down. */
export function setPill(state, detail = "") {
  const pill = $("conn");
  pill.textContent = (PILL_TEXT[state] || state) + (detail ? ` ${detail}` : "");
  pill.className = `pill ${state}`;
  window.__instanthmr.state = state;
}

const fmt = (v) => (Number.isFinite(v) ? v.toFixed(1) : "–");

/** Counts answers per second over the last two seconds. */
export class FpsCounter {
  constructor() {
    this.times = [];
  }

  tick() {
    const now = performance.now();
    this.times.push(now);
    while (this.times.length && now - this.times[0] > 2000) this.times.shift();
    const span = (now - this.times[0]) / 1000;
    return this.times.length > 1 && span > 0 ? (this.times.length - 1) / span : NaN;
  }

  reset() {
    this.times = [];
  }
}

/** Latency of one answered live frame: detector, HMR, server and network milliseconds. */
export function latencyOf(frame, rttMs) {
  const s = frame.server || {};
  const server = (s.queue_ms || 0) + (s.decode_ms || 0) + (s.predict_ms || 0) + (s.encode_ms || 0);
  return {
    detect: frame.timings.detect,
    hmr: frame.timings.hmr,
    pipeline: frame.timings.total,
    server,
    network: rttMs === undefined ? NaN : Math.max(rttMs - server, 0),
    roundTrip: rttMs === undefined ? NaN : rttMs,
  };
}

/**
 * The readout. `mode` "live": server and network of the last answer. "upload": the shown
 * frame's own stage timings, the pipeline's milliseconds for that frame, the upload's
 * transfer time and its processing rate.
 */
export function showReadout(mode, values) {
  $("readout-mode").textContent = mode;
  $("server-label").textContent = mode === "upload" ? "pipeline" : "server";
  $("network-label").textContent = mode === "upload" ? "upload" : "network";
  $("ms-detect").textContent = fmt(values.detect);
  $("ms-hmr").textContent = fmt(values.hmr);
  $("ms-server").textContent = fmt(values.server);
  $("ms-network").textContent = fmt(values.network);
  $("fps").textContent = fmt(values.fps);
  $("persons").textContent = values.persons === undefined ? "–" : String(values.persons);
  $("dropped").textContent = values.dropped === undefined ? "–" : String(values.dropped);
}

/** Blank the readout (nothing is being shown). */
export function clearReadout(mode = "idle") {
  showReadout(mode, {});
}

/** Bytes as "1.2 MB". */
export function megabytes(n) {
  return `${(n / 1e6).toFixed(n < 1e7 ? 1 : 0)} MB`;
}
