"""Animation export: MHR70 joints -> a 20-joint skeleton animation, written as BVH or glTF.

- :mod:`.rig`: the fixed skeleton and the rules that derive its points from MHR70 joints.
- :mod:`.kinematics`: :class:`Motion`, solving local rotations from joint positions, and
  forward kinematics.
- :mod:`.clips`: FrameResults -> one motion per track on a shared timeline (gaps held,
  the world stage's foot contact flags carried).
- :mod:`.rigs`: bone naming conventions (``plain``, ``mixamo``, ``vrm``, ``unity``).
- :mod:`.footlock`: planted feet held still by two-bone leg IK; the foot-skate measure.
- :mod:`.bvh`, :mod:`.gltf`: the writers (and a small BVH reader for checks); the glTF is a
  skinned armature per track with a box body (:mod:`.body`), checked by :mod:`.gltf_check`.
- :mod:`.exporter`: the ``.bvh`` / ``.glb`` exporters behind ``--export``.
- :mod:`.live`: the rig posed one frame at a time, for the VMC stream
  (:mod:`instanthmr.sinks.vmc`).
- :mod:`.mhr`: optional, Meta's MHR skeleton from ``mhr_params`` (extra ``mhr``).

Guide: ``docs/animation.md``.
"""

from __future__ import annotations

from .bvh import BvhFile, bvh_comment, read_bvh, write_bvh
from .clips import DEFAULT_FPS, TrackBuffer
from .exporter import BvhExporter, GlbExporter
from .footlock import foot_skate, lock_feet
from .gltf import write_glb
from .gltf_check import check_glb
from .kinematics import Motion, solve_motion
from .rigs import RIG_NAMES, apply_rig

__all__ = [
    "DEFAULT_FPS",
    "RIG_NAMES",
    "BvhExporter",
    "BvhFile",
    "GlbExporter",
    "Motion",
    "TrackBuffer",
    "apply_rig",
    "bvh_comment",
    "check_glb",
    "foot_skate",
    "lock_feet",
    "read_bvh",
    "solve_motion",
    "write_bvh",
    "write_glb",
]
