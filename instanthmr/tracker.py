"""Old path of :mod:`instanthmr.tracking.tracker`, kept for the 0.x releases; import from there.

The module object is the same: ``instanthmr.tracker is instanthmr.tracking.tracker``.
"""

import importlib
import sys

sys.modules[__name__] = importlib.import_module("instanthmr.tracking.tracker")
