"""Run the InstantHMR demo: ``python demo.py --help`` (same as ``instanthmr demo``)."""

from instanthmr.commands.demo import main

raise SystemExit(main())
