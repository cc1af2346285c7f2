"""A real client: Blender imports the exports in the background, as a user would.

``blender -b --factory-startup --python tests/blender_probe.py`` imports the file with the
stock glTF (or BVH) importer and reports what came in. Skips where Blender is absent (CI
installs Debian's ``blender`` and ``python3-numpy``: .ci/run).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from animation_synth import frames_from, mhr70_from_points, walker

from instanthmr.animation import rig
from instanthmr.animation.exporter import BvhExporter, GlbExporter
from instanthmr.animation.rigs import apply_rig

BLENDER = shutil.which("blender")
PROBE = Path(__file__).with_name("blender_probe.py")
pytestmark = pytest.mark.skipif(
    BLENDER is None,
    reason="Blender is not installed (Debian: apt-get install blender python3-numpy)",
)
FRAMES = 45  # 1.5 s at 30 FPS


def probe(path: Path, frames: str, *, patch_open: bool = False) -> dict:
    out = path.with_suffix(".json")
    cmd = [BLENDER, "-b", "--factory-startup", "--python", str(PROBE), "--", str(path), str(out),
           frames]  # fmt: skip
    env = {"PATH": "/usr/bin:/bin", "HOME": str(path.parent)}
    if patch_open:
        env["PROBE_PATCH_OPEN"] = "1"
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert out.exists(), run.stdout[-3000:] + run.stderr[-3000:]
    return json.loads(out.read_text())


def _export(kind, path: Path, convention: str, tracks: dict[int, float]) -> tuple[dict, list]:
    truth = walker(FRAMES)
    pts = truth.positions()
    cams = {tid: rig.camera_to_yup(mhr70_from_points(pts + [dx, 0, 0], truth.global_rotations()))
            for tid, dx in tracks.items()}  # fmt: skip
    with kind(path, rig=convention) as ex:
        for f in frames_from(cams, FRAMES, fps=30.0):
            ex.write(f)
    return {tid: pts + [dx, 0, 0] for tid, dx in tracks.items()}, ex.written


def test_blender_imports_the_glb_as_armatures_with_bodies_and_actions(tmp_path) -> None:
    truth, written = _export(GlbExporter, tmp_path / "run.glb", "mixamo", {1: 0.0, 2: 1.5})
    report = probe(written[0], "0,12,24")
    arm = report["armatures"]
    assert sorted(arm) == ["track1", "track2"]  # one ARMATURE object per track
    names = apply_rig(walker(2), "mixamo")
    expected = [*names.names, *names.end_names]
    for name, a in arm.items():
        assert sorted(a["bones"]) == sorted(expected) and len(a["bones"]) == 25
        assert a["parents"]["mixamorig:LeftShoulder"] == "mixamorig:Spine2"
        act = report["actions"][a["action"]]
        assert act["keys"] > FRAMES * 20 and not act["nan"]  # every joint keyed, no NaN
        assert 'pose.bones["mixamorig:LeftForeArm"].rotation_quaternion' in act["paths"]
        mesh = report["meshes"][f"{name}_body"]
        assert mesh["armature"] == name and mesh["vertices"] == 20 * 24
        assert set(mesh["vertex_groups"]) == set(expected)
    # Posed bones at scene frames 0, 12, 24 (24 FPS: 0, 0.5, 1.0 s = our frames 0, 15, 30)
    # against forward kinematics of the walker; Blender is Z up: (x, y, z) -> (x, -z, y).
    order = list(expected)
    plain = [*rig.JOINT_NAMES, *rig.END_NAMES]
    for frame, ours in (("0", 0), ("12", 15), ("24", 30)):
        snap = report["frames"][frame]
        for tid in (1, 2):
            got = np.array([snap["bones"][f"track{tid}"][n] for n in order])
            want = truth[tid][ours, [plain.index(p) for p in plain]][:, [0, 2, 1]] * [1, -1, 1]
            assert np.abs(got - want).max() < 1e-3, (frame, tid)
            lo, hi = (np.array(v) for v in snap["mesh_bbox"][f"track{tid}_body"])
            assert np.all(lo < want.min(0)) and np.all(hi > want.max(0))  # the body is on it
    moved = np.subtract(report["frames"]["24"]["mesh_bbox"]["track1_body"],
                        report["frames"]["0"]["mesh_bbox"]["track1_body"])  # fmt: skip
    assert np.abs(moved).max() > 0.3  # the body moves with the walk


def test_blender_bvh_import_needs_the_open_mode_workaround(tmp_path) -> None:
    """Debian's Blender 3.4 BVH importer opens files with mode 'rU', which Python 3.11
    refuses; the documented workaround (docs/animation.md) makes it import our file."""
    _, written = _export(BvhExporter, tmp_path / "run.bvh", "vrm", {3: 0.0})
    report = probe(written[0], "0", patch_open=True)
    (arm,) = report["armatures"].values()
    assert len(arm["bones"]) == 20 and "leftUpperArm" in arm["bones"]
    assert not report["actions"][arm["action"]]["nan"]
