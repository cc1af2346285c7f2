"""Export InstantHMR to ONNX; same as ``instanthmr export`` (see ``--help``)."""

from instanthmr.commands.export_hmr import main

if __name__ == "__main__":
    raise SystemExit(main())
