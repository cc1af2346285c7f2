"""``instanthmr demo``: run the pose pipeline on images, a folder, a video, a camera or a stream.

Results go to the Rerun viewer (spawned by default; or an ``.rrd`` file, a gRPC server, a
running viewer), to JSONL/NPZ/CSV exports and to an annotated video. With no input flag
the embedded sample clip is used. See ``docs/demo.md`` for a guide to every flag.

Exit codes: 0 success (also after a camera that stopped delivering frames), 2 a problem
with the input, the model, the device or an output path (a one-line message, no
traceback), 130 interrupted with Ctrl-C (outputs written so far are closed and kept).
"""

from __future__ import annotations

import argparse
import contextlib
import math
import sys
import time
from pathlib import Path
from typing import Any

from .demo_world import add_world_arguments, check_world_flags, finish_world, world_option

APP_ID = "instanthmr"
DETECTOR_VARIANTS = ("nano", "small", "medium", "base", "large")
DEVICES = ("auto", "cpu", "cuda", "tensorrt", "coreml")
IMAGE_INPUTS = ("images", "folder")
EXIT_INTERRUPTED = 130  # 128 + SIGINT, what shells and scripts expect after Ctrl-C
LIVE_INPUTS = ("camera", "url")
LIVE_DETECTOR_STRIDE = 30  # camera/stream default: detect on need, at least once a second


def _int_at_least(low: int) -> Any:
    def parse(text: str) -> int:
        value = int(text)
        if value < low:
            raise argparse.ArgumentTypeError(f"must be an integer >= {low}, got {text}")
        return value

    return parse


def _unit_float(text: str) -> float:
    value = float(text)
    if not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError(f"must be in [0, 1), got {text}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number of pixels, got {text}") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a positive number of pixels, got {text}")
    return value


def model_banner(hmr: Any) -> str:
    """One line about the HMR model that runs: file, architecture, parameters, GFLOP,
    precision of the file and what runs, and whether it is the pinned published file."""
    from ..hmr.identity import model_facts

    facts = model_facts(hmr.model_path, hmr.model_session.metadata)
    extra = f"; {', '.join(hmr.signature.notes)}" if hmr.signature.notes else ""
    warn = "; RANDOM-INIT weights (poses meaningless)" if hmr.random_init else ""
    return (f"model: {hmr.model_path.name}: {facts.line()}; runs {hmr.precision} on "
            f"{hmr.provider}{extra}{warn}")  # fmt: skip


def _target(text: str) -> str | int:
    if text.lstrip("-").isdigit():
        return int(text)
    if text not in ("largest", "center"):
        raise argparse.ArgumentTypeError(f"must be 'largest', 'center' or a track id, got {text}")
    return text


def _suffix_checker(module: str, table: str, what: str) -> Any:
    def parse(text: str) -> str:
        import importlib

        allowed = getattr(importlib.import_module(module, __package__), table)
        if Path(text).suffix.lower() not in allowed:
            raise argparse.ArgumentTypeError(f"{what} must end in {', '.join(allowed)}: {text}")
        return text

    return parse


def add_pipeline_options(parser: argparse.ArgumentParser) -> Any:
    """Add the PosePipeline flags (group "pipeline"); shared with ``instanthmr serve``."""
    # fmt: off
    pipe = parser.add_argument_group("pipeline")
    pipe.add_argument("--model", metavar="NAME_OR_PATH",
                      help="InstantHMR ONNX file, or a Hub name (default: the released model)")
    pipe.add_argument("--device", choices=DEVICES, default="auto",
                      help="where to run: auto picks the best available provider (default: auto)")
    pipe.add_argument("--fallback", action="store_true",
                      help="run on CPU when the --device provider is not available "
                      "(default: stop with an error)")
    pipe.add_argument("--precision", choices=("auto", "fp32", "fp16", "int8"), default="auto",
                      help="model precision per provider: auto uses an int8 file (instanthmr "
                      "quantize) only where it measured faster (default: auto)")
    pipe.add_argument("--detector-variant", choices=DETECTOR_VARIANTS, default="nano",
                      help="RF-DETR size: larger is more accurate and slower (default: nano)")
    pipe.add_argument("--detector-backend", choices=("auto", "onnx", "torch"), default="auto",
                      help="onnx (numpy + onnxruntime) or torch (the rfdetr package) "
                      "(default: auto)")
    pipe.add_argument("--detector-model", metavar="PATH",
                      help="an RF-DETR ONNX export to use instead of the variant's default")
    pipe.add_argument("--detector-stride", type=_int_at_least(1), default=None, metavar="N",
                      help="longest gap between detector runs; boxes in between come from "
                      "tracked keypoints, and the detector runs sooner when a track looks "
                      "lost or someone may have entered (default: 1, every frame; "
                      f"{LIVE_DETECTOR_STRIDE} for --camera and --url)")
    pipe.add_argument("--async-detector", action=argparse.BooleanOptionalAction, default=None,
                      help="run the detector in a background thread so it never stalls a "
                      "frame; its boxes are merged when they arrive (default: on for "
                      "--camera and --url, off otherwise)")
    pipe.add_argument("--detector-threads", type=_int_at_least(1), metavar="N",
                      help="CPU threads of the detector's session (default: as many as "
                      "the HMR model's; with the async detector on CPU the two models split "
                      "the cores)")
    pipe.add_argument("--det-confidence", type=_unit_float, default=0.5, metavar="P",
                      help="minimum detector score for a person (default: 0.5)")
    pipe.add_argument("--max-persons", type=_int_at_least(1), metavar="N",
                      help="keep at most N persons per frame, the most confident (default: all)")
    pipe.add_argument("--no-batch-persons", action="store_true",
                      help="run the model once per person instead of one batch per frame")
    pipe.add_argument("--smooth", action=argparse.BooleanOptionalAction, default=None,
                      help="One-Euro smoothing per track (default: on for video, camera and "
                      "stream; off for images and folders)")
    pipe.add_argument("--target", type=_target, metavar="WHO",
                      help="follow one person only: 'largest' (biggest box), 'center' (nearest "
                      "the image centre) or a track id such as 3 (default: everyone)")
    pipe.add_argument("--focal", type=_positive_float, metavar="PX",
                      help="the camera's focal length in pixels, for focal-aware model files "
                      "(metadata cliff_focal); used in the CLIFF vector and as the results' "
                      "camera (default: 1.05 x the image diagonal; the published model has a "
                      "fixed camera and refuses it)")
    # fmt: on
    return pipe


def add_frame_options(group: Any) -> Any:
    """Add ``--max-frames`` and ``--frame-skip`` (for file sources; shared with ``batch``)."""
    # fmt: off
    group.add_argument("--max-frames", type=_int_at_least(1), metavar="N",
                       help="stop after processing N frames")
    group.add_argument("--frame-skip", type=_int_at_least(0), default=0, metavar="N",
                       help="skip N source frames after each processed one (default: 0)")
    # fmt: on
    return group


def build_parser(prog: str | None = None) -> argparse.ArgumentParser:
    """The demo's command line (every flag is described in ``--help``)."""
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Real-time 3D human pose (MHR70 keypoints) with the InstantHMR ONNX model: "
        "view results in Rerun, export them, or write an annotated video.",
        epilog="With no input flag the embedded sample clip is used. Guide: docs/demo.md",
    )
    # fmt: off
    src = parser.add_argument_group("input (pick one; default: the embedded sample clip)")
    one = src.add_mutually_exclusive_group()
    one.add_argument("--image", action="append", metavar="PATH",
                     help="an image file or a glob such as 'shots/*.jpg' (quote it); repeatable")
    one.add_argument("--folder", metavar="DIR", help="every image in DIR, in name order")
    one.add_argument("--video", metavar="PATH", help="a video file (timestamps from the container)")
    one.add_argument("--camera", type=int, metavar="INDEX",
                     help="a local camera by index (0 = default webcam); always the latest frame")
    one.add_argument("--url", metavar="URL",
                     help="a network stream (rtsp://, http://, ...) read like a camera")

    add_frame_options(add_pipeline_options(parser))

    add_world_arguments(parser)

    out = parser.add_argument_group("outputs")
    out.add_argument("--export", action="append", metavar="FILE",
                     type=_suffix_checker("..sinks.exporters", "EXPORT_SUFFIXES", "--export"),
                     help="write results to FILE.jsonl, FILE.npz or FILE.csv, or a skeleton "
                     "animation to FILE.bvh (one FILE.trackN.bvh per track) or FILE.glb; "
                     "repeatable")
    out.add_argument("--write-video", metavar="FILE.mp4",
                     type=_suffix_checker("..sinks.video", "FOURCC_BY_SUFFIX", "--write-video"),
                     help="write the frames with boxes and skeletons drawn on them (.mp4, .avi)")

    view = parser.add_argument_group("viewer (Rerun; default: spawn a native viewer)")
    view.add_argument("--headless", action="store_true",
                      help="no viewer window; combine with --save to still get a recording")
    view.add_argument("--save", metavar="FILE.rrd",
                      help="write the recording to FILE.rrd instead of showing it")
    view.add_argument("--connect", nargs="?", const="", default=None, metavar="URL",
                      help="send to a running viewer (default address, or "
                      "rerun+http://HOST:9876/proxy)")
    view.add_argument("--serve", action="store_true",
                      help="host a gRPC server and a web viewer and open it in a browser; "
                      "keeps serving after the run until Ctrl-C")
    view.add_argument("--stdout", action="store_true",
                      help="write the recording to stdout, e.g. '| rerun -'")
    view.add_argument("--serve-app", action="store_true",
                      help="serve the browser app instead (same as `instanthmr serve`; "
                      "see docs/app.md and `instanthmr serve --help`)")
    # fmt: on
    return parser


def input_kind(args: argparse.Namespace) -> str:
    """Which input flag was given: images, folder, video, camera, url, or sample."""
    if args.image:
        return "images"
    for kind in ("folder", "video", "camera", "url"):
        if getattr(args, kind) is not None:
            return kind
    return "sample"


def viewer_namespace(args: argparse.Namespace) -> argparse.Namespace | None:
    """The arguments ``rr.script_setup`` expects, or None when nothing goes to Rerun.

    The demo's own ``--url`` is an input, so the viewer address goes with ``--connect URL``.
    """
    if args.headless and not (args.save or args.serve or args.stdout or args.connect is not None):
        return None
    return argparse.Namespace(
        headless=args.headless,
        connect=args.connect is not None,
        url=args.connect or None,
        serve=args.serve,
        save=args.save,
        stdout=args.stdout,
    )


def _open_source(args: argparse.Namespace, kind: str) -> Any:
    from ..sources.files import SourceError, open_source, sample_video_path

    try:
        if kind == "images":
            return open_source(images=args.image)
        if kind == "sample":
            return open_source(video=sample_video_path())
        return open_source(**{kind: getattr(args, kind)})
    except ValueError as exc:  # e.g. a URL without a scheme: a user error, not a bug
        raise SourceError(str(exc)) from exc


def _make_pipeline(args: argparse.Namespace, smooth: bool, world: Any = False) -> Any:
    from ..pipeline import PosePipeline

    return PosePipeline(
        model=args.model,
        device=args.device,
        fallback=args.fallback,
        precision=args.precision,
        detector_variant=args.detector_variant,
        detector_backend=args.detector_backend,
        detector_model=args.detector_model,
        det_confidence=args.det_confidence,
        max_persons=args.max_persons,
        detector_stride=args.detector_stride,
        batch_persons=not args.no_batch_persons,
        smoothing=smooth,
        target=args.target,
        world=world,
        async_detector=args.async_detector,
        detector_threads=args.detector_threads,
        focal=args.focal,
    )


def _expected_frames(source: Any, args: argparse.Namespace) -> int | None:
    total = getattr(source, "total_frames", None)
    if source.is_live or not total:
        return args.max_frames
    total = math.ceil(total / (args.frame_skip + 1))
    return min(total, args.max_frames) if args.max_frames else total


def run(args: argparse.Namespace) -> int:
    """Run the demo with parsed arguments; every output is closed even on errors."""
    from tqdm import tqdm

    kind = input_kind(args)
    smooth = args.smooth if args.smooth is not None else kind not in IMAGE_INPUTS
    world = world_option(args, static=kind not in IMAGE_INPUTS)
    args.world = world is not False
    live = kind in LIVE_INPUTS
    if args.async_detector is None:
        args.async_detector = live
    if args.detector_stride is None:
        args.detector_stride = LIVE_DETECTOR_STRIDE if live else 1
    stats = _Stats()
    with contextlib.ExitStack() as stack:
        source = _open_source(args, kind)
        stack.callback(source.close)
        pipeline = _make_pipeline(args, smooth, world)
        stack.callback(pipeline.close)  # stops the async detector's thread, also on Ctrl-C
        print(model_banner(pipeline.hmr), file=sys.stderr)
        outputs = _Outputs(args, stack, fps=_source_fps(source, args))
        bar = stack.enter_context(
            tqdm(total=_expected_frames(source, args), unit="frame", disable=source.is_live)
        )
        seen = 0
        interrupted = False
        t_read = time.perf_counter()
        try:
            for frame in source:
                read_ms = (time.perf_counter() - t_read) * 1000.0
                seen += 1
                if (seen - 1) % (args.frame_skip + 1) == 0:
                    result = pipeline.predict(
                        frame.image, frame_index=frame.index, timestamp=frame.timestamp
                    )
                    outputs.write(frame.image, result, read_ms)
                    stats.add(result)
                    bar.update(1)
                    if args.max_frames and stats.frames >= args.max_frames:
                        break
                t_read = time.perf_counter()
        except KeyboardInterrupt:
            interrupted = True
            print("\ninterrupted: closing outputs", file=sys.stderr)
        bar.close()
        outputs.close_animation()
        finish_world(args, pipeline, outputs.written)
        dropped = source.dropped if source.is_live else None
        # With --stdout the recording itself goes to stdout: keep the summary off it.
        print(stats.summary(outputs.written, dropped), file=sys.stderr if args.stdout else None)
        if outputs.viewer is not None:
            import rerun as rr

            rr.script_teardown(outputs.viewer)  # --serve: keeps serving until Ctrl-C
    return EXIT_INTERRUPTED if interrupted else 0


def _source_fps(source: Any, args: argparse.Namespace) -> float:
    fps = getattr(source, "fps", None)
    fps = float(fps) if fps and math.isfinite(fps) and fps > 0 else 25.0
    return fps / (args.frame_skip + 1)


class _Outputs:
    """Rerun sink, exporters and the annotated video, all closed by ``stack``."""

    def __init__(self, args: argparse.Namespace, stack: contextlib.ExitStack, fps: float) -> None:
        self.written: list[str] = []
        self.viewer = viewer_namespace(args)
        self.sink = None
        self.exporters: list[Any] = []
        self.video = None
        self._video_path = args.write_video
        self._fps = fps
        self._stack = stack
        self._output_ms = 0.0
        if self.viewer is not None:
            import rerun as rr

            from ..sinks.rerun_sink import RerunSink, default_blueprint

            blueprint = default_blueprint(world=bool(args.world))
            rec = rr.script_setup(self.viewer, APP_ID, default_blueprint=blueprint)
            stack.callback(rec.disconnect)  # closes the .rrd file (writes its footer)
            stack.callback(rec.flush)  # runs first: every logged frame reaches the sink
            self.sink = RerunSink(rec, send_blueprint=False, world=bool(args.world))
            if args.save:
                self.written.append(args.save)
        if args.export:
            from ..sinks.exporters import open_exporter

            for path in args.export:
                exporter = open_exporter(path)
                stack.callback(exporter.close)
                self.exporters.append(exporter)
                if not hasattr(exporter, "written"):  # animation files are named on close
                    self.written.append(path)

    def close_animation(self) -> None:
        """Write the animation files now (their later close is a no-op), so the summary
        names the files really written: one per track, e.g. ``out.track3.bvh``."""
        for exporter in self.exporters:
            if hasattr(exporter, "written"):
                exporter.close()
                self.written.extend(str(p) for p in exporter.written)

    def write(self, image: Any, result: Any, read_ms: float) -> None:
        """Send one frame's results to every output."""
        t0 = time.perf_counter()
        for exporter in self.exporters:
            exporter.write(result)
        if self._video_path:
            from ..sinks.video import AnnotatedVideoWriter, draw_results

            if self.video is None:
                size = (int(image.shape[1]), int(image.shape[0]))
                self.video = AnnotatedVideoWriter(self._video_path, self._fps, size, letterbox=True)
                self._stack.callback(self.video.close)
                self.written.append(self._video_path)
            self.video.write(draw_results(image, result))
        if self.sink is not None:
            extra = {"read_ms": read_ms, "output_ms": self._output_ms}
            self.sink.log_frame(image, result, extra)
        self._output_ms = (time.perf_counter() - t0) * 1000.0


class _Stats:
    """Running totals for the end-of-run summary."""

    def __init__(self) -> None:
        self.frames = 0
        self.persons = 0
        self.total_ms = 0.0

    def add(self, result: Any) -> None:
        self.frames += 1
        self.persons += len(result)
        self.total_ms += float(result.timings.total)

    def summary(self, written: list[str], dropped: int | None) -> str:
        lines = [f"processed {self.frames} frames, {self.persons} person detections"]
        if self.frames and self.total_ms > 0:
            mean = self.total_ms / self.frames
            lines.append(f"pipeline: {mean:.1f} ms per frame ({1000.0 / mean:.1f} FPS)")
        if dropped is not None:
            lines.append(
                f"live source: {dropped} frames dropped (the reader keeps only the latest)"
            )
        if written:
            lines.append("wrote: " + ", ".join(str(Path(p)) for p in written))
        return "\n".join(lines)


def _user_errors() -> tuple[type[BaseException], ...]:
    """Errors that mean bad input, model or device: reported in one line, exit code 2."""
    from ..runtime.contract import ContractError, UnsupportedModelError
    from ..runtime.session import ProviderError
    from ..sinks.formats_common import UnwritablePathError
    from ..sources.files import SourceError

    return (
        SourceError,
        UnwritablePathError,
        ProviderError,
        ContractError,
        UnsupportedModelError,
        FileNotFoundError,
        NotADirectoryError,
        IsADirectoryError,
    )


def main(argv: list[str] | None = None) -> int:
    """Parse ``argv`` (default ``sys.argv[1:]``), run the demo and return the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--serve-app" in argv:  # the browser app instead (docs/app.md): same pipeline flags
        from .serve import main as serve_main

        return serve_main([a for a in argv if a != "--serve-app"])
    parser = build_parser()
    args = parser.parse_args(argv)
    check_world_flags(parser, args)
    errors = _user_errors()
    try:
        return run(args)
    except errors as exc:
        print(f"instanthmr demo: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # during start-up (loading models, opening the source)
        print("\ninterrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
