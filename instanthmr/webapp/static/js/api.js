// Talking to the server: the token, JSON endpoints, uploads and the live WebSocket.

const token = new URLSearchParams(window.location.search).get("token");

/** A same-origin URL for `path`, with the page's ?token= passed along. */
export function apiUrl(path, params = {}) {
  const url = new URL(path, window.location.href);
  if (token) url.searchParams.set("token", token);
  for (const [k, v] of Object.entries(params)) url.searchParams.set(k, v);
  return url;
}

/** GET a JSON endpoint; throws an Error with the server's message on failure. */
export async function getJSON(path) {
  const res = await fetch(apiUrl(path));
  if (!res.ok) throw new Error(`${path}: ${res.status} ${await detail(res)}`);
  return res.json();
}

async function detail(res) {
  try {
    const body = await res.json();
    return body.detail || JSON.stringify(body);
  } catch {
    return res.statusText;
  }
}

/** POST a file to /api/predict. Returns parsed JSON, or a Blob when `exportKind` is set. */
export async function predictFile(file, exportKind = null) {
  const params = exportKind ? { export: exportKind } : {};
  const res = await fetch(apiUrl("/api/predict", params), {
    method: "POST",
    headers: { "Content-Type": file.type || "application/octet-stream" },
    body: file,
  });
  if (!res.ok) {
    const retry = res.headers.get("Retry-After");
    const msg = await detail(res);
    throw new Error(`upload refused (${res.status}): ${msg}${retry ? ` (retry in ${retry} s)` : ""}`);
  }
  return exportKind ? res.blob() : res.json();
}

/**
 * The live stream: sends one frame, waits for its answer (or a timeout), then sends the
 * next, at most `maxFps` frames per second. Reconnects after the server goes away.
 */
export class LiveClient {
  constructor({ onHello, onFrame, onError, onState, grab }) {
    Object.assign(this, { onHello, onFrame, onError, onState, grab });
    this.maxFps = 30;
    this.running = false;
    this.ws = null;
    this.inflight = false;
    this.sentAt = 0;
    this.timer = null;
    this.retryMs = 500;
  }

  start() {
    this.running = true;
    this.connect();
  }

  stop() {
    this.running = false;
    clearTimeout(this.timer);
    if (this.ws) this.ws.close();
    this.ws = null;
  }

  connect() {
    const url = apiUrl("/ws");
    url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
    const ws = new WebSocket(url);
    this.ws = ws;
    ws.onopen = () => {
      this.retryMs = 500;
      this.inflight = false;
      this.onState("live");
    };
    ws.onmessage = (ev) => this.receive(JSON.parse(ev.data));
    ws.onclose = (ev) => {
      if (this.ws !== ws) return;
      this.onState("down");
      if (!this.running) return;
      const why = ev.code === 1008 ? "the server refused the token (open the page as /?token=...)"
        : "the server is gone";
      this.onError(`Live connection lost: ${why}. Reconnecting…`, "server");
      this.timer = setTimeout(() => this.connect(), this.retryMs);
      this.retryMs = Math.min(this.retryMs * 2, 8000);
    };
  }

  receive(msg) {
    if (msg.type === "hello") {
      this.maxFps = msg.max_fps || this.maxFps;
      this.onHello(msg);
      this.schedule();
      return;
    }
    const rtt = performance.now() - this.sentAt;
    this.inflight = false;
    if (msg.type === "frame") this.onFrame(msg, rtt);
    else if (msg.type === "error") this.onError(msg.error, msg.busy ? "busy" : "frame");
    this.schedule(msg.busy ? (msg.retry_after || 1) * 1000 : 0);
  }

  schedule(extraMs = 0) {
    clearTimeout(this.timer);
    const wait = Math.max(extraMs, this.sentAt + 1000 / this.maxFps - performance.now(), 0);
    this.timer = setTimeout(() => this.sendNext(), wait);
  }

  async sendNext() {
    if (!this.running || !this.ws || this.ws.readyState !== WebSocket.OPEN) return;
    if (this.inflight && performance.now() - this.sentAt < 3000) return;
    const blob = await this.grab();
    if (!blob) {
      this.timer = setTimeout(() => this.sendNext(), 100);
      return;
    }
    this.inflight = true;
    this.sentAt = performance.now();
    this.ws.send(blob);
    this.timer = setTimeout(() => this.sendNext(), 3000); // answer lost: send again
  }
}
