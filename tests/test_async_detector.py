"""The async detector: merge order, serving every frame, shutdown and exceptions.

The HMR model is the analytic oracle (keypoints on the red blob in the crop); the detector
is :class:`~async_helpers.BlobFinder`, a real connected-components detector, slowed down
with a sleep where a test needs a detection to be in flight.
"""

from __future__ import annotations

import gc
import threading
import time
import traceback
from pathlib import Path

import numpy as np
import onnx
import pytest
from async_helpers import STEADY_SPREAD, BlobFinder, blobs
from onnx_builders import build_oracle, corner_offsets

from instanthmr.detector.async_worker import DetectorWorker
from instanthmr.pipeline import PosePipeline
from instanthmr.runtime.session import default_threads

SIZE = (480, 300)


@pytest.fixture(scope="module")
def oracle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("oracle") / "oracle-steady.onnx"
    onnx.save(build_oracle(offsets=corner_offsets(STEADY_SPREAD)), path)
    return path


def walkers(i: int) -> list[tuple[float, float]]:
    return [(60 + 6 * i, 80.0), (400 - 5 * i, 200.0)]


def worker_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "instanthmr-detector" and t.is_alive()]


def test_synchronous_merge_arrives_after_k_frames_in_order(oracle: Path) -> None:
    det = BlobFinder()
    pipe = PosePipeline(oracle, device="cpu", detector=det, detector_stride=6, smoothing=False,
                        async_detector="synchronous", detector_latency=3)  # fmt: skip
    results = [pipe.predict(blobs(SIZE, walkers(i), index=i)) for i in range(20)]
    assert [r.frame_index for r in results] == list(range(20))
    merged = [
        (r.frame_index, r.detection_frame, r.detect_reason) for r in results if r.detector_ran
    ]
    # frame 0 detected at once, its boxes merged 3 frames later; frames 1-2 (nobody tracked
    # yet) asked too, and the newest (2) waited for the worker, so it started on frame 3;
    # then the maximum interval (6 frames after the last request) asks again
    assert merged == [(3, 0, "no-tracks"), (6, 2, "no-tracks"),
                      (11, 8, "max-interval"), (17, 14, "max-interval")]  # fmt: skip
    assert det.seen == [0, 2, 8, 14]
    for r in results[:3]:
        assert len(r) == 0 and r.boxes_from == "" and r.detection_frame is None
    for i, r in enumerate(results[3:], start=3):
        assert r.track_ids.tolist() == [1, 2], i  # no duplicate from the late boxes
        np.testing.assert_allclose(r.joints_2d.mean(axis=1), walkers(i), atol=0.5)
        assert r.boxes_from == ("detector" if r.detector_ran else "tracks")
        # people found by a late detection start from the box the detector saw (frame 0);
        # after that, and for people already tracked, the carried box follows the person
        b = r.boxes
        where = walkers(0) if i == 3 else walkers(i)
        np.testing.assert_allclose((b[:, :2] + b[:, 2:]) / 2, where, atol=7)


def test_thread_mode_serves_every_frame_and_merges_in_frame_order(oracle: Path) -> None:
    det = BlobFinder(delay_s=0.05)
    with PosePipeline(oracle, device="cpu", detector=det, detector_stride=4,
                      smoothing=False, async_detector=True) as pipe:  # fmt: skip
        results = []
        for i in range(200):
            results.append(pipe.predict(blobs(SIZE, walkers(i % 40), index=i)))
            if sum(r.detector_ran for r in results) >= 3 and i >= 40:
                break
            time.sleep(0.01)  # a camera's pace
    assert not worker_threads()
    assert [r.frame_index for r in results] == list(range(len(results)))
    merged = [r for r in results if r.detector_ran]
    assert len(merged) >= 3
    frames = [r.detection_frame for r in merged]
    assert frames == sorted(set(frames))  # never an older detection after a newer one
    assert all(r.detection_frame < r.frame_index for r in merged)  # boxes arrive later
    assert set(frames) <= set(det.seen)
    first = results.index(merged[0])
    assert all(len(r) == 0 for r in results[:first])
    for r in results[first:]:
        i = r.frame_index % 40
        if 0 < i and len(r) == 2:  # a wrap-around jump (i = 0) may lose the walkers
            np.testing.assert_allclose(r.joints_2d.mean(axis=1), walkers(i), atol=0.5)
    assert sum(len(r) == 2 for r in results[first:]) > len(results[first:]) // 2


def test_close_and_context_manager_leave_no_thread(oracle: Path) -> None:
    det = BlobFinder(delay_s=0.3)
    with pytest.raises(RuntimeError, match="user code failed"):
        with PosePipeline(oracle, device="cpu", detector=det, async_detector=True) as pipe:
            pipe.predict(blobs(SIZE, walkers(0), index=0))
            assert len(worker_threads()) == 1
            raise RuntimeError("user code failed")  # while the detection still runs
    assert not worker_threads()
    # forks get their own worker; closing one leaves the other running
    pipe = PosePipeline(oracle, device="cpu", detector=BlobFinder(), async_detector=True)
    twin = pipe.fork()
    pipe.predict(blobs(SIZE, walkers(0), index=0))
    twin.predict(blobs(SIZE, walkers(0), index=0))
    assert pipe.detector_worker is not twin.detector_worker and len(worker_threads()) == 2
    twin.close()
    assert len(worker_threads()) == 1 and pipe.detector_worker.alive
    pipe.close()
    assert not worker_threads()
    # a forgotten pipeline does not leave its thread behind
    pipe = PosePipeline(oracle, device="cpu", detector=BlobFinder(), async_detector=True)
    pipe.predict(blobs(SIZE, walkers(0), index=0))
    worker = pipe.detector_worker
    assert worker.alive
    del pipe
    gc.collect()
    assert not worker.alive


class FaultyFinder(BlobFinder):
    """Fails on its ``fail_on``-th call (1-based) with a recognisable exception."""

    def __init__(self, fail_on: int, delay_s: float = 0.0) -> None:
        super().__init__(delay_s=delay_s)
        self.fail_on = fail_on
        self.raised: BaseException | None = None

    def detect(self, image_rgb: np.ndarray):  # type: ignore[no-untyped-def]
        if len(self.seen) + 1 == self.fail_on:
            self.seen.append(-1)
            self._explode()
        return super().detect(image_rgb)

    def _explode(self) -> None:
        self.raised = ValueError("detector blew up on purpose")
        raise self.raised


def _frames_in_traceback(exc: BaseException) -> list[str]:
    return [f.name for f in traceback.extract_tb(exc.__traceback__)]


def test_worker_exception_reaches_the_next_frame_with_its_traceback(oracle: Path) -> None:
    det = FaultyFinder(fail_on=2)
    pipe = PosePipeline(oracle, device="cpu", detector=det, detector_stride=2,
                        async_detector="synchronous", detector_latency=2)  # fmt: skip
    for i in range(3):  # detections on frames 0 (merged at 2) and 2 (fails)
        assert pipe.predict(blobs(SIZE, walkers(i), index=i)).frame_index == i
    with pytest.raises(ValueError, match="blew up") as err:
        pipe.predict(blobs(SIZE, walkers(3), index=3))  # the very next frame
    assert err.value is det.raised
    assert "_explode" in _frames_in_traceback(err.value)
    # the pipeline goes on with a new worker
    assert pipe.predict(blobs(SIZE, walkers(4), index=4)).frame_index == 4

    det = FaultyFinder(fail_on=1, delay_s=0.02)
    pipe = PosePipeline(oracle, device="cpu", detector=det, async_detector=True)
    deadline = time.monotonic() + 30
    with pytest.raises(ValueError, match="blew up") as err:
        for i in range(10_000):
            pipe.predict(blobs(SIZE, walkers(0), index=i))
            assert time.monotonic() < deadline, "the worker's exception never arrived"
            time.sleep(0.005)
    assert err.value is det.raised and "_explode" in _frames_in_traceback(err.value)
    assert not worker_threads()  # the failed worker stopped and was closed
    pipe.close()


def test_worker_rules_newest_frame_wins_and_reset_drops_results() -> None:
    det = BlobFinder()
    w = DetectorWorker(det, mode="synchronous", latency=2)
    img = [blobs(SIZE, walkers(i), index=i) for i in range(8)]
    w.submit(0, img[0], "a")
    w.submit(1, img[1], "b")
    w.submit(2, img[2], "c")  # replaces frame 1, still waiting
    assert w.poll(1) is None
    got = w.poll(2)
    assert (
        got is not None and (got.frame_index, got.reason) == (0, "a") and len(got.detections) == 2
    )
    assert w.poll(3) is None
    assert w.poll(4).frame_index == 2  # started on frame 2, handed back 2 frames later
    assert det.seen == [0, 2]
    w.submit(5, img[5])
    w.reset()  # a new sequence: the running job's result is dropped
    assert w.poll(7) is None
    with pytest.raises(ValueError, match="mode"):
        DetectorWorker(det, mode="later")
    with pytest.raises(ValueError, match="latency"):
        DetectorWorker(det, mode="synchronous", latency=0)
    with pytest.raises(TypeError, match="detect"):
        DetectorWorker(object())


def test_async_option_checks(oracle: Path) -> None:
    with pytest.raises(ValueError, match="async_detector must be"):
        PosePipeline(oracle, device="cpu", detector=BlobFinder(), async_detector="later")
    with pytest.raises(ValueError, match="detector_latency"):
        PosePipeline(oracle, device="cpu", detector=BlobFinder(), async_detector=True,
                     detector_latency=3)  # fmt: skip
    with pytest.raises(ValueError, match="needs a detector"):
        PosePipeline(oracle, device="cpu", detector=None, async_detector=True)
    with pytest.raises(ValueError, match="tracking"):
        PosePipeline(oracle, device="cpu", detector=BlobFinder(), async_detector=True,
                     tracking=False)  # fmt: skip
    with pytest.raises(ValueError, match="detector_threads"):
        PosePipeline(oracle, device="cpu", detector=BlobFinder(), detector_threads=1)


class InterruptedSource:
    """A file-like source whose reader is interrupted (Ctrl-C) after ``n`` frames."""

    is_live = False
    total_frames = None
    fps = 10.0

    def __init__(self, n: int) -> None:
        self.n = n
        self.closed = False

    def __iter__(self):  # type: ignore[no-untyped-def]
        from instanthmr.sources.files import Frame

        for i in range(self.n):
            yield Frame(blobs(SIZE, walkers(i), index=i), i, i / 10, "test")
        raise KeyboardInterrupt

    def close(self) -> None:
        self.closed = True


def test_ctrl_c_mid_run_closes_outputs_and_the_worker(
    oracle: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from instanthmr.commands import demo
    from instanthmr.sinks.exporters import read_results

    source = InterruptedSource(6)
    monkeypatch.setattr("instanthmr.sources.files.open_source", lambda **kw: source)
    slow = BlobFinder(delay_s=0.2)  # a detection is still running when Ctrl-C comes
    monkeypatch.setattr("instanthmr.detector.create_detector", lambda *a, **k: slow)
    out = tmp_path / "run.jsonl"
    argv = ["--video", "x.mp4", "--model", str(oracle), "--device", "cpu", "--headless",
            "--async-detector", "--export", str(out)]  # fmt: skip
    assert demo.main(argv) == demo.EXIT_INTERRUPTED  # 130, what scripts expect after Ctrl-C
    assert source.closed and not worker_threads()
    assert [r.frame_index for r in read_results(out)] == list(range(6))  # file complete


def test_detector_threads_give_the_detector_its_own_session_threads(
    oracle: Path, detector_onnx: Path
) -> None:
    """Random-init RF-DETR nano export: only the session options are checked."""
    pipe = PosePipeline(oracle, device="cpu", detector_model=detector_onnx,
                        detector_backend="onnx", threads=2, detector_threads=1)  # fmt: skip
    assert pipe.runtime.threads == 2 and pipe.detector.runtime is not pipe.runtime
    opts = pipe.detector.model_session.session.get_session_options()
    assert opts.intra_op_num_threads == 1
    assert pipe.hmr.model_session.session.get_session_options().intra_op_num_threads == 2
    same = PosePipeline(oracle, device="cpu", detector_model=detector_onnx,
                        detector_backend="onnx", threads=2)  # fmt: skip
    assert same.detector.runtime is same.runtime
    # the threaded async detector on CPU, threads not given: the sessions split the cores
    with PosePipeline(oracle, device="cpu", detector_model=detector_onnx,
                      detector_backend="onnx", async_detector=True) as live:  # fmt: skip
        det = live.detector.model_session.session.get_session_options().intra_op_num_threads
        hmr = live.hmr.model_session.session.get_session_options().intra_op_num_threads
        cores = default_threads()
        assert det == max(1, cores // 2) and hmr == max(1, cores - det)
    # the embedded YOLOX-nano (light): one detector thread, the HMR model keeps every core
    with PosePipeline(oracle, device="cpu", async_detector=True) as light:
        assert light.describe()["detector"]["kind"] == "yolox"
        det = light.detector.model_session.session.get_session_options().intra_op_num_threads
        hmr = light.hmr.model_session.session.get_session_options().intra_op_num_threads
    plain = PosePipeline(oracle, device="cpu")  # no async detector: the default threads
    every_core = plain.hmr.model_session.session.get_session_options().intra_op_num_threads
    assert det == 1 and hmr == every_core
