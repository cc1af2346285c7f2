"""The synthetic regression gate (``instanthmr eval synthetic``) passes on the real pipeline
and fails when any geometry it guards is broken on purpose. This is how CI runs the gate.

The model is the analytic oracle (outputs known from the inputs), not a pose model."""

from __future__ import annotations

import functools
import json
import subprocess
import sys

import numpy as np
import pytest

import instanthmr.hmr.model as hmr_module
import instanthmr.tracking.smoothing as smoothing_module
from instanthmr.evaluation import joints as jm
from instanthmr.evaluation.synthetic import THRESHOLDS, run_gate
from instanthmr.geometry import cliff_vectors, crop_to_frame, full_frame_camera
from instanthmr.tracking.smoothing import OneEuroParams, PoseSmoother

FRAMES = 24


def test_gate_passes_on_the_intact_pipeline() -> None:
    result = run_gate(FRAMES)
    assert result.passed, result.markdown()
    values = {c.name: c.value for c in result.checks}
    assert set(values) == set(THRESHOLDS)
    # the default 2D One-Euro preset trails a 130 px/s blob by about half a frame
    assert 0.3 < values["smoothing_lag_frames"] < 0.8


def _off_by_one_crop_map(points_norm, squares, size=224):
    # the classic bug: normalised [-1, 1] mapped onto (size - 1) pixels instead of size
    sq = np.asarray(squares, np.float64).reshape(-1, 1, 3)
    u = (np.asarray(points_norm, np.float64) + 1.0) / 2.0 * (size - 1)
    return sq[..., :2] - sq[..., 2:3] / 2 + u * (sq[..., 2:3] / size)


def _cliff_with_width_for_y(boxes, image_size):
    out = cliff_vectors(boxes, image_size).astype(np.float64)
    w, h = image_size
    out[:, 1] = (out[:, 1] + 1) * h / w - 1  # cy normalised by the width
    return out.astype(np.float32)


def _camera_with_wrong_focal(image_size):
    _, pp = full_frame_camera(image_size)
    return float(max(image_size)), pp


def _swap_rows(weights: np.ndarray, a: int, b: int) -> np.ndarray:
    w = weights.copy()
    w[[a, b]] = w[[b, a]]
    return w


BREAKS = {
    "crop map": (lambda mp: mp.setattr(hmr_module, "crop_to_frame", _off_by_one_crop_map),
                 "joints_2d_max_px"),
    "cliff vector": (lambda mp: mp.setattr(hmr_module, "cliff_vectors", _cliff_with_width_for_y),
                     "cam_trans_max_mm"),
    "camera focal": (lambda mp: mp.setattr(hmr_module, "full_frame_camera",
                                           _camera_with_wrong_focal), "reprojection_max_px"),
    "coco17 index": (lambda mp: mp.setattr(jm.COCO17, "weights",
                                           _swap_rows(jm.COCO17.weights, 9, 10)),
                     "joints_2d_max_px"),
    "h36m17 index": (lambda mp: mp.setattr(jm.H36M17, "weights",
                                           _swap_rows(jm.H36M17.weights, 12, 15)),
                     "joints_3d_max_mm"),
    "smoothing lag": (lambda mp: mp.setattr(smoothing_module, "PoseSmoother", functools.partial(
        PoseSmoother, params_2d=OneEuroParams(min_cutoff=1.0, beta=0.0))),
                      "smoothing_lag_frames"),
}  # fmt: skip


@pytest.mark.parametrize("broken", sorted(BREAKS))
def test_gate_fails_when_geometry_is_broken(broken: str, monkeypatch) -> None:
    breaker, check = BREAKS[broken]
    breaker(monkeypatch)
    result = run_gate(FRAMES)
    assert not result.passed
    assert check in result.failed(), result.markdown()


def test_crop_map_break_is_small_but_caught() -> None:
    # the off-by-one map moves a joint by under a pixel: the 2D threshold must be tighter
    sq = np.array([[300.0, 200.0, 228.0]])
    pts = np.array([[[0.45, 0.3]]])
    moved = np.abs(_off_by_one_crop_map(pts, sq) - crop_to_frame(pts, sq)).max()
    assert 0.1 < moved < 1.0
    assert THRESHOLDS["joints_2d_max_px"] < moved


def test_cli_exit_codes(monkeypatch, tmp_path, capsys) -> None:
    from instanthmr.commands.eval import main as eval_main

    assert eval_main(["synthetic", "--frames", "16", "--json", str(tmp_path / "gate.json")]) == 0
    saved = json.loads((tmp_path / "gate.json").read_text())
    assert saved["passed"] is True and saved["frames"] == 16
    monkeypatch.setattr(hmr_module, "full_frame_camera", _camera_with_wrong_focal)
    assert eval_main(["synthetic", "--frames", "16"]) == 1
    assert "**FAIL**" in capsys.readouterr().out


def test_gate_runs_as_a_console_command() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "instanthmr.cli", "eval", "synthetic", "--frames", "16"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "PASSED" in done.stdout
