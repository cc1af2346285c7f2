"""The README and docs say what the code does (issue 21, class 7).

1. Every flag a command line in the README or docs shows is a flag of that command
   (its ``--help`` lists it).
2. The commands the README and docs promise files from are run, as a user would type them
   (the exact text is looked up in the doc, so editing one means editing the other), and
   the files they name are looked for. Model flags are added (the analytic oracle HMR
   model, one fixed box per frame instead of RF-DETR: tests/fixed_box_cli.py), and a few
   frames are enough.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest
from batch_helpers import write_clip
from onnx_builders import build_oracle

from instanthmr.cli import COMMANDS
from instanthmr.cli import main as cli_main

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(TESTS)]),
       "RERUN_ANALYTICS": "0", "HF_HUB_OFFLINE": "1"}  # fmt: skip
HISTORY = {"performance.md"}  # measurement logs: commands as they were run at the time


# ----------------------------------------------------------------------------- 1. flags
_COMMAND = re.compile(
    r"(?:python3? demo\.py|python3? tools/bench\.py|instanthmr (?P<cmd>[a-z][a-z-]*)"
    r"(?: (?P<sub>synthetic|coco|3dpw|emdb|folder)\b)?)(?P<args>[^`\n|#]*)"
)


def _command_lines() -> list[tuple[str, str, str]]:
    """(doc, command, flag) for every flag on a command line in the README and docs."""
    found = []
    for doc in DOCS:
        if doc.name in HISTORY:
            continue
        for m in _COMMAND.finditer(doc.read_text(encoding="utf-8")):
            text = m.group(0)
            cmd = m.group("cmd") or ("bench" if "bench.py" in text else "demo")
            if cmd not in COMMANDS:
                continue
            if m.group("sub"):
                cmd = f"{cmd} {m.group('sub')}"
            for flag in re.findall(r"(?<![\w-])--[a-z][a-z0-9-]*", m.group("args")):
                found.append((doc.name, cmd, flag))
        table = FLAG_TABLES.get(doc.name)  # a table of a command's flags, one row each
        for row in re.findall(r"^\| `(--[a-z][a-z0-9-]*)", doc.read_text(encoding="utf-8"), re.M):
            if table is not None:
                found.append((doc.name, table, row))
    return sorted(set(found))


FLAG_TABLES = {"demo.md": "demo", "app.md": "serve", "world.md": "demo"}
"""Docs whose tables list one command's flags (install.md's are install.py's own)."""


_HELP: dict[str, str] = {}


def _help(cmd: str, capsys: pytest.CaptureFixture[str]) -> str:
    if cmd not in _HELP:
        with pytest.raises(SystemExit):
            cli_main([*cmd.split(), "--help"])
        _HELP[cmd] = capsys.readouterr().out
    return _HELP[cmd]


def test_the_docs_show_command_lines() -> None:
    lines = _command_lines()
    assert len(lines) > 40 and {c for _, c, _ in lines} >= {"demo", "batch", "bench", "serve"}


@pytest.mark.parametrize(("doc", "cmd", "flag"), _command_lines())
def test_every_flag_in_the_docs_exists(doc, cmd, flag, capsys) -> None:
    if cmd.startswith("export"):
        pytest.importorskip("torch")
    if flag == "--no-world":  # argparse lists it as --world, --no-world
        flag = "--world"
    assert re.search(rf"(?<![\w-]){re.escape(flag)}(?![\w-])", _help(cmd, capsys)), (
        f"{doc} shows `{cmd} {flag}`, which `instanthmr {cmd} --help` does not list"
    )


# ----------------------------------------------------------------------------- 2. outputs
@pytest.fixture(scope="module")
def place(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with what the commands read: clip.mp4, footage/, instanthmr.onnx."""
    root = tmp_path_factory.mktemp("docs")
    onnx.save(build_oracle(), root / "oracle.onnx")
    shutil.copy(root / "oracle.onnx", root / "instanthmr.onnx")
    writer = cv2.VideoWriter(str(root / "clip.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), 10.0,
                             (160, 120))  # fmt: skip
    for i in range(12):
        image = np.full((120, 160, 3), 30, np.uint8)
        image[30:100, 40 + 4 * i : 70 + 4 * i] = 220
        writer.write(image)
    writer.release()
    (root / "footage").mkdir()
    write_clip(root / "footage" / "walk.avi", 6)
    return root


def _doc_command(doc: str, text: str) -> list[str]:
    """The command the doc shows (``text`` must be in it, verbatim), without its comment."""
    body = (REPO / doc).read_text(encoding="utf-8")
    assert text in body, f"{doc} no longer shows `{text}`: update this test with the doc"
    argv = shlex.split(text.split("#")[0])
    if argv[:2] in (["python", "demo.py"], ["python3", "demo.py"]):
        return ["demo", *argv[2:]]
    if argv[:2] in (["python", "tools/bench.py"], ["python3", "tools/bench.py"]):
        return ["bench", *argv[2:]]
    assert argv[0] == "instanthmr", text
    return argv[1:]


def _run(argv: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([sys.executable, str(TESTS / "fixed_box_cli.py"), *argv], cwd=cwd,
                          env=ENV, capture_output=True, text=True, timeout=600)  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    return proc


PIPELINE = ["--model", "oracle.onnx", "--detector-model", "oracle.onnx", "--device", "cpu"]
DEMO = [*PIPELINE, "--max-frames", "4", "--headless"]

PROMISES = [
    # (doc, the command as the doc shows it, flags added, files it must write)
    ("README.md", "python demo.py --video clip.mp4 --export poses.jsonl", DEMO,
     ["poses.jsonl"]),
    ("docs/demo.md", "python demo.py --video clip.mp4 --save run.rrd", DEMO, ["run.rrd"]),
    ("docs/demo.md",
     "python demo.py --video clip.mp4 --write-video annotated.mp4 --export poses.csv --headless",
     DEMO, ["annotated.mp4", "poses.csv"]),
    ("docs/animation.md",
     "instanthmr demo --video clip.mp4 --export poses.jsonl --export out.bvh --export out.glb",
     DEMO, ["poses.jsonl", "out.track*.bvh", "out.glb"]),
    ("docs/animation.md", "instanthmr demo --video clip.mp4 --export run.glb --rig mixamo",
     DEMO, ["run.glb"]),
    ("README.md", "python tools/bench.py --video clip.mp4 --stride 1 2 4 8 --json bench.json",
     [*PIPELINE, "--frames", "2", "--warmup-frames", "0"], ["bench.json"]),
    ("README.md", "instanthmr batch footage/ --output results/",
     ["--model", "oracle.onnx", "--detector-factory", "batch_helpers:BrightBlockDetector",
      "--no-progress"], ["results/manifest.jsonl", "results/walk_*.npz"]),
    ("docs/batch.md",
     "instanthmr batch footage/ --output results/ --workers 2 --format jsonl  # 2 workers, "
     "JSONL only",
     ["--model", "oracle.onnx", "--detector-factory", "batch_helpers:BrightBlockDetector",
      "--no-progress"], ["results/walk_*.jsonl", "!results/walk_*.npz"]),
    ("docs/batch.md",
     "instanthmr batch footage/ --output results/ --format npz --format jsonl  # NPZ and JSONL",
     ["--model", "oracle.onnx", "--detector-factory", "batch_helpers:BrightBlockDetector",
      "--no-progress"], ["results/walk_*.jsonl", "results/walk_*.npz"]),
    ("README.md", "instanthmr quantize --model instanthmr.onnx",
     ["--speed-rounds", "0", "--calibration-frames", "2", "--eval-frames", "1"],
     ["instanthmr.int8.onnx"]),
    ("README.md", "`out/sample-poses.jsonl` and `out/sample-annotated.mp4`",
     ["start", *PIPELINE, "--max-frames", "3", "--headless"],
     ["out/sample-poses.jsonl", "out/sample-annotated.mp4"]),
]  # fmt: skip


@pytest.mark.slow
@pytest.mark.parametrize(("doc", "text", "extra", "files"), PROMISES,
                         ids=[f"{p[0]}:{p[1][:40]}" for p in PROMISES])  # fmt: skip
def test_promised_files_are_written(place, tmp_path, doc, text, extra, files) -> None:
    cwd = tmp_path / "run"
    shutil.copytree(place, cwd)
    if extra[:1] == ["start"]:  # the README's first run: `install.py run` runs this
        argv = extra
        assert (REPO / doc).read_text(encoding="utf-8").count(text) == 1
    else:
        argv = [*_doc_command(doc, text), *extra]
    _run(argv, cwd)
    for pattern in files:
        matches = sorted(cwd.glob(pattern.lstrip("!")))
        if pattern.startswith("!"):
            assert not matches, f"{doc} says `{text}` does not write {pattern[1:]}: {matches}"
        else:
            assert matches, f"`{text}` ({doc}) did not write {pattern}: {sorted(cwd.rglob('*'))}"
            assert all(m.stat().st_size > 0 for m in matches), matches


def test_first_run_file_names_match_the_readme() -> None:
    """The first run (``install.py run``) names its files for the model that made them, as
    the README says: the released model, the stand-in, ``--random-init``."""
    from instanthmr.commands.start import FILE_TAGS, demo_arguments

    readme = (REPO / "README.md").read_text(encoding="utf-8")
    for kind in FILE_TAGS:
        argv = demo_arguments(Path("m.onnx"), Path("d.onnx"), Path("out"), kind, ["--headless"])
        for flag in ("--export", "--write-video"):
            name = Path(argv[argv.index(flag) + 1]).as_posix()
            assert f"`{name}`" in readme, (kind, name)
