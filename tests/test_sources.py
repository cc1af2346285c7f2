"""Frame sources: files in order with container timestamps, live sources drop stale frames."""

from __future__ import annotations

import importlib.util
import itertools
import queue
import sys
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from instanthmr.sources import (
    CameraNotFoundError,
    Frame,
    LatestFrameReader,
    LiveSource,
    SourceError,
    open_source,
    open_stream,
    sample,
    sample_video_path,
)

REPO = Path(__file__).resolve().parents[1]


def _write_clip(path: Path, n: int, fps: float = 10.0, size: tuple[int, int] = (64, 48)) -> None:
    """A clip whose frame i is filled with grey level 20 * i (so order is checkable)."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, size)
    assert writer.isOpened()
    for i in range(n):
        writer.write(np.full((size[1], size[0], 3), 20 * i, np.uint8))
    writer.release()


def _wait_until(cond, timeout: float = 10.0) -> None:
    """Guard against a hang; not a speed assertion."""
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            pytest.fail("condition not reached before the guard timeout")
        time.sleep(0.002)


def test_video_yields_every_frame_in_order_with_container_timestamps(tmp_path: Path) -> None:
    clip = tmp_path / "clip.avi"
    _write_clip(clip, 8, fps=10.0)
    with open_source(video=clip) as src:
        assert not src.is_live and src.total_frames == 8 and src.fps == pytest.approx(10.0)
        frames = list(src)
    assert [f.index for f in frames] == list(range(8))
    stamps = [f.timestamp for f in frames]
    assert stamps == pytest.approx([i / 10 for i in range(8)], abs=1e-3)
    assert all(b > a for a, b in itertools.pairwise(stamps))
    levels = [int(f.image[..., 0].mean().round()) for f in frames]
    assert levels == pytest.approx([20 * i for i in range(8)], abs=3)
    assert frames[0].image.dtype == np.uint8 and frames[0].image.shape == (48, 64, 3)
    assert src.dropped == 0


def test_video_frames_are_rgb(tmp_path: Path) -> None:
    clip = tmp_path / "red.avi"
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"MJPG"), 5, (32, 32))
    writer.write(np.tile(np.array([0, 0, 255], np.uint8), (32, 32, 1)))  # red in BGR
    writer.release()
    with open_source(video=clip) as src:
        (frame,) = list(src)
    r, g, b = frame.image.reshape(-1, 3).mean(0)
    assert r > 200 and g < 50 and b < 50


def _write_images(folder: Path, names: list[str]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i, name in enumerate(names):
        cv2.imwrite(str(folder / name), np.full((8, 10, 3), 10 * i, np.uint8))


def test_images_by_glob_are_sorted_naturally(tmp_path: Path) -> None:
    _write_images(tmp_path, ["f10.png", "f2.png", "f1.png", "x.jpg"])
    with open_source(images=str(tmp_path / "f*.png")) as src:
        frames = list(src)
    assert [Path(f.source).name for f in frames] == ["f1.png", "f2.png", "f10.png"]
    assert [f.index for f in frames] == [0, 1, 2]
    assert src.total_frames == 3 and frames[0].image.shape == (8, 10, 3)


def test_images_list_keeps_argument_order(tmp_path: Path) -> None:
    _write_images(tmp_path, ["a.png", "b.png"])
    src = open_source(images=[tmp_path / "b.png", tmp_path / "a.png"], image_fps=4)
    frames = list(src)
    assert [Path(f.source).name for f in frames] == ["b.png", "a.png"]
    assert [f.timestamp for f in frames] == [0.0, 0.25]


def test_folder_lists_images_only_sorted(tmp_path: Path) -> None:
    _write_images(tmp_path, ["img_3.jpg", "img_12.png", "img_1.PNG"])
    (tmp_path / "readme.txt").write_text("not an image")
    (tmp_path / "sub").mkdir()
    with open_source(folder=tmp_path) as src:
        names = [Path(f.source).name for f in src]
    assert names == ["img_1.PNG", "img_3.jpg", "img_12.png"]


def test_unreadable_image_names_the_file(tmp_path: Path) -> None:
    _write_images(tmp_path, ["a.png"])
    bad = tmp_path / "b.png"
    bad.write_bytes(b"this is not a png")
    src = open_source(folder=tmp_path)
    it = iter(src)
    next(it)
    with pytest.raises(SourceError, match=r"b\.png"):
        next(it)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({}, "exactly one"),
        ({"video": "a.mp4", "camera": 0}, "exactly one"),
        ({"images": "/nonexistent/*.png"}, "no image files match"),
        ({"folder": "/nonexistent-folder"}, "folder not found"),
        ({"video": "/nonexistent.mp4"}, "video not found"),
        ({"camera": -1}, "non-negative"),
        ({"url": "not-a-url"}, "rtsp://"),
    ],
)
def test_open_source_argument_errors(kwargs: dict, match: str) -> None:
    with pytest.raises((ValueError, FileNotFoundError, SourceError), match=match):
        open_source(**kwargs)


def test_empty_folder_and_undecodable_video(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="no image files"):
        open_source(folder=tmp_path)
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"\x00" * 100)
    with pytest.raises(SourceError, match="cannot open video"):
        open_source(video=junk)


def test_missing_camera_fails_with_hints() -> None:
    result: dict[str, BaseException] = {}

    def attempt() -> None:
        try:
            open_source(camera=99)
        except BaseException as err:  # recorded and checked below
            result["err"] = err

    t = threading.Thread(target=attempt, daemon=True)
    t.start()
    t.join(60)  # a hang guard only
    assert not t.is_alive(), "opening a missing camera hung"
    err = result.get("err")
    assert isinstance(err, CameraNotFoundError), err
    assert "no camera at index 99" in str(err)
    assert "/dev/video" in str(err) and "--camera" in str(err)


class QueueCapture:
    """A fake capture: read() returns what the test pushes; None means a failed read."""

    def __init__(self) -> None:
        self.q: queue.Queue[np.ndarray | None] = queue.Queue()
        self.released = threading.Event()

    def read(self) -> tuple[bool, np.ndarray | None]:
        try:
            item = self.q.get(timeout=0.02)
        except queue.Empty:
            return False, None
        return (item is not None), item

    def release(self) -> None:
        self.released.set()


def _img(v: int) -> np.ndarray:
    return np.full((4, 4, 3), v, np.uint8)


def test_latest_frame_reader_keeps_newest_and_counts_dropped() -> None:
    cap = QueueCapture()
    reader = LatestFrameReader(cap, name="fake", disconnect_after=30.0)
    try:
        for v in (1, 2, 3):
            cap.q.put(_img(v))
        _wait_until(lambda: reader.frames_read == 3)
        frame, stamp = reader.get(timeout=10)
        assert int(frame[0, 0, 0]) == 3 and reader.dropped == 2 and stamp >= 0
        cap.q.put(_img(4))
        frame, stamp2 = reader.get(timeout=10)
        assert int(frame[0, 0, 0]) == 4 and reader.dropped == 2 and stamp2 >= stamp
        assert reader.get(timeout=0.05) is None  # nothing new: no frame is handed out twice
    finally:
        reader.close()
    assert cap.released.is_set()


class FastCapture:
    """Produces numbered frames as fast as it can, then fails forever (a disconnect)."""

    def __init__(self, n: int) -> None:
        self.n, self.i = n, 0

    def read(self) -> tuple[bool, np.ndarray | None]:
        if self.i >= self.n:
            time.sleep(0.001)
            return False, None
        self.i += 1
        time.sleep(0.0005)
        return True, np.full((2, 2, 3), self.i, np.uint8)

    def release(self) -> None:
        pass


def test_slow_consumer_drops_frames_and_stream_ends_cleanly() -> None:
    src = LiveSource(FastCapture(200), "fake", disconnect_after=0.2, stall_timeout=30)
    got = []
    with src:
        assert src.is_live and src.total_frames is None
        for frame in src:
            assert isinstance(frame, Frame)
            got.append(int(frame.image[0, 0, 0]))
            time.sleep(0.01)
    assert got and got[-1] == 200  # the newest frame is always delivered last
    assert all(b > a for a, b in itertools.pairwise(got))  # never older
    assert src.dropped > 0
    assert src.dropped + len(got) == 200


def test_stream_through_real_capture_ends_cleanly(tmp_path: Path) -> None:
    """The product path (cv2.VideoCapture via FFmpeg, reader thread) on a file:// URL: the
    stream runs dry like a disconnected camera and iteration simply ends."""
    clip = tmp_path / "clip.avi"
    _write_clip(clip, 5)
    with open_stream(clip.as_uri(), disconnect_after=0.2) as src:
        frames = list(src)
    assert src.is_live and frames
    assert [f.index for f in frames] == list(range(len(frames)))
    levels = [int(f.image[..., 0].mean().round()) for f in frames]
    assert levels == sorted(levels) and levels[-1] == pytest.approx(80, abs=3)
    assert len(frames) + src.dropped == 5


def _load_tool(name: str):
    spec = importlib.util.spec_from_file_location(name, REPO / "tools" / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def _frames(path: Path) -> list[np.ndarray]:
    with open_source(video=path) as src:
        return [f.image for f in src]


def test_sample_clip_is_the_vtest_cut_it_claims() -> None:
    """The shipped clip: 100 real frames, 768x576 at 10 fps, under 2 MB, with its notice."""
    path = sample_video_path()
    assert path.stat().st_size < sample.MAX_BYTES
    with open_source(video=path) as src:
        frames = list(src)
        fps = src.fps
    assert len(frames) == sample.NUM_FRAMES and fps == pytest.approx(10.0)
    assert frames[0].image.shape == (576, 768, 3)
    assert np.diff([f.timestamp for f in frames]) == pytest.approx(0.1, abs=1e-3)
    notice = (path.parent / "sample.NOTICE.txt").read_text()
    assert "vtest.avi" in notice and "Apache License, Version 2.0" in notice
    assert "frames 120-219" in notice


def test_make_sample_rebuilds_the_shipped_clip(shared_data: Path, tmp_path: Path) -> None:
    """tools/make_sample.py from vtest.avi gives the shipped clip (the same frames), and the
    clip is the vtest frames it names (lossy H.264: compared within 4 grey levels)."""
    make_sample = _load_tool("make_sample")
    out = tmp_path / "sample.mp4"
    assert make_sample.main(["--source", str(shared_data / "vtest.avi"), "--out", str(out)]) == 0
    mine, shipped = _frames(out), _frames(sample_video_path())
    assert len(mine) == len(shipped) == sample.NUM_FRAMES
    diffs = [np.abs(a.astype(int) - b).mean() for a, b in zip(mine, shipped, strict=True)]
    assert max(diffs) < 0.5
    with open_source(video=shared_data / "vtest.avi") as src:
        source = [f.image for f in itertools.islice(src, sample.START_FRAME,
                                                      sample.START_FRAME + sample.NUM_FRAMES)]
    lossy = [np.abs(a.astype(int) - b).mean() for a, b in zip(shipped, source, strict=True)]
    assert max(lossy) < 4.0
    shifted = np.abs(shipped[0].astype(int) - source[10]).mean()
    assert shifted > 2 * max(lossy)  # a cut one second off would be caught


def test_make_sample_refuses_a_video_that_is_not_vtest(tmp_path: Path, capsys) -> None:
    clip = tmp_path / "other.avi"
    _write_clip(clip, 5)
    make_sample = _load_tool("make_sample")
    assert make_sample.main(["--source", str(clip), "--out", str(tmp_path / "x.mp4")]) == 2
    err = capsys.readouterr().err
    assert "64x48 with 5 frames" in err and "vtest.avi is 768x576 with 795 frames" in err
    assert not (tmp_path / "x.mp4").exists()


def test_vtest_avi(shared_data: Path) -> None:
    with open_source(video=shared_data / "vtest.avi") as src:
        n, last, shape = 0, -1.0, None
        for frame in src:
            assert frame.index == n and frame.timestamp > last
            n, last, shape = n + 1, frame.timestamp, frame.image.shape
    assert n == 795 and shape == (576, 768, 3)
