"""Accuracy, honesty and cost of the world stage on realistic-noise scenes (docs/world.md).

The scenes of ``tests/world_bench.py``: cameras 1.2 to 6 m high, pitched 5 to 50 deg and
rolled up to 4 deg, 1 to 4 people on curved paths with stops, a ramp, a 0.5 m platform,
people who never stand still; the model's error is a slow whole-body depth drift along the
viewing ray (3, 5 or 8% of the distance) and 1 to 2 cm of joint jitter. Each scene runs for
10 s at 30 FPS per seed and is scored by ``tests/world_eval.py``. Prints Markdown tables:

1. the ground estimate after 10 s: known or not, when first known, errors, the reported
   standard deviations, how often they cover the error, frames known while badly off;
2. foot contact precision and recall (true camera given, and fitted);
3. per-person body-size errors the noise model leaves out (what they do to coverage);
4. trajectory RTE and speed jitter per smoothing preset (noise-free and with noise);
5. the world stage's cost per frame with 4 people.

    python tools/world_accuracy.py [--seeds 5] [--quick]
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from world_bench import scene
from world_eval import Score, evaluate

from instanthmr.world import EstimatorConfig, MotionConfig, WorldTracker

NOISE = ((0.03, 0.01), (0.05, 0.015), (0.08, 0.02))
"""(depth drift, joint jitter) levels: a fraction of the distance, metres."""
SCENES = (
    ("walk", "tripod", 1), ("walk", "tripod", 3), ("walk", "shelf", 2), ("walk", "room", 1),
    ("walk", "room", 3), ("walk", "room", 4), ("walk", "corner", 3), ("walk", "mast", 3),
    ("walk", "mast", 4), ("walk", "mast-steep", 3), ("restless", "room", 3),
    ("restless", "mast", 3), ("platform", "room", 3), ("platform", "mast", 3),
    ("ramp", "room", 3), ("ramp", "mast", 3),
)  # fmt: skip
"""(kind, camera, people) of each row."""
CAMERA_TEXT = {
    "tripod": "1.2 m, 5 deg", "shelf": "1.8 m, 12 deg", "room": "2.5 m, 20 deg",
    "corner": "3 m, 35 deg", "mast": "6 m, 25 deg", "mast-steep": "6 m, 50 deg",
}  # fmt: skip


def _cell(values: list[float], digits: int, scale: float = 1.0) -> str:
    v = np.abs(np.array([x for x in values if not math.isnan(x)])) * scale
    return "-" if not len(v) else f"{np.median(v):.{digits}f} / {np.max(v):.{digits}f}"


def ground_table(seeds: int, scenes: tuple, noise: tuple) -> None:
    """Table 1: the ground estimate after 10 s."""
    print("| scene | camera | depth / jitter | known at 10 s | first known (s) | height err "
          "cm | pitch err deg | roll err deg | reported 1 sd (cm, deg, deg) | covered | "
          "known while off | floor flips |")  # fmt: skip
    print("|" + " --- |" * 12)
    pooled = [0, 0, 0]  # known frames, covered, known while off
    for kind, camera, people in scenes:
        for depth, lateral in noise:
            runs: list[Score] = [
                evaluate(scene(kind, camera, people, seconds=10, seed=s), depth, lateral, s)
                for s in range(seeds)
            ]
            known = [r for r in runs if r.known]
            firsts = [r.first_known for r in runs if not math.isnan(r.first_known)]
            frames = sum(r.known_frames for r in runs)
            covered = sum(r.covered for r in runs) / frames if frames else math.nan
            pooled[0] += frames
            pooled[1] += sum(r.covered for r in runs)
            pooled[2] += sum(r.bad_frames for r in runs)
            sd = (
                "-" if not known else ", ".join(
                    f"{np.median([r.stds[k] for r in known]) * m:.{d}f}"
                    for k, m, d in ((0, 100, 1), (1, 1, 2), (2, 1, 2)))
            )  # fmt: skip
            print(
                f"| {kind} {people}p | {CAMERA_TEXT[camera]} | {100 * depth:g}% / "
                f"{100 * lateral:g} cm | {len(known)}/{len(runs)} | "
                f"{np.median(firsts) if firsts else math.nan:.1f} | "
                f"{_cell([r.errors[0] for r in runs], 1, 100)} | "
                f"{_cell([r.errors[1] for r in runs], 2)} | "
                f"{_cell([r.errors[2] for r in runs], 2)} | {sd} | "
                f"{100 * covered:.0f}% | {sum(r.bad_frames for r in runs)} | "
                f"{sum(r.flips for r in runs)} |",
                flush=True,
            )
    print(f"\nAll rows: {pooled[1]} of {pooled[0]} known frames covered by two reported "
          f"standard deviations ({100 * pooled[1] / max(pooled[0], 1):.1f}%); {pooled[2]} known "
          "while more than 10 cm or 2 deg off.")


def contact_table(seeds: int) -> None:
    """Table 2: foot contact against "planted on the floor"."""
    print("| scene | depth / jitter | camera | precision | recall | feet of people on a "
          "platform or ramp flagged |")  # fmt: skip
    print("|" + " --- |" * 6)
    for kind, camera, people in (("walk", "room", 3), ("walk", "mast", 3),
                                 ("restless", "room", 3), ("platform", "room", 3)):  # fmt: skip
        for depth, lateral in NOISE:
            for given in (True, False):
                tp = fp = fn = raised = feet = 0
                for s in range(seeds):
                    r = evaluate(scene(kind, camera, people, seconds=10, seed=s), depth,
                                 lateral, s, given=given)  # fmt: skip
                    tp, fp, fn = tp + r.tp, fp + r.fp, fn + r.fn
                    raised, feet = raised + r.raised_contacts, feet + r.raised_feet
                flagged = f"{raised}/{feet}" if feet else "-"
                print(f"| {kind} {people}p, {CAMERA_TEXT[camera]} | {100 * depth:g}% / "
                      f"{100 * lateral:g} cm | {'given' if given else 'fitted'} | "
                      f"{tp / max(tp + fp, 1):.3f} | {tp / max(tp + fn, 1):.3f} | {flagged} |",
                      flush=True)  # fmt: skip


def size_table(seeds: int) -> None:
    """Table 3: people whose size the model misjudges (a constant factor per person)."""
    print("| body-size error | size_std | known at 10 s | height err cm | pitch err deg | "
          "covered | known while off |")  # fmt: skip
    print("|" + " --- |" * 7)
    for error in (0.0, 0.03):
        for size_std in (0.0, 0.03):
            runs = []
            for s in range(seeds):
                stage = WorldTracker(estimator=EstimatorConfig(size_std=size_std))
                runs.append(evaluate(scene("walk", "room", 3, seconds=10, seed=s), 0.05, 0.015,
                                     s, stage=stage, size_error=error))  # fmt: skip
            frames = sum(r.known_frames for r in runs)
            covered = sum(r.covered for r in runs) / frames if frames else math.nan
            print(f"| {100 * error:g}% | {size_std:g} | {sum(r.known for r in runs)}/{seeds} | "
                  f"{_cell([r.errors[0] for r in runs], 1, 100)} | "
                  f"{_cell([r.errors[1] for r in runs], 2)} | {100 * covered:.0f}% | "
                  f"{sum(r.bad_frames for r in runs)} |", flush=True)  # fmt: skip


def _rte(frames: list, stage: WorldTracker, pelvis_of: Callable) -> tuple[float, float]:
    """(RTE %, sd of the speed error m/s) of track 1 over the frames with a known world."""
    errs, path, speed_err, last = [], [], [], None
    for t, persons, truths in frames:
        _, info = stage.update(persons, t)
        rec = info.person(1) if info.known else None
        pelvis = pelvis_of(t, truths)
        if rec is None or pelvis is None:
            last = None
            continue
        errs.append(np.linalg.norm(rec.position - pelvis))
        path.append(pelvis)
        if last is not None:
            speed_err.append(rec.speed - np.linalg.norm(pelvis - last[1]) / (t - last[0]))
        last = (t, pelvis)
    length = np.linalg.norm(np.diff(path, axis=0), axis=1).sum()
    return 100 * float(np.mean(errs)) / length, float(np.std(speed_err[10:]))


def rte_table(seeds: int) -> None:
    """Table 4: RTE of person 1 per trajectory preset, the world frame fitted online."""
    from world_scene import Walker, default_walkers
    from world_scene import frames as straight_frames

    from instanthmr.world import WorldFrame

    camera = WorldFrame.from_camera(2.5, 20.0, 3.0)
    straight = Walker(1, (-3.0, -5.0), (1.0, -0.2), speed=1.4)
    print("| scene | depth / jitter | preset | RTE (%) | speed error sd (m/s) |")
    print("|" + " --- |" * 5)
    rows = (("straight 1.4 m/s, 8 s", 0.0, 0.0), ("curved with stops, 15 s", 0.0, 0.0),
            ("curved with stops, 15 s", 0.05, 0.015))  # fmt: skip
    for name, depth, lateral in rows:
        for preset in ("off", "responsive", "default", "smooth"):
            out = []
            for s in range(seeds):
                stage = WorldTracker(motion=MotionConfig(trajectory=preset))
                if name.startswith("straight"):
                    frames = straight_frames(camera, [straight, *default_walkers()[1:]], 240,
                                             seed=s)  # fmt: skip
                    out.append(_rte(frames, stage, lambda t, _: straight.pelvis(t) * [1, 0, 1]))
                    continue

                def pelvis_of(t: float, truths: list) -> np.ndarray | None:
                    tr = next((x for x in truths if x.track_id == 1), None)
                    return None if tr is None else 0.5 * (
                        tr.joints_world[9] + tr.joints_world[10]) * [1, 0, 1]  # fmt: skip

                frames = scene("walk", "room", 3, seconds=15, seed=s).render(depth, lateral, s)
                out.append(_rte(frames, stage, pelvis_of))
            rte, jitter = np.median(np.array(out), axis=0)
            print(f"| {name} | {100 * depth:g}% / {100 * lateral:g} cm | `{preset}` | "
                  f"{rte:.3f} | {jitter:.3f} |", flush=True)  # fmt: skip


def cost(repeats: int) -> None:
    """Table 5: milliseconds per ``WorldTracker.update`` with 4 people over 10 s."""
    frames = scene("walk", "room", 4, seconds=10, seed=0).render()
    truth = scene("walk", "room", 4).camera.frame
    rows = {"online estimate": lambda: WorldTracker(), "given frame": lambda: WorldTracker(truth)}
    print("| world frame | median ms | 90th percentile ms | worst ms |")
    print("|" + " --- |" * 4)
    for name, make in rows.items():
        runs = []
        for _ in range(repeats):
            stage, times = make(), []
            for t, persons, _ in frames:
                t0 = time.perf_counter()
                stage.update(persons, t)
                times.append((time.perf_counter() - t0) * 1e3)
            runs.append(times)
        best = min(runs, key=np.median)
        print(f"| {name} | {np.median(best):.3f} | {np.percentile(best, 90):.2f} | "
              f"{np.max(best):.1f} |")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5, help="seeds per row [5]")
    parser.add_argument("--quick", action="store_true", help="a few rows only (a smoke run)")
    parser.add_argument("--tables", default="12345", help="which tables to print [12345]")
    parser.add_argument("--only", default="", help="table 1: rows whose kind or camera "
                        "contains this (e.g. mast)")  # fmt: skip
    args = parser.parse_args()
    scenes = SCENES[4:5] + SCENES[7:8] if args.quick else SCENES
    scenes = tuple(s for s in scenes if args.only in f"{s[0]} {s[1]}")
    noise = NOISE[2:] if args.quick else NOISE
    steps = {"1": lambda: ground_table(args.seeds, scenes, noise),
             "2": lambda: contact_table(args.seeds), "3": lambda: size_table(args.seeds),
             "4": lambda: rte_table(args.seeds), "5": lambda: cost(3)}  # fmt: skip
    for key in args.tables:
        print()
        steps[key]()


if __name__ == "__main__":
    main()
