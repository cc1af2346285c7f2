"""One pipeline per stream: concurrent use is refused, forks share models but not state."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from instanthmr.pipeline import ConcurrentUseError, PosePipeline


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
