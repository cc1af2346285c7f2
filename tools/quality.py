"""Quality figures on real footage: YOLOX-nano + the stand-in (docs/quality.md).

    python tools/quality.py --video PATH/TO/vtest.avi --out quality-vtest
    python tools/quality.py --sample --out quality-sample          # the embedded clip
    python tools/quality.py --video PATH/TO/vtest.avi --sections world --out q  # world only

Runs the embedded YOLOX-nano detector and the stand-in model (BlazePose in the InstantHMR
contract, NOT InstantHMR) over the clip, on the CPU:

- ``tracking``: the stride-1 run (the demo's default for files): persons per frame, tracks,
  fragments, swaps, breaks (:mod:`instanthmr.evaluation.footage.tracks`);
- ``stride``: detector strides 2, 4, 8 (detect on need, and ``--fixed`` exact strides)
  against the detector on every frame and the stride-1 run
  (:mod:`instanthmr.evaluation.footage.carried`);
- ``live``: live mode (stride 30, detect on need), the async detector ``"synchronous"``
  with ``--latency`` frames and in a thread: detector runs by reason;
- ``world``: the stride-1 run with ``world=True``: camera height and pitch, walking speeds,
  foot height (:mod:`instanthmr.evaluation.footage.world`);
- ``animation``: BVH and glTF of the longest walkers, read back by bvhio and pygltflib;
  with ``--render`` one frame of a walker drawn by Blender (``tools/blender_render.py``).

Writes ``report.json`` and the pictures (``--figures DIR``, default ``--out``) and prints
the Markdown tables. No speed is measured here. The stride-1 run serves tracking, stride,
world and animation, so it runs once.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np

from instanthmr.evaluation.footage import figures, tables
from instanthmr.evaluation.footage.animation import (
    export_walkers,
    read_bvh_back,
    read_glb_back,
    walking_frame,
)
from instanthmr.evaluation.footage.carried import compare_runs
from instanthmr.evaluation.footage.live import detector_runs
from instanthmr.evaluation.footage.runs import ClipRun, detect_every_frame, run_clip
from instanthmr.evaluation.footage.tracks import track_lengths, track_stats
from instanthmr.evaluation.footage.world import world_stats
from instanthmr.options import PipelineOptions

SECTIONS = ("tracking", "stride", "live", "world", "animation")
BASE = {"model": "standin", "detector_variant": "yolox-nano", "device": "cpu"}


def parse() -> argparse.Namespace:
    """The command line."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--video", type=Path, help="the clip (e.g. vtest.avi)")
    src.add_argument("--sample", action="store_true", help="the embedded sample clip")
    p.add_argument("--out", type=Path, required=True, help="folder for report.json and files")
    p.add_argument("--figures", type=Path, help="folder for the pictures (default --out)")
    p.add_argument("--prefix", default="quality_", help="start of the pictures' file names")
    p.add_argument(
        "--sections", default=",".join(SECTIONS), help=f"comma-separated, of {', '.join(SECTIONS)}"
    )
    p.add_argument("--strides", type=int, nargs="+", default=[2, 4, 8])
    p.add_argument(
        "--fixed", action="store_true", help="also run exact strides (fixed_stride=True)"
    )
    p.add_argument(
        "--latency",
        type=int,
        default=1,
        help="frames until the synchronous async detector's boxes arrive",
    )
    p.add_argument("--no-thread", action="store_true", help="skip the threaded live run")
    p.add_argument("--limit", type=int, help="only the first N frames")
    p.add_argument("--render", action="store_true", help="render a walker with Blender")
    p.add_argument("--walkers", type=int, default=3, help="tracks to export (longest first)")
    return p.parse_args()


def options(**changes: Any) -> PipelineOptions:
    """The base options (stand-in, YOLOX-nano, CPU) with ``changes``."""
    return PipelineOptions(**{**BASE, **changes})


def main() -> int:
    """Run the chosen sections and print their tables."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    a = parse()
    sections = [s.strip() for s in a.sections.split(",") if s.strip()]
    unknown = sorted(set(sections) - set(SECTIONS))
    if unknown:
        sys.exit(f"unknown section(s) {', '.join(unknown)}; use {', '.join(SECTIONS)}")
    if a.sample:
        from instanthmr.sources.files import sample_video_path

        video = sample_video_path()
    else:
        video = a.video
        if not video.is_file():
            sys.exit(f"video not found: {video}")
    out = a.out
    out.mkdir(parents=True, exist_ok=True)
    figs = a.figures or out
    figs.mkdir(parents=True, exist_ok=True)
    prefix = a.prefix
    report: dict[str, Any] = {"video": video.name, "sections": sections}

    def log(msg: str) -> None:
        print(f"[quality] {msg}", file=sys.stderr, flush=True)

    ref: ClipRun | None = None
    if {"tracking", "stride", "world", "animation"} & set(sections):
        log("stride 1 (world on)")
        ref = run_clip(video, options(world=True), label="stride 1", limit=a.limit)
        report["header"] = ref.header
        report["frames"] = ref.frames
        report["fps"] = ref.fps
    if {"tracking", "stride", "live"} & set(sections):
        from instanthmr.detector import create_detector

        log("detector on every frame")
        det = create_detector("yolox-nano", device="cpu")
        detections = detect_every_frame(det, video, a.limit)
        report["detections_per_frame"] = float(detections.counts.mean())
    if "tracking" in sections:
        assert ref is not None
        report["tracking"] = track_stats(ref.results).as_dict()
        figures.tracks_figure(ref, figs / f"{prefix}tracks.png", detections)
        busiest = int(np.argmax([len(r.persons) for r in ref.results]))
        figures.scene_figure(video, ref, busiest, figs / f"{prefix}scene.jpg")
    save(report, out)
    if "stride" in sections:
        assert ref is not None
        rows = [compare_runs(ref, ref, detections)]
        runs = {}
        for s in a.strides:
            for fixed in (False, True) if a.fixed else (False,):
                label = f"stride {s}" + (" fixed" if fixed else "")
                log(label)
                run = run_clip(video, options(detector_stride=s, fixed_stride=fixed),
                               label=label, limit=a.limit)  # fmt: skip
                runs[label] = run
                rows.append(compare_runs(run, ref, detections))
                report.setdefault("stride_tracking", {})[label] = track_stats(
                    run.results).as_dict()  # fmt: skip
                report.setdefault("stride_runs", {})[label] = detector_runs(run).as_dict()
        report["stride"] = [r.as_dict() for r in rows]
        figures.carried_figure(runs, detections, figs / f"{prefix}carried.png")
    save(report, out)
    if "live" in sections:
        live = []
        log(f"live, synchronous detector, latency {a.latency}")
        sync = run_clip(video, PipelineOptions.for_mode(
            "live", **BASE, async_detector="synchronous", detector_latency=a.latency),
            label=f"live synchronous (latency {a.latency})", limit=a.limit)  # fmt: skip
        live.append(sync)
        if not a.no_thread:
            log("live, detector in a thread")
            live.append(run_clip(video, PipelineOptions.for_mode("live", **BASE),
                                 label="live thread", limit=a.limit))  # fmt: skip
        report["live"] = [detector_runs(r).as_dict() for r in live]
        if ref is not None:
            report["live_carry"] = [compare_runs(r, ref, detections).as_dict() for r in live]
            report["live_tracking"] = [track_stats(r.results).as_dict() for r in live]
        figures.live_figure(live, figs / f"{prefix}live.png")
    save(report, out)
    if "world" in sections:
        assert ref is not None
        stats = world_stats(ref.results, ref.fps)
        report["world"] = stats.as_dict()
        figures.world_figure(ref, stats, figs / f"{prefix}world.png")
    save(report, out)
    if "animation" in sections:
        assert ref is not None
        report["animation"] = animation(ref, out, figs, prefix, a.walkers, a.render, log)
    save(report, out)
    print(tables.markdown(report))
    return 0


def animation(ref: ClipRun, out: Path, figs: Path, prefix: str, walkers: int, render: bool,
              log: Any) -> dict[str, Any]:  # fmt: skip
    """Export the longest tracks, read them back, draw (and render) a walking frame."""
    from instanthmr.animation.bvh import read_bvh

    lengths = track_lengths(ref.results)
    chosen = sorted(lengths, key=lambda t: -lengths[t])[:walkers]
    log(f"animation: tracks {chosen}")
    bvhs, glb = export_walkers(ref.results, out / "animation", chosen, run=ref.header)
    back = [read_bvh_back(p) for p in bvhs] + [read_glb_back(glb)]
    first = read_bvh(bvhs[0]).positions()
    frame = walking_frame(first)
    figures.skeleton_figure(first, frame, ref.fps, figs / f"{prefix}walker_skeleton.png")
    result: dict[str, Any] = {"tracks": chosen, "read_back": [vars(b) for b in back],
                              "walking_frame": frame}  # fmt: skip
    if render:
        _, one_glb = export_walkers(ref.results, out / "animation", chosen[:1],
                                          run=ref.header, name="walker")  # fmt: skip
        blender = shutil.which("blender")
        if blender is None:
            log("no blender on PATH: not rendered")
        else:
            # the BVH starts on the track's first frame; the glTF's clock at the clip's
            start_frame = next(i for i, r in enumerate(ref.results)
                               if any(p.track_id == chosen[0] for p in r.persons))  # fmt: skip
            frame_t = (start_frame + frame) / max(ref.fps, 1e-6)
            start = read_glb_back(one_glb)
            png = figs / f"{prefix}walker_blender.png"
            tool = Path(__file__).with_name("blender_render.py")
            subprocess.run([blender, "-b", "--factory-startup", "--python", str(tool), "--",
                            str(one_glb), str(png), str(round(frame_t * 24))],
                           check=True, capture_output=True)  # fmt: skip
            result["render"] = {
                "png": png.name,
                "track": chosen[0],
                "seconds": frame_t,
                "glb_frames": start.frames,
            }
    return result


def save(report: dict[str, Any], out: Path) -> None:
    """Write ``report.json`` (after every section, so a later failure keeps the figures)."""
    (out / "report.json").write_text(json.dumps(report, indent=1, default=_plain))


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON: {type(value).__name__}")


if __name__ == "__main__":
    sys.exit(main())
