"""One pipeline per stream: concurrent use is refused, forks share models but not state."""

from __future__ import annotations

import itertools
import threading
import time

import numpy as np
import pytest

from instanthmr.pipeline import ConcurrentUseError, PosePipeline
from instanthmr.tracking.tracker import Tracker


class _SlowDetector:
    """Blocks inside detect() until released, so a second thread can collide with it."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()

    def detect(self, image: np.ndarray) -> np.ndarray:
        self.entered.set()
        assert self.release.wait(10)
        return np.zeros((0, 4))


def _pipe(oracle_onnx, detector) -> PosePipeline:
    return PosePipeline(model=oracle_onnx, device="cpu", detector=detector)


@pytest.fixture
def oracle_onnx(tmp_path):
    import onnx
    from onnx_builders import build_oracle

    path = tmp_path / "oracle.onnx"
    onnx.save(build_oracle(), path)
    return path


def test_second_thread_gets_clear_error(oracle_onnx) -> None:
    det = _SlowDetector()
    pipe = _pipe(oracle_onnx, det)
    image = np.zeros((64, 64, 3), np.uint8)
    first = threading.Thread(target=pipe.predict, args=(image,))
    first.start()
    assert det.entered.wait(10)
    with pytest.raises(ConcurrentUseError, match="one pipeline per thread/stream"):
        pipe.predict(image)
    det.release.set()
    first.join(10)
    assert not first.is_alive()
    assert len(pipe.predict(image)) == 0  # usable again once the first call returned


def test_fork_shares_models_and_has_its_own_state(oracle_onnx) -> None:
    det = _SlowDetector()
    det.release.set()
    pipe = _pipe(oracle_onnx, det)
    pipe.predict(np.zeros((64, 64, 3), np.uint8))
    twin = pipe.fork()
    assert twin.hmr is pipe.hmr and twin.detector is pipe.detector
    assert twin.runtime is pipe.runtime
    for part in ("tracker", "scheduler", "smoother"):
        assert getattr(twin, part) is not getattr(pipe, part)
    assert twin._frame == 0 and pipe._frame == 1
    assert twin._busy is not pipe._busy


class _FlickerDetector:
    """A person found on every other call only (a flickering, low-confidence detection), so
    tentative tracks are born and dropped all the time; sleeps briefly (releasing the GIL)."""

    def __init__(self) -> None:
        self._calls = itertools.count()

    def detect(self, image: np.ndarray):
        import supervision as sv

        time.sleep(0.0005)
        if next(self._calls) % 2 == 0:
            return sv.Detections.empty()
        return sv.Detections(
            xyxy=np.array([[40.0, 40.0, 120.0, 120.0]]),
            confidence=np.array([0.9]),
            class_id=np.array([0]),
        )


class _SlowTracker(Tracker):
    """The real tracker, entered after a short sleep: widens the window between a frame
    reading the live tracks and updating them, where another thread could change them."""

    def update(self, *args, **kwargs):
        time.sleep(0.0005)
        return super().update(*args, **kwargs)


def _blob_image() -> np.ndarray:
    yy, xx = np.mgrid[0:160, 0:160].astype(np.float64)
    img = np.zeros((160, 160, 3), np.uint8)
    img[..., 0] = np.round(255 * np.exp(-((xx - 80) ** 2 + (yy - 80) ** 2) / 72)).astype(np.uint8)
    return img


def _hammer(pipe: PosePipeline, image: np.ndarray, calls: int, out: dict, key: str) -> None:
    ok, refused, other = 0, 0, []
    for _ in range(calls):
        try:
            res = pipe.predict(image)
        except ConcurrentUseError:
            refused += 1
        except Exception as exc:  # anything else is a failure, recorded
            other.append(repr(exc))
        else:
            ok += 1
            if len(res.persons) > 1:  # one person in view: two means two streams' tracks
                other.append(f"{len(res.persons)} persons, ids {res.track_ids.tolist()}")
    out[key] = (ok, refused, other)


def _run_threads(pipes: dict, calls: int) -> dict:
    out: dict = {}
    image = _blob_image()
    threads = [
        threading.Thread(target=_hammer, args=(p, image, calls, out, k)) for k, p in pipes.items()
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not any(t.is_alive() for t in threads)
    return out


@pytest.fixture
def steady_oracle(tmp_path):
    """The oracle whose body joints span the blob's box, so carried boxes keep their size."""
    import onnx
    from onnx_builders import build_oracle, corner_offsets

    path = tmp_path / "oracle-steady.onnx"
    onnx.save(build_oracle(offsets=corner_offsets(1 / (1.2 * 1.15))), path)
    return path


def _flicker_pipe(model) -> PosePipeline:
    return PosePipeline(
        model=model, device="cpu", detector=_FlickerDetector(), detector_stride=3,
        tracker=_SlowTracker(),
    )  # fmt: skip


def test_two_threads_hammering_one_pipeline_never_corrupt_it(steady_oracle) -> None:
    """The reported failure: two threads on one pipeline, with a detector stride and tracks
    that come and go. Every call either succeeds or raises ConcurrentUseError: never the
    tracker's ValueError about track_keys, never two tracks for the one person in view.
    (Without the pipeline's guard this raised "track_keys [N] are not live tracks".)"""
    pipe = _flicker_pipe(steady_oracle)
    out = _run_threads({"a": pipe, "b": pipe}, 150)
    assert [e for v in out.values() for e in v[2]] == []
    ok = sum(v[0] for v in out.values())
    refused = sum(v[1] for v in out.values())
    assert ok + refused == 300 and ok > 0 and refused > 0


def test_forks_in_two_threads_never_refuse(steady_oracle) -> None:
    pipe = _flicker_pipe(steady_oracle)
    out = _run_threads({"a": pipe, "b": pipe.fork()}, 60)
    assert out == {"a": (60, 0, []), "b": (60, 0, [])}
