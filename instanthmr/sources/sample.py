"""The embedded sample clip: real footage, cut from OpenCV's ``vtest.avi``.

``instanthmr/assets/sample.mp4`` is what ``instanthmr demo`` and ``instanthmr start`` run on
when no input is named. It is a 10-second cut (frames 120-219, 100 frames, 768x576 at
10 fps) of ``vtest.avi``, OpenCV's own sample video (``samples/data`` in the OpenCV source
tree, Apache-2.0; see ``assets/sample.NOTICE.txt``): a static elevated camera over a campus
path with 7-9 pedestrians walking in and out of view, small in the frame. Those frames are
the busiest stretch of the video. The clip is H.264 (libx264 through PyAV, CRF
:data:`CRF`, one thread so the encoding is repeatable), about 1 MB.

``tools/make_sample.py --source PATH/TO/vtest.avi`` rebuilds it with
:func:`make_sample_clip`.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import cv2

START_FRAME = 120
NUM_FRAMES = 100
CRF = 20
MAX_BYTES = 2_000_000
SOURCE_SIZE = (768, 576)
SOURCE_FRAMES = 795


@dataclass
class ClipReport:
    """What :func:`make_sample_clip` wrote."""

    path: Path
    frames: int
    size: tuple[int, int]
    fps: float
    bytes: int


def read_source_frames(
    source: str | os.PathLike[str], start: int, count: int
) -> tuple[list, float]:
    """``count`` BGR frames of ``source`` from frame ``start`` (read in order), and its fps."""
    cap = cv2.VideoCapture(os.fspath(source))
    if not cap.isOpened():
        raise ValueError(f"cannot open {source} as a video")
    try:
        fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
        frames = []
        index = 0
        while len(frames) < count:
            ok, frame = cap.read()
            if not ok:
                break
            if index >= start:
                frames.append(frame)
            index += 1
    finally:
        cap.release()
    if len(frames) < count:
        raise ValueError(
            f"{source} has {index} frames; frames {start}..{start + count - 1} were asked for"
        )
    return frames, fps


def check_vtest(source: str | os.PathLike[str]) -> None:
    """Refuse a file that is not OpenCV's vtest.avi (size and frame count), naming what it is."""
    cap = cv2.VideoCapture(os.fspath(source))
    try:
        size = (int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)))
        count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    finally:
        cap.release()
    if size != SOURCE_SIZE or count != SOURCE_FRAMES:
        raise ValueError(
            f"{source} is {size[0]}x{size[1]} with {count} frames; OpenCV's vtest.avi is "
            f"{SOURCE_SIZE[0]}x{SOURCE_SIZE[1]} with {SOURCE_FRAMES} frames "
            "(samples/data/vtest.avi in the OpenCV sources, or Debian's opencv-doc package)"
        )


def make_sample_clip(
    source: str | os.PathLike[str],
    output: str | os.PathLike[str],
    *,
    start: int = START_FRAME,
    frames: int = NUM_FRAMES,
    crf: int = CRF,
) -> ClipReport:
    """Cut ``frames`` frames of ``source`` from ``start`` into an H.264 MP4 at ``output``.

    Written to a temporary file and moved into place, so an interrupted run never leaves a
    broken clip. Raises ValueError when the result is over :data:`MAX_BYTES`.
    """
    import av

    images, fps = read_source_frames(source, start, frames)
    h, w = images[0].shape[:2]
    out = Path(output)
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=out.stem, suffix=".mp4", dir=out.parent)
    os.close(fd)
    try:
        with av.open(tmp, "w", format="mp4") as container:
            stream = container.add_stream("libx264", rate=round(fps))
            stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
            stream.options = {"crf": str(crf), "preset": "slow", "threads": "1"}
            stream.codec_context.thread_count = 1
            for bgr in images:
                frame = av.VideoFrame.from_ndarray(bgr, format="bgr24")
                container.mux(stream.encode(frame))
            container.mux(stream.encode())
        size = Path(tmp).stat().st_size
        if size > MAX_BYTES:
            raise ValueError(f"the clip is {size} bytes, over the {MAX_BYTES} limit: raise --crf")
        os.chmod(tmp, 0o644)  # mkstemp makes it owner-only; a package file is readable
        os.replace(tmp, out)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return ClipReport(out, len(images), (w, h), fps, out.stat().st_size)
