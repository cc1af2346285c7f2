"""JSON-lines results: a header line, then per frame a frame line and one line per person.

Layout and units: :mod:`instanthmr.sinks.exporters`. Flushed after every frame, so the
``.partial`` file of a crashed run reads back up to its last complete frame.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..results import FrameResult
from .formats_common import (
    PERSON_ARRAYS,
    RawFrame,
    TextExporter,
    assemble_frames,
    check_errors,
    check_metadata,
    frame_fields,
    metadata,
    person_world_fields,
    report_skipped,
)

log = logging.getLogger(__name__)


class JsonlExporter(TextExporter):
    """JSON lines: header, then a frame line and its person lines; flushed every frame."""

    suffix = ".jsonl"

    def __init__(self, path: str | Path, run: Mapping[str, Any] | None = None) -> None:
        super().__init__(path, run)
        self._fh.write(json.dumps({"type": "header", **metadata(self.run)}) + "\n")
        self._fh.flush()

    def _write_frame(self, frame: FrameResult) -> None:
        lines = [json.dumps({"type": "frame", **frame_fields(frame)})]
        for p in frame.persons:
            rec: dict[str, Any] = {
                "type": "person",
                "frame_index": int(frame.frame_index),
                "timestamp": frame.timestamp,
                "track_id": p.track_id,
                "score": p.score,
                "focal_length": p.focal_length,
                "image_size": list(p.image_size),
            }
            rec.update({k: getattr(p, k).tolist() for k in PERSON_ARRAYS})
            rec.update(person_world_fields(frame, p))
            lines.append(json.dumps(rec))
        self._fh.write("\n".join(lines) + "\n")


def read_jsonl(path: Path, errors: str = "strict") -> list[FrameResult]:
    """Read a ``.jsonl`` results file; a torn last line (crash mid-write) is skipped.

    ``errors="skip"`` skips bad records (a line that is not JSON, a person line that does not
    belong to the frame before it, a frame missing persons or fields) and logs one warning
    with their count; the default ``"strict"`` raises ValueError at the first one.
    """
    skip = check_errors(errors)
    bad: list[str] = []
    with open(path, encoding="utf-8") as fh:
        lines = fh.read().splitlines()
    records: list[tuple[int, dict[str, Any]]] = []
    for n, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as err:
            if n == len(lines) - 1:  # torn last line after a crash
                log.warning("%s: ignoring an incomplete last line", path)
                break
            if not skip:
                raise ValueError(f"{path}:{n + 1}: not valid JSON ({err})") from None
            bad.append(f"line {n + 1}: not valid JSON")
            continue
        if not isinstance(rec, dict):
            if not skip:
                raise ValueError(f"{path}:{n + 1}: not a JSON object")
            bad.append(f"line {n + 1}: not a JSON object")
            continue
        records.append((n + 1, rec))
    if not records or records[0][1].get("type") != "header":
        raise ValueError(f"{path} is not an InstantHMR results file (no header line)")
    check_metadata(records[0][1], path)
    frames: list[RawFrame] = []
    for n, rec in records[1:]:
        if rec.get("type") == "frame":
            frames.append((rec, []))
        elif rec.get("type") == "person":
            if not frames:
                if not skip:
                    raise ValueError(f"{path}: person record before any frame record")
                bad.append(f"line {n}: person record before any frame record")
            elif skip and rec.get("frame_index") != frames[-1][0].get("frame_index"):
                bad.append(f"line {n}: person of frame {rec.get('frame_index')} has no frame line")
            else:
                frames[-1][1].append(rec)
    out = assemble_frames(frames, path, bad if skip else None)
    report_skipped(path, bad)
    return out
