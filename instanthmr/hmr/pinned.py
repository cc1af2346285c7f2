"""The published InstantHMR file, pinned by revision, size and sha256.

``resolve_model()`` (and ``--model instanthmr``, the default) downloads exactly this file:
the Hub revision below, checked for size and hash before it is first used. Another file is
accepted only when named on purpose: an explicit ``hf://owner/repo@REVISION[/file]``
address, or a local path. The facts (two independent public users of the file recorded
them) are in the model contract, "Where the real weights live".
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..runtime.precision import file_sha256 as sha256_of


@dataclass(frozen=True)
class PinnedFile:
    """A Hub file pinned by commit, byte size and sha256."""

    repo_id: str
    filename: str
    revision: str
    size: int
    sha256: str

    @property
    def address(self) -> str:
        """``hf://repo@revision/filename``: the explicit form of this file."""
        return f"hf://{self.repo_id}@{self.revision}/{self.filename}"


RELEASED = PinnedFile(
    repo_id="momolesang/InstantHMR",
    filename="instanthmr.onnx",
    revision="3504446fc31e7f76fdb1cd7e463189e7cf0fdd0f",
    size=80_961_622,
    sha256="f717558094f57d7c9cd084d7981874dbcc3f08e7308501eb98c12844e2cce3b7",
)


def cached_copy_problem(path: Path, pin: PinnedFile) -> str:
    """Why a cached copy is not the pinned file ("" when it is).

    Cheap: the size, and the name of the blob the Hub cache links it to, which is the sha256
    the file was verified against when it was downloaded (:func:`content_problem`); a copy
    outside the blob store is hashed.
    """
    try:
        size = path.stat().st_size
    except OSError as exc:
        return f"it cannot be read ({exc})"
    if size != pin.size:
        return f"it is {size:,} bytes, the pinned file {pin.size:,}"
    blob = path.resolve()
    digest = blob.name if blob.parent.name == "blobs" else sha256_of(blob)
    if digest != pin.sha256:
        return f"its sha256 is {digest}, the pinned file's {pin.sha256}"
    return ""


def content_problem(path: Path, pin: PinnedFile) -> tuple[str, str]:
    """``(problem, sha256)`` of a freshly downloaded file: its real size and hash against the
    pin (problem "" when both match)."""
    size = path.stat().st_size
    digest = sha256_of(path)
    if size != pin.size or digest != pin.sha256:
        return (f"sha256 {digest} ({size:,} bytes), expected {pin.sha256} "
                f"({pin.size:,} bytes)", digest)  # fmt: skip
    return "", digest


def how_to_accept_another(pin: PinnedFile) -> str:
    """The sentence every mismatch ends with: how to use a different file on purpose."""
    return (
        "To use another file on purpose, name it explicitly: an address with the revision "
        f"you trust, --model hf://{pin.repo_id}@REVISION/{pin.filename} (Python: "
        f"resolve_model('hf://{pin.repo_id}@REVISION/{pin.filename}')), or a local file, "
        f"--model path/to/{pin.filename}."
    )
