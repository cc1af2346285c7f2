"""Foot skate before and after the foot lock, on the synthetic stepper (docs/animation.md).

    python tools/foot_skate.py [--seeds 3] [--frames 300]

The stepper (tests/animation_synth.py) walks at 1 m/s with truly planted feet. Gaussian
noise of sigma cm on every MHR70 coordinate stands in for a per-frame estimate's jitter.
Each noisy walk goes through the real world stage (a given camera: its contact flags),
then the BVH exporter without and with the foot lock, and the live VMC rig (the streamed
pose). Reported, per noise level, as the mean over seeds: foot skate (cm of horizontal
motion per contact frame, ankle and toe end, over the world stage's contact frames) and the
mean ankle error against the noise-free truth.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from animation_synth import stepper, world_frames

from instanthmr.animation import rig
from instanthmr.animation.bvh import read_bvh
from instanthmr.animation.exporter import BvhExporter
from instanthmr.animation.footlock import TOES, foot_skate
from instanthmr.animation.live import LiveRig

ANKLES = (rig.POINT_NAMES.index("LeftFoot"), rig.POINT_NAMES.index("RightFoot"))


def exported(frames: list, lock: bool, folder: Path) -> np.ndarray:
    """(T, P, 3) forward kinematics of the BVH the exporter writes."""
    with BvhExporter(folder / f"walk-{lock}.bvh", foot_lock=lock) as ex:
        for f in frames:
            ex.write(f)
    return read_bvh(ex.written[0]).positions()


def streamed(frames: list) -> np.ndarray:
    """(T, P, 3) points of the live (streamed) pose, frame by frame."""
    live = LiveRig("plain")
    return np.concatenate([live.pose(f.persons[0], f).positions() for f in frames])


def main() -> None:
    """Print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--frames", type=int, default=300)
    args = parser.parse_args()
    truth, _ = stepper(args.frames)
    exact = rig.rig_points(truth)[:, list(ANKLES)]
    print("| noise | output | ankle skate (cm/contact frame) | toe skate | ankle error vs truth "
          "(cm) | contact frames |")
    print("| --- | --- | --- | --- | --- | --- |")
    with tempfile.TemporaryDirectory() as tmp:
        for sigma in (0.0, 0.005, 0.01, 0.02):
            rows: dict[str, list[tuple[float, float, float, float]]] = {}
            for seed in range(args.seeds):
                noise = np.random.default_rng(seed).normal(0, sigma, truth.shape)
                frames = world_frames(truth + noise)
                contact = np.array([f.world.persons[0].contact for f in frames])
                outs = {"file, no lock": exported(frames, False, Path(tmp)),
                        "file, locked": exported(frames, True, Path(tmp)),
                        "stream, locked": streamed(frames)}  # fmt: skip
                for name, pos in outs.items():
                    err = np.linalg.norm(pos[:, list(ANKLES)] - exact, axis=-1).mean() * 100
                    rows.setdefault(name, []).append((
                        foot_skate(pos, contact, ANKLES), foot_skate(pos, contact, TOES),
                        err, contact.mean()))  # fmt: skip
            for name, vals in rows.items():
                a, t, e, c = np.mean(vals, axis=0)
                print(f"| {sigma * 100:.1f} cm | {name} | {a:.2f} | {t:.2f} | {e:.2f} | "
                      f"{c * 100:.0f}% |")  # fmt: skip


if __name__ == "__main__":
    main()
