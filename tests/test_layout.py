"""The package layout: old import paths still work, and the layout's rules hold."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

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


PACKAGE = Path(__file__).resolve().parents[1] / "instanthmr"


def _sources() -> list[tuple[str, ast.Module]]:
    out = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE.parent).as_posix()
        out.append((rel, ast.parse(path.read_text(encoding="utf-8"), filename=rel)))
    return out


def _calls(tree: ast.Module) -> list[str]:
    """Dotted names of every call in ``tree`` (``ort.InferenceSession``, ``rr.log``...)."""
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            parts, f = [], node.func
            while isinstance(f, ast.Attribute):
                parts.append(f.attr)
                f = f.value
            if isinstance(f, ast.Name):
                names.append(".".join([f.id, *reversed(parts)]))
    return names


def test_onnxruntime_sessions_are_made_only_in_runtime() -> None:
    # the documented exceptions (docs/architecture.md): export checks that must see the file
    # exactly as written
    allowed = {"instanthmr/export/hmr_export.py", "instanthmr/export/standin.py"}
    found = {
        rel for rel, tree in _sources()
        if any(c.endswith("InferenceSession") for c in _calls(tree))
    }  # fmt: skip
    assert found, "the scan found no InferenceSession at all: it is broken"
    outside = {f for f in found if not f.startswith("instanthmr/runtime/")} - allowed
    assert not outside, f"onnxruntime sessions outside instanthmr/runtime/: {sorted(outside)}"


def test_rerun_logging_happens_only_in_sinks() -> None:
    found = {rel for rel, tree in _sources() if any(c == "rr.log" or c.endswith("rerun.log")
                                                    for c in _calls(tree))}  # fmt: skip
    assert found, "the scan found no rr.log at all: it is broken"
    outside = {f for f in found if not f.startswith("instanthmr/sinks/")}
    assert not outside, f"rr.log outside instanthmr/sinks/: {sorted(outside)}"


def _module_name(rel: str) -> str:
    parts = rel[:-3].split("/")
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(tree: ast.AST) -> list[ast.Import | ast.ImportFrom]:
    """Every import statement, at any depth (deferred imports in functions too: a circle
    deferred into a function is still a circle), except under ``if TYPE_CHECKING:``."""
    found: list[ast.Import | ast.ImportFrom] = []
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            continue
        if isinstance(node, ast.Import | ast.ImportFrom):
            found.append(node)
        else:
            found += _imports(node)
    return found


def _import_edges(rel: str, tree: ast.Module) -> set[str]:
    """The package modules that ``rel`` imports."""
    name = _module_name(rel)
    package = name if rel.endswith("__init__.py") else name.rpartition(".")[0]
    edges = set()
    for node in _imports(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.startswith("instanthmr"):
                for alias in node.names:  # `from pkg import module` imports the module
                    sub = f"{target}.{alias.name}"
                    edges.add(sub if (PACKAGE.parent / (sub.replace(".", "/") + ".py")).is_file()
                              or (PACKAGE.parent / sub.replace(".", "/")).is_dir() else target)
        elif isinstance(node, ast.Import):
            edges |= {a.name for a in node.names if a.name.startswith("instanthmr")}
    return {e for e in edges if e != name}


def test_no_import_circle_in_the_package() -> None:
    graph = {_module_name(rel): _import_edges(rel, tree) for rel, tree in _sources()}
    # a module's own packages are initialised before it runs: importing them is no circle
    graph = {m: {d for d in deps if not m.startswith(d + ".")} for m, deps in graph.items()}
    assert sum(map(len, graph.values())) > 100, "the scan found too few imports: it is broken"
    order: dict[str, int] = {}
    stack: list[str] = []

    def visit(mod: str) -> None:
        order[mod] = 1
        stack.append(mod)
        for dep in sorted(graph.get(mod, ())):
            if order.get(dep) == 1:
                cycle = [*stack[stack.index(dep):], dep]
                raise AssertionError(f"import circle: {' -> '.join(cycle)}")
            if dep not in order:
                visit(dep)
        stack.pop()
        order[mod] = 2

    for mod in sorted(graph):
        if mod not in order:
            visit(mod)
