"""Files every stage writes or identifies: atomic writes and content hashes.

An atomic write goes to a unique temporary file beside the destination (same filesystem),
is flushed to disk, and is renamed over the destination only when complete: a reader
never sees half a file, and a failure (an exception, a full disk) leaves an existing file
untouched. The result gets the permissions an ordinary new file would get (``0o666`` less
the umask), or those of the file it replaces; a file derived from another (an int8 or fp32
copy of a model) takes its source's permissions (``mode_of=``), so whoever may read the
source may read the copy, and no one else.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import stat
import uuid
from collections.abc import Iterator
from pathlib import Path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _mode_for(path: Path) -> int:
    try:
        return stat.S_IMODE(path.stat().st_mode)
    except OSError:
        return 0o666 & ~_umask()


def file_mode(path: str | os.PathLike[str]) -> int:
    """The permission bits of an existing file (e.g. ``0o644``)."""
    return stat.S_IMODE(os.stat(path).st_mode)


@contextlib.contextmanager
def atomic_path(
    path: str | os.PathLike[str], *, mode_of: str | os.PathLike[str] | None = None
) -> Iterator[Path]:
    """A temporary path to write, renamed to ``path`` when the block completes.

    Write the whole file to the yielded path (by any library: ``onnx.save``, a writer
    that takes a file name); on an exception the temporary file is removed and ``path``
    is left as it was. ``mode_of``: give the file the permissions of this one (the
    source a copy is derived from) instead of the ordinary ones.
    """
    wanted = file_mode(mode_of) if mode_of is not None else None
    dest = Path(path)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.parent / f".{dest.name}.{uuid.uuid4().hex[:12]}.tmp"
    try:
        yield tmp
        with open(tmp, "rb+") as f:  # the writer may not have flushed to disk
            os.fsync(f.fileno())
        os.chmod(tmp, _mode_for(dest) if wanted is None else wanted)
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (see the module docstring)."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def atomic_write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically (see the module docstring)."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def file_sha256(path: str | os.PathLike[str], chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()
