"""Export RF-DETR to ONNX; same as ``instanthmr export-detector`` (see ``--help``)."""

from instanthmr.commands.export_detector import main

if __name__ == "__main__":
    raise SystemExit(main())
