// The results bar: the kept result now on the page (an upload or a recording) and its
// downloads, made on the server from the kept frames (the models do not run again).

import { deleteResult, saveExport } from "./api.js";

const $ = (id) => document.getElementById(id);

export class ResultsBar {
  constructor({ onError, onDownload }) {
    Object.assign(this, { onError, onDownload });
    this.key = null;
    this.bar = $("export-controls");
    this.bar.querySelectorAll("button[data-format]").forEach((button) => {
      button.onclick = () => this.download(button.dataset.format, button);
    });
    // results on the server are deleted when the page goes away (or after their time limit)
    window.addEventListener("pagehide", () => { if (this.key) deleteResult(this.key, true); });
  }

  /** Show `text` and the downloads for the result under `key`; the previous one is deleted. */
  show(key, text) {
    if (this.key && this.key !== key) deleteResult(this.key);
    this.key = key;
    $("upload-info").textContent = text;
    this.bar.hidden = false;
    this.bar.querySelectorAll("button[data-format]").forEach((b) => { b.disabled = false; });
  }

  /** Text only, no downloads yet (an upload being processed). */
  note(text) {
    $("upload-info").textContent = text;
    this.bar.hidden = !text;
    this.bar.querySelectorAll("button[data-format]").forEach((b) => { b.disabled = true; });
  }

  /** Forget the result on the page (and delete it on the server). */
  drop() {
    if (this.key) deleteResult(this.key);
    this.key = null;
    this.bar.hidden = true;
  }

  async download(format, button) {
    if (!this.key) return;
    button.disabled = true;
    const t0 = performance.now();
    try {
      const saved = await saveExport(this.key, format);
      this.onDownload({ ...saved, ms: performance.now() - t0 });
    } catch (err) {
      this.onError(err.message);
    } finally {
      button.disabled = false;
    }
  }
}
