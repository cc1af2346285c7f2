"""Benchmark InstantHMR: ``python tools/bench.py --help`` (same as ``instanthmr bench``)."""

from instanthmr.commands.bench import main

if __name__ == "__main__":
    raise SystemExit(main())
