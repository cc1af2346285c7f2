// Page furniture: the model banner (random-init, stand-in), errors, the latency readout and
// the FPS counter.

const $ = (id) => document.getElementById(id);

/** Errors shown in the page, one line per kind (a newer message of a kind replaces it). */
export function showError(message, kind = "general") {
  const box = $("errors");
  let line = box.querySelector(`[data-kind="${kind}"]`);
  if (!line) {
    line = document.createElement("div");
    line.dataset.kind = kind;
    box.appendChild(line);
  }
  line.textContent = message;
  const close = document.createElement("button");
  close.textContent = "dismiss";
  close.onclick = () => line.remove();
  line.appendChild(close);
  window.__instanthmr.errors.push(message);
}

export function clearError(kind) {
  const line = $("errors").querySelector(`[data-kind="${kind}"]`);
  if (line) line.remove();
}

export function showHealth(health) {
  const det = health.detector ? `, detector ${health.detector.name}` : "";
  $("model-info").textContent =
    `${health.model} on ${health.provider}${det} · v${health.version}`;
  const notes = [];
  // A pose model that is not InstantHMR (random-init export, BlazePose stand-in) says what
  // it is: the server sends the same notice the demo, the files and the viewer carry.
  if (health.model_notice) notes.push(health.model_notice);
  if (health.detector && health.detector.random_init)
    notes.push("The person detector is a random-init export: detections are meaningless.");
  $("banner").hidden = notes.length === 0;
  $("banner").textContent = notes.join(" ");
}

export function setConnection(state) {
  const pill = $("conn");
  pill.textContent = state === "live" ? "live" : state === "down" ? "disconnected" : state;
  pill.className = `pill ${state}`;
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
}

/** Latency of one answered frame: detector, HMR, server and network milliseconds. */
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

export function showReadout(lat, fps, frame) {
  $("ms-detect").textContent = fmt(lat.detect);
  $("ms-hmr").textContent = fmt(lat.hmr);
  $("ms-server").textContent = fmt(lat.server);
  $("ms-network").textContent = fmt(lat.network);
  $("fps").textContent = fmt(fps);
  $("persons").textContent = String(frame.persons.length);
  if (frame.dropped !== undefined) $("dropped").textContent = String(frame.dropped);
}
