"""The command-line flags every pipeline command shares, and their one mapping to options.

``demo``, ``serve`` and ``batch`` add :func:`add_pipeline_options` (and the file commands
:func:`add_frame_options`); :func:`pipeline_options` turns the parsed flags into a
:class:`~instanthmr.options.PipelineOptions` with the running mode's defaults for the flags
left unset. :func:`user_errors` (from :mod:`.errors`, the contract every command shares)
lists the exceptions a command reports in one line with exit code 2.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Any

from ..options import LIVE_DETECTOR_STRIDE, PRECISIONS, PipelineOptions
from .errors import EXIT_INTERRUPTED, user_errors

__all__ = [
    "DETECTOR_VARIANTS",
    "DEVICES",
    "EXIT_INTERRUPTED",
    "add_frame_options",
    "add_pipeline_options",
    "int_at_least",
    "pipeline_options",
    "suffix_checker",
    "unit_interval",
    "user_errors",
]

# instanthmr.detector.choice.DETECTOR_VARIANTS (not imported here: --help stays fast)
DETECTOR_VARIANTS = ("auto", "yolox-nano", "yolox", "nano", "small", "medium", "base", "large")
DEVICES = ("auto", "cpu", "cuda", "tensorrt", "coreml")


def int_at_least(low: int) -> Any:
    """An argparse type: an integer >= ``low``."""

    def parse(text: str) -> int:
        value = int(text)
        if value < low:
            raise argparse.ArgumentTypeError(f"must be an integer >= {low}, got {text}")
        return value

    return parse


def unit_interval(text: str) -> float:
    """An argparse type: a number in [0, 1) (a score threshold)."""
    value = float(text)
    if not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError(f"must be in [0, 1), got {text}")
    return value


def _target(text: str) -> str | int:
    if text.lstrip("-").isdigit():
        return int(text)
    if text not in ("largest", "center"):
        raise argparse.ArgumentTypeError(f"must be 'largest', 'center' or a track id, got {text}")
    return text


def suffix_checker(module: str, table: str, what: str) -> Any:
    def parse(text: str) -> str:
        import importlib

        allowed = getattr(importlib.import_module(module), table)
        if Path(text).suffix.lower() not in allowed:
            raise argparse.ArgumentTypeError(f"{what} must end in {', '.join(allowed)}: {text}")
        return text

    return parse


def add_pipeline_options(parser: argparse.ArgumentParser) -> Any:
    """Add the PosePipeline flags (group "pipeline"); shared with ``instanthmr serve``."""
    # fmt: off
    pipe = parser.add_argument_group("pipeline")
    pipe.add_argument("--model", metavar="NAME_OR_PATH",
                      help="InstantHMR ONNX file, a Hub name, or 'standin' (MediaPipe's "
                      "BlazePose shipped in the package: NOT InstantHMR) (default: the "
                      "released model)")
    pipe.add_argument("--device", choices=DEVICES, default="auto",
                      help="where to run: auto picks the best available provider (default: auto)")
    pipe.add_argument("--fallback", action="store_true",
                      help="run on CPU when the --device provider is not available "
                      "(default: stop with an error)")
    pipe.add_argument("--precision", choices=PRECISIONS, default="auto",
                      help="model precision per provider: auto uses an int8 file (instanthmr "
                      "quantize) only where it measured faster (default: auto)")
    pipe.add_argument("--detector-variant", choices=DETECTOR_VARIANTS, default="auto",
                      help="auto: RF-DETR nano where its export is present (or on a GPU with "
                      "rfdetr installed), else the embedded YOLOX-nano; yolox-nano; yolox (a "
                      "YOLOX file given with --detector-model); or an RF-DETR size, larger "
                      "is more accurate and slower (default: auto)")
    pipe.add_argument("--detector-backend", choices=("auto", "onnx", "torch"), default="auto",
                      help="onnx (numpy + onnxruntime) or torch (the rfdetr package) "
                      "(default: auto)")
    pipe.add_argument("--detector-model", metavar="PATH",
                      help="a detector file (an RF-DETR or YOLOX ONNX export) to use instead "
                      "of the variant's default")
    pipe.add_argument("--detector-stride", type=int_at_least(1), default=None, metavar="N",
                      help="longest gap between detector runs; boxes in between come from "
                      "tracked keypoints, and the detector runs sooner when a track looks "
                      "lost or someone may have entered (default: 1, every frame; "
                      f"{LIVE_DETECTOR_STRIDE} for --camera and --url)")
    pipe.add_argument("--async-detector", action=argparse.BooleanOptionalAction, default=None,
                      help="run the detector in a background thread so it never stalls a "
                      "frame; its boxes are merged when they arrive (default: on for "
                      "--camera and --url, off otherwise)")
    pipe.add_argument("--detector-threads", type=int_at_least(1), metavar="N",
                      help="CPU threads of the detector's session (default: as many as "
                      "the HMR model's; with the async detector on CPU, RF-DETR and the HMR "
                      "model split the cores, the embedded YOLOX-nano gets 1)")
    pipe.add_argument("--det-confidence", type=unit_interval, default=None, metavar="P",
                      help="minimum detector score for a person (default: the detector's "
                      "own, 0.5 for RF-DETR and 0.3 for YOLOX)")
    pipe.add_argument("--max-persons", type=int_at_least(1), metavar="N",
                      help="keep at most N persons per frame, the most confident (default: all)")
    pipe.add_argument("--no-batch-persons", action="store_true",
                      help="run the model once per person instead of one batch per frame")
    pipe.add_argument("--smooth", action=argparse.BooleanOptionalAction, default=None,
                      help="One-Euro smoothing per track (default: on for video, camera and "
                      "stream; off for images and folders)")
    pipe.add_argument("--target", type=_target, metavar="WHO",
                      help="follow one person only: 'largest' (biggest box), 'center' (nearest "
                      "the image centre) or a track id such as 3 (default: everyone)")
    pipe.add_argument("--focal", type=positive_float, metavar="PX",
                      help="the camera's focal length in pixels, for focal-aware model files "
                      "(metadata cliff_focal); used in the CLIFF vector and as the results' "
                      "camera (default: 1.05 x the image diagonal; the published model has a "
                      "fixed camera and refuses it)")
    # fmt: on
    return pipe


def add_frame_options(group: Any) -> Any:
    """Add ``--max-frames`` and ``--frame-skip`` (for file sources; shared with ``batch``)."""
    # fmt: off
    group.add_argument("--max-frames", type=int_at_least(1), metavar="N",
                       help="stop after processing N frames")
    group.add_argument("--frame-skip", type=int_at_least(0), default=0, metavar="N",
                       help="skip N source frames after each processed one (default: 0)")
    # fmt: on
    return group


def positive_float(text: str) -> float:
    """An argparse type: a finite number of pixels > 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number of pixels, got {text}") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a positive number of pixels, got {text}")
    return value


def pipeline_options(args: argparse.Namespace, mode: str, world: Any = False) -> PipelineOptions:
    """The :class:`PipelineOptions` of parsed :func:`add_pipeline_options` flags.

    Flags left unset take the defaults of ``mode`` (``images``, ``video``, ``live`` or
    ``serve``; see :func:`instanthmr.options.mode_defaults`).
    """
    return PipelineOptions.for_mode(
        mode,
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
        async_detector=args.async_detector,
        detector_threads=args.detector_threads,
        batch_persons=not args.no_batch_persons,
        smoothing=args.smooth,
        target=args.target,
        world=world,
        focal=args.focal,
    )
