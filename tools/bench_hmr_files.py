"""Several HMR model files side by side in one process, interleaved (ratios from one run).

    python tools/bench_hmr_files.py --model released=hmr.onnx:fp32 \\
        --model released-int8=hmr.onnx:int8 --model card=card.onnx:fp32 \\
        --batch 1 2 4 --repeats 15 --json out.json

Each ``--model LABEL=PATH[:PRECISION]`` (precision ``auto``, ``fp32``, ``fp16``, ``int8``;
default ``fp32``) is loaded once; every (model, batch) pair is timed in rotating blocks
(:func:`instanthmr.evaluation.speed.bench_hmr_side_by_side`). Prints ms per person (p50)
with each model's architecture, and the ratio of every model to the first, per batch size;
the load average at each round goes into the JSON with the machine.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from instanthmr.evaluation import speed


def _entry(text: str) -> tuple[str, str, str]:
    label, sep, rest = text.partition("=")
    if not sep or not label or not rest:
        raise argparse.ArgumentTypeError(f"expected LABEL=PATH[:PRECISION], got {text!r}")
    path, _, precision = rest.rpartition(":") if rest.rsplit(":", 1)[-1] in (
        "auto", "fp32", "fp16", "int8") else (rest, "", "fp32")  # fmt: skip
    return label, path, precision


def main(argv: list[str] | None = None) -> int:
    """Run the comparison; returns the exit status."""
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    p.add_argument("--model", type=_entry, action="append", required=True,
                   metavar="LABEL=PATH[:PRECISION]")  # fmt: skip
    p.add_argument("--batch", type=int, nargs="+", default=[1, 2, 4])
    p.add_argument("--repeats", type=int, default=15, help="timed calls per (model, batch)")
    p.add_argument("--threads", type=int, help="CPU intra-op threads (default: onnxruntime's)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--json", dest="json_path", help="write the results as JSON")
    args = p.parse_args(argv)
    machine = speed.machine_info()
    res = speed.bench_hmr_side_by_side(args.model, args.batch, args.repeats, args.threads,
                                       device=args.device)  # fmt: skip
    res["machine"] = machine
    res["load_average_end"] = speed.load_average()
    print(f"{machine['cpu']}, {machine['cores_usable']} usable cores; load average at start "
          f"{machine['load_average']}, per round {res['load_average_per_round']}, end "
          f"{res['load_average_end']}")  # fmt: skip
    models = res["models"]
    first = next(iter(models))
    for label, m in models.items():
        info = m["model"]
        print(f"{label}: {Path(info['path']).name} ({info['architecture']}, "
              f"{(info['params'] or 0) / 1e6:.2f} M params, {info['gflop']} GFLOP, file "
              f"{info['precision']}) ran {m['precision']} on {m['provider']}")  # fmt: skip
    print(f"{'model':>16} " + " ".join(f"{'b' + str(b) + ' ms/pers':>12} {'vs ' + first:>10}"
                                       for b in args.batch))  # fmt: skip
    for label, m in models.items():
        cells = []
        for b in map(str, args.batch):
            ms = m["ms_per_person_p50"][b]
            cells.append(f"{ms:>12.1f} {ms / models[first]['ms_per_person_p50'][b]:>9.2f}x")
        print(f"{label:>16} " + " ".join(cells))
    if args.json_path:
        Path(args.json_path).write_text(json.dumps(res, indent=2, default=str))
        print(f"json: {args.json_path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
