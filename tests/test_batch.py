"""``instanthmr batch`` / ``run_batch``: discovery, manifest, resume, faults, both engines.

The batch runs the real pipeline in real worker processes (and real Ray actors), with
the analytic oracle HMR model of ``onnx_builders`` (its 2D joints sit on the bright block
in the crop) and :class:`batch_helpers.BrightBlockDetector`, a real if simple detector
(bright connected components), given by import path, as a user's own detector would be.
Clips are tiny generated MJPG AVIs of a bright block moving on a dark background.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest
from batch_helpers import H, W, block_centre, write_clip
from onnx_builders import build_oracle

from instanthmr.batch import (
    BatchConfigError,
    BatchOptions,
    InputError,
    Manifest,
    discover_inputs,
    output_stem,
    read_manifest,
    run_batch,
)
from instanthmr.batch.inputs import InputItem
from instanthmr.batch.runner import local_plan
from instanthmr.batch.task import CRASH_ENV, Task, run_task
from instanthmr.commands import batch as batch_app
from instanthmr.runtime.session import usable_cpus
from instanthmr.sinks.exporters import read_results

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent
FACTORY = "batch_helpers:BrightBlockDetector"
GOOD = {"a/clip.avi": (10, 0), "b/clip.avi": (12, 1), "c.avi": (8, 2), "d.avi": (10, 3)}
BROKEN = {
    "broken/empty.mp4": "the file is empty (0 bytes)",
    "broken/text.mp4": "cannot open video",
    "broken/truncated.mp4": "cannot open video",
    "broken/zero_frames.avi": "no frame could be decoded",
}


def _models(tmp: Path) -> Path:
    path = tmp / "oracle.onnx"
    onnx.save(build_oracle(), path)
    return path


@pytest.fixture(scope="module")
def footage(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """4 good clips (two named clip.avi), 4 broken files, one that breaks mid-decode."""
    root = tmp_path_factory.mktemp("footage")
    _models(root)
    clips = root / "clips"
    for name, (frames, seed) in GOOD.items():
        (clips / name).parent.mkdir(parents=True, exist_ok=True)
        write_clip(clips / name, frames, seed)
    broken = clips / "broken"
    broken.mkdir()
    (broken / "empty.mp4").write_bytes(b"")
    (broken / "text.mp4").write_text("this is not a video\n")
    mp4 = cv2.VideoWriter(str(root / "ok.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), 10, (W, H))
    for _ in range(10):
        mp4.write(np.full((H, W, 3), 90, np.uint8))
    mp4.release()
    data = (root / "ok.mp4").read_bytes()
    (broken / "truncated.mp4").write_bytes(data[: len(data) * 6 // 10])
    cv2.VideoWriter(str(broken / "zero_frames.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 10,
                    (W, H)).release()  # fmt: skip
    middle = write_clip(broken / "middle.avi", 10, 4)  # frame 5's JPEG data zeroed
    raw = bytearray(middle.read_bytes())
    chunks = [i for i in range(len(raw)) if raw[i : i + 4] == b"00dc"]
    at = chunks[6]  # the first is in the header, then one per frame
    raw[at : at + 4000] = bytes(min(4000, len(raw) - at))
    middle.write_bytes(bytes(raw))
    photo = np.full((H, W, 3), 30, np.uint8)
    photo[40:80, 60:84] = 230  # a bright block centred on (72, 60)
    cv2.imwrite(str(clips / "photo.png"), photo)
    (clips / "notes.txt").write_text("not an input")
    return root


def _options(root: Path, **changes: object) -> BatchOptions:
    return BatchOptions(model=str(root / "oracle.onnx"), detector_factory=FACTORY,
                        device="cpu", **changes)  # fmt: skip


@pytest.fixture(scope="module")
def local_run(footage: Path) -> tuple[int, Path, str]:
    """The CLI, in this process, with 2 local workers over every clip: (exit, out, stdout)."""
    import contextlib
    import io

    out = footage / "out-local"
    argv = [str(footage / "clips"), "--output", str(out), "--workers", "2", "--format", "npz",
            "--format", "jsonl", "--model", str(footage / "oracle.onnx"), "--device", "cpu",
            "--detector-factory", FACTORY, "--no-progress"]  # fmt: skip
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        code = batch_app.main(argv)
    return code, out, buf.getvalue()


def _latest(out: Path) -> dict[str, dict]:
    return {os.path.relpath(r["input"], out.parent / "clips"): r
            for r in read_manifest(out / "manifest.jsonl")}  # fmt: skip


def test_local_batch_manifest_outputs_and_exit_code(local_run: tuple[int, Path, str]) -> None:
    code, out, table = local_run
    assert code == 1  # some inputs failed
    rows = _latest(out)
    assert set(rows) == {*GOOD, *BROKEN, "broken/middle.avi", "photo.png"}  # not notes.txt
    photo = rows["photo.png"]
    assert (photo["kind"], photo["status"], photo["frames"], photo["persons"]) == (
        "image", "done", 1, 1)  # fmt: skip
    (frame,) = read_results(out / photo["outputs"][0])
    np.testing.assert_allclose(frame.joints_2d[0].mean(axis=0), (71.5, 59.5), atol=1.5)
    for name, (frames, seed) in GOOD.items():
        row = rows[name]
        assert row["status"] == "done" and row["error"] is None, row
        assert (row["frames"], row["persons"], row["tracks"]) == (frames, frames, 1)
        assert row["size"] == (out.parent / "clips" / name).stat().st_size
        stem = output_stem(row["input"])
        assert row["outputs"] == [f"{stem}.npz", f"{stem}.jsonl", f"{stem}.summary.jsonl"]
        npz, jsonl = read_results(out / f"{stem}.npz"), read_results(out / f"{stem}.jsonl")
        assert [f.frame_index for f in npz] == list(range(frames)) == [f.frame_index for f in jsonl]
        for i, frame in enumerate(npz):  # the oracle's joints sit on the moving block,
            x, y = frame.joints_2d[0].mean(axis=0)  # smoothed: x lags by under a frame
            assert block_centre(max(i - 1, 0), seed)[0] - 1.5 < x < block_centre(i, seed)[0] + 1.5
            assert y == pytest.approx(block_centre(i, seed)[1], abs=1.5)
            np.testing.assert_allclose(frame.joints_2d, jsonl[i].joints_2d, atol=1e-4)
        lines = [json.loads(x) for x in (out / f"{stem}.summary.jsonl").read_text().splitlines()]
        assert lines[0]["type"] == "video" and lines[0]["frames"] == frames
        assert [x["frame_index"] for x in lines[1:]] == list(range(frames))
    assert output_stem(rows["a/clip.avi"]["input"]) != output_stem(rows["b/clip.avi"]["input"])
    for name, error in BROKEN.items():
        assert rows[name]["status"] == "failed" and error in rows[name]["error"], rows[name]
        assert rows[name]["outputs"] == []
    middle = rows["broken/middle.avi"]
    assert middle["status"] == "partial" and middle["frames"] == 5
    assert "decoding stopped after 5 of the 10 frames" in middle["error"]
    assert len(read_results(out / middle["outputs"][0])) == 5  # frames before it are kept
    counts = {line.split()[0]: int(line.split()[1]) for line in table.splitlines()[2:5]}
    assert counts == {"done": 5, "partial": 1, "failed": 4}
    assert not (out / ".staging").exists()


@pytest.mark.slow
def test_rerun_skips_done_and_option_change_redoes_with_a_dying_worker(
    local_run: tuple[int, Path, str], footage: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, first, _ = local_run
    out = footage / "out-rerun"
    shutil.copytree(first, out)
    clips = footage / "clips"
    again = run_batch(clips, out, _options(footage, formats=("npz", "jsonl")), workers=2,
                      progress=False)  # fmt: skip
    assert len(again.skipped) == 5 and again.exit_code == 1
    assert {os.path.relpath(r["input"], clips) for r in again.records} == {
        *BROKEN, "broken/middle.avi"}  # failed and partial ones are redone  # fmt: skip
    # Another option: every input is redone; a worker that dies fails only its input.
    monkeypatch.setenv(CRASH_ENV, "c.avi")
    changed = run_batch(clips, out, _options(footage, max_frames=6), workers=2, progress=False)
    assert changed.skipped == [] and changed.options_hash != again.options_hash
    rows = _latest(out)
    assert "worker process died (exit code 3)" in rows["c.avi"]["error"]
    for name, (frames, _) in GOOD.items():
        if name != "c.avi":
            assert rows[name]["status"] == "done" and rows[name]["frames"] == min(6, frames)
            assert rows[name]["options_hash"] == changed.options_hash
            assert rows[name]["outputs"] == [f"{output_stem(rows[name]['input'])}{s}"
                                             for s in (".npz", ".summary.jsonl")]  # fmt: skip
    assert rows["broken/middle.avi"]["status"] == "partial"  # 5 frames, fewer than 6


def test_unwritable_output_fails_before_any_input(footage: Path, capsys) -> None:
    blocker = footage / "a-file"
    blocker.write_text("x")
    with pytest.raises(BatchConfigError, match="not writable"):
        # the input does not exist either: the output is checked first
        run_batch([str(footage / "missing.mp4")], blocker / "out", _options(footage))
    argv = [str(footage / "clips"), "--output", str(blocker / "out"), "--detector-factory", FACTORY]
    assert batch_app.main(argv) == 2
    assert "not writable" in capsys.readouterr().err
    if os.geteuid() != 0:  # permissions do not stop root
        locked = footage / "locked"
        locked.mkdir(mode=0o555)
        with pytest.raises(BatchConfigError, match="not writable"):
            run_batch([str(footage / "clips")], locked, _options(footage))


def test_unreadable_file_is_a_failed_row(footage: Path) -> None:
    """As root, permissions are checked in a forked child that drops to user nobody."""
    from batch_helpers import BrightBlockDetector

    from instanthmr.pipeline import PosePipeline

    work = Path(tempfile.mkdtemp(prefix="instanthmr-batch-"))  # nobody can reach /tmp/x
    try:
        work.chmod(0o777)
        video = shutil.copy(footage / "clips" / "c.avi", work / "secret.avi")
        os.chmod(video, 0)
        st = os.stat(video)
        task = Task(0, InputItem(str(video), "video", st.st_size, st.st_mtime_ns), str(work), "h")
        pipe = PosePipeline(footage / "oracle.onnx", device="cpu", detector=BrightBlockDetector(),
                            threads=1)  # fmt: skip
        record = _as_nobody(lambda: run_task(pipe, task, _options(footage)))
    finally:
        shutil.rmtree(work)
    assert record["status"] == "failed" and record["outputs"] == []
    assert record["error"] == "cannot read the file: Permission denied"


def _as_nobody(fn):
    if os.geteuid() != 0:
        return fn()
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover (child)
        try:
            os.close(read)
            os.setgid(65534)
            os.setuid(65534)
            os.write(write, json.dumps(fn()).encode())
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read) as fh:
        data = fh.read()
    os.waitpid(pid, 0)
    return json.loads(data)


@pytest.mark.slow
def test_ctrl_c_abandons_running_input_and_rerun_resumes(footage: Path) -> None:
    clips = footage / "ctrlc"
    clips.mkdir()
    write_clip(clips / "a_short.avi", 6)
    write_clip(clips / "b_long.avi", 800)
    out = footage / "out-ctrlc"
    cmd = [sys.executable, "-m", "instanthmr.cli", "batch", str(clips), "--output", str(out),
           "--workers", "1", "--model", str(footage / "oracle.onnx"), "--device", "cpu",
           "--detector-factory", FACTORY]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(TESTS)])}
    proc = subprocess.Popen(cmd, env=env, start_new_session=True, stderr=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)  # fmt: skip
    deadline = time.monotonic() + 120
    while not (out / "manifest.jsonl").exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "interrupted" in err
    rows = read_manifest(out / "manifest.jsonl")
    assert [(Path(r["input"]).name, r["status"]) for r in rows] == [("a_short.avi", "done")]
    leftovers = sorted(p.name for p in out.iterdir())
    assert leftovers == sorted([".batch.lock", "manifest.jsonl", *rows[0]["outputs"]])
    resumed = run_batch(clips, out, _options(footage), workers=1, progress=False)
    assert [Path(p).name for p in resumed.skipped] == ["a_short.avi"]
    assert [(Path(r["input"]).name, r["status"], r["frames"]) for r in resumed.records] == [
        ("b_long.avi", "done", 800)]  # fmt: skip


@pytest.mark.slow
def test_ray_local_gives_the_same_outputs_as_local(
    local_run: tuple[int, Path, str], footage: Path
) -> None:
    ray = pytest.importorskip("ray")
    _, local_out, _ = local_run
    clips = footage / "clips"
    inputs = [str(clips / name) for name in GOOD] + [str(clips / "broken" / "text.mp4")]
    out = footage / "out-ray"
    path = os.pathsep.join([str(REPO), str(TESTS)])
    ray.init(num_cpus=2, include_dashboard=False, runtime_env={"env_vars": {"PYTHONPATH": path}})
    try:
        report = run_batch(inputs, out, _options(footage, formats=("npz", "jsonl")),
                           engine="ray", workers=2, progress=False)  # fmt: skip
    finally:
        ray.shutdown()
    assert report.engine == "ray" and (report.workers, report.threads) == (2, 1)
    assert report.exit_code == 1 and len(report.worker_info) == 2
    local = _latest(local_out)
    for row in report.records:
        name = os.path.relpath(row["input"], clips)
        keep = ("status", "frames", "persons", "tracks", "options_hash", "outputs")
        assert {k: row[k] for k in keep} == {k: local[name][k] for k in keep}
        assert row["engine"] == "ray" and local[name]["engine"] == "local"
        for file in row["outputs"]:
            if file.endswith(".npz"):
                _same_npz(out / file, local_out / file)
            else:  # summary and JSONL results: the same, timings aside
                assert _no_timings(out / file) == _no_timings(local_out / file)


def _same_npz(a: Path, b: Path) -> None:
    with np.load(a) as x, np.load(b) as y:
        assert set(x.files) == set(y.files)
        for key in x.files:
            if key != "timings":
                np.testing.assert_array_equal(x[key], y[key], err_msg=key)


def _no_timings(path: Path) -> list[dict]:
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    for row in rows:
        row.pop("timings", None)
    return rows


def test_discovery_folders_globs_and_names(tmp_path: Path) -> None:
    for name in ("x/one.mp4", "x/deep/two.MOV", "y/one.mp4", "y/photo.jpg", "y/.hidden.mp4",
                 "y/readme.md", "out/old.mp4"):  # fmt: skip
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"1")
    items = discover_inputs([tmp_path / "x", str(tmp_path / "y" / "*.mp4"),
                             tmp_path / "x" / "one.mp4"], exclude=tmp_path / "out")  # fmt: skip
    names = [os.path.relpath(i.path, tmp_path) for i in items]
    assert names == ["x/one.mp4", "x/deep/two.MOV", "y/one.mp4"]  # the repeat is dropped
    assert [i.kind for i in discover_inputs([tmp_path / "y"])] == ["video", "image"]
    assert [os.path.relpath(i.path, tmp_path) for i in discover_inputs(
        [str(tmp_path / "**" / "*.mp4")], exclude=tmp_path / "out")] == [
        "x/one.mp4", "y/one.mp4"]  # fmt: skip
    stems = {output_stem(i.path) for i in items}
    assert len(stems) == 3 and all(s.startswith(("one_", "two_")) for s in stems)
    with pytest.raises(InputError, match="input not found"):
        discover_inputs([tmp_path / "nope.mp4"])
    with pytest.raises(InputError, match="no file matches"):
        discover_inputs([str(tmp_path / "*.mkv")])
    with pytest.raises(InputError, match="no videos or images found"):
        discover_inputs([tmp_path / "out"], exclude=tmp_path / "out")


def test_manifest_last_record_wins_and_torn_line_is_skipped(tmp_path: Path) -> None:
    video = tmp_path / "v.mp4"
    video.write_bytes(b"123")
    st = video.stat()
    item = InputItem(str(video), "video", st.st_size, st.st_mtime_ns)
    (tmp_path / "v.npz").write_bytes(b"x")
    m = Manifest(tmp_path)
    base = {"input": item.path, "size": item.size, "mtime_ns": item.mtime_ns,
            "options_hash": "h1", "outputs": ["v.npz"]}  # fmt: skip
    m.append({**base, "status": "failed"})
    m.append({**base, "status": "done"})
    with open(tmp_path / "manifest.jsonl", "a") as fh:
        fh.write('{"input": "/torn", "sta')  # a run killed mid-write
    again = Manifest(tmp_path)
    assert again.latest[item.path]["status"] == "done" and "/torn" not in again.latest
    assert again.is_done(item, "h1") and not again.is_done(item, "h2")
    changed = InputItem(item.path, "video", item.size + 1, item.mtime_ns)
    assert not again.is_done(changed, "h1")
    (tmp_path / "v.npz").unlink()
    assert not again.is_done(item, "h1")  # outputs gone: do it again


def test_default_plan_never_oversubscribes() -> None:
    cores = usable_cpus()
    for workers in (None, 1, 2, cores):
        n, threads = local_plan(workers, None)
        assert n * threads <= max(cores, n) and threads >= 1
    assert local_plan(None, None)[0] == max(1, cores // 4)


def test_options_hash_tracks_results_not_placement(tmp_path: Path) -> None:
    model = _models(tmp_path)
    base = BatchOptions(model=str(model))
    assert base.options_hash() == BatchOptions(model=str(model), device="cuda",
                                               fallback=True).options_hash()  # fmt: skip
    assert base.options_hash() != BatchOptions(model=str(model), max_frames=5).options_hash()
    int8 = batch_app.options_from(
        batch_app.build_parser().parse_args(["x", "-o", "out", "--precision", "int8"])
    )
    assert int8.precision == "int8"  # the demo's --precision reaches the batch pipeline
    assert base.options_hash() != BatchOptions(model=str(model), precision="int8").options_hash()
    copy = shutil.copy(model, tmp_path / "copy.onnx")
    assert base.options_hash() == BatchOptions(model=str(copy)).options_hash()  # same bytes
    with pytest.raises(BatchConfigError, match="formats"):
        BatchOptions(formats=("mp4",))
    with pytest.raises(BatchConfigError, match="model file not found"):
        BatchOptions(model=str(tmp_path / "missing.onnx")).check()
    with pytest.raises(BatchConfigError, match="cannot load the detector factory"):
        BatchOptions(detector_factory="no_such_module:make").check()
    BatchOptions(model="instanthmr", detector_model=str(model)).check()  # the released model
    with pytest.raises(BatchConfigError, match="Ray options"):
        run_batch([str(model)], tmp_path / "out", address="auto")
