"""Accuracy of the world frame on the synthetic scene (the numbers in docs/world.md).

Walkers with a known gait (``tests/world_scene.py``) are seen by a camera 2.5 m high,
pitched 20 deg down and rolled 3 deg; Gaussian noise is added to every camera-frame joint.
Prints: camera height / pitch / roll error of the online estimate after N frames (median and
worst over seeds), trajectory RTE per smoothing preset, foot-contact precision/recall, and
the world stage's cost per frame.

    python tools/world_accuracy.py [--seeds 5]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from world_scene import Walker, default_walkers, frames

from instanthmr.world import MotionConfig, WorldFrame, WorldTracker

CAMERA = WorldFrame.from_camera(2.5, 20.0, 3.0)


def plane_errors(noise: float, n: int, seeds: int) -> list[tuple[float, float, float, int]]:
    """(|dh| cm, |dpitch| deg, |droll| deg, inliers) per seed after n frames (NaN: unknown)."""
    out = []
    for seed in range(seeds):
        stage = WorldTracker()
        for t, persons, _ in frames(CAMERA, default_walkers(), n, noise=noise, seed=seed):
            _, info = stage.update(persons, t)
        if not info.known:
            out.append((np.nan, np.nan, np.nan, 0))
            continue
        out.append((100 * abs(info.camera_height - 2.5), abs(info.pitch_deg - 20.0),
                    abs(info.roll_deg - 3.0), info.inliers))  # fmt: skip
    return out


def rte(noise: float, preset: str, seeds: int) -> tuple[float, float]:
    """(RTE % of path length, speed jitter m/s) of a straight walker, fitted world frame."""
    walker = Walker(1, (-3.0, -5.0), (1.0, -0.2), speed=1.4)
    rtes, jitter = [], []
    for seed in range(seeds):
        stage = WorldTracker(motion=MotionConfig(trajectory=preset))
        errs, path, speeds = [], [], []
        for t, persons, _ in frames(CAMERA, [walker], 150, noise=noise, seed=seed):
            _, info = stage.update(persons, t)
            if info.known:
                truth = walker.pelvis(t) * [1, 0, 1]
                errs.append(np.linalg.norm(info.persons[0].position - truth))
                path.append(truth)
                speeds.append(info.persons[0].speed)
        length = np.linalg.norm(np.diff(path, axis=0), axis=1).sum()
        rtes.append(100 * np.mean(errs) / length)
        jitter.append(np.std(speeds[10:]))
    return float(np.median(rtes)), float(np.median(jitter))


def contacts(noise: float, seeds: int) -> tuple[float, float]:
    """Foot-contact (precision, recall) over all walkers and seeds, given world frame."""
    tp = fp = fn = 0
    for seed in range(seeds):
        stage = WorldTracker(CAMERA)
        for t, persons, truth in frames(CAMERA, default_walkers(), 120, noise=noise, seed=seed):
            out, info = stage.update(persons, t)
            for p, c in zip(out, truth, strict=True):
                pred = np.array(info.person(p.track_id).contact)
                c = np.array(c)
                tp, fp, fn = tp + np.sum(pred & c), fp + np.sum(pred & ~c), fn + np.sum(~pred & c)
    return tp / (tp + fp), tp / (tp + fn)


def cost_ms() -> tuple[float, float]:
    """Median milliseconds of one ``WorldTracker.update`` with 3 people (online estimate)."""
    scene = frames(CAMERA, default_walkers(), 300, noise=0.01)
    stage, times = WorldTracker(), []
    for t, persons, _ in scene:
        t0 = time.perf_counter()
        stage.update(persons, t)
        times.append((time.perf_counter() - t0) * 1e3)
    return float(np.median(times)), float(np.max(times))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    args = parser.parse_args()
    print("plane: noise_m frames | height err cm (median/max) | pitch err deg | roll err deg "
          "| inliers (median)")  # fmt: skip
    for noise in (0.0, 0.01, 0.02, 0.03):
        for n in (30, 60, 120, 240):
            e = np.array(plane_errors(noise, n, args.seeds))
            cells = [f"{np.median(e[:, k]):.{d}f}/{np.max(e[:, k]):.{d}f}" for k, d in
                     ((0, 2), (1, 3), (2, 3))]  # fmt: skip
            print(f"  {noise:.2f} {n:4d} | {' | '.join(cells)} | {np.median(e[:, 3]):.0f}")
    print("trajectory (straight walker, 150 frames): noise_m preset | RTE % | speed jitter m/s")
    for noise in (0.0, 0.02):
        for preset in ("off", "responsive", "default", "smooth"):
            r, j = rte(noise, preset, args.seeds)
            print(f"  {noise:.2f} {preset:10s} | {r:.3f} | {j:.3f}")
    print("foot contact (3 walkers, 120 frames): noise_m | precision | recall")
    for noise in (0.0, 0.005, 0.01, 0.02):
        p, r = contacts(noise, args.seeds)
        print(f"  {noise:.3f} | {p:.3f} | {r:.3f}")
    med, worst = cost_ms()
    print(f"world stage: {med:.3f} ms median, {worst:.1f} ms worst per frame (3 people)")


if __name__ == "__main__":
    main()
