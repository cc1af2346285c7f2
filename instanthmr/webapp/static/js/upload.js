// Uploads: drag-and-drop or the file picker, results drawn on the image or played with the video.

import { predictFile } from "./api.js";

const $ = (id) => document.getElementById(id);

export class Uploads {
  constructor({ onStart, onFrame, onError }) {
    Object.assign(this, { onStart, onFrame, onError });
    this.file = null;
    this.frames = [];
    this.video = $("video");
    this.still = $("still");
    const stage = $("stage");
    stage.addEventListener("dragover", (ev) => {
      ev.preventDefault();
      stage.classList.add("dragover");
    });
    stage.addEventListener("dragleave", () => stage.classList.remove("dragover"));
    stage.addEventListener("drop", (ev) => {
      ev.preventDefault();
      stage.classList.remove("dragover");
      if (ev.dataTransfer.files.length) this.send(ev.dataTransfer.files[0]);
    });
    $("file-input").addEventListener("change", (ev) => {
      if (ev.target.files.length) this.send(ev.target.files[0]);
      ev.target.value = "";
    });
    $("export-jsonl").onclick = () => this.download("jsonl");
    $("export-npz").onclick = () => this.download("npz");
    this.video.addEventListener("timeupdate", () => this.showVideoFrame());
    this.video.addEventListener("seeked", () => this.showVideoFrame());
  }

  async send(file) {
    this.onStart();
    $("upload-info").textContent = `processing ${file.name}…`;
    $("export-controls").hidden = false;
    try {
      const t0 = performance.now();
      const result = await predictFile(file);
      const rtt = performance.now() - t0;
      this.file = file;
      const url = URL.createObjectURL(file);
      if (result.type === "video") {
        this.frames = result.frames;
        const cut = result.truncated ? ` (first ${result.frames.length} frames only)` : "";
        $("upload-info").textContent = `${file.name}: ${result.frames.length} frames${cut}`;
        this.still.hidden = true;
        this.video.hidden = false;
        this.video.srcObject = null;
        this.video.src = url;
        this.video.loop = true;
        this.video.controls = true;
        await this.video.play().catch(() => {});
      } else {
        this.frames = [];
        $("upload-info").textContent = `${file.name}: ${result.persons.length} persons`;
        this.video.hidden = true;
        this.still.hidden = false;
        this.still.onload = () => this.onFrame(result, this.still, rtt);
        this.still.src = url;
      }
    } catch (err) {
      $("upload-info").textContent = "";
      this.onError(err.message);
    }
  }

  showVideoFrame() {
    if (!this.frames.length || this.video.srcObject) return;
    const t = this.video.currentTime;
    let best = this.frames[0];
    for (const f of this.frames) if (Math.abs((f.timestamp ?? 0) - t) < Math.abs((best.timestamp ?? 0) - t)) best = f;
    this.onFrame(best, this.video);
  }

  async download(kind) {
    if (!this.file) return;
    try {
      const blob = await predictFile(this.file, kind);
      const a = document.createElement("a");
      a.href = URL.createObjectURL(blob);
      a.download = `instanthmr-results.${kind}`;
      a.click();
      setTimeout(() => URL.revokeObjectURL(a.href), 1000);
    } catch (err) {
      this.onError(err.message);
    }
  }

  /** Leave upload mode (the camera takes the stage). */
  reset() {
    this.frames = [];
    this.file = null;
    this.still.hidden = true;
    this.video.hidden = false;
    this.video.controls = false;
    this.video.removeAttribute("src");
    $("export-controls").hidden = true;
  }
}
