"""The world stage inside PosePipeline: the ``world=`` option, FrameResult.world, fork().

The model is the analytic oracle of ``onnx_builders.py`` (outputs known from its inputs),
run by the real onnxruntime; boxes are brought by the caller.
"""

from __future__ import annotations

import numpy as np
import pytest

from instanthmr.pipeline import PosePipeline
from instanthmr.world import WorldFrame, WorldTracker

BOX = np.array([[40.0, 30.0, 120.0, 200.0]])


@pytest.fixture(scope="module")
def oracle_onnx(tmp_path_factory: pytest.TempPathFactory):
    import onnx
    from onnx_builders import build_oracle

    path = tmp_path_factory.mktemp("oracle") / "oracle.onnx"
    onnx.save(build_oracle(), path)
    return path


def _image() -> np.ndarray:
    img = np.zeros((240, 320, 3), np.uint8)
    img[80:150, 60:100] = 255  # the oracle's keypoints follow this blob
    return img


def _pipe(oracle_onnx, world: object) -> PosePipeline:
    return PosePipeline(model=oracle_onnx, device="cpu", detector=None, world=world)


def test_no_world_by_default(oracle_onnx) -> None:
    result = _pipe(oracle_onnx, False).predict(_image(), boxes=BOX)
    assert result.world is None and len(result) == 1
    assert result[0].joints_3d_world is None and result[0].root_world is None


def test_given_world_frame_fills_world_fields(oracle_onnx) -> None:
    camera = WorldFrame.from_camera(2.0, 10.0)
    pipe = _pipe(oracle_onnx, camera)
    for i in range(3):
        result = pipe.predict(_image(), boxes=BOX, timestamp=i / 30)
    info = result.world
    assert info.known and info.source == "user" and info.confidence == 1.0
    assert info.camera_height == pytest.approx(2.0) and info.pitch_deg == pytest.approx(10.0)
    p = result[0]
    np.testing.assert_allclose(p.joints_3d_world, camera.cam_to_world(p.joints_3d_cam), atol=1e-4)
    assert p.root_world.shape == (3,)
    assert [w.track_id for w in info.persons] == [p.track_id]
    assert result.timings.track > 0  # the world stage is timed with tracking


def test_online_world_stays_unknown_and_says_why(oracle_onnx) -> None:
    pipe = _pipe(oracle_onnx, True)
    result = pipe.predict(_image(), boxes=BOX)
    assert result.world is not None and not result.world.known
    assert result.world.reason and result[0].joints_3d_world is None


def test_fork_has_its_own_world_state(oracle_onnx) -> None:
    stage = WorldTracker()
    pipe = _pipe(oracle_onnx, stage)
    assert pipe.world is stage
    for i in range(4):
        pipe.predict(_image(), boxes=BOX, timestamp=i / 30)
    assert stage.estimator.estimate.samples > 0  # the oracle's still "feet" were collected
    twin = pipe.fork()
    assert twin.world is not pipe.world and twin.world.estimator is not stage.estimator
    assert twin.world.estimator.estimate.samples == 0  # fresh: nothing from the other stream
    assert stage.estimator.estimate.samples > 0
    given = _pipe(oracle_onnx, WorldFrame.from_camera(3.0, 5.0)).fork()
    assert given.world.frame.camera_height == pytest.approx(3.0)  # a given frame is kept


def test_bad_world_option(oracle_onnx) -> None:
    with pytest.raises(TypeError, match="world must be a bool, a WorldFrame or a WorldTracker"):
        _pipe(oracle_onnx, "yes")


class _Recording(WorldTracker):
    """The real world stage, keeping what the pipeline hands it."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[tuple[list, list | None]] = []

    def update(self, persons, timestamp, measured=None):  # type: ignore[no-untyped-def]
        self.seen.append((persons, measured))
        return super().update(persons, timestamp, measured)


def _moving(i: int) -> np.ndarray:
    img = np.zeros((240, 320, 3), np.uint8)
    img[80:150, 60 + 3 * i : 100 + 3 * i] = 255  # the oracle's keypoints follow this blob
    return img


def test_world_stage_measures_unsmoothed_persons(oracle_onnx) -> None:
    """With smoothing on, the world stage still gets the persons as the model gave them (to
    measure the ground) besides the smoothed ones (to map into the world)."""
    stage = _Recording()
    smooth = PosePipeline(model=oracle_onnx, device="cpu", detector=None, world=stage,
                          smoothing=True)  # fmt: skip
    plain = PosePipeline(model=oracle_onnx, device="cpu", detector=None, smoothing=False)
    for i in range(6):
        box = BOX + [3 * i, 0, 3 * i, 0]
        out = smooth.predict(_moving(i), boxes=box, timestamp=i / 30)
        raw = plain.predict(_moving(i), boxes=box, timestamp=i / 30)
        persons, measured = stage.seen[-1]
        np.testing.assert_array_equal(measured[0].joints_3d_cam, raw[0].joints_3d_cam)
        np.testing.assert_array_equal(measured[0].joints_2d, raw[0].joints_2d)
        np.testing.assert_array_equal(persons[0].joints_2d, out[0].joints_2d)
    assert not np.allclose(out[0].joints_2d, raw[0].joints_2d)  # smoothing did act


def test_smoothing_does_not_move_the_ground() -> None:
    """A noise-free scene gives the same floor (within 2 mm) with the pose smoother on and
    off, because the stage measures the unsmoothed persons; measuring the smoothed ones
    instead (separate filters for the translation and the body) biases it by centimetres."""
    from world_bench import scene

    from instanthmr.tracking.smoothing import PoseSmoother

    frames = scene("walk", "room", 3, seconds=8, seed=0).render(depth=0.0, lateral=0.0)
    plain, wired, naive = WorldTracker(), WorldTracker(), WorldTracker()
    smoother = PoseSmoother()
    for t, persons, _ in frames:
        smoothed = smoother.smooth_all(persons, t)
        _, off = plain.update(persons, t)
        on, info = wired.update(smoothed, t, measured=persons)
        _, biased = naive.update(smoothed, t)
    assert off.known and info.known
    np.testing.assert_allclose(info.plane, off.plane, atol=0.002)
    assert abs(info.camera_height - off.camera_height) < 0.002
    np.testing.assert_allclose(  # the world joints are those of the smoothed persons
        on[0].joints_3d_world, WorldFrame(info.plane[:3], info.plane[3]).cam_to_world(
            smoothed[0].joints_3d_cam), atol=1e-4)  # fmt: skip
    assert abs(biased.camera_height - off.camera_height) > 0.005


def test_measured_must_match_persons() -> None:
    from world_scene import default_walkers, frames

    t, persons, _ = frames(WorldFrame.from_camera(2.5, 20.0), default_walkers(), 1)[0]
    with pytest.raises(ValueError, match="same persons"):
        WorldTracker().update(persons, t, measured=persons[:1])
