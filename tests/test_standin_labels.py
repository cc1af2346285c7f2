"""The stand-in is labelled wherever a person or a program could take it for InstantHMR.

The demo runs the shipped stand-in on the embedded sample clip; its person boxes come from
tests/fixtures/sample_boxes.json (YOLOX-nano boxes of frame 0, used for the first frames of
the clip: the pedestrians move a few pixels in 0.2 s), so no detector is needed. Checked:
the demo's banner and summary, the results headers (JSONL, CSV, NPZ), the Rerun recording,
the BVH (read back by our reader, bvhio and Blender) and the glTF, the app's /health, and
``instanthmr start`` when the Hub cannot be reached.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pygltflib
import pytest
import supervision as sv

from instanthmr.animation.bvh import bvh_comment, read_bvh
from instanthmr.commands import demo, start
from instanthmr.hmr.kinds import KINDS, STANDIN, file_note, kind_of
from instanthmr.sinks.exporters import open_exporter, read_results
from instanthmr.sinks.rerun_sink import summarize_rrd

FIXTURE = Path(__file__).parent / "fixtures" / "sample_boxes.json"
BLENDER = shutil.which("blender") or "/usr/bin/blender"
NOWHERE = "http://instanthmr-test.invalid"  # .invalid never resolves (RFC 2606)
FRAMES = 3


class SampleBoxes:
    """The fixture's frame-0 YOLOX boxes, for every frame (a detector stand-in for tests)."""

    def __init__(self) -> None:
        f0 = json.loads(FIXTURE.read_text())["frames"]["0"]
        self.boxes = np.array(f0["boxes"], np.float32)
        self.scores = np.array(f0["scores"], np.float32)

    def detect(self, image: np.ndarray) -> sv.Detections:
        return sv.Detections(xyxy=self.boxes, confidence=self.scores,
                             class_id=np.ones(len(self.boxes), int))  # fmt: skip


@pytest.fixture(scope="module")
def standin_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """One demo run with the stand-in: every export, a recording; returns (folder, what it
    printed: stderr then stdout)."""
    out = tmp_path_factory.mktemp("standin-demo")
    mp = pytest.MonkeyPatch()
    mp.setattr("instanthmr.detector.create_detector", lambda *a, **k: SampleBoxes())
    argv = ["--model", "standin", "--device", "cpu", "--max-frames", str(FRAMES), "--headless",
            "--save", str(out / "run.rrd")]  # fmt: skip
    for name in ("r.jsonl", "r.csv", "r.npz", "a.bvh", "a.glb"):
        argv += ["--export", str(out / name)]
    import contextlib
    import io

    err, said = io.StringIO(), io.StringIO()
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(said):
            code = demo.main(argv)
    finally:
        mp.undo()
    assert code == 0, err.getvalue()
    return out, err.getvalue() + said.getvalue()


def test_the_demo_says_so_before_and_after(standin_run) -> None:
    _, err = standin_run
    banner = err.index("STAND-IN MODEL, NOT InstantHMR")
    assert err.index("processed 3 frames") > banner
    assert "NOT InstantHMR" in err[err.index("processed 3 frames") :]
    assert "hf download momolesang/InstantHMR" in err


def test_results_files_carry_the_model_kind_and_still_read(standin_run) -> None:
    out, _ = standin_run
    header = json.loads((out / "r.jsonl").read_text().splitlines()[0])
    assert header["model_kind"] == STANDIN and header["model_file"] == "standin-blazepose.onnx"
    assert "NOT InstantHMR" in header["model_notice"]
    first = (out / "r.csv").read_text().splitlines()[0]
    assert first.startswith("# instanthmr-results v2") and f"model_kind: {STANDIN}" in first
    meta = json.loads(str(np.load(out / "r.npz")["metadata"]))
    assert meta["model_kind"] == STANDIN and "NOT InstantHMR" in meta["model_notice"]
    frames = [read_results(out / n) for n in ("r.jsonl", "r.csv", "r.npz")]
    assert all(len(f) == FRAMES for f in frames)
    persons = [p for f in frames[0] for p in f]
    assert len(persons) >= 5 * FRAMES  # skeletons on the pedestrians, all finite
    assert all(np.isfinite(p.joints_3d_cam).all() for p in persons)


def _rrd_text(path: Path, entity_suffix: str, component: str) -> str:
    """Every value of ``component`` on entities ending in ``entity_suffix``, as one string."""
    from rerun.chunk import RrdReader

    values = []
    for chunk in RrdReader(str(path)).stream().to_chunks():
        batch = chunk.to_record_batch()
        if chunk.entity_path.endswith(entity_suffix) and component in batch.schema.names:
            values += [str(v) for v in batch.column(component).to_pylist()]
    return " ".join(values)


def test_the_recording_shows_the_notice_and_tags_the_boxes(standin_run) -> None:
    out, _ = standin_run
    summary = summarize_rrd(out / "run.rrd")
    assert summary["/model"].static_rows == 1
    assert "NOT InstantHMR" in _rrd_text(out / "run.rrd", "/model", "TextDocument:text")
    labels = _rrd_text(out / "run.rrd", "/box", "Boxes2D:labels")
    assert labels.count("STAND-IN") >= 5 * FRAMES


def test_bvh_and_gltf_name_the_model(standin_run) -> None:
    out, _ = standin_run
    bvhs = sorted(out.glob("a.track*.bvh"))
    assert len(bvhs) >= 5
    note = bvh_comment(bvhs[0])
    assert note and "stand-in" in note and "NOT InstantHMR" in note
    assert bvhs[0].read_text().startswith(
        "HIERARCHY  # Made by InstantHMR with standin-blazepose.onnx (stand-in, MediaPipe"
    )
    assert read_bvh(bvhs[0]).values.shape[0] == FRAMES
    bvhio = pytest.importorskip("bvhio")
    assert bvhio.readAsBvh(str(bvhs[0])).FrameCount == FRAMES
    glb = pygltflib.GLTF2().load(str(out / "a.glb"))
    assert glb.asset.generator == "instanthmr (STAND-IN model, NOT InstantHMR)"
    extras = glb.asset.extras
    assert extras["model_kind"] == STANDIN and "NOT InstantHMR" in extras["note"]


@pytest.mark.skipif(not Path(BLENDER).is_file(), reason=f"Blender not found at {BLENDER}")
def test_blender_imports_the_labelled_bvh(standin_run, tmp_path) -> None:
    out, _ = standin_run
    bvh = sorted(out.glob("a.track*.bvh"))[0]
    script = tmp_path / "imp.py"
    script.write_text(  # Debian's Blender BVH add-on opens files with mode "rU" (gone in
        # Python 3.11): map it to "r" so its own parser can be tested on our file
        "import builtins, bpy\n"
        "_open = builtins.open\n"
        "builtins.open = lambda f, mode='r', *a, **k: _open(f, mode.replace('U', ''), *a, **k)\n"
        "bpy.ops.wm.read_factory_settings(use_empty=True)\n"
        f"bpy.ops.import_anim.bvh(filepath={str(bvh)!r})\n"
        "arm = [o for o in bpy.data.objects if o.type == 'ARMATURE'][0]\n"
        "print('BONES', len(arm.data.bones), 'FRAMES', int(arm.animation_data.action.frame_range[1]"
        " - arm.animation_data.action.frame_range[0]) + 1)\n"
    )
    res = subprocess.run([BLENDER, "-b", "--factory-startup", "--python", str(script)],
                         capture_output=True, text=True, timeout=300)  # fmt: skip
    assert res.returncode == 0, res.stderr[-2000:]
    line = next(ln for ln in res.stdout.splitlines() if ln.startswith("BONES"))
    assert int(line.split()[1]) == len(read_bvh(bvh).names)
    assert int(line.split()[3]) == FRAMES


def test_results_headers_name_the_model_or_none(tmp_path) -> None:
    run = {"model_kind": "random-init", "model_file": "m.onnx",
           "model_notice": KINDS["random-init"].notice}  # fmt: skip
    with open_exporter(tmp_path / "a.jsonl", run):
        pass
    with open_exporter(tmp_path / "b.jsonl"):
        pass
    a, b = (json.loads((tmp_path / n).read_text().splitlines()[0]) for n in ("a.jsonl", "b.jsonl"))
    assert a["model_kind"] == "random-init" and "MEANINGLESS" in a["model_notice"]
    assert b["model_kind"] is None and b["model_notice"] is None  # not told: unknown
    with pytest.raises(ValueError, match="unknown run header keys"):
        open_exporter(tmp_path / "c.jsonl", {"modelkind": STANDIN})
    assert file_note(None) is None and file_note({"model_kind": "instanthmr"}) is None
    with pytest.raises(ValueError, match="known kinds"):
        kind_of({"model_kind": "mystery"})
    assert kind_of({"instanthmr_random_init": "true"}).name == "random-init"
    assert kind_of({}).is_instanthmr  # the released file has no metadata


def test_the_app_reports_the_stand_in() -> None:
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from instanthmr.pipeline import PosePipeline
    from instanthmr.webapp import AppConfig, create_app

    pipe = PosePipeline("standin", device="cpu", detector=SampleBoxes())
    with TestClient(create_app(pipe, AppConfig())) as client:
        health = client.get("/health").json()
    assert health["model_kind"] == STANDIN and health["random_init"] is False
    assert "NOT InstantHMR" in health["model_notice"]
    js = (Path(demo.__file__).parents[1] / "webapp" / "static" / "js" / "ui.js").read_text()
    assert "health.model_notice" in js  # the page shows that notice in its banner


def test_start_runs_the_stand_in_when_the_hub_cannot_be_reached(
    tmp_path, monkeypatch, capsys, detector_onnx
) -> None:
    """No Hub, no cached weights: the stand-in runs on the sample (with the RF-DETR file
    start always uses; here a random-init export in models/), said before and after."""
    for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY",
                 "all_proxy"):  # fmt: skip
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HF_ENDPOINT", NOWHERE)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.chdir(tmp_path)
    (tmp_path / "models").mkdir()
    shutil.copy(detector_onnx, tmp_path / "models" / "rfdetr-nano.onnx")
    monkeypatch.setattr(start, "has_display", lambda: False)
    assert start.main(["--max-frames", "2", "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    before, after = out.index("Running the STAND-IN model"), out.rindex("NOTE: this run used")
    assert before < out.index("running: instanthmr demo --model standin") < after
    assert "cannot be reached" in out[:before] and "To get InstantHMR" in out[after:]
    header = json.loads((tmp_path / "out" / "sample-standin-poses.jsonl").read_text()
                        .splitlines()[0])  # fmt: skip
    assert header["model_kind"] == STANDIN
    assert (tmp_path / "out" / "sample-standin-annotated.mp4").stat().st_size > 0


def test_the_bench_refuses_to_time_the_stand_in(capsys) -> None:
    from instanthmr.commands import bench
    from instanthmr.evaluation import speed

    with pytest.raises(ValueError, match="not InstantHMR: its cost says nothing"):
        speed.bench_hmr("standin", "cpu", [1], repeats=1, baseline=False)
    argv = ["--hmr-only", "--model", "standin", "--device", "cpu", "--batch", "1", "--no-baseline"]
    assert bench.main(argv) == 2
    assert "Time the released architecture" in capsys.readouterr().err

