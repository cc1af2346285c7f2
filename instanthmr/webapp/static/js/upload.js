// Uploads: drag-and-drop or the file picker, with upload progress and Cancel; the server
// processes the file in the background (its progress is polled) and keeps the results;
// then the preview it made (H.264 video or JPEG, which every browser shows) plays with the
// skeletons of the frame on screen.

import { deleteResult, getJSON, resultUrl, uploadFile } from "./api.js";
import { megabytes } from "./ui.js";

const $ = (id) => document.getElementById(id);
const POLL_MS = 250;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export class Uploads {
  constructor({ onStart, onState, onFrame, onError, onInfo, results }) {
    Object.assign(this, { onStart, onState, onFrame, onError, onInfo, results });
    this.generation = 0; // bumped by every new upload and reset: stale work stops
    this.frames = [];
    this.cancel = null;
    this.video = $("video");
    this.still = $("still");
    this.hook = window.__instanthmr;
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
    $("cancel").onclick = () => { if (this.cancel) this.cancel(); };
    this.video.addEventListener("seeked", () => this.sync());
    this.video.addEventListener("timeupdate", () => { if (!this.frameCallbacks) this.sync(); });
    this.video.addEventListener("loadeddata", () => {
      if (this.frames.length) this.setHook({ shown: true, width: this.video.videoWidth });
    });
    this.video.addEventListener("error", () => this.cannotShow(this.video));
    this.still.addEventListener("error", () => this.cannotShow(this.still));
  }

  setHook(values) {
    this.hook.upload = { ...this.hook.upload, ...values };
  }

  progress(text, fraction) {
    $("progress").hidden = false;
    $("progress-text").textContent = text;
    const bar = $("progress-bar");
    if (fraction === null) bar.removeAttribute("value");
    else bar.value = fraction;
  }

  async send(file) {
    await this.onStart();
    this.reset();
    const gen = this.generation;
    this.file = file;
    this.setHook({ state: "uploading", name: file.name, shown: false, framesShown: 0, error: null });
    this.results.note(`${file.name}: uploading…`);
    this.progress(`Uploading ${file.name}: 0%`, 0);
    this.onState("uploading", "0%");
    const t0 = performance.now();
    const upload = uploadFile(file, (loaded, total) => {
      if (gen !== this.generation) return;
      const pct = total ? Math.round((100 * loaded) / total) : 0;
      this.progress(`Uploading ${file.name}: ${pct}% (${megabytes(loaded)} of ${megabytes(total)})`, total ? loaded / total : null);
      this.onState("uploading", `${pct}%`);
    });
    this.cancel = () => upload.abort();
    let status;
    try {
      status = await upload.promise;
    } catch (err) {
      if (gen !== this.generation) return;
      this.end(err.cancelled ? "cancelled" : "failed");
      if (err.cancelled) this.onInfo(`Upload of ${file.name} cancelled.`);
      else this.onError(err.message);
      return;
    }
    this.uploadMs = performance.now() - t0;
    const key = status.key;
    this.key = key;
    this.setHook({ state: "processing", key });
    this.cancel = () => {
      this.generation += 1;
      deleteResult(key); // stops the server's work within a frame and deletes what it made
      this.end("cancelled");
      this.onInfo(`Processing of ${file.name} cancelled: the server stopped.`);
    };
    while (status.state === "processing") {
      const total = status.frames_total;
      const of = total ? ` of ${total}` : "";
      this.progress(`Processing ${file.name}: ${status.frames_done}${of} frames`, total ? status.frames_done / total : null);
      this.onState("processing", total ? `${status.frames_done}/${total}` : "");
      await sleep(POLL_MS);
      if (gen !== this.generation) return;
      try {
        status = await getJSON(resultUrl(key));
      } catch (err) {
        if (gen !== this.generation) return;
        this.end("failed");
        this.onError(`Lost the upload's progress: ${err.message}`);
        return;
      }
      if (gen !== this.generation) return;
    }
    if (status.state !== "done") {
      deleteResult(key);
      this.end("failed");
      this.onError(`${file.name} could not be processed: ${status.error || status.state}`);
      return;
    }
    let result;
    try {
      result = await getJSON(resultUrl(key, "/frames", { layout: "live" }));
    } catch (err) {
      if (gen !== this.generation) return;
      this.end("failed");
      this.onError(err.message);
      return;
    }
    if (gen !== this.generation) return;
    $("progress").hidden = true;
    this.cancel = null;
    this.show(file, status, result);
  }

  /** Play the preview (or the original where there is none) with its results. */
  show(file, status, result) {
    this.frames = result.frames;
    this.status = status;
    this.fps = result.preview_fps || 30;
    this.lastIndex = -1;
    const n = this.frames.length;
    const cut = result.truncated ? ` (the first ${n} only)` : "";
    const text = result.type === "video" ? `${file.name}: ${n} frames${cut}` : `${file.name}: ${this.frames[0].persons.length} persons`;
    this.results.show(status.key, text);
    this.setHook({ state: "done", frames: n, preview: status.preview, previewError: status.preview_error });
    this.onState("upload");
    // the preview shows exactly the processed frames: frame i at i / fps seconds
    this.indexed = Boolean(status.preview);
    const src = status.preview ? resultUrl(status.key, "/preview").toString() : URL.createObjectURL(file);
    this.objectUrl = status.preview ? null : src;
    if (result.type === "video") {
      this.still.hidden = true;
      this.video.hidden = false;
      this.video.srcObject = null;
      this.video.loop = true;
      this.video.controls = true;
      this.video.src = src;
      this.watchFrames();
      this.video.play().catch(() => {});
    } else {
      this.video.hidden = true;
      this.still.hidden = false;
      this.still.onload = () => {
        this.setHook({ shown: true, width: this.still.naturalWidth, framesShown: 1 });
        this.onFrame(this.frames[0], this.still, this.readoutExtras());
      };
      this.still.src = src;
    }
  }

  readoutExtras() {
    const s = this.status;
    return { uploadMs: this.uploadMs, fps: s && s.elapsed_s > 0 ? s.frames_done / s.elapsed_s : NaN };
  }

  /** Follow the frames the video presents (requestVideoFrameCallback where the browser has it). */
  watchFrames() {
    const v = this.video;
    this.frameCallbacks = "requestVideoFrameCallback" in v;
    if (!this.frameCallbacks) return;
    const gen = this.generation;
    const onFrame = (_now, meta) => {
      if (gen !== this.generation) return;
      this.sync(meta.mediaTime);
      v.requestVideoFrameCallback(onFrame);
    };
    v.requestVideoFrameCallback(onFrame);
  }

  /** Show the results of the frame at `t` seconds of the video. */
  sync(t = this.video.currentTime) {
    if (!this.frames.length || this.video.srcObject || this.video.hidden) return;
    let index;
    if (this.indexed) {
      index = Math.min(this.frames.length - 1, Math.max(0, Math.round(t * this.fps)));
    } else { // the original file: the nearest timestamp
      index = 0;
      this.frames.forEach((f, i) => {
        if (Math.abs((f.timestamp ?? 0) - t) < Math.abs((this.frames[index].timestamp ?? 0) - t)) index = i;
      });
    }
    if (index === this.lastIndex) return;
    this.lastIndex = index;
    this.setHook({ framesShown: (this.hook.upload.framesShown || 0) + 1, index });
    this.onFrame(this.frames[index], this.video, this.readoutExtras());
  }

  cannotShow(media) {
    if (!this.frames.length || (media === this.video && this.video.srcObject)) return;
    const name = this.file ? this.file.name : "the upload";
    const why = this.status && this.status.preview_error
      ? `this browser cannot play it and the server made no preview (${this.status.preview_error})`
      : "this browser cannot show it";
    const text = `Cannot show ${name}: ${why}. The results are ready: download them below.`;
    $("stage-note").textContent = text;
    $("stage-note").hidden = false;
    this.setHook({ shown: false, error: text });
  }

  end(state) {
    $("progress").hidden = true;
    this.cancel = null;
    this.setHook({ state });
    if (state !== "done") this.results.restore(); // the previous result's downloads again
    this.onState("idle");
  }

  /** Leave upload mode (the camera or a new upload takes the stage). */
  reset() {
    this.generation += 1;
    if (this.cancel) this.cancel();
    this.cancel = null;
    this.frames = [];
    this.status = null;
    this.lastIndex = -1;
    if (this.objectUrl) URL.revokeObjectURL(this.objectUrl);
    this.objectUrl = null;
    this.still.hidden = true;
    this.still.removeAttribute("src");
    this.video.hidden = false;
    this.video.controls = false;
    this.video.pause();
    this.video.removeAttribute("src");
    this.video.load();
    $("progress").hidden = true;
    $("stage-note").hidden = true;
  }
}
