"""Shared fixtures: the real-footage folder and models exported once per test session.

Models exported here use random initialisation: real shapes and real compute, but the poses
and detections they produce are meaningless. Tests built on them check plumbing, shapes,
geometry and timing bookkeeping, never pose quality.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("RERUN_ANALYTICS", "0")

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data (real footage); skips when a fresh clone does not have it."""
    if not (SHARED_DATA / "vtest.avi").is_file():
        pytest.skip(
            f"real footage not found at {SHARED_DATA} (only present beside the CI checkout)"
        )
    return SHARED_DATA


@pytest.fixture(scope="session")
def hmr_onnx(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random-init export (fp32) of the ``released`` architecture, the network of the
    published file (about 40 M parameters, 13.5 GFLOP): for tests that need its real
    compute (export parity, fp16, int8, batching). About 25 s to export on a quiet 2-core
    machine."""
    pytest.importorskip("torch")
    pytest.importorskip("timm")
    from instanthmr.export.hmr_export import export_hmr_onnx

    path = tmp_path_factory.mktemp("hmr") / "instanthmr-random.onnx"
    export_hmr_onnx(path, random_init=True, seed=0)
    return path


@pytest.fixture(scope="session")
def hmr_card_onnx(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random-init export (fp32) of the smaller ``card`` architecture (17 M parameters,
    a third of the compute): for tests that check plumbing (CLI, pipeline, app, doctor,
    bench bookkeeping), where the released network's cost would only slow the suite."""
    pytest.importorskip("torch")
    pytest.importorskip("timm")
    from instanthmr.export.hmr_export import export_hmr_onnx

    path = tmp_path_factory.mktemp("hmr-card") / "instanthmr-card-random.onnx"
    export_hmr_onnx(path, random_init=True, seed=0, arch="card")
    return path


@pytest.fixture(scope="session")
def detector_onnx(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random-init RF-DETR nano export made by the rfdetr package."""
    pytest.importorskip("rfdetr")
    from instanthmr.export.detector_export import export_rfdetr_onnx

    path = tmp_path_factory.mktemp("det") / "rfdetr-nano-random.onnx"
    export_rfdetr_onnx("nano", path, random_init=True)
    return path
