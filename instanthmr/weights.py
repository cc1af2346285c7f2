"""Old path of :mod:`instanthmr.hmr.weights`, kept for the 0.x releases; import from there.

The module object is the same: ``instanthmr.weights is instanthmr.hmr.weights``.
"""

import importlib
import sys

sys.modules[__name__] = importlib.import_module("instanthmr.hmr.weights")
