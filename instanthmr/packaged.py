"""Files shipped inside the package (``instanthmr/assets/``): the sample clip, the embedded
detector. One lookup for all of them, so an odd install layout is handled once."""

from __future__ import annotations

from importlib import resources
from pathlib import Path


def asset_path(name: str, fix: str) -> Path:
    """``instanthmr/assets/<name>``; FileNotFoundError with ``fix`` when it is missing."""
    try:
        path = Path(str(resources.files("instanthmr") / "assets" / name))
    except (NotADirectoryError, TypeError, ModuleNotFoundError):
        # a stale editable install can expose the package as a namespace, which
        # importlib.resources on Python < 3.12 cannot walk; the file sits beside this module.
        path = Path(__file__).resolve().parent / "assets" / name
    if not path.is_file():
        raise FileNotFoundError(f"{name} is missing from the package at {path}; {fix}")
    return path
