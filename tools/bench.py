"""Benchmark InstantHMR: ``python tools/bench.py --help`` (same as ``instanthmr bench``)."""

from instanthmr.apps.bench import main

if __name__ == "__main__":
    raise SystemExit(main())
