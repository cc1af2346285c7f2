"""``instanthmr eval DATASET``: accuracy on a dataset, or the synthetic regression gate.

Datasets:
  synthetic   the regression gate: the real pipeline on the analytic oracle model and a
              generated clip with known answers; exit 1 when a check fails (not an
              accuracy claim: a tripwire for geometry regressions)
  coco        COCO person keypoints, 2D keypoint AP through pycocotools
  3dpw        3DPW sequence pickles, camera-frame 3D joint metrics
  emdb        EMDB pickles (needs an SMPL model file), camera-frame and world metrics
  folder      your own ground truth (images/ + gt.npz or gt.jsonl per sequence)

Each run writes REPORT.json (per sequence and overall, the model's sha256 and random_init
flag, the options) and REPORT.md, and prints the Markdown table. Metrics, units and exact
commands: docs/evaluation.md.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .errors import CommandParser, command
from .options import DETECTOR_VARIANTS, DEVICES, int_at_least, unit_interval

DATASETS = ("synthetic", "coco", "3dpw", "emdb", "folder")


def _common(p: argparse.ArgumentParser, coco: bool = False) -> None:
    p.add_argument("--root", required=True, help="dataset folder (see docs/evaluation.md)")
    p.add_argument("--model", help="InstantHMR ONNX file (default: the Hub release)")
    p.add_argument("--device", default="auto", choices=DEVICES, help="where to run (default: auto)")
    p.add_argument("--threads", type=int_at_least(1), help="CPU intra-op threads")
    p.add_argument(
        "--gt-boxes",
        action="store_true",
        help="use the ground-truth person boxes instead of running the detector",
    )
    p.add_argument("--detector-variant", default="auto", choices=DETECTOR_VARIANTS,
                   help="auto, yolox-nano, yolox or an RF-DETR size (default: auto)")  # fmt: skip
    p.add_argument("--detector-backend", default="auto", choices=("auto", "onnx", "torch"),
                   help="onnx, torch or auto")  # fmt: skip
    p.add_argument("--detector-model", help="a detector ONNX export (RF-DETR or YOLOX)")
    p.add_argument("--det-confidence", type=unit_interval, default=None,
                   help="person score threshold in [0, 1) (default: the detector's)")  # fmt: skip
    p.add_argument("--iou", type=unit_interval, default=0.5, help="IoU to match predictions to GT")
    p.add_argument("--out", help="report path stem (default: eval-<dataset>/report)")
    if not coco:
        p.add_argument("--sequences", nargs="+", help="only these sequences")
        p.add_argument("--stride", type=int_at_least(1), default=1, help="detector stride")
        p.add_argument("--no-smoothing", action="store_true", help="turn One-Euro smoothing off")
    else:
        p.add_argument("--limit", type=int_at_least(1), help="only the first N images (by id)")


def build_parser(prog: str | None = None) -> argparse.ArgumentParser:
    """The eval command line (one sub-command per dataset)."""
    parser = CommandParser(
        prog=prog, command="eval", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    sub = parser.add_subparsers(dest="dataset", required=True, metavar="DATASET")
    syn = sub.add_parser("synthetic", help="the regression gate (exit 1 on failure)")
    syn.add_argument("--frames", type=int_at_least(2), default=40, help="clip length (default 40)")
    syn.add_argument("--json", help="also write the checks as JSON here")
    coco = sub.add_parser("coco", help="COCO person keypoints (2D AP, pycocotools)")
    _common(coco, coco=True)
    coco.add_argument("--annotations", required=True, help="person_keypoints_val2017.json")
    pw = sub.add_parser("3dpw", help="3DPW sequence pickles (3D, camera frame)")
    _common(pw)
    pw.add_argument("--split", default="test", help="train, validation or test")
    em = sub.add_parser("emdb", help="EMDB pickles (3D, camera and world frame)")
    _common(em)
    em.add_argument("--smpl", required=True, help="SMPL model file, or a folder of them")
    em.add_argument("--subset", default="emdb1", help="emdb1, emdb2 or all")
    fo = sub.add_parser("folder", help="your own ground truth (gt.npz / gt.jsonl)")
    _common(fo)
    return parser


def _pipeline(args: argparse.Namespace, video: bool) -> Any:
    from ..options import PipelineOptions
    from ..pipeline import PosePipeline

    # with --gt-boxes there is no detector: a detector flag given too is an error
    return PosePipeline(options=PipelineOptions(
        model=args.model, device=args.device, threads=args.threads,
        detector=None if args.gt_boxes else "auto", detector_variant=args.detector_variant,
        detector_backend=args.detector_backend, detector_model=args.detector_model,
        det_confidence=args.det_confidence, tracking=video,
        detector_stride=getattr(args, "stride", 1) if video else 1,
        smoothing=video and not getattr(args, "no_smoothing", False),
    ))  # fmt: skip


def _sequences(args: argparse.Namespace) -> list:
    if args.dataset == "3dpw":
        from ..evaluation import threedpw

        return threedpw.load(args.root, args.split, args.sequences)
    if args.dataset == "emdb":
        from ..evaluation import emdb

        return emdb.load(args.root, args.smpl, args.subset, args.sequences)
    from ..evaluation import folder

    return folder.load(args.root, args.sequences)


def _options(args: argparse.Namespace) -> dict[str, Any]:
    return {k: v for k, v in vars(args).items() if k not in ("dataset",)}


def run_dataset(args: argparse.Namespace) -> dict[str, Any]:
    """Evaluate one dataset and return the report (also written to disk)."""
    from tqdm import tqdm

    from ..evaluation import report as R  # noqa: N812

    if args.dataset == "coco":
        from ..evaluation import coco

        pipe = _pipeline(args, video=False)
        with tqdm(desc="coco", unit="img", disable=None) as bar:

            def tick(_: int, total: int) -> None:
                bar.total = total
                bar.update()

            scored = coco.evaluate(pipe, args.annotations, args.root, gt_boxes=args.gt_boxes,
                                   limit=args.limit, iou=args.iou, progress=tick)  # fmt: skip
        sequences, overall = {"coco": scored}, scored
    else:
        from ..evaluation.runner import run_sequence, score_sequence

        seqs = _sequences(args)
        pipe = _pipeline(args, video=True)
        scored_list, sequences = [], {}
        for seq in seqs:
            with tqdm(total=len(seq.frames), desc=seq.name, unit="frame", disable=None) as bar:
                pred = run_sequence(pipe, seq, gt_boxes=args.gt_boxes, iou=args.iou,
                                    progress=lambda _: bar.update())  # fmt: skip
            scored = score_sequence(seq, pred)
            scored_list.append(scored)
            sequences[seq.name] = R.summarise(scored)
        overall = R.overall(scored_list)
    model = R.model_entry(pipe.hmr.model_path, pipe.hmr.random_init, pipe.detector,
                          pipe.hmr.model_kind.name)  # fmt: skip
    report = R.build_report(args.dataset, sequences, overall, model, _options(args))
    stem = Path(args.out or f"eval-{args.dataset}/report")
    R.write_report(report, stem.with_suffix(".json"), stem.with_suffix(".md"))
    print(R.markdown(report))
    print(f"wrote {stem.with_suffix('.json')} and {stem.with_suffix('.md')}", file=sys.stderr)
    return report


@command("eval")
def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status (1 when the synthetic gate fails)."""
    args = build_parser().parse_args(argv)
    if args.dataset == "synthetic":
        from ..evaluation.synthetic import run_gate

        result = run_gate(args.frames)
        print(result.markdown())
        if args.json:
            from ..evaluation.report import write_text

            write_text(Path(args.json), json.dumps(result.as_dict(), indent=2) + "\n")
        return 0 if result.passed else 1
    run_dataset(args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
