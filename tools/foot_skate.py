"""Foot skate before and after the foot lock, on the synthetic stepper (docs/animation.md).

    python tools/foot_skate.py [--seeds 3] [--frames 300]
    python tools/foot_skate.py --video vtest.avi [--frames 300] [--model standin]

The stepper (tests/animation_synth.py) walks at 1 m/s with truly planted feet. Gaussian
noise of sigma cm on every MHR70 coordinate stands in for a per-frame estimate's jitter.
Each noisy walk goes through the real world stage (a given camera: its contact flags),
then the BVH exporter without and with the foot lock, and the live VMC rig (the streamed
pose). Reported, per noise level, as the mean over seeds: foot skate (cm of horizontal
motion per contact frame, ankle and toe end, over the world stage's contact frames) and the
mean ankle error against the noise-free truth.

With ``--video`` the walk is real footage instead: the pipeline (the embedded detector, the
model named by ``--model``, by default the BlazePose stand-in, which is NOT InstantHMR; the
world stage on, as for a static camera) runs over the clip, and every track's BVH is
written without and with the foot lock and read back. Reported: the tracks that got contact
flags, their contact frames, and the foot skate per contact frame over all of them.
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


def footage(video: str, model: str, frames: int, camera: tuple[float, float] | None) -> None:
    """Print the foot skate of every track of a real clip, without and with the lock
    (``camera``: a given height in metres and pitch in degrees; else the world is fitted)."""
    from instanthmr.animation.clips import TrackBuffer
    from instanthmr.options import PipelineOptions
    from instanthmr.pipeline import PosePipeline
    from instanthmr.sources.files import open_source
    from instanthmr.world import WorldFrame

    world = True if camera is None else WorldFrame.from_camera(*camera)
    results = []
    with PosePipeline(options=PipelineOptions(model=model, world=world)) as pipe:
        print(f"models: {pipe.describe()}")
        with open_source(video=video) as source:
            for r in pipe.predict_video(source):
                results.append(r)
                if len(results) >= frames:
                    break
    buffer = TrackBuffer()
    for r in results:
        buffer.add(r)
    contact = {m.track_id: m.contact for m in buffer.motions()}
    flagged = {k: c for k, c in contact.items() if c is not None and np.any(c)}
    known = sum(r.world is not None and r.world.known for r in results)
    print(f"{len(results)} frames, world frame known on {known}; {len(contact)} tracks, "
          f"{len(flagged)} with foot contact flags")  # fmt: skip
    if results and results[-1].world is not None and not results[-1].world.known:
        print(f"world frame on the last frame: {results[-1].world.reason}")
    print("| output | ankle skate (cm/contact frame) | toe skate | contact frames |")
    print("| --- | --- | --- | --- |")
    with tempfile.TemporaryDirectory() as tmp:
        for lock in (False, True):
            with BvhExporter(Path(tmp) / f"real-{lock}.bvh", foot_lock=lock) as ex:
                for r in results:
                    ex.write(r)
            rows: list[tuple[float, float, int]] = []  # per track: ankle, toe, contact frames
            for path in ex.written:
                track = int(path.name.split(".track")[1].split(".")[0])
                if track not in flagged:
                    continue
                pos, c = read_bvh(path).positions(), np.asarray(flagged[track], bool)
                n = int((c[1:] & c[:-1]).sum())  # the frames foot_skate averages over
                if n:
                    rows.append((foot_skate(pos, c, ANKLES), foot_skate(pos, c, TOES), n))
            frames_in_contact = sum(n for *_, n in rows)
            a, t = (
                (float(np.average([r[k] for r in rows], weights=[r[2] for r in rows]))
                 if rows else float("nan"))
                for k in (0, 1)
            )  # fmt: skip
            print(f"| {'locked' if lock else 'no lock'} | {a:.2f} | {t:.2f} | "
                  f"{frames_in_contact} |")  # fmt: skip


def main() -> None:
    """Print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--video", help="real footage instead of the synthetic stepper")
    parser.add_argument("--model", default="standin", help="with --video (default: the stand-in)")
    parser.add_argument("--camera", nargs=2, type=float, metavar=("HEIGHT_M", "PITCH_DEG"),
                        help="with --video: a given camera instead of the fitted world frame")
    args = parser.parse_args()
    if args.video:
        footage(args.video, args.model, args.frames, args.camera)
        return
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
