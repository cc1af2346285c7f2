"""``instanthmr start``: the first run on a new machine: get the models, run the demo.

``python install.py run`` sets up the environment and then runs this. It gets the released
InstantHMR weights into the Hugging Face cache, exports the RF-DETR nano detector to
``models/rfdetr-nano.onnx`` once (rfdetr downloads its COCO checkpoint), and runs the demo
on the embedded sample clip, writing ``out/sample-poses.jsonl`` and
``out/sample-annotated.mp4`` and showing the Rerun viewer where there is a display.

Where the Hub or the detector checkpoint cannot be reached it says so at once (a quick
name lookup and connect, no retry loop) and names the two ways forward: the manual
download, or ``--random-init``. That exports random-init models of both networks once,
caches them in ``models/`` (``instanthmr-random.onnx``, ``rfdetr-nano-random.onnx``) and
runs with them (keeping the two best random boxes a frame, ``--det-confidence 0
--max-persons 2``, so every stage runs): everything works at full speed, but the poses
are MEANINGLESS, and the run, the file names and the log say so.

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
from ..hmr.weights import WeightsNotFoundError, resolve_model, unreachable
from .errors import CommandParser, command

DETECTOR_VARIANT = "nano"
RANDOM_HMR = Path("models") / "instanthmr-random.onnx"
RANDOM_DETECTOR = Path("models") / "rfdetr-nano-random.onnx"
RFDETR_WEIGHTS_URL = "https://storage.googleapis.com/rfdetr/"  # where rfdetr downloads from
BANNER = "!" * 78
EXIT_OFFLINE = 2


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
        help="export random-init InstantHMR and RF-DETR models once (cached in models/) and "
        "run with them: for machines without network access; the poses are MEANINGLESS",
    )
    p.add_argument("--model", help="an InstantHMR ONNX file instead of the Hub release")
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
    model: Path, detector: Path, out: Path, random_init: bool, extra: Sequence[str]
) -> list[str]:
    """The demo's command line: the models, the result files, the viewer or headless."""
    tag = "-random-init" if random_init else ""
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


@command("start")
def main(argv: Sequence[str] | None = None) -> int:
    """Get the models and run the demo; exit 2 with both ways forward when offline."""
    args, extra = build_parser().parse_known_args(argv)
    if args.random_init:
        model, detector = random_init_models()
    else:
        model = Path(args.model) if args.model else released_model()
        detector = released_detector(Path(args.detector_model) if args.detector_model else None)
    from .demo import main as demo_main

    demo_argv = demo_arguments(model, detector, args.out, args.random_init, extra)
    print("running: instanthmr demo " + " ".join(demo_argv), flush=True)
    code = demo_main(demo_argv)
    if args.random_init:
        print("NOTE: this run used RANDOM-INIT models: its poses are meaningless.")
    return code
