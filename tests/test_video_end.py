"""Real files that are not broken (issue 21, class 6): a container whose frame count is wrong.

The test builds such a file with PyAV: an AVI whose frames sit 6 frame times apart, so the
muxer writes empty "dropped frame" chunks between them (as in Debian opencv-doc's
``tree.avi``: 444 frames declared, 68 decoded, spanning its full 29.6 s). Its last decoded
frame reaches the container's duration, so it is whole: the demo's bar finishes at what
was decoded and the batch marks it done. A truncated file (the same kind of container,
cut) stops short of its duration: partial.
"""

from __future__ import annotations

import fractions
from pathlib import Path

import av
import numpy as np
import onnx
import pytest
from batch_helpers import write_clip
from onnx_builders import build_oracle

from instanthmr.batch import BatchOptions, run_batch
from instanthmr.commands import demo
from instanthmr.sources.files import VideoSource
from instanthmr.sources.video_end import decode_end

FACTORY = "batch_helpers:BrightBlockDetector"
KEPT, GAP = 12, 6  # 12 frames, 6 frame times apart: 67 declared


def gappy_avi(path: Path) -> Path:
    """An MJPG AVI at 15 fps with a frame every 6 frame times: the container declares 67
    frames, 12 decode, spanning its full 4.47 s."""
    with av.open(str(path), "w") as out:
        stream = out.add_stream("mjpeg", rate=15)
        stream.width, stream.height, stream.pix_fmt = 160, 120, "yuvj420p"
        stream.codec_context.time_base = fractions.Fraction(1, 15)
        for i in range(KEPT):
            image = np.full((120, 160, 3), 30, np.uint8)
            image[40:80, 20 + 8 * i : 44 + 8 * i] = 230  # a bright block moving right
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts, frame.time_base = i * GAP, fractions.Fraction(1, 15)
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("video-end")
    onnx.save(build_oracle(), root / "oracle.onnx")
    whole = write_clip(root / "whole.avi", 60)
    data = whole.read_bytes()
    (root / "cut.avi").write_bytes(data[: len(data) * 4 // 10])
    return {"gappy": gappy_avi(root / "gappy.avi"), "cut": root / "cut.avi", "root": root}


def test_the_judgement() -> None:
    assert decode_end("a", 10, 10, 25.0, 0.36).complete  # all there
    assert decode_end("a", 10, None, None, None).complete  # nothing declared
    whole = decode_end("tree.avi", 68, 444, 15.0, 29.53)
    assert whole.complete and whole.miscounted and "spanning its full 29.6 s" in whole.message
    cut = decode_end("a", 68, 444, 15.0, 12.0)
    assert not cut.complete and "the last at 12.0 s of its 29.6 s" in cut.message
    assert "decoding stopped after 68 of the 444 frames" in cut.message
    assert not decode_end("a", 68, 444, 15.0, None).complete  # no timestamps: cannot tell


def test_miscounted_container_decodes_to_its_end(files) -> None:
    with VideoSource(files["gappy"]) as source:
        assert source.total_frames == (KEPT - 1) * GAP + 1
        times = [f.timestamp for f in source]
        end = source.decode_end()
    assert len(times) == KEPT and times[-1] == pytest.approx((KEPT - 1) * GAP / 15, abs=1e-3)
    assert end.complete and end.miscounted


def test_truncated_file_stops_short(files) -> None:
    with VideoSource(files["cut"]) as source:
        n = sum(1 for _ in source)
        end = source.decode_end()
    assert 0 < n < 60 and not end.complete and f"after {n} of the 60 frames" in end.message


def _options(root: Path) -> BatchOptions:
    return BatchOptions(model=str(root / "oracle.onnx"), detector_factory=FACTORY, device="cpu")


def test_batch_marks_a_miscounted_file_done_and_a_cut_one_partial(files, tmp_path) -> None:
    report = run_batch([str(files["gappy"]), str(files["cut"])], tmp_path / "out",
                       _options(files["root"]), workers=1, progress=False)  # fmt: skip
    rows = {Path(r["input"]).name: r for r in report.records}
    assert rows["gappy.avi"]["status"] == "done" and rows["gappy.avi"]["frames"] == KEPT
    assert rows["gappy.avi"]["error"] is None  # was: partial, 12 of the 67 frames
    assert rows["cut.avi"]["status"] == "partial" and "truncated" in rows["cut.avi"]["error"]
    again = run_batch([str(files["gappy"])], tmp_path / "out", _options(files["root"]),
                      workers=1, progress=False)  # fmt: skip
    assert [Path(p).name for p in again.skipped] == ["gappy.avi"]  # not processed again


@pytest.fixture
def fixed_detector(monkeypatch: pytest.MonkeyPatch) -> None:
    from batch_helpers import BrightBlockDetector

    monkeypatch.setattr("instanthmr.detector.create_detector",
                        lambda *a, **k: BrightBlockDetector())  # fmt: skip


@pytest.mark.usefixtures("fixed_detector")
def test_demo_bar_finishes_at_what_the_file_holds(files, capsys) -> None:
    argv = ["--video", str(files["gappy"]), "--headless", "--device", "cpu",
            "--model", str(files["root"] / "oracle.onnx")]  # fmt: skip
    assert demo.main(argv) == 0
    err = capsys.readouterr().err
    assert f"{KEPT}/{KEPT}" in err and f"/{(KEPT - 1) * GAP + 1}" not in err.split("\r")[-1]
    assert f"declares {(KEPT - 1) * GAP + 1} frames but holds {KEPT}" in err


@pytest.mark.usefixtures("fixed_detector")
def test_demo_says_when_a_file_is_cut(files, capsys) -> None:
    argv = ["--video", str(files["cut"]), "--headless", "--device", "cpu",
            "--model", str(files["root"] / "oracle.onnx")]  # fmt: skip
    assert demo.main(argv) == 0
    err = capsys.readouterr().err
    assert "warning:" in err and "of the 60 frames the container declares" in err
    assert "/60" in err  # the bar stays where decoding stopped
