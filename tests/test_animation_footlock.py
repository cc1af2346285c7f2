"""Feet that stay put: the world stage's contact flags lock planted feet in the exports.

The stepper (tests/animation_synth.py) walks with truly planted feet; 1 cm of noise on
every joint makes the estimated feet slide, as a per-frame estimate does. The walk goes
through the real world stage (its contact flags), the exporters and back.
"""

from __future__ import annotations

import numpy as np
import pytest
from animation_synth import stepper, world_frames

from instanthmr.animation import rig
from instanthmr.animation.bvh import read_bvh
from instanthmr.animation.exporter import BvhExporter, GlbExporter
from instanthmr.animation.footlock import (
    TOES,
    FootLocker,
    _hold_weights,
    foot_skate,
    lock_feet,
)
from instanthmr.animation.kinematics import solve_motion

ANKLES = (rig.POINT_NAMES.index("LeftFoot"), rig.POINT_NAMES.index("RightFoot"))


def _export(frames, path, **kw) -> np.ndarray:
    with BvhExporter(path, **kw) as ex:
        for f in frames:
            ex.write(f)
    return read_bvh(ex.written[0]).positions()


def test_locked_feet_do_not_skate_and_stay_near_the_truth(tmp_path) -> None:
    truth, planted = stepper(120)
    noisy = truth + np.random.default_rng(0).normal(0, 0.01, truth.shape)
    frames = world_frames(noisy)
    contact = np.array([f.world.persons[0].contact for f in frames])
    assert 0.5 < contact.mean() < 0.7 and (contact == planted).mean() > 0.85  # real flags
    before = _export(frames, tmp_path / "off.bvh", foot_lock=False)
    after = _export(frames, tmp_path / "on.bvh")  # the default locks
    exact = rig.rig_points(truth)
    assert foot_skate(exact, planted, ANKLES) == 0.0  # the truth does not slide
    assert foot_skate(before, contact, ANKLES) > 1.0  # cm per contact frame
    assert foot_skate(after, contact, ANKLES) < 0.01
    assert foot_skate(after, contact, TOES) < 0.01  # the whole foot is held
    err = {k: np.linalg.norm(v[:, list(ANKLES)] - exact[:, list(ANKLES)], axis=-1).mean()
           for k, v in (("before", before), ("after", after))}  # fmt: skip
    assert err["after"] < err["before"] + 0.005  # holding does not pull feet off the truth
    np.testing.assert_allclose(after[:, 0], before[:, 0], atol=1e-5)  # the root stays
    bone = lambda p, a, b: np.linalg.norm(p[:, a] - p[:, b], axis=-1)  # noqa: E731
    for a, b in ((1, 2), (2, 3), (4, 5), (5, 6)):  # thighs and shins keep their lengths
        np.testing.assert_allclose(bone(after, a, b), bone(before, a, b), atol=1e-5)


def test_holds_ease_in_and_out_without_jumps(tmp_path) -> None:
    truth, _ = stepper(90)
    noisy = truth + np.random.default_rng(3).normal(0, 0.01, truth.shape)
    frames = world_frames(noisy)
    after = _export(frames, tmp_path / "on.bvh")
    before = _export(frames, tmp_path / "off.bvh", foot_lock=False)
    jump_after = np.linalg.norm(np.diff(after[:, list(ANKLES)], axis=0), axis=-1).max()
    jump_before = np.linalg.norm(np.diff(before[:, list(ANKLES)], axis=0), axis=-1).max()
    assert jump_after < jump_before + 0.02  # no step bigger than the walk's own, + 2 cm
    contact = np.zeros(16, dtype=bool)
    contact[5:9] = True
    weight, run = _hold_weights(contact, 3)
    np.testing.assert_allclose(weight[5:9], 1.0)
    assert np.all(weight[[0, 1, 13, 14, 15]] == 0) and np.all(run[2:12] == 0)
    assert 0 < weight[2] < weight[3] < weight[4] < 1 and 1 > weight[9] > weight[10] > weight[11] > 0


def test_glb_export_locks_the_same_way(tmp_path) -> None:
    truth, _ = stepper(60)
    frames = world_frames(truth + np.random.default_rng(5).normal(0, 0.01, truth.shape))
    with GlbExporter(tmp_path / "w.glb") as ex:
        for f in frames:
            ex.write(f)
    from animation_synth import glb_positions

    world, _, _ = glb_positions(ex.written[0])
    contact = np.array([f.world.persons[0].contact for f in frames])
    pos = np.stack([world["LeftFoot"], world["RightFoot"]], axis=1)
    assert foot_skate(pos, contact, (0, 1)) < 0.01


def test_no_contact_flags_leave_the_motion_as_estimated() -> None:
    truth, _ = stepper(10)
    m = solve_motion(rig.rig_points(truth), rig.twist_references(truth), 1 / 30)
    assert lock_feet(m) is m  # no contact known
    with pytest.raises(ValueError, match="blend_frames must be >= 0"):
        FootLocker(-1)


def test_live_locker_holds_from_the_first_contact_frame_and_eases_out() -> None:
    locker = FootLocker(blend_frames=3)
    rot = np.broadcast_to(np.eye(3), (2, 3, 3))
    path = [np.array([[0.1 * t, 0.08, 0.0], [0.0, 0.08, 0.0]]) for t in range(12)]
    contact = [(t in range(2, 6), False) for t in range(12)]
    out = np.array([locker.step(p, rot, c)[0][0] for p, c in zip(path, contact, strict=True)])
    np.testing.assert_allclose(out[2:6, 0], 0.2)  # held where the contact began
    np.testing.assert_allclose(out[:2, 0], [0.0, 0.1])  # before: as estimated
    np.testing.assert_allclose(out[10:, 0], [1.0, 1.1])  # after the blend: as estimated
    assert np.all(np.diff(out[5:10, 0]) > 0)  # easing out, monotone
    assert np.all(out[6:9, 0] < [0.6, 0.7, 0.8])  # ... and still behind the estimate
