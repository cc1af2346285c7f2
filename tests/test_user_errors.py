"""Every command against the same bad inputs: one stderr line, no traceback, exit code 2.

Issue 21, class 1. Each case runs the real command as a user would
(``python -m instanthmr.cli <command> ...``) in a fresh process, and checks the contract of
:mod:`instanthmr.commands.errors`: exactly one non-blank stderr line, which starts with
``instanthmr <command>: error:`` and names what was wrong, no traceback, exit code 2.

The bad inputs: an empty and a text ``.onnx`` as ``--model`` and as ``--detector-model``;
the int8 choices (a stale int8 file, ``--precision fp32`` given an ``.int8.onnx``,
``--precision auto`` with an int8 file that has no parity report); no detector file with no
network; the server's flags; damaged dataset files. The HMR model is the analytic oracle
(tests/onnx_builders.py); its int8 copy is made by ``instanthmr quantize``'s own function.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest
from onnx_builders import build_oracle

from instanthmr.commands.errors import CommandParser, command, error_line
from instanthmr.errors import ModelFileError, OptionError, UserError, describe

REPO = Path(__file__).resolve().parents[1]
TIMEOUT_S = 240


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The good and bad files every case picks from."""
    from instanthmr.runtime.quantize import quantize_model

    d = tmp_path_factory.mktemp("bad-inputs")
    oracle = d / "oracle.onnx"
    onnx.save(build_oracle(), oracle)
    (d / "zero.onnx").write_bytes(b"")
    (d / "text.onnx").write_text("this is not a model\n")
    image = d / "person.png"
    cv2.imwrite(str(image), np.full((96, 128, 3), 90, np.uint8))
    # the int8 cases: an int8 copy made for another source (stale), and one stripped of
    # its parity report
    stale_src = d / "stale.onnx"
    onnx.save(build_oracle(), stale_src)
    quantize_model(stale_src, calibration_frames=2, eval_frames=1, speed_rounds=0,
                   echo=lambda _: None)  # fmt: skip
    changed = onnx.load(stale_src)
    changed.doc_string = "changed after quantising"
    onnx.save(changed, stale_src)
    int8 = onnx.load(d / "stale.int8.onnx")
    del int8.metadata_props[:]
    onnx.save(int8, d / "noreport.int8.onnx")
    (d / "coco.json").write_text('{"images": []}\n{"annotations": []}\n')  # "Extra data"
    (d / "folder.mp4").mkdir()
    return {p.stem.replace(".", "_"): p for p in d.iterdir()} | {"dir": d}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_cli(args: list[str], cwd: Path, env: dict[str, str] | None = None):
    """``python -m instanthmr.cli ARGS`` in ``cwd``: (exit code, stderr lines, stderr)."""
    environ = {**os.environ, "PYTHONPATH": str(REPO), "RERUN_ANALYTICS": "0",
               "HF_HUB_OFFLINE": "1", **(env or {})}  # fmt: skip
    proc = subprocess.run(
        [sys.executable, "-m", "instanthmr.cli", *args], cwd=cwd, env=environ,
        capture_output=True, text=True, timeout=TIMEOUT_S,
    )  # fmt: skip
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    return proc.returncode, lines, proc.stderr


def assert_one_line(code: int, lines: list[str], err: str, name: str, *needles: str) -> None:
    assert "Traceback" not in err, err
    assert len(lines) == 1, err
    assert lines[0].startswith(f"instanthmr {name}: error: "), lines[0]
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    assert code == 2, (code, err)


# ----------------------------------------------------------------------------- the cases
def _model_cases() -> list[tuple[str, list[str], str, str]]:
    """(command, argv with {placeholders}, bad file key, flag) for every model flag."""
    runs = {
        "demo": ["demo", "--image", "{person}", "--headless", "--device", "cpu"],
        "serve": ["serve", "--device", "cpu", "--port", "{port}"],
        "batch": ["batch", "{person}", "--output", "{dir}/out", "--device", "cpu"],
        "bench": ["bench", "--device", "cpu", "--frames", "1", "--warmup-frames", "0"],
        "eval": ["eval", "coco", "--root", "{dir}", "--annotations", "{coco}",
                 "--device", "cpu"],
        "quantize": ["quantize"],
        "doctor": ["doctor", "--device", "cpu"],
    }  # fmt: skip
    cases = []
    for name, argv in runs.items():
        for bad in ("zero", "text"):
            slot = "{" + bad + "}"
            cases.append((name, [*argv, "--model", slot], bad, "--model"))
            if name != "quantize":
                det = [*argv, "--model", "{oracle}", "--detector-model", slot]
                if name == "bench":
                    det += ["--detector-backend", "onnx"]
                cases.append((name, det, bad, "--detector-model"))
    return cases


def _fill(argv: list[str], files: dict[str, Path]) -> list[str]:
    values = {k: str(v) for k, v in files.items()} | {"port": str(_free_port())}
    return [a.format(**values) for a in argv]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "argv", "bad", "flag"), _model_cases(),
    ids=[f"{c[0]}-{c[3].strip('-')}-{c[2]}" for c in _model_cases()],
)  # fmt: skip
def test_bad_model_file_in_every_command(files, name, argv, bad, flag) -> None:
    code, lines, err = run_cli(_fill(argv, files), cwd=files["dir"])
    assert_one_line(code, lines, err, name, f"{bad}.onnx", "not a readable ONNX model")


INT8_CASES = {
    "stale": (["--model", "{stale}", "--precision", "int8"],
              ["measured against another source", "instanthmr quantize"]),
    "fp32-of-int8": (["--model", "{stale_int8}", "--precision", "fp32"],
                     ["is an int8 model", "pass its fp32/fp16 source"]),
    "auto-no-report": (["--model", "{noreport_int8}", "--precision", "auto"],
                       ["no parity report", "instanthmr quantize"]),
}  # fmt: skip
PRECISION_COMMANDS = {
    "demo": ["demo", "--image", "{person}", "--headless", "--device", "cpu"],
    "batch": ["batch", "{person}", "--output", "{dir}/out-int8", "--device", "cpu",
              "--no-progress"],
    "bench": ["bench", "--hmr-only", "--device", "cpu", "--repeats", "1", "--no-baseline"],
    "serve": ["serve", "--device", "cpu", "--port", "{port}"],
}  # fmt: skip


@pytest.mark.slow
@pytest.mark.parametrize("case", sorted(INT8_CASES))
@pytest.mark.parametrize("name", sorted(PRECISION_COMMANDS))
def test_int8_choices_in_every_command(files, name, case) -> None:
    flags, needles = INT8_CASES[case]
    argv = _fill([*PRECISION_COMMANDS[name], *flags], files)
    code, lines, err = run_cli(argv, cwd=files["dir"])
    assert_one_line(code, lines, err, name, *needles)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["demo", "serve"])
def test_offline_without_detector_file_names_it_and_the_ways_forward(files, name, tmp_path):
    """RF-DETR asked for by name, no file here, no network: one line naming the missing file
    and the ways forward, the detector shipped in the package first (with the default
    ``--detector-variant auto`` that one simply runs)."""
    pytest.importorskip("rfdetr")  # without it the torch backend is missing: another message
    argv = [name, "--model", str(files["oracle"]), "--device", "cpu",
            "--detector-variant", "nano"]  # fmt: skip
    argv += ["--image", str(files["person"]), "--headless"] if name == "demo" else [
        "--port", str(_free_port())]  # fmt: skip
    nowhere = "http://127.0.0.1:9"  # a closed port: every download fails at once
    env = {"HTTPS_PROXY": nowhere, "HTTP_PROXY": nowhere, "NO_PROXY": ""}
    code, lines, err = run_cli(argv, cwd=tmp_path, env=env)  # no models/ folder here
    assert_one_line(code, lines, err, name, "models/rfdetr-nano.onnx", "does not exist",
                    "ways forward: (1)", "--detector-variant yolox-nano",
                    "--detector-model FILE")  # fmt: skip


@pytest.mark.slow
@pytest.mark.parametrize(
    ("flags", "needle"),
    [
        (["--token", ""], "--token: must not be empty"),
        (["--token", "a b"], "--token: must be printable ASCII"),
        (["--max-upload-mb", "inf"], "--max-upload-mb: must be a finite number"),
        (["--max-upload-mb", "nan"], "--max-upload-mb: must be a finite number"),
        (["--max-fps", "inf"], "--max-fps: must be a finite number"),
        (["--port", "99999"], "--port: must be a TCP port in 1..65535"),
        (["--port", "-1"], "--port: must be a TCP port in 1..65535"),
        (["--port", "0"], "--port: must be a TCP port in 1..65535"),
        (["--port", "http"], "--port: invalid"),
    ],
)
def test_serve_flags_are_checked_at_parse_time(files, flags, needle) -> None:
    # the model is the empty file: a flag refused at parse time never reaches it
    code, lines, err = run_cli(["serve", "--model", str(files["zero"]), *flags], files["dir"])
    assert_one_line(code, lines, err, "serve", needle, "--help")


def test_serve_port_in_use_is_refused_before_the_models_load(files) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        argv = ["serve", "--model", str(files["zero"]), "--port", str(port)]
        code, lines, err = run_cli(argv, files["dir"])
    assert_one_line(code, lines, err, "serve", f"127.0.0.1:{port}", "in use", "--port")


@pytest.mark.slow
@pytest.mark.parametrize(
    ("content", "needles"),
    [
        ('{"images": []}\n{"annotations": []}\n', ["not valid JSON at line 2 column 1"]),
        ("", ["is empty"]),
        ('{"images": [], "annotations": [], "categ', ["not valid JSON", "truncated"]),
        ('[1, 2]', ["not a COCO keypoints file", "'images'"]),
        (b"\xff\xfe\x00binary", ["not UTF-8"]),
    ],
)
def test_eval_coco_names_the_damaged_annotations_file(files, tmp_path, content, needles):
    ann = tmp_path / "person_keypoints_val2017.json"
    ann.write_bytes(content if isinstance(content, bytes) else content.encode())
    argv = ["eval", "coco", "--root", str(tmp_path), "--annotations", str(ann),
            "--model", str(files["oracle"]), "--gt-boxes", "--device", "cpu"]  # fmt: skip
    code, lines, err = run_cli(argv, files["dir"])
    assert_one_line(code, lines, err, "eval", str(ann), *needles)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("argv", "needles"),
    [
        (["demo", "--image", "{dir}/missing.png", "--headless"], ["missing.png", "not found"]),
        (["demo", "--video", "{text}", "--headless", "--model", "{oracle}"], ["cannot open"]),
        (["demo", "--headless", "--export", "out.txt"], ["--export", "must end in"]),
        (["demo", "--headless", "--detector-stride", "0"], ["--detector-stride", ">= 1"]),
        (["demo", "--image", "{person}", "--headless", "--model", "{oracle}", "--save",
          "{person}/x.rrd"], ["cannot write", "x.rrd"]),
        (["demo", "--image", "{person}", "--headless", "--model", "{oracle}", "--write-video",
          "{dir}/folder.mp4"], ["--write-video", "is a folder"]),
        (["demo", "--image", "{person}", "--headless", "--model", "hf://bad"],
         ["hf://bad", "hf://owner/repo"]),
        (["demo", "--image", "{person}", "--headless", "--model", "{oracle}", "--precision",
          "fp16", "--device", "cpu"], ["--precision fp16", "fp32 weights"]),
        (["batch", "{dir}/nothing-here", "--output", "{dir}/o"], ["input not found"]),
        (["batch", "{person}", "--output", "{dir}/o", "--format", "npz", "--format", "npz"],
         ["--format npz is given twice"]),
        (["bench", "--device", "gpu0"], ["--device", "invalid choice"]),
        (["bench", "--rounds", "0"], ["--rounds", ">= 1"]),
        (["quantize", "--model", "{dir}/nope.onnx"], ["nope.onnx", "not found"]),
        (["quantize", "--model", "{oracle}", "--calibration-frames", "0"],
         ["--calibration-frames", ">= 1"]),
        (["eval", "folder", "--root", "{dir}/none", "--model", "{oracle}"],
         ["no sequence folders"]),
        (["doctor", "--model", "{dir}/nope.onnx", "--device", "cpu"], ["nope.onnx", "not found"]),
    ],
)  # fmt: skip
def test_more_bad_inputs_give_one_line(files, argv, needles) -> None:
    code, lines, err = run_cli(_fill(argv, files), files["dir"])
    assert_one_line(code, lines, err, argv[0], *needles)


def test_start_reports_the_demo_error_in_one_line(files) -> None:
    """``instanthmr start`` runs the demo: the demo's own error line, and its exit code."""
    argv = ["start", "--model", str(files["zero"]), "--detector-model", str(files["zero"]),
            "--headless"]  # fmt: skip
    code, lines, err = run_cli(argv, files["dir"])
    assert_one_line(code, lines, err, "demo", "zero.onnx", "not a readable ONNX model")


# ----------------------------------------------------------------------------- the mechanism
def test_describe_is_one_line_with_the_fix() -> None:
    exc = OptionError("bad\n  value given")
    exc.fix = "use another"
    assert describe(exc) == "bad value given; use another"
    assert describe(FileNotFoundError("model file not found: m.onnx")).endswith("; check the path")
    assert describe(FileNotFoundError(2, "No such file or directory", "x.bin")) == (
        "[Errno 2] No such file or directory: 'x.bin'; check the path"
    )
    assert isinstance(ModelFileError("x"), ValueError)
    assert isinstance(ModelFileError("x"), UserError)
    assert error_line("demo", exc) == "instanthmr demo: error: bad value given; use another"


def test_a_bug_keeps_its_traceback_and_user_errors_do_not(capsys) -> None:
    @command("probe")
    def bug(argv):
        raise ValueError("a plain ValueError is a bug, not a user error")

    @command("probe")
    def user(argv):
        raise OptionError("--x 3 cannot apply")

    with pytest.raises(ValueError, match="a bug"):
        bug([])
    assert user([]) == 2
    assert capsys.readouterr().err == "instanthmr probe: error: --x 3 cannot apply\n"


def test_parser_errors_are_one_line(capsys) -> None:
    parser = CommandParser(command="probe")
    parser.add_argument("--n", type=int)
    with pytest.raises(SystemExit) as done:
        parser.parse_args(["--n", "x"])
    assert done.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("instanthmr probe: error: argument --n")
    assert "`instanthmr probe --help`" in err


def test_dataset_json_errors_name_file_line_and_problem(tmp_path) -> None:
    from instanthmr.errors import DatasetError
    from instanthmr.evaluation.datafiles import read_json, read_json_lines, read_pickle

    bad = tmp_path / "a.json"
    bad.write_text('{"a": 1}\n{"b": 2}\n')
    with pytest.raises(DatasetError, match=r"a\.json is not valid JSON at line 2 column 1"):
        read_json(bad, "test")
    lines = tmp_path / "gt.jsonl"
    lines.write_text(json.dumps({"joint_set": "coco17"}) + "\n{oops\n")
    with pytest.raises(DatasetError, match=r"gt\.jsonl, line 2: not valid JSON"):
        read_json_lines(lines, "ground truth")
    pkl = tmp_path / "seq.pkl"
    pkl.write_bytes(b"\x80\x04\x95garbage")
    with pytest.raises(DatasetError, match=r"seq\.pkl is not a readable pickle"):
        read_pickle(pkl, "3DPW sequence")
