"""Target selection: the one person to follow when the pipeline's ``target`` is set."""

from __future__ import annotations

import numpy as np


def select_target(
    boxes: np.ndarray,
    ids: np.ndarray,
    target: str | int,
    image_size: tuple[int, int],
) -> int | None:
    """Index of the one person to follow, or None when nobody fits.

    Args:
        boxes: (N, 4) boxes of the people in the frame.
        ids: (N,) their track ids.
        target: ``"largest"`` (largest box area), ``"center"`` (box centre nearest the
            image centre) or an int track id (None when that id is not in the frame).
        image_size: ``(width, height)``.
    """
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    ids = np.asarray(ids, dtype=np.int64).reshape(-1)
    if len(ids) != len(b):
        raise ValueError(f"got {len(b)} boxes and {len(ids)} ids; pass one id per box")
    if isinstance(target, str):
        if target not in ("largest", "center"):
            raise ValueError(f"target must be 'largest', 'center' or a track id, got {target!r}")
        if len(b) == 0:
            return None
        if target == "largest":
            return int(np.argmax(np.prod((b[:, 2:] - b[:, :2]).clip(0), axis=1)))
        centre = np.array(image_size, dtype=np.float64) / 2
        return int(np.argmin(np.linalg.norm((b[:, :2] + b[:, 2:]) / 2 - centre, axis=1)))
    if isinstance(target, bool) or not isinstance(target, int | np.integer):
        raise TypeError(f"target must be 'largest', 'center' or an int id, got {target!r}")
    hit = np.flatnonzero(ids == int(target))
    return int(hit[0]) if len(hit) else None
