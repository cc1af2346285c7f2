"""The bench's JSON schema and modes (tiny runs; the numbers themselves are not asserted)."""

from __future__ import annotations

import json
from pathlib import Path

import onnx
import pytest
from onnx_builders import build_oracle

from instanthmr.commands.bench import main
from instanthmr.runtime.precision import file_sha256

MACHINE_KEYS = {"cpu", "cores_logical", "cores_usable", "gpus", "platform", "python", "packages"}


def test_hmr_only_json(tmp_path: Path) -> None:
    model = tmp_path / "oracle.onnx"
    onnx.save(build_oracle(), model)
    out = tmp_path / "hmr.json"
    assert main(["--hmr-only", "--model", str(model), "--device", "cpu", "--batch", "1", "2",
                 "--repeats", "3", "--json", str(out)]) == 0  # fmt: skip
    data = json.loads(out.read_text())
    assert set(data["hmr_ms_per_person_p50"]) == {"1", "2"}
    assert set(data["hmr_ms_per_person_p95"]) == {"1", "2"}
    assert data["baseline_ms_per_person_p50"] > 0
    assert data["provider"] == "CPUExecutionProvider"
    assert data["model"]["sha256"] == file_sha256(model) and data["model"]["random_init"] is False
    assert data["matmul_gflops"] > 0 and data["compute_floor_ms"] > 0
    assert MACHINE_KEYS <= set(data["machine"]) and "onnxruntime" in data["machine"]["packages"]


@pytest.mark.slow
def test_pipeline_stride_sweep_json_and_plot(
    tmp_path: Path, hmr_card_onnx: Path, detector_onnx: Path
) -> None:
    """Random-init exports: real compute, meaningless detections; one person forced."""
    out, png = tmp_path / "pipe.json", tmp_path / "sweep.png"
    assert main(["--model", str(hmr_card_onnx), "--device", "cpu", "--detector-model",
                 str(detector_onnx), "--detector-backend", "onnx", "--stride", "1", "4",
                 "--fixed-stride", "--det-confidence", "0", "--max-persons", "1",
                 "--frames", "6", "--warmup-frames", "2", "--viewer",
                 "--json", str(out), "--plot", str(png)]) == 0  # fmt: skip
    data = json.loads(out.read_text())
    for key in ("fps", "persons_per_frame", "detector_runs_per_frame",
                "pipeline_overhead_ms_p50", "viewer_share_of_frame"):  # fmt: skip
        assert set(data[key]) == {"1", "4"}, key
    for key in ("frame_ms_p50", "frame_ms_p95", "frame_ms_p99", "frame_ms_max"):
        assert set(data[key]) == {"1", "4"}, key
    assert 0 < data["frame_ms_p50"]["4"] <= data["frame_ms_p95"]["4"] <= data["frame_ms_max"]["4"]
    # over every frame, detector frames included: the stride-4 maximum is a detector frame
    assert data["frame_ms_max"]["4"] >= data["runs"]["4"]["stages"]["detect"]["max"]
    assert data["detector_latency_frames"]["1"]["max"] == 0  # synchronous: same frame
    assert data["detector_runs_per_frame"]["1"] == 1.0
    assert data["detector_runs_per_frame"]["4"] < 1.0
    assert data["persons_per_frame"] == {"1": 1.0, "4": 1.0}
    run = data["runs"]["4"]
    assert run["frames"] == 6
    assert set(run["stages"]) >= {"decode", "detect", "crop", "hmr", "track", "viewer", "total"}
    assert run["stages"]["viewer"]["p50"] > 0
    assert data["model"]["random_init"] is True and data["detector"]["random_init"] is True
    assert png.stat().st_size > 10_000 and png.read_bytes()[:4] == b"\x89PNG"


def test_bad_mode_combination_is_refused() -> None:
    with pytest.raises(SystemExit):
        main(["--hmr-only", "--detector-only"])


def test_missing_detector_file_is_a_clean_error(tmp_path: Path, capsys) -> None:
    model = tmp_path / "oracle.onnx"
    onnx.save(build_oracle(), model)
    code = main(["--model", str(model), "--device", "cpu",
                 "--detector-model", str(tmp_path / "nope.onnx")])  # fmt: skip
    assert code == 2
    err = capsys.readouterr().err
    assert "nope.onnx" in err and "export_detector.py" in err


FAKE_REFERENCE = """
import os, sys
assert os.path.isdir(os.path.join(os.environ["REF_REPO"], "instanthmr")), os.environ["REF_REPO"]
video, model, variant, stride, frames = sys.argv[1:]
assert os.path.isfile(video) and os.path.isfile(model) and variant == "nano"
print(f"reference variant={variant} stride={stride} frames={frames} wall p50 90.0 ms "
      f"mean 100.0 ms -> 10.00 FPS; persons/frame 1.00; detector ms mean 50.0")
"""


def test_async_live_bench_and_reference_ratio(
    tmp_path: Path, hmr_card_onnx: Path, detector_onnx: Path
) -> None:
    """Random-init exports. The reference's timing script is replaced by a stand-in that
    prints its summary line: this checks our side (the call, the parsing, the ratio)."""
    from instanthmr.sources.files import sample_video_path

    repo = tmp_path / "ref"
    (repo / "instanthmr").mkdir(parents=True)
    script = tmp_path / "ref_bench.py"
    script.write_text(FAKE_REFERENCE)
    out = tmp_path / "live.json"
    assert main(["--model", str(hmr_card_onnx), "--device", "cpu", "--detector-model",
                 str(detector_onnx), "--detector-backend", "onnx", "--video",
                 str(sample_video_path()), "--live", "--stride", "4", "--det-confidence", "0",
                 "--max-persons", "1", "--frames", "6", "--warmup-frames", "1",
                 "--rounds", "2", "--reference", str(repo), "--reference-script", str(script),
                 "--json", str(out)]) == 0  # fmt: skip
    data = json.loads(out.read_text())
    assert data["async_detector"] is True and data["live"] is True
    run = data["runs"]["4"]
    assert run["frames"] == 6 and len(run["fps_rounds"]) == 2
    assert set(run["detector_latency_frames"]) == {"p50", "mean", "max", "n"}
    assert run["detector_ms_background"]["n"] >= 1  # the worker ran
    assert {"frame_ms_p50", "frame_ms_p95", "frame_ms_p99", "frame_ms_max"} <= set(run)
    assert data["reference"]["fps"] == {"4": 10.0}
    assert len(data["reference"]["runs"]["4"]) == 2
    assert data["ratio_vs_reference"]["4"] == pytest.approx(data["fps"]["4"] / 10.0)
    limit = data["hmr_limit"]  # the HMR model alone at batch 1, timed between the live runs
    assert limit["ms_batch1"]["n"] == 2 * 20 and limit["ms_batch1"]["p50"] > 0
    assert limit["fps"] == pytest.approx(1000.0 / limit["ms_batch1"]["p50"])
    assert data["live_share_of_hmr_limit"]["4"] == pytest.approx(data["fps"]["4"] / limit["fps"])
    bad = main(["--model", str(hmr_card_onnx), "--video", str(sample_video_path()),
                "--reference", str(tmp_path)])  # fmt: skip
    assert bad == 2  # not a checkout: a clean error
