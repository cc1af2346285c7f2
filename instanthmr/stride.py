"""Old path of :mod:`instanthmr.tracking.schedule`, kept for the 0.x releases; import from there.

The module object is the same: ``instanthmr.stride is instanthmr.tracking.schedule``.
"""

import importlib
import sys

sys.modules[__name__] = importlib.import_module("instanthmr.tracking.schedule")
