"""``instanthmr start``: the first run on a new machine: get the models, run the demo.

``python install.py run`` sets up the environment and then runs this. It gets the released
InstantHMR weights into the Hugging Face cache and runs the demo on the embedded sample
clip, writing ``out/sample-poses.jsonl`` and ``out/sample-annotated.mp4`` and showing the
Rerun viewer where there is a display.

The person detector follows the rule of :mod:`instanthmr.detector.choice`: an RF-DETR
export in ``models/rfdetr-nano.onnx`` (or ``--detector-model``) when there is one; on a GPU
provider with rfdetr installed, RF-DETR nano exported there once (rfdetr downloads its COCO
checkpoint); otherwise, and whenever that checkpoint cannot be reached, the YOLOX-nano
shipped in the package: no torch and no download.

Where the Hub cannot be reached and the weights are not cached, it says so at once (a quick
name lookup and connect, no retry loop) and runs the STAND-IN model shipped in the package
instead (``--model standin``: MediaPipe's BlazePose in the InstantHMR contract, real body
motion but NOT InstantHMR; :mod:`instanthmr.hmr.standin`), saying before and after which
models ran and how to get InstantHMR; its files are named ``out/sample-standin-*``. Its
person detector is the one above. ``--random-init`` exports a random-init InstantHMR once
(needs torch), caches it in ``models/`` (``instanthmr-random.onnx``) and runs it with the
detector above: everything works at full speed and the boxes are real, but the poses are
MEANINGLESS, and the run, the file names and the log say so. ``--random-init`` is for
plumbing and speed checks.

Arguments it does not know go to the demo (``instanthmr demo --help``), e.g.
``--video clip.mp4`` or ``--camera 0`` instead of the sample clip.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from ..errors import UserError
from ..hmr.kinds import INSTANTHMR, KINDS, RANDOM_INIT, STANDIN
from ..hmr.weights import STANDIN_NAME, WeightsNotFoundError, resolve_model, unreachable
from .errors import CommandParser, command

DETECTOR_VARIANT = "nano"
RANDOM_HMR = Path("models") / "instanthmr-random.onnx"
RFDETR_WEIGHTS_URL = "https://storage.googleapis.com/rfdetr/"  # where rfdetr downloads from
BANNER = "!" * 78
EXIT_OFFLINE = 2
FILE_TAGS = {INSTANTHMR: "", RANDOM_INIT: "-random-init", STANDIN: "-standin"}
"""Result file names say which model made them: ``out/sample-standin-poses.jsonl``."""


class OfflineError(UserError, RuntimeError):
    """A model cannot be fetched from here; the message gives both ways forward."""


def build_parser() -> argparse.ArgumentParser:
    """Options of ``instanthmr start`` (everything else goes to the demo)."""
    p = CommandParser(
        command="start",
        description="Get the models (released weights, or --random-init) and run the demo on "
        "the sample clip. Other options are passed to `instanthmr demo`.",
    )
    p.add_argument(
        "--random-init",
        action="store_true",
        help="export a random-init InstantHMR once (cached in models/; needs torch) and run "
        "with it: for plumbing and speed checks; the poses are MEANINGLESS",
    )
    p.add_argument("--model", help="an InstantHMR ONNX file instead of the Hub release, or "
                   "'standin' for the stand-in shipped in the package (NOT InstantHMR)")
    p.add_argument(
        "--detector-model",
        help="a detector ONNX file, RF-DETR or YOLOX (default: models/rfdetr-nano.onnx where "
        "present, else the embedded YOLOX-nano)",
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


def detector_name(detector: Path | None) -> str:
    """How the notices name the person detector (None: the embedded YOLOX-nano)."""
    return "YOLOX-nano (embedded)" if detector is None else str(detector)


def standin_notice(why: str, detector: Path | None) -> str:
    """What is said before a stand-in run: why, which models run, how to get InstantHMR."""
    notice = KINDS[STANDIN].notice
    return "\n".join([
        BANNER,
        f"{why}",
        "Running the STAND-IN model shipped in the package instead, so you see the pipeline "
        "work on real people:",
        f"  pose model: stand-in ({STANDIN_NAME}) - {notice.split(' Get InstantHMR')[0]}",
        f"  person detector: {detector_name(detector)}",
        get_instanthmr(),
        BANNER,
    ])  # fmt: skip


def released_detector(path: Path | None) -> Path | None:
    """The RF-DETR file to run, or None for the embedded YOLOX-nano.

    ``path`` when given; else ``models/rfdetr-nano.onnx`` when present; else, on a GPU
    provider with rfdetr installed, that file exported once from rfdetr's COCO weights;
    else (or when the checkpoint host cannot be reached) None.
    """
    from ..detector.base import default_model_path
    from ..detector.choice import gpu_provider, rfdetr_installed

    target = path or default_model_path(DETECTOR_VARIANT)
    if target.is_file() or path is not None:
        return target
    gpu = gpu_provider("auto")
    if gpu is None or not rfdetr_installed():
        return None
    problem = unreachable(RFDETR_WEIGHTS_URL)
    if problem:
        print(
            f"note: RF-DETR's COCO checkpoint cannot be fetched ({problem}); using the "
            "embedded YOLOX-nano detector",
            flush=True,
        )
        return None
    from ..export.detector_export import export_rfdetr_onnx

    print(f"exporting RF-DETR {DETECTOR_VARIANT} to {target} for {gpu} (once)", flush=True)
    return export_rfdetr_onnx(DETECTOR_VARIANT, target)


def random_init_model() -> Path:
    """A random-init InstantHMR export, made once and cached in ``models/``."""
    print(BANNER)
    print("--random-init: RANDOM InstantHMR weights. The poses and shapes of this run are")
    print("MEANINGLESS; use it to check the install, the plumbing and the speed only.")
    print(BANNER, flush=True)
    if not _usable(RANDOM_HMR):
        from ..export.hmr_export import export_hmr_onnx

        print(f"exporting a random-init InstantHMR to {RANDOM_HMR} (once)", flush=True)
        export_hmr_onnx(RANDOM_HMR, random_init=True, seed=0)  # written atomically
    return RANDOM_HMR


def _usable(path: Path) -> bool:
    return path.is_file() and path.stat().st_size > 0


def has_display() -> bool:
    """Can a native viewer window open here? (macOS, Windows, or X11 / Wayland on Linux)."""
    if sys.platform in ("darwin", "win32"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def demo_arguments(
    model: Path | str, detector: Path | None, out: Path, kind: str, extra: Sequence[str]
) -> list[str]:
    """The demo's command line: the models, the result files (named by the model ``kind``),
    the viewer or headless. ``detector`` None runs the embedded YOLOX-nano."""
    tag = FILE_TAGS[kind]
    argv = ["--model", str(model)]
    if detector is None:
        argv += ["--detector-variant", "yolox-nano"]
    else:
        argv += ["--detector-model", str(detector), "--detector-backend", "onnx"]
    if not any(a in ("--export", "--write-video") for a in extra):
        argv += ["--export", str(out / f"sample{tag}-poses.jsonl")]
        argv += ["--write-video", str(out / f"sample{tag}-annotated.mp4")]
    viewer_flags = ("--headless", "--save", "--connect", "--serve", "--stdout")
    if not has_display() and not any(a in viewer_flags for a in extra):
        argv.append("--headless")
    return argv + list(extra)


@command("start")
def main(argv: Sequence[str] | None = None) -> int:
    """Get the models and run the demo; exit 2 with both ways forward when offline."""
    args, extra = build_parser().parse_known_args(argv)
    kind = RANDOM_INIT if args.random_init else INSTANTHMR
    offline = ""
    model: Path | str
    if args.random_init:
        model = random_init_model()
    elif args.model and args.model.strip().lower() == STANDIN_NAME:
        model, kind = STANDIN_NAME, STANDIN
    elif args.model:
        model = Path(args.model)
    else:
        try:
            model = released_model()
        except OfflineError as exc:  # no Hub, no cached weights: the stand-in
            offline = str(exc).splitlines()[0]
            model, kind = STANDIN_NAME, STANDIN
    # an OfflineError here (no detector to be had) is a user error: one line, exit 2
    detector = released_detector(Path(args.detector_model) if args.detector_model else None)
    from .demo import main as demo_main

    if kind == STANDIN:
        why = offline or "You asked for the stand-in model (--model standin)."
        print(standin_notice(why, detector), flush=True)
    demo_argv = demo_arguments(model, detector, args.out, kind, extra)
    print("running: instanthmr demo " + " ".join(demo_argv), flush=True)
    code = demo_main(demo_argv)
    if args.random_init:
        print("NOTE: this run used a RANDOM-INIT InstantHMR model: its poses are meaningless.")
    if kind == STANDIN:
        print(f"NOTE: this run used the STAND-IN pose model (MediaPipe BlazePose GHUM 3D, "
              f"shipped in the package) and the person detector {detector_name(detector)}: real "
              f"body motion, "
              f"but NOT InstantHMR.\n{get_instanthmr()}")  # fmt: skip
    return code
