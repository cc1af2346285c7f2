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

/** An Error carrying the server's message for a failed response. */
export async function responseError(res, what) {
  const retry = res.headers.get("Retry-After");
  const msg = await detail(res);
  const err = new Error(`${what} (${res.status}): ${msg}${retry ? ` (retry in ${retry} s)` : ""}`);
  err.status = res.status;
  return err;
}

/**
 * POST a file to /api/uploads with upload progress (XMLHttpRequest: fetch reports none).
 * Returns {promise, abort}; the promise gives the new result's status (with its `key`).
 */
export function uploadFile(file, onProgress) {
  const xhr = new XMLHttpRequest();
  const promise = new Promise((resolve, reject) => {
    xhr.open("POST", apiUrl("/api/uploads", { name: file.name }));
    xhr.setRequestHeader("Content-Type", file.type || "application/octet-stream");
    xhr.responseType = "json";
    xhr.upload.onprogress = (ev) => onProgress(ev.loaded, ev.lengthComputable ? ev.total : file.size);
    xhr.onload = () => {
      if (xhr.status === 202) return resolve(xhr.response);
      const body = xhr.response || {};
      const retry = xhr.getResponseHeader("Retry-After");
      const err = new Error(`upload refused (${xhr.status}): ${body.detail || xhr.statusText}${retry ? ` (retry in ${retry} s)` : ""}`);
      err.status = xhr.status;
      reject(err);
    };
    xhr.onerror = () => reject(new Error("the upload failed: the server could not be reached"));
    xhr.onabort = () => {
      const err = new Error("upload cancelled");
      err.cancelled = true;
      reject(err);
    };
    xhr.send(file);
  });
  return { promise, abort: () => xhr.abort() };
}

/** URL of a kept result's part: "" (status), "/frames", "/preview", "/export/jsonl"... */
export function resultUrl(key, part = "", params = {}) {
  return apiUrl(`/api/results/${encodeURIComponent(key)}${part}`, params);
}

/** Delete a kept result (cancels its processing); errors are ignored. */
export function deleteResult(key, keepalive = false) {
  return fetch(resultUrl(key), { method: "DELETE", keepalive }).catch(() => {});
}

/** Fetch a download of a kept result and save it under the server's file name. */
export async function saveExport(key, format) {
  const res = await fetch(resultUrl(key, `/export/${format}`));
  if (!res.ok) throw await responseError(res, `${format.toUpperCase()} download failed`);
  const blob = await res.blob();
  const match = /filename="([^"]+)"/.exec(res.headers.get("Content-Disposition") || "");
  const name = match ? match[1] : `instanthmr.${format}`;
  const a = document.createElement("a");
  a.href = URL.createObjectURL(blob);
  a.download = name;
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 10000);
  return { format, name, bytes: blob.size };
}

/**
 * The live stream: sends one frame, waits for its answer (or a timeout), then sends the
 * next, at most `maxFps` frames per second. Reconnects after the server goes away.
 */
export class LiveClient {
  constructor({ onHello, onFrame, onError, onState, onRecording, grab }) {
    Object.assign(this, { onHello, onFrame, onError, onState, onRecording, grab });
    this.waiters = [];
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
    this.waiters.splice(0).forEach((w) => w(null));
  }

  get open() {
    return Boolean(this.ws && this.ws.readyState === WebSocket.OPEN);
  }

  /** Send a recording command ("start" or "stop"); resolves with the server's answer
   *  (null when the connection is gone or no answer came within `timeoutMs`). */
  record(action, timeoutMs = 5000) {
    if (!this.open) return Promise.resolve(null);
    return new Promise((resolve) => {
      const timer = setTimeout(() => done(null), timeoutMs);
      const done = (msg) => {
        clearTimeout(timer);
        this.waiters = this.waiters.filter((w) => w !== done);
        resolve(msg);
      };
      this.waiters.push(done);
      this.ws.send(JSON.stringify({ type: "record", action }));
    });
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
      this.waiters.splice(0).forEach((w) => w(null));
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
    if (msg.type === "recording") {
      const waiter = this.waiters.shift();
      if (waiter) waiter(msg);
      this.onRecording(msg);
      return;
    }
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
    const ws = this.ws;
    const blob = await this.grab();
    if (!this.running || this.ws !== ws || ws.readyState !== WebSocket.OPEN) return; // stopped meanwhile
    if (!blob) {
      this.timer = setTimeout(() => this.sendNext(), 100);
      return;
    }
    this.inflight = true;
    this.sentAt = performance.now();
    ws.send(blob);
    this.timer = setTimeout(() => this.sendNext(), 3000); // answer lost: send again
  }
}
