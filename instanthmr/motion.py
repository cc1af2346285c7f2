"""Old path of :mod:`instanthmr.tracking.scene_change`, kept for the 0.x releases.

The module object is the same: ``instanthmr.motion is instanthmr.tracking.scene_change``.
"""

import importlib
import sys

sys.modules[__name__] = importlib.import_module("instanthmr.tracking.scene_change")
