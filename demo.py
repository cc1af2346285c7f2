"""Run the InstantHMR demo: ``python demo.py --help`` (same as ``instanthmr demo``)."""

from instanthmr.apps.demo import main

raise SystemExit(main())
