"""One-Euro filter, shape running estimate and the per-track pose smoother."""

from __future__ import annotations

import numpy as np
import pytest

from instanthmr.results import PersonResult
from instanthmr.tracking.smoothing import (
    METRES_3D,
    METRES_TRANSLATION,
    PIXELS_2D,
    OneEuroFilter,
    OneEuroParams,
    PoseSmoother,
    ShapeEstimate,
)

FPS = 30.0


def filtered(params: OneEuroParams, signal: np.ndarray, times: np.ndarray) -> np.ndarray:
    f = OneEuroFilter(params)
    return np.stack([f(x, t) for x, t in zip(signal, times, strict=True)])


def jitter(x: np.ndarray) -> float:
    """Mean absolute second difference over time (axis 0)."""
    return float(np.abs(np.diff(x, 2, axis=0)).mean())


@pytest.mark.parametrize(
    ("params", "shape", "sway", "noise"),
    [
        (PIXELS_2D, (70, 2), 5.0, 2.0),  # pixels
        (METRES_3D, (70, 3), 0.01, 0.005),  # metres
        (METRES_TRANSLATION, (3,), 0.02, 0.03),  # metres, depth-like noise
    ],
)
def test_jitter_drops_on_a_nearly_still_person(params, shape, sway, noise) -> None:
    # A standing person sways slowly (0.2 Hz); the model adds white noise every frame.
    rng = np.random.default_rng(1234)
    t = np.arange(300) / FPS
    truth = sway * np.sin(2 * np.pi * 0.2 * t).reshape(-1, *[1] * len(shape)) + np.zeros(shape)
    noisy = truth + rng.normal(0.0, noise, truth.shape)
    out = filtered(params, noisy, t)
    assert out.shape == noisy.shape
    assert jitter(noisy) / jitter(out) >= 4.0
    # smoother and also closer to the truth (after the first second)
    assert np.abs(out - truth)[30:].mean() < 0.6 * np.abs(noisy - truth)[30:].mean()


@pytest.mark.parametrize(
    ("params", "speed"),
    [(PIXELS_2D, 100.0), (METRES_3D, 0.25), (METRES_TRANSLATION, 1.4)],
)
def test_lag_under_one_frame_at_constant_velocity(params: OneEuroParams, speed: float) -> None:
    t = np.arange(120) / FPS
    x = (speed * t)[:, None]
    out = filtered(params, x, t)
    lag_frames = (x[-1, 0] - out[-1, 0]) / (speed / FPS)  # steady-state error / velocity
    assert 0.0 < lag_frames < 1.0
    # the same filter without its speed term (a fixed low-pass) lags more than a frame
    fixed = OneEuroParams(params.min_cutoff, 0.0, params.d_cutoff)
    assert (x[-1, 0] - filtered(fixed, x, t)[-1, 0]) / (speed / FPS) > 1.0


def test_best_alignment_shift_under_one_frame_with_noise() -> None:
    rng = np.random.default_rng(5)
    t = np.arange(240) / FPS
    truth = 300.0 * np.sin(2 * np.pi * 0.5 * t)  # up to 940 px/s
    out = filtered(PIXELS_2D, truth + rng.normal(0.0, 1.0, t.shape), t)
    shifts = np.arange(0, 6)
    err = [np.abs(out[30 + s :] - truth[30 : len(t) - s]).mean() for s in shifts]
    assert int(np.argmin(err)) <= 1


def test_variable_frame_rate_uses_timestamps() -> None:
    rng = np.random.default_rng(3)
    dt = rng.choice([1 / 60, 1 / 30, 1 / 15], size=200)
    t = np.cumsum(dt)
    speed = 100.0
    out = filtered(PIXELS_2D, (speed * t)[:, None], t)
    lag_seconds = (speed * t[-1] - out[-1, 0]) / speed
    assert 0.0 < lag_seconds < 1 / FPS
    # ignoring the timestamps (treating every step as 1/30 s) gets it wrong
    wrong = filtered(PIXELS_2D, (speed * t)[:, None], np.arange(200) / FPS)
    assert abs(wrong[-1, 0] - out[-1, 0]) > 0.1


def test_filter_is_elementwise_and_edge_cases() -> None:
    rng = np.random.default_rng(0)
    t = np.arange(50) / FPS
    x = rng.normal(0, 5, (50, 4, 3)) + np.linspace(0, 30, 50)[:, None, None]
    out = filtered(PIXELS_2D, x, t)
    single = filtered(PIXELS_2D, x[:, 2, 1], t)
    np.testing.assert_allclose(out[:, 2, 1], single)
    f = OneEuroFilter(min_cutoff=1.0, beta=0.0)
    np.testing.assert_array_equal(f(np.array([3.0, 4.0]), 0.0), [3.0, 4.0])  # first: as is
    y = f(np.array([5.0, 6.0]), 0.1)
    np.testing.assert_array_equal(f(np.array([9.0, 9.0]), 0.1), y)  # same time: no step
    with pytest.raises(ValueError, match="reset"):
        f(np.array([1.0, 1.0]), 0.05)
    with pytest.raises(ValueError, match="shape"):
        f(np.zeros(3), 0.2)
    f.reset()
    np.testing.assert_array_equal(f(np.array([1.0, 1.0]), 0.0), [1.0, 1.0])
    assert OneEuroFilter(PIXELS_2D, beta=0.5).params.beta == 0.5
    with pytest.raises(ValueError, match="min_cutoff"):
        OneEuroParams(min_cutoff=0.0)


def test_shape_estimate_converges_and_ignores_noise() -> None:
    rng = np.random.default_rng(11)
    true_a, true_b = rng.normal(0, 1, 45), rng.normal(0, 1, 45)
    est = ShapeEstimate(window=60)
    values = [est(true_a + rng.normal(0, 0.3, 45)) for _ in range(300)]
    assert np.abs(values[-1] - true_a).mean() < 0.3 / 4
    steps = np.abs(np.diff(values[100:], axis=0)).mean()
    assert steps < 0.3 / 20  # per-frame noise barely moves it
    # a different person under the same id is adopted within a few windows
    for _ in range(300):
        value = est(true_b + rng.normal(0, 0.3, 45))
    assert np.abs(value - true_b).mean() < 0.3 / 2
    with pytest.raises(ValueError):
        ShapeEstimate(window=0)


def make_person(track_id: int, offset: float = 0.0, seed: int = 0) -> PersonResult:
    rng = np.random.default_rng(seed)
    return PersonResult(
        bbox=np.array([10.0, 10.0, 110.0, 310.0]),
        score=0.9,
        joints_2d=rng.uniform(0, 300, (70, 2)) + offset,
        joints_3d_local=rng.normal(0, 0.3, (70, 3)) + offset / 100,
        cam_trans=np.array([0.1, 0.2, 3.0]) + offset / 100,
        mhr_params=rng.normal(0, 1, 204) + offset,
        shape_params=rng.normal(0, 1, 45) + offset,
        focal_length=800.0,
        principal_point=np.array([320.0, 240.0]),
        image_size=(640, 480),
        track_id=track_id,
    )


def test_pose_smoother_per_track_forget_and_reset() -> None:
    sm = PoseSmoother()
    first = sm.smooth(make_person(1), 0.0)
    np.testing.assert_allclose(first.joints_2d, make_person(1).joints_2d)  # first: as is
    jumped = make_person(1, offset=20.0)
    out = sm.smooth(jumped, 1 / FPS)
    assert isinstance(out, PersonResult) and out.track_id == 1
    for name in ("joints_2d", "joints_3d_local", "cam_trans", "shape_params"):
        a, b, c = getattr(first, name), getattr(out, name), getattr(jumped, name)
        assert np.all(np.abs(b - a) < np.abs(c - a)), name  # pulled back toward the past
    rest = np.r_[0:3, 6:204]  # all but the root-rotation angles (checked on their own below)
    a, b, c = first.mhr_params[rest], out.mhr_params[rest], jumped.mhr_params[rest]
    assert np.all(np.abs(b - a) < np.abs(c - a))
    np.testing.assert_array_equal(out.bbox, jumped.bbox)
    # another track is independent: its first sample passes unchanged
    other = make_person(2, offset=50.0, seed=1)
    np.testing.assert_allclose(sm.smooth(other, 1 / FPS).joints_2d, other.joints_2d)
    assert sm.track_ids == [1, 2]
    sm.forget(1)
    sm.forget(99)  # unknown: ignored
    assert sm.track_ids == [2]
    np.testing.assert_allclose(sm.smooth(jumped, 2 / FPS).joints_2d, jumped.joints_2d)
    sm.reset()
    assert sm.track_ids == []
    np.testing.assert_allclose(sm.smooth(jumped, 0.0).joints_2d, jumped.joints_2d)


def test_pose_smoother_leaves_untracked_people_alone() -> None:
    sm = PoseSmoother()
    p = make_person(-1)
    assert sm.smooth(p, 0.0) is p
    assert sm.smooth_all([p, make_person(3)], 0.0)[0] is p
    assert sm.track_ids == [3]


def _with_rotation(person: PersonResult, euler: np.ndarray) -> PersonResult:
    params = person.mhr_params.copy()
    params[3:6] = euler
    return person.replace(mhr_params=params)


def test_root_rotation_is_smoothed_across_the_wrap_at_pi() -> None:
    """A body turning steadily about Y through ±π: the smoothed angle follows the turn and
    never averages 3.1 and -3.1 into 0 (half a turn away)."""
    sm = PoseSmoother()
    base = make_person(1)
    t = np.arange(60) / FPS
    true_y = np.pi - 0.6 + 1.2 * t  # crosses +π at t = 0.5 s, 0.04 rad per frame
    worst = 0.0
    outputs = []
    for i, ti in enumerate(t):
        wrapped = np.array([0.2, (true_y[i] + np.pi) % (2 * np.pi) - np.pi, -0.1])
        out = sm.smooth(_with_rotation(base, wrapped), float(ti))
        y = out.mhr_params[4]
        assert -np.pi <= y < np.pi  # reported in the wrapped range
        error = abs((y - true_y[i] + np.pi) % (2 * np.pi) - np.pi)
        worst = max(worst, error)
        outputs.append(y)
    assert worst < 0.1, worst  # the lag of a 1€ filter, not a jump of about π
    assert min(outputs) < -3.0 and max(outputs) > 3.0  # it did go through the wrap
    np.testing.assert_allclose(out.mhr_params[[3, 5]], [0.2, -0.1], atol=1e-9)


def test_angle_unwrapper_and_wrap() -> None:
    from instanthmr.tracking.smoothing import AngleUnwrapper, wrap_angle

    u = AngleUnwrapper()
    seq = [3.0, -3.1, -2.9, 3.1, 2.8]  # +0.18, +0.2 ... then back across the wrap
    got = [float(u(np.array([a]))[0]) for a in seq]
    np.testing.assert_allclose(got, [3.0, 2 * np.pi - 3.1, 2 * np.pi - 2.9, 3.1, 2.8])
    np.testing.assert_allclose(wrap_angle(np.array([np.pi, -np.pi, 7.0])),
                               [-np.pi, -np.pi, 7.0 - 2 * np.pi])  # fmt: skip
    u.reset()
    assert float(u(np.array([-3.0]))[0]) == -3.0
