"""The first run on a new machine: the quick Hub check, ``instanthmr start`` (offline
message, random-init run) and the two README commands that CI runs.

The random-init run uses the session's random-init exports (tests/conftest.py): real
shapes and compute, MEANINGLESS poses.
"""

from __future__ import annotations

import json
import re
import shutil
import socket
from pathlib import Path

import pytest
from test_weights import FILE, REPO, TEST_REV, HubServer, pin_for, run_resolve

from instanthmr.commands import start
from instanthmr.hmr.weights import PROXY_VARIABLES, unreachable

ROOT = Path(__file__).resolve().parents[1]
NOWHERE = "http://instanthmr-test.invalid"  # .invalid never resolves (RFC 2606)


@pytest.fixture
def no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)


@pytest.mark.usefixtures("no_proxy")
def test_unreachable_says_why(monkeypatch) -> None:
    assert "does not resolve" in unreachable(NOWHERE)
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()  # nothing listens there now
    assert "cannot connect to 127.0.0.1" in unreachable(f"http://127.0.0.1:{port}/")
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        assert unreachable(f"http://127.0.0.1:{server.getsockname()[1]}") == ""
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    assert unreachable(NOWHERE) == ""  # the proxy resolves names: nothing to check here


def test_unresolvable_hub_fails_at_once_with_instructions(tmp_path) -> None:
    """Before: five retries (about 25 s) and a transport error. Now: the reason, at once."""
    (res,) = run_resolve([{}], endpoint=NOWHERE, hf_home=tmp_path / "hf", cwd=tmp_path)
    assert res["error"][0] == "WeightsNotFoundError"
    assert "cannot be reached from this machine" in res["message"]
    assert "does not resolve" in res["message"]
    assert f"hf download {REPO} {FILE} --revision 3504446f" in res["message"]  # pinned
    assert "--local-dir models/" in res["message"]
    assert "install.py run --random-init" in res["message"]


def test_unreachable_hub_uses_the_cached_copy(tmp_path) -> None:
    env = {"hf_home": tmp_path / "hf", "cwd": tmp_path}
    pinned = {"pin": pin_for(b"weights" * 1000)}
    with HubServer({REPO: {FILE: b"weights" * 1000}}, commit=TEST_REV) as hub:
        (online,) = run_resolve([pinned], endpoint=hub.url, **env)
        url = hub.url
    (offline,) = run_resolve([pinned], endpoint=url, **env)  # the server is gone
    assert offline == online and Path(online["path"]).read_bytes() == b"weights" * 1000


def test_start_offline_names_both_ways_forward(tmp_path, monkeypatch, capsys, no_proxy):
    monkeypatch.setenv("HF_ENDPOINT", NOWHERE)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.chdir(tmp_path)
    assert start.main([]) == start.EXIT_OFFLINE
    err = capsys.readouterr().err
    assert "cannot be reached" in err and "Two ways forward" in err
    assert "hf download momolesang/InstantHMR instanthmr.onnx" in err
    assert "python install.py run --random-init" in err and "MEANINGLESS" in err
    assert "Traceback" not in err


def test_start_offline_detector_host(tmp_path, monkeypatch, capsys, no_proxy) -> None:
    monkeypatch.setattr(start, "RFDETR_WEIGHTS_URL", NOWHERE)
    monkeypatch.chdir(tmp_path)  # no models/rfdetr-nano.onnx here
    model = tmp_path / "m.onnx"
    model.write_bytes(b"x")
    assert start.main(["--model", str(model)]) == start.EXIT_OFFLINE
    err = capsys.readouterr().err
    assert "RF-DETR" in err and "does not resolve" in err and "--random-init" in err


def test_demo_arguments(monkeypatch) -> None:
    monkeypatch.setattr(start, "has_display", lambda: False)
    argv = start.demo_arguments(Path("m.onnx"), Path("d.onnx"), Path("out"), True, [])
    assert argv[argv.index("--export") + 1] == str(Path("out/sample-random-init-poses.jsonl"))
    assert "--headless" in argv and argv[argv.index("--model") + 1] == "m.onnx"
    assert argv[argv.index("--det-confidence") + 1] == "0"  # random boxes: every stage runs
    mine = ["--video", "v.mp4", "--export", "p.csv", "--save", "r.rrd"]
    argv = start.demo_arguments(Path("m.onnx"), Path("d.onnx"), Path("out"), False, mine)
    assert argv[-len(mine) :] == mine and argv.count("--export") == 1
    assert "--headless" not in argv and "--write-video" not in argv
    assert "--det-confidence" not in argv  # the released models keep the demo's default


def test_start_random_init_runs_the_sample_and_says_meaningless(
    tmp_path, monkeypatch, capsys, hmr_card_onnx, detector_onnx
) -> None:
    """With the random-init models already cached in models/, start runs the demo on them."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "models").mkdir()
    shutil.copy(hmr_card_onnx, tmp_path / start.RANDOM_HMR)
    shutil.copy(detector_onnx, tmp_path / start.RANDOM_DETECTOR)
    monkeypatch.setattr(start, "has_display", lambda: False)
    code = start.main(["--random-init", "--max-frames", "2", "--device", "cpu"])
    out = capsys.readouterr().out
    assert code == 0 and "MEANINGLESS" in out and "RANDOM-INIT" in out
    lines = (tmp_path / "out" / "sample-random-init-poses.jsonl").read_text().splitlines()
    assert json.loads(lines[0])["type"] == "header"
    assert sum(json.loads(x)["type"] == "frame" for x in lines) == 2
    assert sum(json.loads(x)["type"] == "person" for x in lines) == 4  # two boxes a frame
    assert (tmp_path / "out" / "sample-random-init-annotated.mp4").stat().st_size > 0


# ----------------------------------------------------------------------------- README and CI
def _first_code_block(text: str) -> list[str]:
    block = re.search(r"```bash\n(.*?)```", text, re.S)
    assert block is not None
    return [ln.split("#")[0].strip() for ln in block[1].splitlines() if ln.split("#")[0].strip()]


def test_readme_opens_with_exactly_two_commands_and_ci_runs_the_test_one() -> None:
    readme = (ROOT / "README.md").read_text()
    commands = _first_code_block(readme)
    assert commands == ["python3 install.py run", "python3 install.py test"]
    assert readme.index("```bash") < readme.index("## ")  # before any section
    ci = [
        ln.strip()
        for ln in (ROOT / ".ci" / "run").read_text().splitlines()
        if ln.strip() and not ln.lstrip().startswith("#")
    ]
    assert ci[-1] == commands[1]  # CI runs the README's test command, last
    assert sum("install.py" in ln for ln in ci) == 1 and "pytest" not in " ".join(ci)
