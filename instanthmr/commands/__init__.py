"""Entry points: ``demo`` (viewer and exports), ``bench`` and ``doctor``.

Each module has ``main(argv=None) -> int``, reached by ``instanthmr <cmd>`` and by the
thin scripts at the repository root.
"""
