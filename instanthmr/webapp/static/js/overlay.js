// The 2D overlay: boxes, skeletons and track ids drawn over the video or image.

const rgb = (c) => `rgb(${c[0]},${c[1]},${c[2]})`;

/**
 * Draw one frame record on `canvas`, which covers an element showing media of
 * `mediaW` x `mediaH` pixels with object-fit: contain.
 */
export function drawOverlay(canvas, frame, skeleton, mediaW, mediaH) {
  const dpr = window.devicePixelRatio || 1;
  const w = Math.round(canvas.clientWidth * dpr);
  const h = Math.round(canvas.clientHeight * dpr);
  if (canvas.width !== w || canvas.height !== h) Object.assign(canvas, { width: w, height: h });
  const ctx = canvas.getContext("2d");
  ctx.clearRect(0, 0, w, h);
  if (!frame || !mediaW || !mediaH) return 0;
  // results are in the pixels of the image the server saw; map them onto the shown media
  const [iw, ih] = frame.image_size;
  const fit = Math.min(w / mediaW, h / mediaH);
  const ox = (w - mediaW * fit) / 2;
  const oy = (h - mediaH * fit) / 2;
  const sx = (fit * mediaW) / iw;
  const sy = (fit * mediaH) / ih;
  const X = (x) => ox + x * sx;
  const Y = (y) => oy + y * sy;
  ctx.lineWidth = 2 * dpr;
  ctx.font = `${14 * dpr}px system-ui, sans-serif`;
  for (const p of frame.persons) {
    const j = p.joints_2d;
    skeleton.edges.forEach(([a, b], e) => {
      ctx.strokeStyle = rgb(skeleton.edge_colors[e]);
      ctx.beginPath();
      ctx.moveTo(X(j[a][0]), Y(j[a][1]));
      ctx.lineTo(X(j[b][0]), Y(j[b][1]));
      ctx.stroke();
    });
    const [x1, y1, x2, y2] = p.bbox;
    ctx.strokeStyle = "rgba(61,165,255,0.9)";
    ctx.strokeRect(X(x1), Y(y1), X(x2) - X(x1), Y(y2) - Y(y1));
    const label = p.track_id >= 0 ? `#${p.track_id}` : "new";
    ctx.fillStyle = "rgba(0,0,0,0.6)";
    ctx.fillRect(X(x1), Y(y1) - 18 * dpr, ctx.measureText(label).width + 8 * dpr, 18 * dpr);
    ctx.fillStyle = "#fff";
    ctx.fillText(label, X(x1) + 4 * dpr, Y(y1) - 4 * dpr);
  }
  return frame.persons.length;
}
