// The results bar: the kept result now on the page (an upload or a recording) and its
// downloads, made on the server from the kept frames (the models do not run again).

import { deleteResult, saveExport } from "./api.js";

const $ = (id) => document.getElementById(id);

export class ResultsBar {
  constructor({ onError, onDownload }) {
    Object.assign(this, { onError, onDownload });
    this.key = null;
    this.kind = null;
    this.made = new Set(); // every result this page made: deleted when the page goes away
    this.bar = $("export-controls");
    this.bar.querySelectorAll("button[data-format]").forEach((button) => {
      button.onclick = () => this.download(button.dataset.format, button);
    });
    // results on the server are deleted when the page goes away (or after their time limit)
    window.addEventListener("pagehide", () => this.made.forEach((key) => deleteResult(key, true)));
  }

  /**
   * Show `text` and the downloads for the result under `key` (`kind` "upload" or
   * "recording"). A previous upload's results are deleted on the server; a previous
   * recording is kept there (until it expires or the page goes away).
   */
  show(key, text, kind = "upload") {
    if (this.key && this.key !== key && this.kind === "upload") this.forget(this.key);
    this.key = key;
    this.kind = kind;
    this.text = text;
    this.made.add(key);
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

  /** Back to the result on the page after a note (an upload that failed or was cancelled). */
  restore() {
    if (this.key) this.show(this.key, this.text, this.kind);
    else this.note("");
  }

  forget(key) {
    deleteResult(key);
    this.made.delete(key);
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
