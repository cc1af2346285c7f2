"""Make the demo clip shipped in the package: ``instanthmr/assets/sample.mp4``.

What it is: a 3-second synthetic video (640x480, 12 fps, 36 frames) of two articulated
stick figures with solid limbs walking past each other over a plain sky-and-ground
background. It is drawn here from code, with no randomness, so it carries no licence
question and can be rebuilt at any time:

    python tools/make_sample.py            # rewrites instanthmr/assets/sample.mp4
    python tools/make_sample.py --out x.mp4

Why it exists: a new user runs ``instanthmr demo`` with no arguments and sees the whole
pipeline work at once, without a webcam or a video of their own. The figures are cartoons:
a real detector may or may not find them, and poses on them are not a benchmark.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import cv2
import numpy as np

WIDTH, HEIGHT = 640, 480
FPS = 12
NUM_FRAMES = 36
HORIZON = 250
DEFAULT_OUT = Path(__file__).resolve().parents[1] / "instanthmr" / "assets" / "sample.mp4"

# (start x, end x, feet y, height px, shirt RGB, trousers RGB, phase offset)
FIGURES = (
    (80.0, 520.0, 455.0, 260.0, (40, 90, 200), (40, 40, 60), 0.0),
    (560.0, 200.0, 360.0, 170.0, (200, 60, 50), (70, 60, 40), 1.7),
)
SKIN = (224, 172, 140)


def background() -> np.ndarray:
    """Sky gradient, a ground plane, a path and two buildings (RGB)."""
    img = np.zeros((HEIGHT, WIDTH, 3), dtype=np.uint8)
    t = np.linspace(0.0, 1.0, HORIZON)[:, None]
    img[:HORIZON] = (np.array([120, 170, 230]) * (1 - t) + np.array([200, 220, 240]) * t)[:, None]
    img[HORIZON:] = (110, 150, 90)
    path = np.array([[0, 330], [WIDTH, 300], [WIDTH, 470], [0, 480]], dtype=np.int32)
    cv2.fillPoly(img, [path], (170, 160, 140))
    cv2.rectangle(img, (40, 120), (160, HORIZON), (150, 140, 150), -1)
    cv2.rectangle(img, (430, 90), (590, HORIZON), (170, 150, 130), -1)
    for x in range(55, 150, 30):
        for y in range(135, HORIZON - 20, 35):
            cv2.rectangle(img, (x, y), (x + 15, y + 20), (90, 110, 140), -1)
    return img


def _limb(origin: np.ndarray, angle: float, length: float) -> np.ndarray:
    """End point of a segment hanging from ``origin``, rotated by ``angle`` (0 = down)."""
    return origin + length * np.array([math.sin(angle), math.cos(angle)])


def draw_figure(
    img: np.ndarray,
    x: float,
    feet_y: float,
    height: float,
    phase: float,
    direction: float,
    shirt: tuple[int, ...],
    trousers: tuple[int, ...],
) -> None:
    """Draw one walking figure in place; ``direction`` is +1 (right) or -1 (left)."""
    s = height / 100.0
    bob = 1.5 * s * abs(math.cos(phase))
    hip = np.array([x, feet_y - 50 * s + bob])
    neck = hip + np.array([2 * direction * s, -32 * s])
    thick = max(2, int(7 * s))
    legs, arms = [], []
    for side, offset in ((-1, 0.0), (1, math.pi)):  # far side first, then near side
        p = phase + offset
        thigh = direction * 0.45 * math.sin(p)
        knee_bend = 0.6 * max(0.0, math.sin(p + 1.2))
        knee = _limb(hip, thigh, 25 * s)
        ankle = _limb(knee, thigh - direction * knee_bend, 25 * s)
        toe = ankle + np.array([direction * 7 * s, 0])
        upper = -direction * 0.5 * math.sin(p)
        elbow = _limb(neck + np.array([0, 3 * s]), upper, 16 * s)
        wrist = _limb(elbow, upper + direction * 0.4, 15 * s)
        shade = 0.7 if side < 0 else 1.0
        legs.append(([hip, knee, ankle, toe], tuple(int(c * shade) for c in trousers)))
        arms.append(
            ([neck + np.array([0, 3 * s]), elbow, wrist], tuple(int(c * shade) for c in shirt))
        )

    def poly(points: list[np.ndarray], color: tuple[int, ...], width: int) -> None:
        pts = np.round(np.array(points)).astype(np.int32)
        cv2.polylines(img, [pts], False, color, width, cv2.LINE_AA)

    poly(*arms[0], thick)
    poly(*legs[0], thick + 1)
    poly([hip, neck], shirt, int(thick * 2.2))
    poly(*legs[1], thick + 1)
    poly(*arms[1], thick)
    head = np.round(neck + np.array([direction * 2 * s, -9 * s])).astype(int)
    cv2.circle(img, (int(head[0]), int(head[1])), int(7.5 * s), SKIN, -1, cv2.LINE_AA)


def render_frame(index: int) -> np.ndarray:
    """Frame ``index`` of the clip as an RGB ``uint8`` (HEIGHT, WIDTH, 3) array."""
    img = background()
    t = index / max(1, NUM_FRAMES - 1)
    figures = sorted(FIGURES, key=lambda f: f[2])  # farther (higher feet) drawn first
    for x0, x1, feet_y, height, shirt, trousers, offset in figures:
        x = x0 + (x1 - x0) * t
        phase = offset + 2 * math.pi * 1.5 * index / FPS * (1.0 if height > 200 else 1.2)
        draw_figure(img, x, feet_y, height, phase, math.copysign(1.0, x1 - x0), shirt, trousers)
    return img


def main(argv: list[str] | None = None) -> int:
    """Render the clip and write it (mp4v) to ``--out``."""
    from instanthmr.sinks.video import AnnotatedVideoWriter

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output .mp4 path")
    args = parser.parse_args(argv)
    with AnnotatedVideoWriter(args.out, FPS, (WIDTH, HEIGHT)) as writer:
        for i in range(NUM_FRAMES):
            writer.write(render_frame(i))
    size_kb = args.out.stat().st_size / 1024
    print(f"wrote {args.out}: {NUM_FRAMES} frames, {WIDTH}x{HEIGHT}, {FPS} fps, {size_kb:.0f} KB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
