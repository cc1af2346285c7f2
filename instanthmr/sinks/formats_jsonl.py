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
    FORMAT,
    LINE_KEY,
    PERSON_ARRAYS,
    Damaged,
    RawFrame,
    TextExporter,
    assemble_frames,
    check_errors,
    check_metadata,
    frame_fields,
    metadata,
    person_world_fields,
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


def _parse_lines(path: Path, damaged: Damaged) -> tuple[list[tuple[int, dict[str, Any]]], int]:
    """(line number, object) of every line that is a JSON object, and the number of the
    first non-blank line. The other lines are damaged (bytes that are not UTF-8, text that
    is not JSON, JSON that is not an object). A torn last line (no newline after it: the
    writer stopped mid-line) is ignored with a warning."""
    data = path.read_bytes()
    lines = data.split(b"\n")
    torn_possible = not data.endswith(b"\n")
    records: list[tuple[int, dict[str, Any]]] = []
    first = 0
    for n, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        first = first or n
        try:
            rec = json.loads(raw.decode("utf-8"))
        except UnicodeDecodeError as err:
            problem = f"not UTF-8 text (binary bytes at column {err.start + 1})"
        except (json.JSONDecodeError, RecursionError) as err:
            problem = f"not valid JSON ({err})"
        else:
            if isinstance(rec, dict):
                rec[LINE_KEY] = n
                records.append((n, rec))
                continue
            problem = "not a JSON object"
        if n == len(lines) and torn_possible:
            log.warning("%s: ignoring an incomplete last line", path)
            break
        damaged.add(n, problem)
    return records, first


def _body(
    path: Path, records: list[tuple[int, dict[str, Any]]], first: int, damaged: Damaged
) -> list[tuple[int, dict[str, Any]]]:
    """The records after the header, once the header is checked. In skip mode a damaged
    header (garbled, or missing) is counted and the records are read all the same; a header
    from a newer version or another joint order is refused in both modes."""
    if not first:
        raise ValueError(f"{path} is empty: not an InstantHMR results file (no header line)")
    head = records[0][1] if records and records[0][0] == first else None
    if head is not None and head.get("type") == "header":
        if not damaged.skip or head.get("format") == FORMAT:
            check_metadata(head, f"{path}:{first}")
            return records[1:]
        damaged.add(first, f"damaged header line (format {head.get('format')!r})")
        return records[1:]
    has_results = any(r.get("type") in ("frame", "person") for _, r in records)
    if not damaged.skip or not has_results:
        raise ValueError(
            f"{path}:{first}: not an InstantHMR results file (no header line: the first line "
            f"must be {{\"type\": \"header\", \"format\": \"{FORMAT}\", ...}})"
        )
    if head is not None and head.get("type") not in ("frame", "person"):
        damaged.add(first, "damaged header line (no 'type': 'header')")
        return records[1:]
    if head is not None:  # the first line is a record: the header line is gone
        damaged.add(first, "no header line before the records")
    return records  # else the damaged first line (the header) is already counted


def read_jsonl(path: Path, errors: str = "strict") -> list[FrameResult]:
    """Read a ``.jsonl`` results file; a torn last line (crash mid-write) is skipped.

    A frame is one record: its frame line and its person lines. With ``errors="skip"``
    every damaged line (bytes that are not UTF-8, not JSON, not an object, a missing or
    garbled key, a value that does not convert, a person line without its frame line) is
    skipped and counted, the frame it belongs to is left out, every intact frame is
    returned, and one warning gives the count; a damaged header line is skipped too, as
    long as the file holds results records. The default ``"strict"`` raises ValueError at
    the first one, naming the file, the line and the problem.
    """
    damaged = Damaged(path, check_errors(errors))
    records, first = _parse_lines(path, damaged)
    frames: list[RawFrame] = []
    for n, rec in _body(path, records, first, damaged):
        kind = rec.get("type")
        if kind == "frame":
            frames.append((rec, []))
        elif kind == "person":
            index = rec.get("frame_index")
            if frames and index == frames[-1][0].get("frame_index"):
                frames[-1][1].append(rec)
            elif not frames:
                damaged.add(n, "person record before any frame record")
            else:
                damaged.add(n, f"person record of frame {index!r} has no frame line (the frame "
                               f"line before it is frame {frames[-1][0].get('frame_index')!r})")
        elif kind == "header":
            damaged.add(n, "a second header line")
        else:
            damaged.add(n, f"record of unknown type {kind!r} (expected frame or person)")
    out = assemble_frames(frames, path, damaged)
    damaged.report()
    return out
