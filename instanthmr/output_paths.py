"""Output paths checked before any work: never onto an input, never twice, never colliding.

:func:`check_output_paths` refuses (an :class:`~instanthmr.errors.OptionError`, one line,
exit code 2), before anything is loaded or written:

- an output that is also an input (``--write-video`` onto the ``--video`` being read,
  ``--save-world`` onto the ``--world-from`` file): the source would be overwritten;
- an output given twice (``--export a.jsonl --export ./a.jsonl``): one would replace the
  other;
- two outputs that map to the same file: the same path spelled differently (a symbolic
  link, ``..``, a hard link to an existing file), or an animation export whose per-track
  files (``out.bvh`` writes ``out.track3.bvh``) are also named on their own;
- an output that is an existing folder.

Paths are compared after resolving links and ``..``; existing files also by their device
and inode, so two names of one file are one file. :func:`prepare_output_folders` then makes
the outputs' folders and refuses one that cannot be written, also before any work.
"""

from __future__ import annotations

import errno
import os
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

from .errors import OptionError

Named = tuple[str, str | os.PathLike[str]]
"""(flag, path), e.g. ``("--export", "out.jsonl")``."""


def _identity(path: str | os.PathLike[str]) -> tuple[object, ...]:
    """What makes two paths one file: (device, inode) of an existing file, else the
    resolved absolute path (case-folded where the platform's paths are)."""
    p = os.path.expanduser(os.fspath(path))
    try:
        st = os.stat(p)
    except OSError:
        return ("path", os.path.normcase(os.path.realpath(p)))
    return ("inode", st.st_dev, st.st_ino)


def _track_pattern(path: str | os.PathLike[str]) -> re.Pattern[str] | None:
    """The per-track names a ``.bvh`` export writes (``out.track3.bvh``, ``out.track3.clip1
    .bvh``), as a pattern over resolved paths; None for other outputs."""
    p = Path(os.path.realpath(os.path.expanduser(os.fspath(path))))
    if p.suffix.lower() != ".bvh":
        return None
    stem = re.escape(os.path.normcase(str(p.with_suffix(""))))
    return re.compile(rf"{stem}\.track-?\d+(\.clip\d+)?\.bvh", re.IGNORECASE)


def check_output_paths(inputs: Iterable[Named], outputs: Sequence[Named]) -> None:
    """Refuse outputs that overwrite an input, repeat, or collide (see the module docs)."""
    sources: dict[tuple[object, ...], Named] = {}
    for flag, path in inputs:
        sources.setdefault(_identity(path), (flag, path))
    seen: dict[tuple[object, ...], Named] = {}
    for flag, path in outputs:
        if os.path.isdir(os.path.expanduser(os.fspath(path))):
            raise OptionError(f"{flag} {path} is a folder; give a file name")
        key = _identity(path)
        if key in sources:
            src_flag, src = sources[key]
            raise OptionError(
                f"{flag} {path} is also the input {src_flag} {src}: writing it would destroy "
                f"the input; choose another output name"
            )
        if key in seen:
            first_flag, first = seen[key]
            if os.fspath(first) == os.fspath(path):
                what = f"{flag} {path} is given twice"
            else:
                what = f"{flag} {path} is the same file as {first_flag} {first}"
            raise OptionError(f"{what}: one would overwrite the other; give each output once")
        seen[key] = (flag, path)
    for flag, path in outputs:
        pattern = _track_pattern(path)
        if pattern is None:
            continue
        for other_flag, other in outputs:
            resolved = os.path.normcase(os.path.realpath(os.path.expanduser(os.fspath(other))))
            if other is not path and pattern.fullmatch(resolved):
                raise OptionError(
                    f"{other_flag} {other} is one of the per-track files that {flag} {path} "
                    "writes (name.trackN.bvh): one would overwrite the other; rename one"
                )


def prepare_output_folders(outputs: Sequence[Named]) -> None:
    """Make each output's folder (as the writers would) and refuse, with an
    :class:`~instanthmr.sinks.formats_common.UnwritablePathError` naming the path and why,
    one that cannot be made or written into: before any work rather than at the end."""
    from .sinks.formats_common import unwritable_as_clear_error

    for _, path in outputs:
        target = Path(os.path.expanduser(os.fspath(path)))
        with unwritable_as_clear_error(target):
            target.parent.mkdir(parents=True, exist_ok=True)
            if not os.access(target.parent, os.W_OK):
                raise PermissionError(errno.EACCES, "no permission", str(target.parent))
