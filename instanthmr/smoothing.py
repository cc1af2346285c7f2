"""Old path of :mod:`instanthmr.tracking.smoothing`, kept for the 0.x releases; import from there.

The module object is the same: ``instanthmr.smoothing is instanthmr.tracking.smoothing``.
"""

import importlib
import sys

sys.modules[__name__] = importlib.import_module("instanthmr.tracking.smoothing")
