"""What every results format shares: metadata, the record layout, the writer base class.

The formats (:mod:`.formats_jsonl`, :mod:`.formats_npz`, :mod:`.formats_csv`) build on this
module and :mod:`instanthmr.sinks.exporters` picks among them; this module imports neither,
so there is no import cycle. The file layout is described in :mod:`instanthmr.sinks.exporters`.

Writers turn a :class:`~instanthmr.results.FrameResult` into a frame record
(:func:`frame_fields`) and its persons' fields (:data:`PERSON_SCALARS`,
:data:`PERSON_ARRAYS`); readers parse a file back into :data:`RawFrame` pairs of those
records and hand them to :func:`assemble_frames`.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import IO, Any

from ..errors import UserError
from ..results import (
    NUM_MHR_PARAMS,
    NUM_SHAPE_PARAMS,
    STAGES,
    FrameResult,
    PersonResult,
    PersonWorld,
    StageTimings,
    WorldInfo,
)
from ..skeleton import JOINT_NAMES, NUM_JOINTS

log = logging.getLogger(__name__)

FORMAT = "instanthmr-results"
VERSION = 3
"""2 added the world fields (``docs/world.md``), 3 the world frame's uncertainty, ``settled``,
``reopened`` and ``levels``; version 1 files still read (world: None), version 2 files with
those fields unknown (a fitted frame that was ``frozen`` then reads as settled)."""
UNITS: dict[str, str] = {
    "bbox": "pixels", "joints_2d": "pixels", "focal_length": "pixels",
    "principal_point": "pixels", "image_size": "pixels", "joints_3d_cam": "metres",
    "joints_3d_local": "metres", "cam_trans": "metres", "timestamp": "seconds",
    "timings": "milliseconds", "joints_3d_world": "metres", "root_world": "metres",
    "world.position": "metres", "world.heading": "radians", "world.speed": "m/s",
    "world.camera_height": "metres", "world.pitch_deg": "degrees", "world.roll_deg": "degrees",
    "world.height_std": "metres", "world.pitch_std_deg": "degrees",
    "world.roll_std_deg": "degrees",
}  # fmt: skip
WORLD_AXES = (
    "gravity-aligned, right-handed: X right, Y up, Z back towards the camera; origin on the "
    "ground below the camera; heading about +Y, 0 = facing -Z"
)

PERSON_SCALARS: tuple[str, ...] = ("track_id", "score", "focal_length")
"""Per-person scalar fields, in file order."""

PERSON_ARRAYS: dict[str, tuple[int, ...]] = {
    "bbox": (4,), "joints_2d": (NUM_JOINTS, 2), "joints_3d_cam": (NUM_JOINTS, 3),
    "joints_3d_local": (NUM_JOINTS, 3), "cam_trans": (3,), "mhr_params": (NUM_MHR_PARAMS,),
    "shape_params": (NUM_SHAPE_PARAMS,), "principal_point": (2,),
}  # fmt: skip
"""Per-person array fields (attributes of :class:`PersonResult`) and their shapes, in file order."""

PERSON_WORLD_ARRAYS: dict[str, tuple[int, ...]] = {
    "joints_3d_world": (NUM_JOINTS, 3), "root_world": (3,),
}  # fmt: skip
"""Optional per-person arrays (None when no world frame is known): NaN-filled in NPZ,
empty cells in CSV, ``null`` in JSONL."""

WORLD_SCALARS_V2: tuple[str, ...] = (
    "known", "confidence", "source", "reason", "frozen", "inliers", "camera_height",
    "pitch_deg", "roll_deg",
)  # fmt: skip
"""The frame's world report in version 2 files (besides ``plane``)."""
WORLD_SCALARS_V3: tuple[str, ...] = (
    "height_std", "pitch_std_deg", "roll_std_deg", "settled", "reopened", "levels",
)  # fmt: skip
"""What version 3 added to the frame's world report."""
WORLD_SCALARS: tuple[str, ...] = WORLD_SCALARS_V2 + WORLD_SCALARS_V3
"""The frame's world report (:class:`WorldInfo` attributes) besides ``plane`` (4,)."""
WORLD_OPTIONAL: tuple[str, ...] = (
    "camera_height", "pitch_deg", "roll_deg", "height_std", "pitch_std_deg", "roll_std_deg",
)  # fmt: skip
"""World report values that are None while unknown (NaN in NPZ, empty in CSV)."""

RUN_KEYS: tuple[str, ...] = ("model_kind", "model_file", "model_notice", "detector")
"""What a results file's header says about the run (:meth:`~instanthmr.PosePipeline.describe`):
the model (:func:`instanthmr.hmr.kinds.run_header`) and the detector
(:func:`instanthmr.detector.choice.describe_detector`, a dict); None where the writer was
not told."""

RawFrame = tuple[dict[str, Any], list[dict[str, Any]]]
"""A frame record (the keys of :func:`frame_fields`) and its person records, as read.

The world values are optional: a frame record's ``world`` (the dict of :func:`world_fields`)
and a person record's :data:`PERSON_WORLD_ARRAYS` and ``world`` (see
:func:`person_world_fields`) may be None or missing (version 1 files)."""


def metadata(run: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """What every results file states about itself: format, joint names, units, camera, and
    the run (:data:`RUN_KEYS`: ``model_kind`` is ``instanthmr``, ``random-init`` or
    ``standin-blazepose``, with its warning in ``model_notice``; ``detector`` names the
    person detector and why it was chosen)."""
    return {
        "format": FORMAT, "version": VERSION, **check_run(run), "joint_names": list(JOINT_NAMES),
        "units": UNITS,
        "camera": "right-handed, X right, Y down, Z forward; pinhole focal_length, principal_point",
        "stages": list(STAGES), "world": WORLD_AXES,
    }  # fmt: skip


def check_run(run: Mapping[str, Any] | None) -> dict[str, Any]:
    """The :data:`RUN_KEYS` of ``run`` (None for those missing); ValueError for other keys."""
    run = dict(run or {})
    unknown = sorted(set(run) - set(RUN_KEYS))
    if unknown:
        raise ValueError(f"unknown run header keys {unknown}; known: {', '.join(RUN_KEYS)}")
    return {k: run.get(k) for k in RUN_KEYS}


def check_metadata(meta: dict[str, Any], path: Path | str) -> None:
    """Raise ValueError unless ``meta`` is a results header this version can read; ``path``
    (the file, or ``file:line``) starts the message."""
    if meta.get("format") != FORMAT:
        raise ValueError(f"{path} is not an InstantHMR results file (no {FORMAT!r} header)")
    try:
        version = int(meta.get("version", 0))
    except (TypeError, ValueError, OverflowError):
        raise ValueError(
            f"{path}: the header's version {meta.get('version')!r} is not a number"
        ) from None
    if version > VERSION:
        raise ValueError(
            f"{path} has format version {meta['version']}; this reader knows "
            f"up to {VERSION}: upgrade instanthmr"
        )
    names = meta.get("joint_names", JOINT_NAMES)
    if not isinstance(names, list | tuple) or list(names) != list(JOINT_NAMES):
        raise ValueError(f"{path} uses a different joint order than MHR70")


def frame_fields(frame: FrameResult) -> dict[str, Any]:
    """The frame record written by every format (``timestamp`` may be None)."""
    size = frame.image_size
    if min(size) <= 0 and frame.persons:
        size = frame.persons[0].image_size
    return {
        "frame_index": int(frame.frame_index),
        "timestamp": frame.timestamp,
        "image_size": [int(v) for v in size],
        "detector_ran": bool(frame.detector_ran),
        "num_persons": len(frame.persons),
        "timings": frame.timings.as_dict(),
        "world": world_fields(frame.world),
    }


def world_fields(info: WorldInfo | None) -> dict[str, Any] | None:
    """The frame's world report as plain values (None when the world stage did not run)."""
    if info is None:
        return None
    rec: dict[str, Any] = {k: getattr(info, k) for k in WORLD_SCALARS}
    rec["plane"] = None if info.plane is None else [float(v) for v in info.plane]
    return rec


def person_world_fields(frame: FrameResult, person: PersonResult) -> dict[str, Any]:
    """A person's world values: the optional arrays (lists or None) and ``world``, the
    trajectory record ``{position, heading, speed, contact}`` or None."""
    rec: dict[str, Any] = {}
    for k in PERSON_WORLD_ARRAYS:
        value = getattr(person, k, None)
        rec[k] = None if value is None else value.tolist()
    pw = None if frame.world is None or person.track_id < 0 else frame.world.person(person.track_id)
    rec["world"] = None if pw is None else {
        "position": [float(v) for v in pw.position], "heading": pw.heading,
        "speed": pw.speed, "contact": list(pw.contact),
    }  # fmt: skip
    return rec


def _person_world(p: dict[str, Any]) -> PersonWorld | None:
    w = p.get("world")
    if w is None:
        return None
    return PersonWorld(int(p["track_id"]), w["position"], float(w["heading"]), float(w["speed"]),
                       (bool(w["contact"][0]), bool(w["contact"][1])))  # fmt: skip


def _world_from(rec: dict[str, Any] | None, persons: list[dict[str, Any]]) -> WorldInfo | None:
    if rec is None:
        return None
    records = tuple(pw for p in persons if (pw := _person_world(p)) is not None)
    opt = {k: (None if rec.get(k) is None else float(rec[k])) for k in WORLD_OPTIONAL}
    source = str(rec.get("source") or "")
    frozen = bool(rec["frozen"])
    settled = rec.get("settled")
    if settled is None:  # version 2: "frozen" meant a fitted frame that stopped changing
        settled, frozen = frozen and source == "fitted", frozen and source != "fitted"
    return WorldInfo(
        known=bool(rec["known"]), confidence=float(rec["confidence"]), source=source,
        reason=str(rec.get("reason") or ""), frozen=frozen, inliers=int(rec["inliers"]),
        plane=rec.get("plane"), persons=records, settled=bool(settled),
        reopened=int(rec.get("reopened") or 0), levels=int(rec.get("levels") or 0), **opt,
    )  # fmt: skip


class UnwritablePathError(UserError, OSError):
    """A results or video file cannot be written where the user asked; says why."""


@contextlib.contextmanager
def unwritable_as_clear_error(path: Path) -> Iterator[None]:
    """Turn an OSError while creating or writing ``path`` (or its ``.partial`` twin, or its
    folder) into :class:`UnwritablePathError` naming the user's path and the reason."""
    try:
        yield
    except UnwritablePathError:
        raise
    except OSError as exc:
        why = {
            errno.ENOENT: "a folder on the way is missing",
            errno.ENOTDIR: "a part of the path is a file, not a folder",
            errno.EACCES: "no permission to write there",
            errno.EPERM: "no permission to write there",
            errno.EROFS: "the file system is read-only",
            errno.ENOSPC: "the disk is full",
            errno.EISDIR: "it is a folder",
        }.get(exc.errno or 0, exc.strerror or str(exc))
        culprit = Path(exc.filename) if exc.filename else None
        if culprit is not None and culprit in path.parents:  # a folder, not our temp file
            why += f" ({culprit})"
        err = UnwritablePathError(f"cannot write {path}: {why}; choose another path")
        err.errno = exc.errno
        raise err from exc


class Exporter:
    """Base writer: ``write(frame)`` per frame, ``close()`` at the end (or use ``with``).

    Data goes to ``<path>.partial`` first and is renamed to ``path`` on close, replacing an
    existing file of that name only then.
    """

    suffix = ""

    def __init__(self, path: str | Path, run: Mapping[str, Any] | None = None) -> None:
        self.run = check_run(run)
        """The model of the run, for the header (:data:`RUN_KEYS`)."""
        self.path = Path(path)
        self.partial_path = self.path.with_name(self.path.name + ".partial")
        with unwritable_as_clear_error(self.path):
            self.path.parent.mkdir(parents=True, exist_ok=True)
            if self.path.is_dir():
                raise IsADirectoryError(errno.EISDIR, "it is a folder", str(self.path))
        self.frames_written = 0
        self._closed = False

    def write(self, frame: FrameResult) -> None:
        """Append one frame (with all its persons, possibly none)."""
        if self._closed:
            raise RuntimeError(f"exporter for {self.path} is closed")
        if not isinstance(frame, FrameResult):
            raise TypeError(f"write() takes a FrameResult, got {type(frame).__name__}")
        self._write(frame)
        self.frames_written += 1

    def close(self) -> None:
        """Finish the file and move it into place; safe to call more than once."""
        if self._closed:
            return
        self._closed = True
        with unwritable_as_clear_error(self.path):
            self._finish()
            os.replace(self.partial_path, self.path)
        log.info("wrote %d frames to %s", self.frames_written, self.path)

    def __enter__(self) -> Exporter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _write(self, frame: FrameResult) -> None:
        raise NotImplementedError

    def _finish(self) -> None:
        raise NotImplementedError


class TextExporter(Exporter):
    """Base for text formats: written as it goes and flushed after every frame.

    So the ``.partial`` file of a crashed run holds every frame up to the last one.
    Subclasses write their header in ``__init__`` and one frame in :meth:`_write_frame`.
    """

    newline: str | None = None
    """Passed to :func:`open` (``""`` for :mod:`csv`, which writes its own line ends)."""

    def __init__(self, path: str | Path, run: Mapping[str, Any] | None = None) -> None:
        super().__init__(path, run)
        with unwritable_as_clear_error(self.path):
            self._fh: IO[str] = open(self.partial_path, "w", encoding="utf-8", newline=self.newline)

    def _write(self, frame: FrameResult) -> None:
        self._write_frame(frame)
        self._fh.flush()

    def _write_frame(self, frame: FrameResult) -> None:
        raise NotImplementedError

    def _finish(self) -> None:
        self._fh.close()


def _person_from(values: dict[str, Any], image_size: tuple[int, int]) -> PersonResult:
    return PersonResult(
        bbox=values["bbox"],
        score=float(values["score"]),
        joints_2d=values["joints_2d"],
        joints_3d_local=values["joints_3d_local"],
        cam_trans=values["cam_trans"],
        mhr_params=values["mhr_params"],
        shape_params=values["shape_params"],
        focal_length=float(values["focal_length"]),
        principal_point=values["principal_point"],
        image_size=image_size,
        track_id=int(values["track_id"]),
        **{k: values.get(k) for k in PERSON_WORLD_ARRAYS},
    )


ERRORS = ("strict", "skip")
"""What readers do with a bad record: raise (``strict``) or skip and count it (``skip``)."""

CONVERSION_ERRORS: tuple[type[Exception], ...] = (
    KeyError, TypeError, ValueError, OverflowError, AttributeError, IndexError,
)  # fmt: skip
"""What turning a parsed record into results can raise when a field is missing, of the
wrong type or shape, or out of range: each means one damaged record."""


def check_errors(errors: str) -> bool:
    """True for ``errors="skip"``; ValueError for anything but ``strict`` / ``skip``."""
    if errors not in ERRORS:
        raise ValueError(f"errors must be 'strict' or 'skip', got {errors!r}")
    return errors == "skip"


def problem_text(exc: BaseException) -> str:
    """What was wrong with a record, from the error converting it (``missing key 'x'``)."""
    if isinstance(exc, KeyError):
        return f"missing key {exc.args[0]!r}" if exc.args else "a missing key"
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if isinstance(exc, ValueError) else f"{type(exc).__name__}: {text}"


class Damaged:
    """The damaged records a reader met: raised at once (strict) or counted (skip).

    ``where`` is a line number (JSONL, CSV) or a name such as ``frame 3`` (NPZ); strict
    errors read ``<path>:<line>: <what>``, naming the file, the place and the problem.
    """

    def __init__(self, path: Path, skip: bool) -> None:
        self.path = path
        self.skip = skip
        self.found: list[str] = []

    def add(self, where: int | str | None, what: str) -> None:
        """One damaged record: ValueError in strict mode, else remember it."""
        place = f"{self.path}:{where}" if isinstance(where, int) else str(self.path)
        if isinstance(where, str):
            what = f"{where}: {what}"
        if not self.skip:
            raise ValueError(f"{place}: {what}")
        self.found.append(f"line {where}: {what}" if isinstance(where, int) else what)

    def report(self) -> None:
        """One warning for every record skipped, with the first few."""
        report_skipped(self.path, self.found)


def report_skipped(path: Path, bad: list[str]) -> None:
    """One warning for every record a reader skipped (``errors="skip"``), with the first few."""
    if bad:
        more = f" (and {len(bad) - 5} more)" if len(bad) > 5 else ""
        log.warning("%s: skipped %d bad records: %s%s", path, len(bad), "; ".join(bad[:5]), more)


LINE_KEY = "_line"
"""Where a record was read (its line in the file), kept in the record for error messages."""


def assemble_frames(
    frames: list[RawFrame], path: Path, damaged: Damaged | list[str] | None = None
) -> list[FrameResult]:
    """Records read from ``path`` -> :class:`FrameResult` list.

    A frame is one record: its frame fields and every one of its persons. A last frame
    whose person count differs from its ``num_persons`` (the writer stopped inside it) is
    dropped with a warning. Any other frame that does not convert (a missing or garbled
    field, a value of the wrong type or shape, a person count that does not match) is a
    damaged record: ``damaged`` (a :class:`Damaged`) raises it in strict mode, naming the
    file, the line and the problem, or counts it and leaves the frame out in skip mode.
    A list (the old interface) means skip; None means strict.
    """
    if not isinstance(damaged, Damaged):
        found = damaged
        damaged = Damaged(path, skip=found is not None)
        if found is not None:
            damaged.found = found
    out = []
    for i, (f, persons) in enumerate(frames):
        line = f.get(LINE_KEY)
        where: int | str = line if isinstance(line, int) else f"frame {f.get('frame_index', i)}"
        try:
            expected = int(f["num_persons"])
        except CONVERSION_ERRORS as exc:
            damaged.add(where, f"frame record: {problem_text(exc)}")
            continue
        if len(persons) != expected:
            if i == len(frames) - 1:  # the writer stopped inside this frame
                log.warning("%s: dropping incomplete last frame %s", path, f.get("frame_index"))
                break
            damaged.add(where, f"frame {f.get('frame_index')} says {expected} persons but "
                               f"has {len(persons)}")  # fmt: skip
            continue
        try:
            out.append(_frame_from(f, persons))
        except CONVERSION_ERRORS as exc:
            bad_person = _first_bad_person(persons)
            if bad_person is not None:
                at, problem = bad_person
                at_line = at if isinstance(at, int) else where
                damaged.add(at_line, f"person record of frame {f.get('frame_index')}: {problem}")
            else:
                damaged.add(where, f"frame record: {problem_text(exc)}")
    return out


def _first_bad_person(persons: list[dict[str, Any]]) -> tuple[Any, str] | None:
    """(line, problem) of the first person record that does not convert, else None."""
    for p in persons:
        try:
            _person_from(p, tuple(p.get("image_size") or (1, 1)))
            _person_world(p)
        except CONVERSION_ERRORS as exc:
            return p.get(LINE_KEY), problem_text(exc)
    return None


def _frame_from(f: dict[str, Any], persons: list[dict[str, Any]]) -> FrameResult:
    size = tuple(int(v) for v in f["image_size"])
    if len(size) != 2:
        raise ValueError(f"image_size must be [width, height], got {f['image_size']!r}")
    return FrameResult(
        persons=[_person_from(p, tuple(p.get("image_size", size))) for p in persons],
        frame_index=int(f["frame_index"]),
        image_size=size,
        timings=StageTimings(**{s: float(f["timings"][s]) for s in STAGES}),
        detector_ran=bool(f["detector_ran"]),
        timestamp=None if f["timestamp"] is None else float(f["timestamp"]),
        world=_world_from(f.get("world"), persons),
    )
