"""Animation export: MHR70 joints -> a 20-joint skeleton animation, written as BVH or glTF.

- :mod:`.rig`: the fixed skeleton and the rules that derive its points from MHR70 joints.
- :mod:`.kinematics`: :class:`Motion`, solving local rotations from joint positions, and
  forward kinematics.
- :mod:`.clips`: FrameResults -> one motion per track on a shared timeline (gaps held).
- :mod:`.bvh`, :mod:`.gltf`: the writers (and a small BVH reader for checks).
- :mod:`.exporter`: the ``.bvh`` / ``.glb`` exporters behind ``--export``.
- :mod:`.mhr`: optional, Meta's MHR skeleton from ``mhr_params`` (extra ``mhr``).

Guide: ``docs/animation.md``.
"""

from __future__ import annotations

from .bvh import BvhFile, bvh_comment, read_bvh, write_bvh
from .clips import DEFAULT_FPS, TrackBuffer
from .exporter import BvhExporter, GlbExporter
from .gltf import write_glb
from .kinematics import Motion, solve_motion

__all__ = [
    "DEFAULT_FPS",
    "BvhExporter",
    "BvhFile",
    "GlbExporter",
    "Motion",
    "TrackBuffer",
    "bvh_comment",
    "read_bvh",
    "solve_motion",
    "write_bvh",
    "write_glb",
]
