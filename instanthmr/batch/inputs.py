"""Which files a batch processes, and the output name of each.

``discover_inputs`` turns the command line's INPUT arguments (files, folders searched
recursively, glob patterns) into one :class:`InputItem` per file, in a stable order, each
file once. A video is one task; an image is a one-frame task.

Output names cannot collide: ``clip.mp4`` becomes ``clip_<10 hex>``, where the hex digits
are the start of the SHA-1 of the file's absolute path. Two ``clip.mp4`` in different
folders get different names, and the name of a file does not change when other inputs are
added to a later run, so resuming works with any mix of inputs.
"""

from __future__ import annotations

import glob
import hashlib
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..errors import UserError
from ..sources.files import IMAGE_EXTENSIONS

VIDEO_EXTENSIONS: tuple[str, ...] = (
    ".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv",
    ".ts", ".mts", ".m2ts", ".3gp", ".ogv",
)  # fmt: skip
"""Suffixes (lower case) that a folder search picks up as videos."""


class InputError(UserError, ValueError):
    """An INPUT argument names nothing that can be processed; the message says which."""


@dataclass(frozen=True)
class InputItem:
    """One file to process.

    Attributes:
        path: absolute path of the file (symbolic links kept, so names stay readable).
        kind: ``"video"`` or ``"image"`` (by suffix; an explicit file of another suffix
            is tried as a video).
        size: bytes, at discovery.
        mtime_ns: modification time in nanoseconds, at discovery.
    """

    path: str
    kind: str
    size: int
    mtime_ns: int

    @property
    def stem(self) -> str:
        """The collision-free base name of this input's output files."""
        return output_stem(self.path)


def output_stem(path: str | os.PathLike[str]) -> str:
    """``<file stem>_<10 hex of sha1(absolute path)>``, with unsafe characters replaced."""
    absolute = os.path.abspath(os.fspath(path))
    digest = hashlib.sha1(absolute.encode("utf-8", "surrogateescape")).hexdigest()[:10]
    stem = re.sub(r"[^\w.-]+", "_", Path(absolute).stem)[:80] or "input"
    return f"{stem}_{digest}"


def _natural_key(text: str) -> list[object]:
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", text)]


def _kind(path: str) -> str | None:
    suffix = os.path.splitext(path)[1].lower()
    if suffix in VIDEO_EXTENSIONS:
        return "video"
    if suffix in IMAGE_EXTENSIONS:
        return "image"
    return None


def _walk(folder: str, skip: str | None) -> Iterable[str]:
    """Video and image files under ``folder`` (hidden folders and ``skip`` left out)."""
    if _inside(folder, skip):
        return
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(
            d for d in dirs
            if not d.startswith(".") and os.path.abspath(os.path.join(root, d)) != skip
        )  # fmt: skip
        for name in sorted(files, key=_natural_key):
            if not name.startswith(".") and _kind(name) is not None:
                yield os.path.join(root, name)


def _inside(path: str, folder: str | None) -> bool:
    if folder is None:
        return False
    return os.path.commonpath([os.path.abspath(path), folder]) == folder


def _item(path: str) -> InputItem:
    absolute = os.path.abspath(path)
    st = os.stat(absolute)
    return InputItem(absolute, _kind(absolute) or "video", st.st_size, st.st_mtime_ns)


def discover_inputs(
    inputs: Sequence[str | os.PathLike[str]], exclude: str | os.PathLike[str] | None = None
) -> list[InputItem]:
    """Files to process, in argument order (folder and glob matches in natural order).

    Args:
        inputs: files (any suffix; tried as a video unless it is an image), folders
            (searched recursively for :data:`VIDEO_EXTENSIONS` and image suffixes) and glob
            patterns (``**`` matches folders recursively; quote them in a shell).
        exclude: a folder never searched (the batch's output folder).

    Raises:
        InputError: a path that does not exist, a pattern that matches nothing, or no
            file at all.
    """
    skip = os.path.abspath(exclude) if exclude is not None else None
    seen: set[str] = set()
    items: list[InputItem] = []

    def add(path: str) -> None:
        real = os.path.realpath(path)
        if real not in seen:
            seen.add(real)
            items.append(_item(path))

    for arg in inputs:
        text = os.path.expanduser(os.fspath(arg))
        if glob.has_magic(text):
            matches = sorted(glob.glob(text, recursive=True), key=_natural_key)
            if not matches:
                raise InputError(f"no file matches the pattern {text!r}")
            for match in matches:
                if os.path.isdir(match):
                    for found in _walk(match, skip):
                        add(found)
                elif _kind(match) is not None and not _inside(match, skip):
                    add(match)
        elif os.path.isdir(text):
            for found in _walk(text, skip):
                add(found)
        elif os.path.isfile(text):
            add(text)
        elif os.path.lexists(text):
            raise InputError(f"input {text} is not a regular file (a broken link or a device?)")
        else:
            raise InputError(f"input not found: {text} (a file, a folder or a glob pattern)")
    if not items:
        names = ", ".join(os.fspath(a) for a in inputs) or "(none)"
        raise InputError(
            f"no videos or images found in {names}; looked for "
            f"{', '.join(VIDEO_EXTENSIONS + IMAGE_EXTENSIONS)}"
        )
    return items
