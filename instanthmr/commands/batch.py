"""``instanthmr batch INPUT... --output DIR``: many videos, resumable, locally or on Ray.

Takes the demo's pipeline flags (``--model``, ``--detector-*``, ``--max-frames``, ...),
writes per video ``<name>_<hash>.npz`` (``--format`` picks the formats instead, repeatable:
``--format jsonl`` writes JSONL only, ``--format npz --format jsonl`` both) and a
``.summary.jsonl``, and records every video in ``DIR/manifest.jsonl``. Guide:
``docs/batch.md``.

Exit codes: 0 every input done, 1 any input failed or partial (see the summary table),
2 the batch could not start (bad option, missing model, unwritable output, no inputs),
130 interrupted by Ctrl-C, 143 by SIGTERM, 129 by SIGHUP (finished inputs are recorded; run
again to resume). User errors print one line (:mod:`instanthmr.commands.errors`).
"""

from __future__ import annotations

import argparse
import logging
import sys

from .errors import CommandParser, command
from .options import add_frame_options, add_pipeline_options, int_at_least


def _fraction(text: str) -> float:
    value = float(text)
    if not value >= 0.0:
        raise argparse.ArgumentTypeError(f"must be a number >= 0, got {text}")
    return value


def build_parser(prog: str | None = None) -> argparse.ArgumentParser:
    """The batch command line (every flag is described in ``--help``)."""
    from ..batch import ENGINES, FORMATS

    parser = CommandParser(
        prog=prog,
        command="batch",
        description="Run the pose pipeline over many videos and images, one task per video, "
        "resumably (DIR/manifest.jsonl), on local processes or a Ray cluster.",
        epilog="Guide: docs/batch.md",
    )
    # fmt: off
    parser.add_argument("inputs", nargs="+", metavar="INPUT",
                        help="video or image files, folders (searched recursively) or glob "
                        "patterns such as 'footage/**/*.mp4' (quote them)")
    parser.add_argument("--output", "-o", required=True, metavar="DIR",
                        help="output folder: results, summaries and manifest.jsonl")
    parser.add_argument("--format", action="append", choices=FORMATS, dest="formats",
                        help="result file per video; repeatable: the formats given replace the "
                        "default (default: npz; --format jsonl writes JSONL only)")
    add_frame_options(add_pipeline_options(parser)).add_argument(
        "--detector-factory", metavar="MODULE:CALLABLE",
        help="use the detector this callable returns instead of RF-DETR; the module must be "
        "importable by every worker")
    run = parser.add_argument_group("engine")
    run.add_argument("--engine", choices=ENGINES, default="local",
                     help="local processes, or Ray actors (extra 'ray') (default: local)")
    run.add_argument("--workers", type=int_at_least(1), metavar="N",
                     help="worker processes or actors (default: local one per 4 cores; "
                     "Ray: as many as the cluster's CPUs allow)")
    run.add_argument("--threads", type=int_at_least(1), metavar="N",
                     help="onnxruntime CPU threads per worker (default: cores / workers, so "
                     "workers x threads <= cores)")
    run.add_argument("--address", default="local", metavar="ADDR",
                     help="Ray: 'local' (start one here), 'auto' (the running cluster) or "
                     "ray://HOST:10001 (default: local)")
    run.add_argument("--gpus-per-worker", type=_fraction, default=0.0, metavar="G",
                     help="Ray: GPUs per actor, fractions allowed, e.g. 0.25 (default: 0)")
    run.add_argument("--no-progress", action="store_true", help="no progress bars")
    # fmt: on
    return parser


def options_from(args: argparse.Namespace) -> object:
    """The :class:`~instanthmr.batch.BatchOptions` of parsed arguments."""
    from ..batch import BatchOptions

    return BatchOptions(
        model=args.model, device=args.device, fallback=args.fallback, precision=args.precision,
        detector_variant=args.detector_variant, detector_backend=args.detector_backend,
        detector_model=args.detector_model, detector_factory=args.detector_factory,
        det_confidence=args.det_confidence, max_persons=args.max_persons,
        detector_stride=args.detector_stride or 1, batch_persons=not args.no_batch_persons,
        smooth=args.smooth, target=args.target, max_frames=args.max_frames,
        frame_skip=args.frame_skip, formats=tuple(args.formats or ("npz",)), focal=args.focal,
    )  # fmt: skip


@command("batch")
def main(argv: list[str] | None = None) -> int:
    """Parse ``argv`` (default ``sys.argv[1:]``), run the batch and return the exit code."""
    from ..batch import run_batch

    parser = build_parser()
    args = parser.parse_args(argv)
    if args.async_detector or args.detector_threads is not None:
        parser.error("--async-detector and --detector-threads are for live input; a batch "
                     "detects in frame order (identical outputs on every engine) and sets "
                     "threads per worker with --threads")  # fmt: skip
    repeated = sorted({f for f in args.formats or () if args.formats.count(f) > 1})
    if repeated:
        parser.error(f"--format {repeated[0]} is given twice; give each format once")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        report = run_batch(
            args.inputs, args.output, options_from(args), engine=args.engine,  # type: ignore[arg-type]
            workers=args.workers, threads=args.threads, address=args.address,
            gpus_per_worker=args.gpus_per_worker, progress=not args.no_progress,
        )  # fmt: skip
    except KeyboardInterrupt:
        print("instanthmr batch: finished inputs are in the manifest; run the same command "
              "again to resume", file=sys.stderr)  # fmt: skip
        raise
    print(report.table())
    return report.exit_code
