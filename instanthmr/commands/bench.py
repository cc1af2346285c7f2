"""``tools/bench.py`` / ``instanthmr bench``: where every millisecond goes.

Modes:
  --hmr-only        the HMR model alone at each --batch size, next to the naive baseline
                    (same file, default session options, one call per person) and the
                    compute floor (the file's GFLOP per person, 13.45 for the released
                    network, over this machine's measured numpy float32 matrix-product
                    rate). The model's architecture, parameters and GFLOP are printed.
  --detector-only   the detector alone, per --detector-variant and --detector-backend,
                    side by side: every timed frame goes to each detector in turn
                    (interleaved), and YOLOX's time is given as a ratio of RF-DETR's.
                    --detector-model goes to the variants of its own kind (a YOLOX
                    file to the yolox ones, an RF-DETR file to the RF-DETR sizes).
  (default)         the full pipeline over --video (or the built-in sample) at each
                    --stride, with per-stage p50/p95/mean, end-to-end FPS, frame-time
                    p50/p95/p99/max (detector frames included), persons per frame and
                    detector runs per frame; --viewer adds Rerun logging.
                    --async-detector runs the detector in a background thread (and
                    records how many frames late its boxes arrive); without
                    --fixed-stride the detector runs on need (lost track, new motion,
                    unconfirmed track) with --stride as the longest gap; --live is
                    --async-detector with detect-on-need at the demo's camera stride.
                    --reference DIR also times the reference pipeline (a checkout of
                    mohamdev/InstantHMR) through its timing script (--reference-script), stride by
                    stride, interleaved with ours for --rounds rounds, and reports the
                    FPS ratio (medians over the rounds).

Warm-up calls/frames are excluded. Medians are reported because machines are noisy;
compare runs only on the same machine (the JSON names it).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from ..errors import OptionError
from ..evaluation import speed as B  # noqa: N812
from .errors import CommandParser, command
from .options import DEVICES, int_at_least, unit_interval


def build_parser(prog: str | None = None) -> argparse.ArgumentParser:
    """The bench's command line."""
    p = CommandParser(prog=prog, command="bench", description=__doc__,
                      formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--hmr-only", action="store_true", help="benchmark the HMR model alone")
    mode.add_argument("--detector-only", action="store_true", help="benchmark the detector alone")
    p.add_argument("--model", help="InstantHMR ONNX file (default: the Hub release)")
    p.add_argument("--device", default="auto", choices=DEVICES, help="where to run (default: auto)")
    p.add_argument("--threads", type=int_at_least(1),
                   help="CPU intra-op threads (default: usable cores)")  # fmt: skip
    p.add_argument("--precision", choices=("auto", "fp32", "fp16", "int8"), default="auto",
                   help="model precision (int8: the instanthmr quantize file)")  # fmt: skip
    p.add_argument("--batch", type=int_at_least(1), nargs="+", default=[1, 2, 4],
                   help="--hmr-only batch sizes (default 1 2 4)")  # fmt: skip
    p.add_argument("--repeats", type=int_at_least(1), default=20,
                   help="timed calls per measurement")  # fmt: skip
    p.add_argument("--no-baseline", action="store_true", help="skip the naive baseline")
    p.add_argument("--video", help="video for the pipeline/detector runs (default: sample)")
    p.add_argument("--stride", type=int_at_least(1), nargs="+",
                   help="detector strides to sweep, e.g. --stride 1 2 4 8 (default 1; "
                        "with --live the demo's camera stride)")  # fmt: skip
    p.add_argument("--fixed-stride", action="store_true",
                   help="no adaptive re-detect triggers (exact stride schedule)")  # fmt: skip
    p.add_argument("--async-detector", action="store_true",
                   help="the detector in a background thread (boxes merged when done)")  # fmt: skip
    p.add_argument("--live", action="store_true",
                   help="live mode: --async-detector and detect on need (not with "
                        "--fixed-stride)")  # fmt: skip
    p.add_argument("--detector-threads", type=int_at_least(1),
                   help="CPU threads of the detector's session (default: --threads)")  # fmt: skip
    p.add_argument("--reference", metavar="DIR",
                   help="also time the reference pipeline checked out in DIR")  # fmt: skip
    p.add_argument("--reference-script", metavar="PATH",
                   help="the script that times it (needed with --reference)")  # fmt: skip
    p.add_argument("--rounds", type=int_at_least(1), default=1,
                   help="repeat each stride this many times (ours and the reference "
                        "alternating); medians are reported")  # fmt: skip
    p.add_argument("--det-confidence", type=unit_interval, default=None,
                   help="person score threshold in [0, 1) (default: the detector's)")  # fmt: skip
    p.add_argument("--max-persons", type=int_at_least(1), help="most persons per frame")
    p.add_argument("--detector-variant", nargs="+", default=["auto"],
                   help="detector variant(s): auto, yolox-nano, yolox, or RF-DETR nano small "
                        "medium base large (default: auto)")  # fmt: skip
    p.add_argument("--detector-backend", nargs="+", default=["auto"],
                   help="detector backend(s): onnx, torch or auto")  # fmt: skip
    p.add_argument("--detector-model", help="a detector ONNX export (RF-DETR or YOLOX)")
    p.add_argument("--detector-random-init", action="store_true",
                   help="torch backend, random weights (offline; meaningless boxes)")  # fmt: skip
    p.add_argument("--frames", type=int_at_least(1),
                   help="timed frames per stride (default: whole video)")  # fmt: skip
    p.add_argument("--warmup-frames", type=int_at_least(0), default=5,
                   help="untimed frames first")  # fmt: skip
    p.add_argument("--viewer", action="store_true",
                   help="include Rerun logging (to a temporary .rrd) in the loop")  # fmt: skip
    p.add_argument("--json", dest="json_path", help="write the results as JSON")
    p.add_argument("--plot", help="PNG of the stride sweep: FPS and stacked stage times")
    return p


def _frames(video: str | None, limit: int | None) -> Any:
    from ..sources.files import open_source, sample_video_path

    path = video or str(sample_video_path())

    def make() -> Iterator[Any]:
        with open_source(video=path) as src:
            for i, frame in enumerate(src):
                if limit is not None and i >= limit:
                    return
                yield frame

    return path, make


def run_hmr_only(args: argparse.Namespace) -> dict[str, Any]:
    """--hmr-only: per-person latency per batch size, baseline, compute floor."""
    res = B.bench_hmr(args.model, args.device, args.batch, args.repeats, args.threads,
                      baseline=not args.no_baseline, precision=args.precision)  # fmt: skip
    rate = B.matmul_gflops()
    gflop = res["model"]["gflop"] or B.HMR_GFLOP_PER_PERSON
    floor = B.compute_floor(gflop, rate)
    res.update({"mode": "hmr-only", "matmul_gflops": rate, "compute_floor_ms": floor,
                "batch1_vs_floor": res["hmr_ms_per_person_p50"].get("1", 0.0) / floor})  # fmt: skip
    print(f"HMR model on {res['provider']} ({res['threads']} threads, {res['precision']}), "
          f"random_init={res['model']['random_init']}")  # fmt: skip
    print(_model_line(res["model"]))
    print(f"{'batch':>6} {'p50 ms/person':>14} {'p95 ms/person':>14} {'vs baseline':>12}")
    for b, st in res["hmr_ms_per_person"].items():
        speed = res.get("speedup_vs_baseline", {}).get(b)
        tail = f"{speed:>11.2f}x" if speed else ""
        print(f"{b:>6} {st['p50']:>14.2f} {st['p95']:>14.2f} {tail}")
    if "baseline_ms_per_person_p50" in res:
        print(f"{'naive':>6} {res['baseline_ms_per_person_p50']:>14.2f} "
              f"{res['baseline_ms_per_person_p95']:>14.2f}   (naive: 1 call/person)")  # fmt: skip
    print(f"compute floor: {gflop:.2f} GFLOP at {rate:.0f} GFLOP/s = {floor:.1f} ms;"
          f" batch 1 is {res['batch1_vs_floor']:.2f}x the floor")  # fmt: skip
    return res


def _model_line(info: dict[str, Any]) -> str:
    """``model: NAME: architecture ..., params, GFLOP, precision; pinned or not``."""
    from ..hmr.identity import ModelFacts

    facts = ModelFacts(**{k: info[k] for k in ModelFacts.__dataclass_fields__})
    return f"model: {Path(info['path']).name}: {facts.line()}"


def run_detector_only(args: argparse.Namespace) -> dict[str, Any]:
    """--detector-only: per-frame latency per variant and backend, interleaved."""
    from ..detector import create_detector

    _, make = _frames(args.video, 8)
    images = [f.image for f in make()]
    load_before = B.load_average()
    dets = []
    for variant in args.detector_variant:
        for backend in args.detector_backend:
            dets.append(create_detector(
                variant, backend, _detector_file(args, variant, backend), device=args.device,
                confidence=args.det_confidence, threads=args.threads,
                random_init=args.detector_random_init and backend == "torch",
                precision=args.precision,
            ))  # fmt: skip
    rows = B.bench_detectors(dets, images, args.repeats)
    for det, row in zip(dets, rows, strict=True):
        session = getattr(det, "model_session", None)
        row["precision"] = session.precision if session is not None else "fp32"
        print(f"{row['name']:>44} {row['provider']:>22} "
              f"p50 {row['ms']['p50']:8.1f} ms  p95 {row['ms']['p95']:8.1f} ms")  # fmt: skip
    out: dict[str, Any] = {"mode": "detector-only", "frames": len(images),
                           "loadavg_1min_before": load_before, "detectors": rows}  # fmt: skip
    by = {(r["variant"], r["backend"]): r["ms"]["p50"] for r in rows}
    ratios = {v: by[(v, "torch")] / by[(v, "onnx")] for v, b in by
              if b == "onnx" and (v, "torch") in by}  # fmt: skip
    if ratios:
        out["torch_over_onnx"] = ratios
        for v, r in ratios.items():
            print(f"{v}: onnx backend is {r:.2f}x faster than torch")
    yolox = {r["name"]: r["ms"]["p50"] for r in rows if r["kind"] == "yolox"}
    rfdetr = {r["name"]: r["ms"]["p50"] for r in rows if r["kind"] == "rfdetr"}
    if yolox and rfdetr:
        out["yolox_over_rfdetr"] = {f"{y} / {r}": yolox[y] / rfdetr[r]
                                    for y in yolox for r in rfdetr}  # fmt: skip
        for pair, ratio in out["yolox_over_rfdetr"].items():
            print(f"{pair}: {ratio:.3f}x the time")
    return out


def _detector_file(args: argparse.Namespace, variant: str, backend: str) -> str | None:
    """``--detector-model`` for the variants of its own kind (see the module docstring)."""
    if args.detector_model is None or backend == "torch":
        return None
    from ..detector.choice import AUTO, YOLOX_VARIANTS, is_yolox_file

    if variant == AUTO or not os.path.isfile(args.detector_model):
        return args.detector_model  # a missing file: create_detector says so
    return args.detector_model if is_yolox_file(args.detector_model) == (
        variant in YOLOX_VARIANTS) else None  # fmt: skip


def run_pipeline(args: argparse.Namespace) -> dict[str, Any]:
    """Default mode: the full pipeline at each stride (and the reference, when asked)."""
    from ..options import LIVE_DETECTOR_STRIDE, PipelineOptions
    from ..pipeline import PosePipeline

    if args.live and args.fixed_stride:
        raise OptionError("--live detects on need; it cannot be combined with --fixed-stride")
    strides = args.stride or ([LIVE_DETECTOR_STRIDE] if args.live else [1])
    use_async = args.async_detector or args.live
    ref_script = None
    if args.reference:
        from .bench_reference import check_reference

        if not args.model or not args.video:
            raise OptionError("--reference needs --model FILE and --video FILE (both "
                             "pipelines run the same HMR file on the same clip)")  # fmt: skip
        ref_script = check_reference(args.reference, args.reference_script)
    video, make = _frames(args.video, None)
    options = PipelineOptions(
        model=args.model, device=args.device, detector_variant=args.detector_variant[0],
        detector_backend=args.detector_backend[0], detector_model=args.detector_model,
        det_confidence=args.det_confidence, max_persons=args.max_persons,
        detector_stride=max(strides), fixed_stride=args.fixed_stride, threads=args.threads,
        precision=args.precision, async_detector=use_async, detector_threads=args.detector_threads,
    )  # fmt: skip
    pipe = PosePipeline(options=options)
    B.check_timeable(pipe.hmr)
    viewer, rrd = _viewer() if args.viewer else (None, None)
    out: dict[str, Any] = {
        "mode": "pipeline", "video": video, "provider": pipe.hmr.provider,
        "model": B.model_info(pipe.hmr.model_path, pipe.hmr.random_init),
        "detector": pipe.describe()["detector"],
        "fixed_stride": args.fixed_stride, "async_detector": use_async, "live": args.live,
        "threads": pipe.runtime.threads, "detector_threads": args.detector_threads,
        "det_confidence": getattr(pipe.detector, "confidence", args.det_confidence),
        "max_persons": args.max_persons,
        "viewer": args.viewer, "rounds": args.rounds, "runs": {},
    }  # fmt: skip
    print(_model_line(out["model"]))
    hdr = ("stride", "fps", "pers/f", "det/f", "frame p50", "frame p95", "frame max",
           *(f"{k} p50" for k in B.STAGE_KEYS))  # fmt: skip
    print(" ".join(f"{h:>10}" for h in hdr))
    rounds: dict[str, list[dict[str, Any]]] = {str(s): [] for s in strides}
    ref_rounds: dict[str, list[dict[str, Any]]] = {str(s): [] for s in strides}
    limit_ms: list[float] = []  # live: the HMR model alone at batch 1, between the runs
    try:
        for _ in range(args.rounds):
            for stride in strides:
                rounds[str(stride)].append(_run_stride(pipe, make, args, viewer, stride))
                if ref_script is not None:
                    ref_rounds[str(stride)].append(_run_reference(args, ref_script, stride))
                if args.live:
                    limit_ms += B.hmr_call_ms(pipe.hmr, repeats=LIMIT_REPEATS)
    finally:
        pipe.close()
        if rrd is not None:
            os.unlink(rrd)
    for key, runs in rounds.items():  # the run with the median FPS stands for the stride
        fps = [r["fps"] for r in runs]
        out["runs"][key] = sorted(runs, key=lambda r: r["fps"])[(len(runs) - 1) // 2]
        out["runs"][key]["fps_rounds"] = fps
        out["runs"][key]["fps_median"] = float(statistics.median(fps))
    for key in ("fps", "persons_per_frame", "detector_runs_per_frame", "pipeline_overhead_ms_p50",
                "frame_ms_p50", "frame_ms_p95", "frame_ms_p99", "frame_ms_max"):  # fmt: skip
        out[key] = {s: r[key] for s, r in out["runs"].items()}
    out["fps"] = {s: r["fps_median"] for s, r in out["runs"].items()}
    out["detector_latency_frames"] = {
        s: r["detector_latency_frames"] for s, r in out["runs"].items()
    }
    if limit_ms:
        _hmr_limit(out, limit_ms)
    if ref_script is not None:
        out["reference"] = {
            "repo": str(args.reference), "script": str(ref_script),
            "runs": ref_rounds,
            "fps": {k: float(statistics.median(r["fps"] for r in v))
                    for k, v in ref_rounds.items()},
        }  # fmt: skip
        out["ratio_vs_reference"] = {
            s: out["fps"][s] / f for s, f in out["reference"]["fps"].items() if f > 0
        }
        for s, ratio in out["ratio_vs_reference"].items():
            print(f"stride {s}: {out['fps'][s]:.2f} FPS vs reference "
                  f"{out['reference']['fps'][s]:.2f} FPS = {ratio:.2f}x")  # fmt: skip
    if args.viewer:
        out["viewer_share_of_frame"] = {
            s: r["stages"]["viewer"]["mean"] / max(1e-9, r["stages"]["total"]["mean"]
                                                    - r["stages"]["viewer"]["mean"])
            for s, r in out["runs"].items()
        }  # fmt: skip
    return out


LIMIT_REPEATS = 20
"""Timed HMR calls (batch 1) after each live run: the limit the model sets on the stream."""
LIVE_TARGET = 0.9
"""Live mode should reach this share of the HMR limit (1000 / HMR-alone ms at batch 1)."""


def _hmr_limit(out: dict[str, Any], limit_ms: list[float]) -> None:
    """Add the HMR model's own limit on a live stream (same session, same run) and the live
    FPS as a share of it to ``out``, and print them."""
    st = B.stats(limit_ms)
    limit_fps = 1000.0 / st["p50"] if st["p50"] > 0 else 0.0
    out["hmr_limit"] = {"ms_batch1": st, "fps": limit_fps, "target_share": LIVE_TARGET}
    out["live_share_of_hmr_limit"] = {
        s: (f / limit_fps if limit_fps > 0 else 0.0) for s, f in out["fps"].items()
    }
    for s, share in out["live_share_of_hmr_limit"].items():
        verdict = "met" if share >= LIVE_TARGET else "NOT met"
        print(f"live (stride {s}): {out['fps'][s]:.2f} FPS = {share:.2f} of the HMR limit "
              f"{limit_fps:.2f} FPS (1000 / {st['p50']:.1f} ms, the model alone at batch 1, "
              f"{st['n']} calls in this run); target {LIVE_TARGET}: {verdict}")  # fmt: skip


def _run_stride(pipe: Any, make: Any, args: argparse.Namespace, viewer: Any, stride: int) -> Any:
    pipe.scheduler.detector_stride = stride
    r = B.bench_pipeline_run(pipe, make, max_frames=args.frames,
                             warmup_frames=args.warmup_frames, viewer=viewer)  # fmt: skip
    cells = [stride, r["fps"], r["persons_per_frame"], r["detector_runs_per_frame"],
             r["frame_ms_p50"], r["frame_ms_p95"], r["frame_ms_max"],
             *(r["stages"][k]["p50"] for k in B.STAGE_KEYS)]  # fmt: skip
    print(" ".join(f"{c:>10.2f}" if isinstance(c, float) else f"{c:>10}" for c in cells))
    return r


def _run_reference(args: argparse.Namespace, script: Path, stride: int) -> dict[str, Any]:
    from ..detector.base import VARIANTS
    from .bench_reference import run_reference

    variant = args.detector_variant[0]  # the reference runs RF-DETR: nano unless one is named
    ref = run_reference(args.reference, script, args.video, args.model,
                        variant if variant in VARIANTS else "nano", stride,
                        args.frames or 60)  # fmt: skip
    print(f"{'reference':>10} {ref['fps']:>10.2f} {ref['persons_per_frame']:>10.2f}"
          f"   (wall p50 {ref['wall_ms_p50']:.1f} ms, frames decoded beforehand)")  # fmt: skip
    return ref


def _viewer() -> tuple[Any, str]:
    import rerun as rr

    from ..sinks.rerun_sink import RerunSink

    fd, path = tempfile.mkstemp(suffix=".rrd")
    os.close(fd)
    rec = rr.RecordingStream("instanthmr-bench")
    rec.save(path)
    sink = RerunSink(rec)
    sink.log_static()
    return sink, path


def plot_sweep(result: dict[str, Any], path: str) -> None:
    """FPS per stride and the mean per-stage frame time, stacked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = result["runs"]
    strides = list(runs)
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4.2))
    a.plot([int(s) for s in strides], [runs[s]["fps"] for s in strides], "o-")
    a.set(xlabel="detector stride", ylabel="end-to-end FPS", title="FPS vs detector stride")
    a.set_xticks([int(s) for s in strides])
    a.grid(alpha=0.3)
    bottom = [0.0] * len(strides)
    for stage in ("decode", "detect", "crop", "hmr", "track", "viewer"):
        vals = [runs[s]["stages"][stage]["mean"] for s in strides]
        if any(vals):
            b.bar(strides, vals, bottom=bottom, label=stage)
            bottom = [x + y for x, y in zip(bottom, vals, strict=True)]
    b.set(xlabel="detector stride", ylabel="mean ms per frame", title="where the time goes")
    b.legend()
    det = result.get("detector", {})
    fig.suptitle(f"{result.get('machine', {}).get('cpu', '')} | {result.get('provider', '')} | "
                 f"{det.get('name', '')}"
                 + (" | random-init weights" if result["model"]["random_init"] else ""),
                 fontsize=9)  # fmt: skip
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


@command("bench")
def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; returns the exit status (2 for a bad model, file, flag or device)."""
    return _run(build_parser().parse_args(argv))


def _run(args: argparse.Namespace) -> int:
    if args.hmr_only:
        result = run_hmr_only(args)
    elif args.detector_only:
        result = run_detector_only(args)
    else:
        result = run_pipeline(args)
    result["machine"] = B.machine_info()
    if args.plot:
        if result["mode"] != "pipeline":
            print("--plot draws the stride sweep of a pipeline run; skipped")
        else:
            plot_sweep(result, args.plot)
            print(f"plot: {args.plot}")
    if args.json_path:
        Path(args.json_path).write_text(json.dumps(result, indent=2, default=str))
        print(f"json: {args.json_path}")
    return 0
