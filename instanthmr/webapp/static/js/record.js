// Recording a live session: the server keeps the frames it processes between Record and
// Stop (up to its size cap); the page shows how long, how big and how much is left.

import { megabytes } from "./ui.js";

const $ = (id) => document.getElementById(id);
const clock = (s) => `${Math.floor(s / 60)}:${String(Math.floor(s % 60)).padStart(2, "0")}`;

export class Recorder {
  constructor({ live, results, onError, onChange }) {
    Object.assign(this, { live, results, onError, onChange });
    this.status = null; // the server's last word on the running recording
    this.started = 0;
    this.limit = 100e6;
    this.button = $("record");
    this.button.onclick = () => (this.active ? this.stop() : this.start());
  }

  get active() {
    return Boolean(this.status && this.status.state === "recording");
  }

  /** The connection is up (or down): recording is possible only while it is up. */
  setAvailable(on) {
    this.button.disabled = !on && !this.active;
  }

  async start() {
    this.button.disabled = true;
    const status = await this.live.record("start");
    this.button.disabled = false;
    if (!status || status.state !== "recording") {
      this.onError("Recording could not start: the live connection is not open.");
      return;
    }
    this.started = performance.now();
    this.limit = status.limit_bytes || this.limit;
    this.status = status;
    this.update(status);
  }

  /** Stop (the button, Stop camera): the server keeps what was recorded. */
  async stop() {
    if (!this.active) return;
    this.button.disabled = true;
    const status = await this.live.record("stop");
    this.button.disabled = false;
    this.finish(status || { ...this.status, stop_reason: "disconnected" });
  }

  /** A frame's `recording` field, or a "recording" message from the server. */
  update(status) {
    if (!status || !this.status || status.key !== this.status.key) return; // not this one
    if (status.state !== "recording") {
      this.finish(status);
      return;
    }
    this.status = status;
    const left = Math.max(this.limit - status.bytes, 0);
    const el = $("record-info");
    el.hidden = false;
    el.innerHTML = "";
    const dot = document.createElement("span");
    dot.className = "dot";
    el.append(dot, `REC ${clock((performance.now() - this.started) / 1000)} · ${status.frames} frames · `
      + `${megabytes(status.bytes)} of ${megabytes(this.limit)} (${megabytes(left)} left)`);
    this.button.textContent = "Stop recording";
    this.button.classList.add("recording");
    this.onChange(status);
  }

  /** The live connection dropped: the server kept the recording under its key. */
  interrupted() {
    if (this.active) this.finish({ ...this.status, state: "done", stop_reason: "disconnected" });
  }

  finish(status) {
    if (!this.status) return;
    const { key, name } = this.status;
    this.status = null;
    $("record-info").hidden = true;
    this.button.textContent = "Record";
    this.button.classList.remove("recording");
    const frames = status && status.frames !== undefined ? status.frames : 0;
    const why = status && status.stop_reason === "size cap"
      ? ` (stopped at the size cap of ${megabytes(this.limit)})`
      : status && status.stop_reason === "disconnected" ? " (the connection was lost: what arrived is kept)" : "";
    if (status && status.stop_reason === "size cap")
      this.onError(`Recording stopped: it reached the server's size cap of ${megabytes(this.limit)}. Download it below, or record again.`);
    if (frames > 0) this.results.show(key, `${name}: ${frames} frames recorded${why}`, "recording");
    else this.results.note(`Recording ${name}: no frames were recorded.`);
    this.onChange(status);
  }
}
