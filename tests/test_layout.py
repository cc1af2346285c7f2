"""The package layout: old import paths still work, and the layout's rules hold."""

from __future__ import annotations

import importlib

import pytest

OLD_PATHS = {  # old public path -> where it lives now (docs/architecture.md)
    "instanthmr.tracker": "instanthmr.tracking.tracker",
    "instanthmr.stride": "instanthmr.tracking.schedule",
    "instanthmr.smoothing": "instanthmr.tracking.smoothing",
    "instanthmr.motion": "instanthmr.tracking.scene_change",
    "instanthmr.weights": "instanthmr.hmr.weights",
}


@pytest.mark.parametrize(("old", "new"), sorted(OLD_PATHS.items()))
def test_old_module_path_is_the_new_module(old: str, new: str) -> None:
    old_mod = importlib.import_module(old)
    new_mod = importlib.import_module(new)
    assert old_mod is new_mod
    public = [n for n in dir(new_mod) if not n.startswith("_")]
    assert public and all(getattr(old_mod, n) is getattr(new_mod, n) for n in public)


@pytest.mark.parametrize(
    ("path", "name", "new"),
    [
        ("instanthmr", "PosePipeline", "instanthmr.pipeline"),
        ("instanthmr", "HMRModel", "instanthmr.hmr.model"),
        ("instanthmr", "Runtime", "instanthmr.runtime.session"),
        ("instanthmr", "ContractError", "instanthmr.runtime.contract"),
        ("instanthmr", "resolve_model", "instanthmr.hmr.weights"),
        ("instanthmr.cli", "main", "instanthmr.cli"),
        ("instanthmr.sinks.exporters", "read_results", "instanthmr.sinks.exporters"),
        ("instanthmr.world", "WorldTracker", "instanthmr.world.stage"),
        ("instanthmr.batch", "run_batch", "instanthmr.batch.runner"),
        ("instanthmr.sources", "open_source", "instanthmr.sources.files"),
        ("instanthmr.tracking", "Tracker", "instanthmr.tracking.tracker"),
        ("instanthmr.runtime", "Runtime", "instanthmr.runtime.session"),
        ("instanthmr.hmr", "HMRModel", "instanthmr.hmr.model"),
        ("instanthmr.skeleton", "NUM_JOINTS", "instanthmr.skeleton"),
        ("instanthmr.commands.doctor", "main", "instanthmr.commands.doctor"),  # install.py
    ],
)
def test_public_names_resolve(path: str, name: str, new: str) -> None:
    got = getattr(importlib.import_module(path), name)
    assert got is getattr(importlib.import_module(new), name)
