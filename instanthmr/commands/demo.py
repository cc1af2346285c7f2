"""``instanthmr demo``: run the pose pipeline on images, a folder, a video, a camera or a stream.

Results go to the Rerun viewer (spawned by default; or an ``.rrd`` file, a gRPC server, a
running viewer), to JSONL/NPZ/CSV exports and to an annotated video. With no input flag
the embedded sample clip is used. See ``docs/demo.md`` for a guide to every flag.

Exit codes (the contract every command shares, :mod:`instanthmr.commands.errors`): 0 success
(also after a camera that stopped delivering frames), 2 a problem with the input, the
model, the device, a flag or an output path (a one-line message, no traceback), 130
interrupted with Ctrl-C, 143 stopped by SIGTERM, 129 by SIGHUP (outputs written so far are
finished, closed and kept).
"""

from __future__ import annotations

import argparse
import contextlib
import math
import sys
import time
from pathlib import Path
from typing import Any

from ..hmr.kinds import file_note
from ..output_paths import check_output_paths, prepare_output_folders
from .demo_world import add_world_arguments, check_world_flags, finish_world, world_option
from .errors import (  # noqa: F401 (EXIT_INTERRUPTED: re-exported for callers)
    EXIT_INTERRUPTED,
    CommandParser,
    command,
    deferred_stops,
    interrupt_exit_code,
)
from .options import add_frame_options, add_pipeline_options, pipeline_options, suffix_checker

APP_ID = "instanthmr"
IMAGE_INPUTS = ("images", "folder")
LIVE_INPUTS = ("camera", "url")
def model_line(hmr: Any) -> str:
    """The HMR model that runs, in one line: file, architecture, parameters, GFLOP, the
    file's precision and what runs, and whether it is the pinned published file."""
    from ..hmr.identity import model_facts

    facts = model_facts(hmr.model_path, hmr.model_session.metadata)
    extra = f"; {', '.join(hmr.signature.notes)}" if hmr.signature.notes else ""
    warn = "; RANDOM-INIT weights (poses meaningless)" if hmr.random_init else ""
    return (f"{hmr.model_path.name}: {facts.line()}; runs {hmr.precision} on "
            f"{hmr.provider}{extra}{warn}")  # fmt: skip




def build_parser(prog: str | None = None) -> argparse.ArgumentParser:
    """The demo's command line (every flag is described in ``--help``)."""
    parser = CommandParser(
        prog=prog,
        command="demo",
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
                     type=suffix_checker("instanthmr.sinks.exporters", "EXPORT_SUFFIXES",
                                         "--export"),
                     help="write results to FILE.jsonl, FILE.npz or FILE.csv, or a skeleton "
                     "animation to FILE.bvh (one FILE.trackN.bvh per track) or FILE.glb; "
                     "repeatable")
    out.add_argument("--rig", choices=("plain", "mixamo", "vrm"), default=None,
                     help="bone names of .bvh/.glb exports: plain (default), mixamo "
                     "(mixamorig:Hips, ...) or vrm (hips, leftUpperArm, ...); docs/animation.md")
    out.add_argument("--stream", metavar="vmc://HOST:PORT", type=_stream_target,
                     help="stream the largest person (or vmc://HOST:PORT?track=N) live over "
                     "the VMC protocol, e.g. to Blender (VMC4B) or Unity (EVMC4U)")
    out.add_argument("--write-video", metavar="FILE.mp4",
                     type=suffix_checker("instanthmr.sinks.video", "FOURCC_BY_SUFFIX",
                                         "--write-video"),
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


def _stream_target(text: str) -> Any:
    from ..sinks.vmc import StreamUrlError, parse_stream_url

    try:
        return parse_stream_url(text)
    except StreamUrlError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


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
    mode = "images" if kind in IMAGE_INPUTS else "live" if kind in LIVE_INPUTS else "video"
    world = world_option(args, static=kind not in IMAGE_INPUTS)
    args.world = world is not False
    options = pipeline_options(args, mode, world=world)  # validated before any file is opened
    check_output_paths(_inputs(args, kind), _outputs(args))
    prepare_output_folders(_outputs(args))
    stats = _Stats()
    with contextlib.ExitStack() as stack:
        source = _open_source(args, kind)
        stack.callback(source.close)
        from ..pipeline import PosePipeline

        pipeline = PosePipeline(options=options)
        stack.callback(pipeline.close)  # stops the async detector's thread, also on Ctrl-C
        kind = pipeline.hmr.model_kind
        if kind.notice:  # not InstantHMR: say so before anything runs
            print(model_banner(kind.notice), file=sys.stderr, flush=True)
        run_info = pipeline.describe()  # the model's kind and the detector, for every header
        print(_models_line(run_info, pipeline.hmr), file=sys.stderr, flush=True)
        outputs = _Outputs(args, stack, fps=_source_fps(source, args), run=run_info)
        bar = stack.enter_context(
            tqdm(total=_expected_frames(source, args), unit="frame", disable=source.is_live)
        )
        seen = 0
        ending = None  # what to say about how a video file ended
        interrupted = 0  # the exit code of a Ctrl-C, SIGTERM or SIGHUP
        t_read = time.perf_counter()
        try:
            for frame in source:
                read_ms = (time.perf_counter() - t_read) * 1000.0
                seen += 1
                if (seen - 1) % (args.frame_skip + 1) == 0:
                    result = pipeline.predict(
                        frame.image, frame_index=frame.index, timestamp=frame.timestamp
                    )
                    with deferred_stops():  # a frame reaches every output, or none
                        outputs.write(frame.image, result, read_ms)
                        stats.add(result)
                        bar.update(1)
                    if args.max_frames and stats.frames >= args.max_frames:
                        break
                t_read = time.perf_counter()
            else:  # the source ended by itself: the bar ends where the file did
                ending = _source_end(source, bar)
        except KeyboardInterrupt as exc:  # Ctrl-C, SIGTERM, SIGHUP (commands.errors)
            interrupted = interrupt_exit_code(exc)
            print(f"\ninterrupted ({exc.args[0] if exc.args else 'SIGINT'}): closing outputs",
                  file=sys.stderr)  # fmt: skip
        bar.close()
        if ending:
            print(ending, file=sys.stderr)
        outputs.close_animation()
        finish_world(args, pipeline, outputs.written)
        dropped = source.dropped if source.is_live else None
        # With --stdout the recording itself goes to stdout: keep the summary off it.
        print(stats.summary(outputs.written, dropped), file=sys.stderr if args.stdout else None)
        if kind.notice:
            print(f"model: {pipeline.hmr.model_path.name} ({kind.title}), NOT InstantHMR: "
                  "see the notice above", file=sys.stderr if args.stdout else None)  # fmt: skip
        if outputs.viewer is not None:
            import rerun as rr

            rr.script_teardown(outputs.viewer)  # --serve: keeps serving until Ctrl-C
    return interrupted


def _inputs(args: argparse.Namespace, kind: str) -> list[tuple[str, Any]]:
    """The files this run reads, by flag (an output may not overwrite any of them)."""
    from ..sources.files import expand_images, sample_video_path

    found: list[tuple[str, Any]] = []
    if kind == "images":
        found += [("--image", p) for p in expand_images(args.image)]
    elif kind == "video":
        found.append(("--video", args.video))
    elif kind == "sample":
        found.append(("the sample clip", sample_video_path()))
    for flag in ("model", "detector_model", "world_from_path"):
        value = getattr(args, flag, None)
        if value:
            found.append(("--" + flag.removesuffix("_path").replace("_", "-"), value))
    return found


def _outputs(args: argparse.Namespace) -> list[tuple[str, Any]]:
    """Every file this run writes, by flag."""
    found = [("--export", p) for p in args.export or []]
    for flag in ("write_video", "save", "save_world"):
        if getattr(args, flag, None):
            found.append(("--" + flag.replace("_", "-"), getattr(args, flag)))
    return found


def _source_end(source: Any, bar: Any) -> str | None:
    """At the natural end of a source: finish the bar honestly (a video whose container
    miscounts its frames decoded to its end: the total becomes what was processed) and
    return a note for a miscounted or a truncated video (None when nothing to say)."""
    check = getattr(source, "decode_end", None)
    if check is None:
        return None
    end = check()
    if end.complete and bar.total is not None and bar.n != bar.total:
        bar.total = bar.n
        bar.refresh()
    if end.message is None:
        return None
    return f"note: {end.message}" if end.complete else f"warning: {source.name}: {end.message}"


def _models_line(run_info: dict[str, Any], hmr: Any) -> str:
    """The line naming the models this run uses (the HMR model's facts, the detector and
    why it was chosen)."""
    det = run_info.get("detector")
    detector = "none (boxes come from the caller)" if det is None else (
        f"{det['name']} on {det['provider']}" + (f" ({det['reason']})" if det["reason"] else "")
    )  # fmt: skip
    return f"models: HMR {model_line(hmr)}; detector {detector}"


def _source_fps(source: Any, args: argparse.Namespace) -> float:
    fps = getattr(source, "fps", None)
    fps = float(fps) if fps and math.isfinite(fps) and fps > 0 else 25.0
    return fps / (args.frame_skip + 1)


def model_banner(notice: str, width: int = 78) -> str:
    """A notice framed by lines of ``!``, wrapped to ``width`` (the demo's model banner)."""
    import textwrap

    bar = "!" * width
    return "\n".join([bar, *textwrap.wrap(notice, width), bar])


class _Outputs:
    """Rerun sink, exporters and the annotated video, all closed by ``stack``.

    ``run`` names the model and the detector (:meth:`~instanthmr.PosePipeline.describe`) for
    the file headers and the recording."""

    def __init__(
        self,
        args: argparse.Namespace,
        stack: contextlib.ExitStack,
        fps: float,
        run: dict[str, Any] | None = None,
    ) -> None:
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

            blueprint = default_blueprint(world=bool(args.world), notice=bool(file_note(run)))
            rec = _viewer_setup(rr, self.viewer, blueprint, args.save)
            stack.callback(rec.disconnect)  # closes the .rrd file (writes its footer)
            stack.callback(rec.flush)  # runs first: every logged frame reaches the sink
            self.sink = RerunSink(rec, send_blueprint=False, world=bool(args.world), run=run)
            if args.save:
                self.written.append(args.save)
        if args.stream is not None:
            from ..sinks.vmc import VmcSink

            self.exporters.append(stack.enter_context(VmcSink(args.stream)))
        if args.export:
            from ..sinks.exporters import ANIMATION_SUFFIXES, open_exporter

            for path in args.export:
                animation = Path(path).suffix.lower() in ANIMATION_SUFFIXES
                exporter = open_exporter(path, run, rig=args.rig if animation else None)
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


def _viewer_setup(rr: Any, viewer: argparse.Namespace, blueprint: Any, save: str | None) -> Any:
    """``rr.script_setup``; a ``--save`` path that cannot be written is a one-line error."""
    from ..sinks.formats_common import UnwritablePathError

    try:
        return rr.script_setup(viewer, APP_ID, default_blueprint=blueprint)
    except RuntimeError as exc:  # rerun's own: "Failed to create file: ..."
        if not save:
            raise
        why = " ".join(str(exc).split())
        raise UnwritablePathError(f"cannot write {save}: {why}; choose another path") from None


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


@command("demo")
def main(argv: list[str] | None = None) -> int:
    """Parse ``argv`` (default ``sys.argv[1:]``), run the demo and return the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--serve-app" in argv:  # the browser app instead (docs/app.md): same pipeline flags
        from .serve import main as serve_main

        return serve_main([a for a in argv if a != "--serve-app"])
    parser = build_parser()
    args = parser.parse_args(argv)
    check_world_flags(parser, args)
    if args.rig and not any(Path(p).suffix.lower() in (".bvh", ".glb") for p in args.export or []):
        parser.error("--rig names the bones of .bvh/.glb exports: add --export FILE.glb or "
                     "FILE.bvh (the --stream always uses Unity's bone names)")
    return run(args)
