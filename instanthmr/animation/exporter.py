"""``.bvh`` and ``.glb`` exporters: buffer FrameResults, write the animation files on close.

They share the :class:`~instanthmr.sinks.formats_common.Exporter` interface (``write(frame)``,
``close()``, ``with``), so :func:`instanthmr.sinks.exporters.open_exporter` and the demo's
``--export`` pick them by suffix. They are animation files, not results files:
:func:`~instanthmr.sinks.exporters.read_results` refuses them.

Naming: ``--export out.bvh`` writes one BVH per track, ``out.track<ID>.bvh``; with
``gaps="split"`` one per unbroken run of frames, ``out.track<ID>.clip<N>.bvh`` (N from 1).
``--export out.glb`` writes one file with every track. After :meth:`close`,
:attr:`AnimationExporter.written` lists the files. With no tracked person, nothing is written
and a warning is logged. Each file is written to ``<name>.partial`` and renamed into place.

Before writing, planted feet are locked where the world stage flagged contact
(:func:`.footlock.lock_feet`; ``foot_lock=False`` keeps the estimate as it is) and the joints
are named after ``rig`` (:mod:`.rigs`: ``plain``, ``mixamo``, ``vrm``).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..hmr.kinds import file_note
from ..results import FrameResult
from ..sinks.formats_common import Exporter
from .bvh import write_bvh
from .clips import DEFAULT_FPS, TrackBuffer, observed_runs
from .footlock import lock_feet
from .gltf import write_glb
from .kinematics import Motion
from .rigs import apply_rig, check_rig

log = logging.getLogger(__name__)

GAP_POLICIES = ("hold", "split")


def bvh_paths(path: str | Path, motion: Motion, clips: int | None = None) -> list[Path]:
    """File names for one track: ``out.track3.bvh``, or ``out.track3.clip1.bvh``... when split."""
    path = Path(path)
    base = f"{path.stem}.track{motion.track_id}"
    if clips is None:
        return [path.with_name(f"{base}{path.suffix}")]
    return [path.with_name(f"{base}.clip{n}{path.suffix}") for n in range(1, clips + 1)]


class AnimationExporter(Exporter):
    """Base of the animation exporters: keeps the tracked joints, writes files on close.

    Args:
        path: the name given by the user (``out.bvh``); see the module docs for the files.
        gaps: ``"hold"`` (default) keeps the last pose through frames where a track was not
            seen; ``"split"`` cuts BVH clips at gaps and hides the glTF skeleton during them.
        fps: frame rate used only when frames carry no timestamps.
        rig: bone naming, ``plain`` (default), ``mixamo`` or ``vrm`` (see :mod:`.rigs`).
        foot_lock: lock feet the world stage flagged as planted (default True; tracks
            without contact flags, e.g. with the world stage off, are written as estimated).
        run: the model of the run (:func:`instanthmr.hmr.kinds.run_header`): a model that
            is not InstantHMR is named in a BVH comment and in the glTF ``asset``.
    """

    def __init__(
        self,
        path: str | Path,
        gaps: str = "hold",
        fps: float = DEFAULT_FPS,
        rig: str = "plain",
        foot_lock: bool = True,
        run: Mapping[str, Any] | None = None,
    ) -> None:
        if gaps not in GAP_POLICIES:
            raise ValueError(f"gaps must be one of {', '.join(GAP_POLICIES)}, got {gaps!r}")
        super().__init__(path, run)
        self.gaps = gaps
        self.rig = check_rig(rig)
        self.foot_lock = bool(foot_lock)
        self.written: list[Path] = []
        self._buffer = TrackBuffer(fps)

    def _write(self, frame: FrameResult) -> None:
        self._buffer.add(frame)

    def close(self) -> None:
        """Solve every track and write the files; safe to call more than once."""
        if self._closed:
            return
        self._closed = True
        motions = self._buffer.motions()
        if not motions:
            log.warning("no tracked person in %d frames: nothing written for %s",
                        self.frames_written, self.path)  # fmt: skip
            return
        if self.foot_lock:
            if all(m.contact is None for m in motions):
                log.info("%s: no foot contact flags (world stage off): feet not locked", self.path)
            motions = [lock_feet(m) for m in motions]
        self.written = self._write_files([apply_rig(m, self.rig) for m in motions])
        for p in self.written:
            log.info("wrote %s", p)

    def _write_files(self, motions: list[Motion]) -> list[Path]:
        raise NotImplementedError


class BvhExporter(AnimationExporter):
    """One BVH per track (or per unbroken clip with ``gaps="split"``)."""

    suffix = ".bvh"

    def _write_files(self, motions: list[Motion]) -> list[Path]:
        out = []
        note = file_note(self.run)
        for m in motions:
            if self.gaps == "hold":
                out.append(write_bvh(bvh_paths(self.path, m)[0], m, note))
                continue
            runs = observed_runs(m.observed)
            for (a, b), name in zip(runs, bvh_paths(self.path, m, len(runs)), strict=True):
                out.append(write_bvh(name, m.slice(a, b), note))
        return out


class GlbExporter(AnimationExporter):
    """One ``.glb`` with every track: per track a skinned armature with a box body, animated."""

    suffix = ".glb"

    def _write_files(self, motions: list[Motion]) -> list[Path]:
        return [write_glb(self.path, motions, hide_gaps=self.gaps == "split", rig=self.rig,
                          run=self.run)]
