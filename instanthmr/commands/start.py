"""``instanthmr start``: the first run on a new machine: get the models, run the demo.

``python install.py run`` sets up the environment and then runs this. It gets the released
InstantHMR weights into the Hugging Face cache, exports the RF-DETR nano detector to
``models/rfdetr-nano.onnx`` once (rfdetr downloads its COCO checkpoint), and runs the demo
on the embedded sample clip, writing ``out/sample-poses.jsonl`` and
``out/sample-annotated.mp4`` and showing the Rerun viewer where there is a display.

Where the Hub cannot be reached and the weights are not cached, it says so at once (a quick
name lookup and connect, no retry loop) and runs the STAND-IN model shipped in the package
instead (``--model standin``: MediaPipe's BlazePose in the InstantHMR contract, real body
motion but NOT InstantHMR; :mod:`instanthmr.hmr.standin`), saying before and after which
models ran and how to get InstantHMR; its files are named ``out/sample-standin-*``. Its
person detector is the one this command always uses (``models/rfdetr-nano.onnx``); where
that cannot be had either, it names the ways forward: the manual download, or
``--random-init``. That exports random-init models of both networks once, caches them in
``models/`` (``instanthmr-random.onnx``, ``rfdetr-nano-random.onnx``) and runs with them
(keeping the two best random boxes a frame, ``--det-confidence 0 --max-persons 2``, so
every stage runs): everything works at full speed, but the poses are MEANINGLESS, and the
run, the file names and the log say so. ``--random-init`` is for plumbing and speed checks.

Arguments it does not know go to the demo (``instanthmr demo --help``), e.g.
``--video clip.mp4`` or ``--camera 0`` instead of the sample clip.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from ..hmr.kinds import INSTANTHMR, KINDS, RANDOM_INIT, STANDIN
from ..hmr.weights import STANDIN_NAME, WeightsNotFoundError, resolve_model, unreachable

DETECTOR_VARIANT = "nano"
RANDOM_HMR = Path("models") / "instanthmr-random.onnx"
RANDOM_DETECTOR = Path("models") / "rfdetr-nano-random.onnx"
RFDETR_WEIGHTS_URL = "https://storage.googleapis.com/rfdetr/"  # where rfdetr downloads from
BANNER = "!" * 78
EXIT_OFFLINE = 2
FILE_TAGS = {INSTANTHMR: "", RANDOM_INIT: "-random-init", STANDIN: "-standin"}
"""Result file names say which model made them: ``out/sample-standin-poses.jsonl``."""


class OfflineError(RuntimeError):
    """A model cannot be fetched from here; the message gives both ways forward."""


def build_parser() -> argparse.ArgumentParser:
    """Options of ``instanthmr start`` (everything else goes to the demo)."""
    p = argparse.ArgumentParser(
        prog="instanthmr start",
        description="Get the models (released weights, or --random-init) and run the demo on "
        "the sample clip. Other options are passed to `instanthmr demo`.",
    )
    p.add_argument(
        "--random-init",
        action="store_true",
        help="export random-init InstantHMR and RF-DETR models once (cached in models/) and "
        "run with them: for machines without network access; the poses are MEANINGLESS",
    )
    p.add_argument("--model", help="an InstantHMR ONNX file instead of the Hub release, or "
                   "'standin' for the stand-in shipped in the package (NOT InstantHMR)")
    p.add_argument(
        "--detector-model",
        help="an RF-DETR ONNX file (default: models/rfdetr-nano.onnx, exported once)",
    )
    p.add_argument("--out", type=Path, default=Path("out"), help="folder for the result files")
    return p


def _ways_forward(what: str) -> str:
    return (
        f"{what}\n"
        "Two ways forward:\n"
        "  1. Download by hand on a machine with internet access, copy the files here and\n"
        "     name them:\n"
        "       hf download momolesang/InstantHMR instanthmr.onnx --local-dir models/\n"
        "       python tools/export_detector.py --variant nano   # writes models/rfdetr-nano.onnx\n"
        "       python install.py run --model models/instanthmr.onnx\n"
        "  2. Run with random-init models, exported here (no network needed). Everything runs\n"
        "     at full speed, but the poses are MEANINGLESS:\n"
        "       python install.py run --random-init"
    )


def released_model() -> Path:
    """The released InstantHMR weights, from the Hub cache (downloaded on first use)."""
    try:
        return resolve_model()
    except WeightsNotFoundError as exc:
        first = str(exc).splitlines()[0]
        raise OfflineError(_ways_forward(f"Cannot get the InstantHMR weights. {first}")) from exc


def get_instanthmr() -> str:
    """How to get the real InstantHMR weights (said before and after a stand-in run)."""
    return (
        "To get InstantHMR: on a machine with internet access run\n"
        "  hf download momolesang/InstantHMR instanthmr.onnx --local-dir models/\n"
        "copy models/instanthmr.onnx here, then: python install.py run --model "
        "models/instanthmr.onnx\n(or run `python install.py run` again where the Hugging Face "
        "Hub can be reached)."
    )


def standin_notice(why: str, detector: Path) -> str:
    """What is said before a stand-in run: why, which models run, how to get InstantHMR."""
    notice = KINDS[STANDIN].notice
    return "\n".join([
        BANNER,
        f"{why}",
        "Running the STAND-IN model shipped in the package instead, so you see the pipeline "
        "work on real people:",
        f"  pose model: stand-in ({STANDIN_NAME}) - {notice.split(' Get InstantHMR')[0]}",
        f"  person detector: {detector}",
        get_instanthmr(),
        BANNER,
    ])  # fmt: skip


def released_detector(path: Path | None) -> Path:
    """``path``, or ``models/rfdetr-nano.onnx``, exported once from rfdetr's COCO weights."""
    from ..detector.base import default_model_path

    target = path or default_model_path(DETECTOR_VARIANT)
    if target.is_file() or path is not None:
        return target
    problem = unreachable(RFDETR_WEIGHTS_URL)
    if problem:
        raise OfflineError(
            _ways_forward(
                f"Cannot export the RF-DETR detector: its COCO checkpoint host cannot be "
                f"reached from this machine: {problem}."
            )
        )
    from ..export.detector_export import export_rfdetr_onnx

    print(f"exporting RF-DETR {DETECTOR_VARIANT} to {target} (once)", flush=True)
    return export_rfdetr_onnx(DETECTOR_VARIANT, target)


def random_init_models() -> tuple[Path, Path]:
    """Random-init InstantHMR and RF-DETR exports, made once and cached in ``models/``."""
    print(BANNER)
    print("--random-init: RANDOM weights. The poses, boxes and shapes of this run are")
    print("MEANINGLESS; use it to check the install, the plumbing and the speed only.")
    print(BANNER, flush=True)
    if not _usable(RANDOM_HMR):
        from ..export.hmr_export import export_hmr_onnx

        print(f"exporting a random-init InstantHMR to {RANDOM_HMR} (once)", flush=True)
        export_hmr_onnx(RANDOM_HMR, random_init=True, seed=0)  # written atomically
    if not _usable(RANDOM_DETECTOR):
        from ..export.detector_export import export_rfdetr_onnx

        print(f"exporting a random-init RF-DETR nano to {RANDOM_DETECTOR} (once)", flush=True)
        export_rfdetr_onnx(DETECTOR_VARIANT, RANDOM_DETECTOR, random_init=True)  # atomic too
    return RANDOM_HMR, RANDOM_DETECTOR


def _usable(path: Path) -> bool:
    return path.is_file() and path.stat().st_size > 0


def has_display() -> bool:
    """Can a native viewer window open here? (macOS, Windows, or X11 / Wayland on Linux)."""
    if sys.platform in ("darwin", "win32"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def demo_arguments(
    model: Path | str, detector: Path, out: Path, kind: str, extra: Sequence[str]
) -> list[str]:
    """The demo's command line: the models, the result files (named by the model ``kind``),
    the viewer or headless."""
    random_init = kind == RANDOM_INIT
    tag = FILE_TAGS[kind]
    argv = ["--model", str(model), "--detector-model", str(detector)]
    argv += ["--detector-backend", "onnx"]
    if not any(a in ("--export", "--write-video") for a in extra):
        argv += ["--export", str(out / f"sample{tag}-poses.jsonl")]
        argv += ["--write-video", str(out / f"sample{tag}-annotated.mp4")]
    if random_init:  # random detector scores are low: keep two boxes a frame, so every stage runs
        if "--det-confidence" not in extra:
            argv += ["--det-confidence", "0"]
        if "--max-persons" not in extra:
            argv += ["--max-persons", "2"]
    viewer_flags = ("--headless", "--save", "--connect", "--serve", "--stdout")
    if not has_display() and not any(a in viewer_flags for a in extra):
        argv.append("--headless")
    return argv + list(extra)


def main(argv: Sequence[str] | None = None) -> int:
    """Get the models and run the demo; exit 2 with both ways forward when offline."""
    args, extra = build_parser().parse_known_args(argv)
    kind = RANDOM_INIT if args.random_init else INSTANTHMR
    offline = ""
    try:
        if args.random_init:
            model, detector = random_init_models()
        else:
            model: Path | str
            if args.model and args.model.strip().lower() == STANDIN_NAME:
                model, kind = STANDIN_NAME, STANDIN
            elif args.model:
                model = Path(args.model)
            else:
                try:
                    model = released_model()
                except OfflineError as exc:  # no Hub, no cached weights: the stand-in
                    offline = str(exc).splitlines()[0]
                    model, kind = STANDIN_NAME, STANDIN
            detector = released_detector(Path(args.detector_model) if args.detector_model else None)
    except OfflineError as exc:
        print(f"instanthmr start: {exc}", file=sys.stderr)
        return EXIT_OFFLINE
    from .demo import main as demo_main

    if kind == STANDIN:
        why = offline or "You asked for the stand-in model (--model standin)."
        print(standin_notice(why, detector), flush=True)
    demo_argv = demo_arguments(model, detector, args.out, kind, extra)
    print("running: instanthmr demo " + " ".join(demo_argv), flush=True)
    code = demo_main(demo_argv)
    if args.random_init:
        print("NOTE: this run used RANDOM-INIT models: its poses are meaningless.")
    if kind == STANDIN:
        print(f"NOTE: this run used the STAND-IN pose model (MediaPipe BlazePose GHUM 3D, "
              f"shipped in the package) and the person detector {detector}: real body motion, "
              f"but NOT InstantHMR.\n{get_instanthmr()}")  # fmt: skip
    return code
