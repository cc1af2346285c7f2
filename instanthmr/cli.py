"""The ``instanthmr`` console script: ``instanthmr <command> [options]``.

The commands are the keys of :data:`COMMANDS` (``instanthmr --help`` lists them). Each
forwards its remaining arguments to the same ``main(argv)`` the thin scripts use
(``demo.py``, ``tools/bench.py``, ``install.py --doctor``, ``tools/export_*.py``), so
``instanthmr demo --help`` and ``python demo.py --help`` print the same thing.

Every command keeps one contract (:mod:`instanthmr.commands.errors`): a user error prints
one line, ``instanthmr <command>: error: <problem>; <fix>``, and exits with code 2; Ctrl-C,
SIGTERM and SIGHUP close the outputs and exit with 128 + the signal number.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence

COMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("instanthmr.commands.demo", "run the live demo with the Rerun viewer"),
    "start": ("instanthmr.commands.start", "get the models (or --random-init), run the demo"),
    "bench": ("instanthmr.commands.bench", "measure per-stage latency and FPS"),
    "doctor": ("instanthmr.commands.doctor", "check providers, GPU libraries and a model run"),
    "eval": (
        "instanthmr.commands.eval",
        "accuracy on COCO/3DPW/EMDB/your data; the synthetic gate",
    ),
    "serve": ("instanthmr.commands.serve", "serve the browser app (webcam/upload in, 3D out)"),
    "export": ("instanthmr.commands.export_hmr", "export InstantHMR to ONNX (extra 'export')"),
    "export-detector": (
        "instanthmr.commands.export_detector",
        "export RF-DETR to ONNX (extra 'export')",
    ),
    "batch": ("instanthmr.commands.batch", "process many videos, resumably, locally or on Ray"),
    "quantize": (
        "instanthmr.commands.quantize",
        "int8 copy of an ONNX model, with measured parity",
    ),
}


def _usage() -> str:
    lines = ["usage: instanthmr <command> [options]", "", "commands:"]
    lines += [f"  {name:<16} {help_}" for name, (_, help_) in COMMANDS.items()]
    lines += ["", "Run `instanthmr <command> --help` for a command's options."]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Dispatch to a sub-command; returns its exit status."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        print(_usage())
        return 0 if args else 2
    name, rest = args[0], args[1:]
    if name not in COMMANDS:
        print(f"instanthmr: error: unknown command {name!r}; see `instanthmr --help` for the "
              "commands", file=sys.stderr)  # fmt: skip
        return 2
    module = importlib.import_module(COMMANDS[name][0])
    return int(module.main(rest) or 0)


if __name__ == "__main__":
    raise SystemExit(main())
