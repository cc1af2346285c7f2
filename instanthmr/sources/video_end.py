"""Did a video decode to its end? Truncated files versus containers that miscount frames.

A container's frame count is a claim, not a fact: some files declare more frames than
they hold (an AVI with empty "dropped frame" chunks, such as Debian's ``tree.avi``:
444 declared, 68 decoded, spanning its full 29.6 s), and a truncated file declares the
frames it lost. The count alone cannot tell them apart; the timestamps can. A file
decoded to its end has a last frame within a frame or two (or 1 %) of the container's
duration (declared frames / rate); a truncated one stops short of it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DecodeEnd:
    """How a video's decoding ended.

    Attributes:
        complete: decoded to the end of the file (a miscounted container counts).
        miscounted: complete, but the container declared more frames than it holds.
        message: one sentence for the user when ``miscounted`` or not ``complete``
            (None otherwise).
    """

    complete: bool
    miscounted: bool = False
    message: str | None = None


def decode_end(
    name: str,
    decoded: int,
    declared: int | None,
    fps: float | None,
    last_time: float | None,
) -> DecodeEnd:
    """Judge the end of decoding ``name``: ``decoded`` frames against the ``declared``
    count at ``fps``, and the last decoded frame's container timestamp ``last_time`` (s;
    None when the container gave no timestamps)."""
    if not declared or decoded + max(2, declared // 100) >= declared:
        return DecodeEnd(True)
    if fps and last_time is not None:
        duration = declared / fps
        slack = max(2.0 / fps, 0.01 * duration)
        if last_time + 1.0 / fps >= duration - slack:
            return DecodeEnd(True, True, (
                f"{name} declares {declared} frames but holds {decoded}, spanning its full "
                f"{duration:.1f} s (its frame count is wrong, the file is whole): every "
                "frame was processed"
            ))  # fmt: skip
        where = f", the last at {last_time:.1f} s of its {duration:.1f} s"
    else:
        where = ""
    return DecodeEnd(False, False, (
        f"decoding stopped after {decoded} of the {declared} frames the container declares"
        f"{where} (a corrupt or truncated file)"
    ))  # fmt: skip
