"""Nothing the user saved is lost (issue 21, class 2): stop signals, a killed driver, outputs
that would overwrite an input, and the permissions of files written for the user.

The demo and the batch run as real processes, signalled with ``os.kill``. The demo's
detector is one fixed box (tests/fixed_box_cli.py); the batch uses the bright-block
detector of tests/batch_helpers.py; the HMR model is the analytic oracle.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import onnx
import pytest
from batch_helpers import write_clip
from onnx_builders import build_oracle

from instanthmr.batch import read_manifest, run_batch
from instanthmr.batch.options import BatchOptions
from instanthmr.sinks.exporters import read_results
from instanthmr.sinks.rerun_sink import summarize_rrd

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent
FACTORY = "batch_helpers:BrightBlockDetector"
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(TESTS)]),
       "RERUN_ANALYTICS": "0"}  # fmt: skip


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("signals")
    onnx.save(build_oracle(), root / "oracle.onnx")
    write_clip(root / "long.avi", 600)
    return root


def _wait_for(check, timeout: float = 180.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def _jsonl_frames(path: Path) -> int:
    if not path.exists():
        return 0
    return sum(1 for line in path.read_text().splitlines() if '"type": "frame"' in line)


# ----------------------------------------------------------------------------- the demo
@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_demo_stopped_by_a_signal_finishes_every_output(work, tmp_path, signum) -> None:
    out = {k: tmp_path / f"a.{k}" for k in ("jsonl", "npz", "csv", "bvh", "glb", "mp4", "rrd")}
    argv = [sys.executable, str(TESTS / "fixed_box_cli.py"), "demo", "--video",
            str(work / "long.avi"),
            "--model", str(work / "oracle.onnx"), "--device", "cpu", "--headless",
            "--save", str(out["rrd"]), "--write-video", str(out["mp4"])]  # fmt: skip
    for k in ("jsonl", "npz", "csv", "bvh", "glb"):
        argv += ["--export", str(out[k])]
    proc = subprocess.Popen(argv, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)  # fmt: skip
    partial = out["jsonl"].with_name("a.jsonl.partial")
    _wait_for(lambda: _jsonl_frames(partial) >= 10 or proc.poll() is not None, what="frames")
    assert proc.poll() is None, proc.communicate()
    os.kill(proc.pid, signum)
    stdout, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signum, err
    assert f"interrupted ({signal.Signals(signum).name})" in err and "Traceback" not in err
    left = sorted(p.name for p in tmp_path.iterdir())
    assert not [n for n in left if "partial" in n], left  # every file has its final name
    frames = read_results(out["jsonl"])
    n = len(frames)
    assert 10 <= n < 600
    for k in ("npz", "csv"):
        assert [f.frame_index for f in read_results(out[k])] == list(range(n)), k
    bvh = sorted(tmp_path.glob("a.track*.bvh"))
    assert bvh, left
    from instanthmr.animation.bvh import read_bvh

    assert read_bvh(bvh[0]).positions().shape[0] >= n - 1  # the whole track was written
    assert out["glb"].stat().st_size > 1000 and out["glb"].read_bytes()[:4] == b"glTF"
    cap = cv2.VideoCapture(str(out["mp4"]))
    written = 0
    while cap.read()[0]:
        written += 1
    cap.release()
    assert written == n, (written, n)  # was a 44-byte stub
    assert summarize_rrd(out["rrd"])["/camera/image"].frames == list(range(n))
    assert f"processed {n} frames" in stdout


# ----------------------------------------------------------------------------- the batch
def _batch(work: Path, clips: Path, out: Path) -> subprocess.Popen[str]:
    cmd = [sys.executable, "-m", "instanthmr.cli", "batch", str(clips), "--output", str(out),
           "--workers", "1", "--model", str(work / "oracle.onnx"), "--device", "cpu",
           "--detector-factory", FACTORY, "--format", "npz", "--format", "jsonl",
           "--no-progress"]  # fmt: skip
    return subprocess.Popen(cmd, env=ENV, start_new_session=True, stderr=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)  # fmt: skip


def _two_clips(root: Path, work: Path) -> Path:
    clips = root / "clips"
    clips.mkdir()
    write_clip(clips / "a_short.avi", 6)
    os.link(work / "long.avi", clips / "b_long.avi")
    return clips


def _staged_b(out: Path) -> bool:
    return any(p.name.startswith("b_long") and p.stat().st_size > 200
               for p in (out / ".staging").glob("b_long_*/*.jsonl.partial"))  # fmt: skip


def _group_gone(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return True
    return False


@pytest.mark.slow
def test_batch_sigterm_records_finished_inputs_and_resumes(work, tmp_path) -> None:
    clips = _two_clips(tmp_path, work)
    out = tmp_path / "out"
    proc = _batch(work, clips, out)
    _wait_for(lambda: (out / "manifest.jsonl").exists() and _staged_b(out), what="b_long")
    os.killpg(proc.pid, signal.SIGTERM)  # what a service manager sends to the whole group
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err
    assert "interrupted (SIGTERM)" in err and "Traceback" not in err
    rows = read_manifest(out / "manifest.jsonl")
    assert [(Path(r["input"]).name, r["status"]) for r in rows] == [("a_short.avi", "done")]
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [".batch.lock", "manifest.jsonl", *rows[0]["outputs"]])


@pytest.mark.slow
def test_batch_driver_killed_leaves_no_unrecorded_result(work, tmp_path) -> None:
    """kill -9 of the driver: the worker stops at its next message and nothing it wrote
    gets a final name; the next run redoes that input (issue 21: 12 of 54 frames were
    renamed into place as if finished)."""
    clips = _two_clips(tmp_path, work)
    out = tmp_path / "out"
    proc = _batch(work, clips, out)
    _wait_for(lambda: (out / "manifest.jsonl").exists() and _staged_b(out), what="b_long")
    os.kill(proc.pid, signal.SIGKILL)  # the driver only: its worker lives on
    proc.wait(timeout=10)  # reaped, so only the orphans are left in its process group
    _wait_for(lambda: _group_gone(proc.pid), timeout=60, what="the orphaned worker to exit")
    err = proc.stderr.read()
    assert "Traceback" not in err and "BrokenPipeError" not in err, err
    rows = read_manifest(out / "manifest.jsonl")
    assert [(Path(r["input"]).name, r["status"]) for r in rows] == [("a_short.avi", "done")]
    finals = sorted(p.name for p in out.iterdir() if p.is_file())
    assert finals == sorted([".batch.lock", "manifest.jsonl", *rows[0]["outputs"]]), finals
    assert not [n for n in finals if n.startswith("b_long")]
    options = BatchOptions(model=str(work / "oracle.onnx"), detector_factory=FACTORY,
                           device="cpu", formats=("npz", "jsonl"))  # fmt: skip
    resumed = run_batch(clips, out, options, workers=1, progress=False)
    assert [Path(p).name for p in resumed.skipped] == ["a_short.avi"]
    (row,) = resumed.records
    assert (Path(row["input"]).name, row["status"], row["frames"]) == ("b_long.avi", "done", 600)
    assert not (out / ".staging").exists()


def test_worker_result_waits_for_the_driver_to_record_it(work, tmp_path) -> None:
    """run_task leaves a finished input's files in the staging folder; publish moves them."""
    from batch_helpers import BrightBlockDetector

    from instanthmr.batch.inputs import InputItem
    from instanthmr.batch.task import Task, publish, run_task
    from instanthmr.pipeline import PosePipeline

    clip = write_clip(tmp_path / "c.avi", 5)
    st = clip.stat()
    task = Task(0, InputItem(str(clip), "video", st.st_size, st.st_mtime_ns), str(tmp_path), "h")
    pipe = PosePipeline(work / "oracle.onnx", device="cpu", detector=BrightBlockDetector(),
                        threads=1)  # fmt: skip
    record = run_task(pipe, task, BatchOptions(model=str(work / "oracle.onnx")))
    assert record["status"] == "done" and len(record["outputs"]) == 2
    assert not any((tmp_path / n).exists() for n in record["outputs"])  # not yet final
    publish(tmp_path, task.item.stem, record["outputs"])
    assert all((tmp_path / n).is_file() for n in record["outputs"])
    assert not (tmp_path / ".staging" / task.item.stem).exists()
    header = json.loads((tmp_path / record["outputs"][-1]).read_text().splitlines()[0])
    assert header["status"] == "done" and header["frames"] == 5
    assert len(read_results(tmp_path / record["outputs"][0])) == 5


# ----------------------------------------------------------------------------- outputs
def _run(argv: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "instanthmr.cli", *argv], cwd=cwd, env=ENV,
                          capture_output=True, text=True, timeout=240)  # fmt: skip


def _one_line(proc: subprocess.CompletedProcess[str], name: str, *needles: str) -> None:
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr
    assert lines[0].startswith(f"instanthmr {name}: error: ") and "Traceback" not in proc.stderr
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])


@pytest.mark.parametrize(
    ("flags", "needles"),
    [
        (["--write-video", "{video}"], ["--write-video", "is also the input --video"]),
        (["--write-video", "./../here/{video_name}"], ["is also the input --video"]),
        (["--export", "a.jsonl", "--export", "a.jsonl"], ["--export a.jsonl is given twice"]),
        (["--export", "a.jsonl", "--export", "./sub/../a.jsonl"], ["is the same file as"]),
        (["--export", "a.csv", "--export", "link.csv"], ["is the same file as --export a.csv"]),
        (["--export", "out.bvh", "--export", "out.track1.bvh"], ["per-track files"]),
        (["--world-from", "calib.json", "--save-world", "calib.json"],
         ["--save-world calib.json is also the input --world-from"]),
    ],
)  # fmt: skip
def test_demo_refuses_outputs_that_destroy_inputs_or_collide(work, tmp_path, flags, needles):
    here = tmp_path / "here"
    here.mkdir()
    (here / "sub").mkdir()
    video = here / "clip.avi"
    write_clip(video, 8)
    before = video.read_bytes()
    (here / "link.csv").symlink_to(here / "a.csv")  # a link to an output not yet written
    from instanthmr.world import WorldFrame

    WorldFrame.from_camera(2.0, 15.0).save(here / "calib.json")
    calib = (here / "calib.json").read_bytes()
    values = {"video": str(video), "video_name": video.name}
    argv = ["demo", "--video", str(video), "--headless", "--model", str(work / "oracle.onnx"),
            "--device", "cpu", "--max-frames", "2"]  # fmt: skip
    proc = _run([*argv, *(f.format(**values) for f in flags)], here)
    _one_line(proc, "demo", *needles)
    assert video.read_bytes() == before and (here / "calib.json").read_bytes() == calib
    made = sorted(p.name for p in here.iterdir())
    assert made == ["calib.json", "clip.avi", "link.csv", "sub"], made  # refused before work


def test_batch_refuses_an_input_that_is_one_of_its_own_files(work, tmp_path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "manifest.jsonl").write_text("")
    clip = write_clip(tmp_path / "c.avi", 4)
    argv = ["batch", str(clip), str(out / "manifest.jsonl"), "--output", str(out),
            "--model", str(work / "oracle.onnx"), "--detector-factory", FACTORY]  # fmt: skip
    proc = _run(argv, tmp_path)
    _one_line(proc, "batch", "manifest.jsonl is also the input INPUT")
    assert sorted(p.name for p in out.iterdir()) == ["manifest.jsonl"]


# ----------------------------------------------------------------------------- permissions
@pytest.mark.parametrize("mode", [0o644, 0o600])
def test_quantize_keeps_the_source_permissions(work, tmp_path, mode) -> None:
    from instanthmr.runtime.quantize import quantize_model

    src = tmp_path / "m.onnx"
    src.write_bytes((work / "oracle.onnx").read_bytes())
    src.chmod(mode)
    old_umask = os.umask(0o077)  # a strict umask must not decide who may read the copy
    try:
        result = quantize_model(src, calibration_frames=2, eval_frames=1, speed_rounds=0,
                                echo=lambda _: None)  # fmt: skip
    finally:
        os.umask(old_umask)
    assert result.path == tmp_path / "m.int8.onnx"
    assert oct(result.path.stat().st_mode & 0o777) == oct(mode)
