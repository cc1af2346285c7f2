"""Annotated video: 2D skeletons, boxes and labels drawn with OpenCV, written as mp4.

:func:`draw_results` returns a new RGB image with every person's skeleton (limb-group
colours from :mod:`instanthmr.skeleton`), box and ``id N 0.87`` label.
:class:`AnnotatedVideoWriter` writes RGB frames to an ``.mp4`` (``mp4v``, which every
opencv-python wheel's FFmpeg can encode) or an ``.avi`` (``MJPG``).
"""

from __future__ import annotations

import logging
import math
import os
from pathlib import Path

import cv2
import numpy as np

from ..geometry import validate_image
from ..results import FrameResult
from ..skeleton import BODY_EDGES, FULL_EDGES, NUM_JOINTS, edge_colors, joint_colors
from .formats_common import unwritable_as_clear_error

log = logging.getLogger(__name__)

FOURCC_BY_SUFFIX: dict[str, str] = {".mp4": "mp4v", ".m4v": "mp4v", ".mov": "mp4v", ".avi": "MJPG"}
"""Codec used for each supported output suffix."""


def track_color(track_id: int) -> tuple[int, int, int]:
    """A stable, saturated RGB colour for a track id (grey for untracked, id -1)."""
    if track_id < 0:
        return (200, 200, 200)
    hue = (track_id * 0.61803398875) % 1.0  # golden-ratio steps keep neighbours apart
    hsv = np.array([[[hue * 180, 200, 255]]], dtype=np.uint8)
    r, g, b = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)[0, 0]
    return int(r), int(g), int(b)


def _pt(xy: np.ndarray, limit: int) -> tuple[int, int]:
    x, y = np.clip(np.round(xy), -limit, limit).astype(int)
    return int(x), int(y)


def draw_results(
    image_rgb: np.ndarray, frame: FrameResult, *, full_skeleton: bool = False
) -> np.ndarray:
    """A copy of ``image_rgb`` with each person's skeleton, box and label drawn on it.

    Args:
        image_rgb: the frame the results came from, RGB ``uint8`` (H, W, 3).
        frame: the results for that frame.
        full_skeleton: draw face, toes and finger chains too (default: body and hands).

    Raises:
        ValueError: the image size differs from ``frame.image_size``.
    """
    image = validate_image(image_rgb)
    h, w = image.shape[:2]
    if frame.persons and min(frame.image_size) > 0 and tuple(frame.image_size) != (w, h):
        raise ValueError(
            f"image is {w}x{h} but the results are for a "
            f"{frame.image_size[0]}x{frame.image_size[1]} frame; draw on the "
            "frame the results came from"
        )
    out = np.ascontiguousarray(image.copy())
    edges = FULL_EDGES if full_skeleton else BODY_EDGES
    e_colors = [tuple(int(c) for c in col) for col in edge_colors(full_skeleton)]
    j_colors = [tuple(int(c) for c in col) for col in joint_colors()]
    used = sorted({j for e in edges for j in e}) if not full_skeleton else range(NUM_JOINTS)
    thick = max(1, round(min(w, h) / 320))
    radius = thick + 1
    limit = 8 * max(w, h)  # keeps wild coordinates inside OpenCV's integer range
    font_scale = max(0.4, min(w, h) / 900)
    for person in frame.persons:
        pts = person.joints_2d
        for (a, b), color in zip(edges, e_colors, strict=True):
            cv2.line(out, _pt(pts[a], limit), _pt(pts[b], limit), color, thick, cv2.LINE_AA)
        for j in used:
            cv2.circle(out, _pt(pts[j], limit), radius, j_colors[j], -1, cv2.LINE_AA)
        color = track_color(person.track_id)
        p1, p2 = _pt(person.bbox[:2], limit), _pt(person.bbox[2:], limit)
        cv2.rectangle(out, p1, p2, color, thick)
        tid = str(person.track_id) if person.track_id >= 0 else "-"
        label = f"id {tid} {person.score:.2f}"
        (tw, th), base = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, font_scale, thick)
        x, y = p1[0], max(p1[1], th + base + 2)
        cv2.rectangle(out, (x, y - th - base - 2), (x + tw + 4, y), color, -1)
        cv2.putText(
            out,
            label,
            (x + 2, y - base),
            cv2.FONT_HERSHEY_SIMPLEX,
            font_scale,
            (0, 0, 0),
            thick,
            cv2.LINE_AA,
        )
    return out


def letterbox_image(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``image`` scaled to fit ``size = (width, height)`` with its aspect ratio kept, centred
    on black (the bars fill the rest)."""
    h, w = image.shape[:2]
    out_w, out_h = size
    scale = min(out_w / w, out_h / h)
    new_w, new_h = max(1, round(w * scale)), max(1, round(h * scale))
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    resized = cv2.resize(image, (new_w, new_h), interpolation=interp)
    out = np.zeros((out_h, out_w, image.shape[2]), dtype=image.dtype)
    x0, y0 = (out_w - new_w) // 2, (out_h - new_h) // 2
    out[y0 : y0 + new_h, x0 : x0 + new_w] = resized
    return out


class AnnotatedVideoWriter:
    """Writes RGB frames of one size to a video file.

    The file is written as ``<stem>.partial<suffix>`` and renamed on :meth:`close`, so a
    crash never replaces a good video with a broken one. Odd widths or heights are padded
    by one black pixel (the mpeg4 encoder needs even sizes); :attr:`output_size` says so.

    Args:
        path: output file, ``.mp4`` (also ``.m4v``, ``.mov``) or ``.avi``.
        fps: frame rate written into the file.
        size: ``(width, height)`` of the frames that will be written.
        letterbox: a frame of another size (images of mixed sizes from a folder) is scaled
            to fit ``size``, keeping its aspect ratio, and centred on black bars; the
            count is in :attr:`letterboxed`. False (the default): such a frame raises
            ValueError.
    """

    def __init__(
        self, path: str | Path, fps: float, size: tuple[int, int], *, letterbox: bool = False
    ) -> None:
        self.path = Path(path)
        suffix = self.path.suffix.lower()
        if suffix not in FOURCC_BY_SUFFIX:
            raise ValueError(
                f"unsupported video suffix {suffix or '(none)'!r} for {self.path}; "
                f"use one of {', '.join(FOURCC_BY_SUFFIX)}"
            )
        try:
            fps = float(fps)
        except (TypeError, ValueError):
            raise ValueError(f"fps must be a positive number, got {fps!r}") from None
        if not (math.isfinite(fps) and fps > 0):
            raise ValueError(f"fps must be a positive number, got {fps!r}")
        width, height = (int(v) for v in size)
        if width <= 0 or height <= 0:
            raise ValueError(f"size must be (width, height) > 0, got {size}")
        self.size = (width, height)
        self.output_size = (width + width % 2, height + height % 2)
        self.fps = float(fps)
        self.frames_written = 0
        self.letterbox = bool(letterbox)
        self.letterboxed = 0
        self.partial_path = self.path.with_name(f"{self.path.stem}.partial{self.path.suffix}")
        with unwritable_as_clear_error(self.path):
            self.path.parent.mkdir(parents=True, exist_ok=True)
        fourcc = FOURCC_BY_SUFFIX[suffix]
        self._writer = cv2.VideoWriter(
            str(self.partial_path), cv2.VideoWriter_fourcc(*fourcc), self.fps, self.output_size
        )
        if not self._writer.isOpened():
            self._writer.release()
            raise RuntimeError(
                f"cannot open a video writer for {self.path} ({fourcc}, {self.fps:g} fps, "
                f"{width}x{height}): check that the folder is writable and that this OpenCV "
                "build has FFmpeg video I/O (cv2.getBuildInformation())"
            )
        if self.output_size != self.size:
            log.info(
                "%s: padding %dx%d frames to %dx%d for the encoder",
                self.path,
                width,
                height,
                *self.output_size,
            )

    def write(self, image_rgb: np.ndarray) -> None:
        """Append one RGB ``uint8`` frame of exactly :attr:`size`."""
        if self._writer is None:
            raise RuntimeError(f"video writer for {self.path} is closed")
        image = validate_image(image_rgb)
        h, w = image.shape[:2]
        if (w, h) != self.size:
            if not self.letterbox:
                raise ValueError(
                    f"frame is {w}x{h} but this video is {self.size[0]}x{self.size[1]}; "
                    "resize it, open a writer with the frame's size, or pass letterbox=True"
                )
            if not self.letterboxed:
                log.warning(
                    "%s: frame %d is %dx%d, the video %dx%d: frames of other sizes are scaled "
                    "to fit and centred on black bars", self.path, self.frames_written, w, h,
                    *self.size,
                )  # fmt: skip
            image = letterbox_image(image, self.size)
            h, w = image.shape[:2]
            self.letterboxed += 1
        bgr = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
        if self.output_size != self.size:
            bgr = cv2.copyMakeBorder(
                bgr,
                0,
                self.output_size[1] - h,
                0,
                self.output_size[0] - w,
                cv2.BORDER_CONSTANT,
                value=(0, 0, 0),
            )
        self._writer.write(bgr)
        self.frames_written += 1

    def close(self) -> None:
        """Finish the file and move it into place; safe to call more than once."""
        if self._writer is None:
            return
        self._writer.release()
        self._writer = None  # type: ignore[assignment]
        os.replace(self.partial_path, self.path)
        log.info("wrote %d frames to %s", self.frames_written, self.path)

    def __enter__(self) -> AnnotatedVideoWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
