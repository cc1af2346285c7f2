// The webcam: a camera picker, getUserMedia, and JPEG frames grabbed from the <video>.

const MAX_WIDTH = 640; // frames are scaled down to this width before sending
const JPEG_QUALITY = 0.8;

/** A readable message for a getUserMedia failure. */
export function cameraErrorMessage(err) {
  const name = err && err.name;
  if (name === "NotAllowedError" || name === "SecurityError")
    return "Camera permission denied: allow the camera for this page in the browser's site settings, or upload a file instead.";
  if (name === "NotFoundError" || name === "OverconstrainedError")
    return "No camera found: plug one in and press Start camera again, or upload a file instead.";
  if (name === "NotReadableError")
    return "The camera is in use by another application: close it and press Start camera again.";
  return `Camera error: ${err && err.message ? err.message : err}`;
}

export class Camera {
  constructor(video, select) {
    this.video = video;
    this.select = select;
    this.stream = null;
    this.canvas = document.createElement("canvas");
  }

  /** True when this page may use getUserMedia (https, localhost or 127.0.0.1). */
  static available() {
    return Boolean(navigator.mediaDevices && navigator.mediaDevices.getUserMedia);
  }

  /** Fill the picker with the video inputs (labels appear once permission is given). */
  async listCameras() {
    if (!Camera.available()) return;
    const devices = await navigator.mediaDevices.enumerateDevices();
    const current = this.select.value;
    this.select.replaceChildren(new Option("default", ""));
    devices.filter((d) => d.kind === "videoinput").forEach((d, i) => {
      this.select.add(new Option(d.label || `camera ${i + 1}`, d.deviceId));
    });
    this.select.value = current;
  }

  async start() {
    if (!Camera.available())
      throw new Error("This page cannot use a camera here: browsers allow it only over https or on localhost / 127.0.0.1. Uploads still work.");
    this.stop();
    const id = this.select.value;
    const video = id ? { deviceId: { exact: id } } : { width: { ideal: 1280 }, height: { ideal: 720 } };
    this.stream = await navigator.mediaDevices.getUserMedia({ video, audio: false });
    this.video.srcObject = this.stream;
    await this.video.play();
    await this.listCameras();
  }

  stop() {
    if (this.stream) this.stream.getTracks().forEach((t) => t.stop());
    this.stream = null;
    this.video.srcObject = null;
  }

  get live() {
    return this.stream !== null;
  }

  /** The current frame as a JPEG Blob (null before the first frame). */
  grab() {
    const v = this.video;
    if (!this.live || v.readyState < 2 || !v.videoWidth) return Promise.resolve(null);
    const scale = Math.min(1, MAX_WIDTH / v.videoWidth);
    this.canvas.width = Math.round(v.videoWidth * scale);
    this.canvas.height = Math.round(v.videoHeight * scale);
    this.canvas.getContext("2d").drawImage(v, 0, 0, this.canvas.width, this.canvas.height);
    return new Promise((resolve) => this.canvas.toBlob(resolve, "image/jpeg", JPEG_QUALITY));
  }
}
