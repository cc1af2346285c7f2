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

import onnx
import pytest
from test_weights import FILE, REPO, HubServer, run_resolve

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
    assert f"hf download {REPO} {FILE} --local-dir models/" in res["message"]
    assert "install.py run --random-init" in res["message"]


def test_unreachable_hub_uses_the_cached_copy(tmp_path) -> None:
    env = {"hf_home": tmp_path / "hf", "cwd": tmp_path}
    with HubServer({REPO: {FILE: b"weights" * 1000}}) as hub:
        (online,) = run_resolve([{}], endpoint=hub.url, **env)
        url = hub.url
    (offline,) = run_resolve([{}], endpoint=url, **env)  # the server is gone
    assert offline == online and Path(online["path"]).read_bytes() == b"weights" * 1000


def test_start_fully_offline_runs_the_stand_in_on_the_embedded_detector(
    tmp_path, monkeypatch, capsys, no_proxy
):
    """No Hub, no cached weights, no RF-DETR anywhere and its host unreachable: the first run
    still works, with the two models inside the package (the stand-in, said so before and
    after, and the embedded YOLOX-nano); nothing is downloaded or exported."""
    monkeypatch.setattr(start, "RFDETR_WEIGHTS_URL", NOWHERE)
    monkeypatch.setattr(start, "has_display", lambda: False)
    monkeypatch.setenv("HF_ENDPOINT", NOWHERE)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.chdir(tmp_path)
    assert start.main(["--max-frames", "2", "--device", "cpu"]) == 0
    out, err = capsys.readouterr()
    assert "cannot be reached" in out and "person detector: YOLOX-nano (embedded)" in out
    assert "--model standin --detector-variant yolox-nano" in out
    assert "detector YOLOX-nano (embedded)" in err and "Traceback" not in err
    assert not (tmp_path / "models").exists()
    header, persons = _header_and_persons(tmp_path / "out" / "sample-standin-poses.jsonl")
    assert header["model_kind"] == "standin-blazepose"
    assert header["detector"]["name"] == "YOLOX-nano (embedded)"
    # the stand-in drops a person whose crop BlazePose finds nobody in, never adds one
    assert all(1 <= p <= c for p, c in zip(persons, _yolox_counts(2), strict=True))


def _header_and_persons(path: Path) -> tuple[dict, list[int]]:
    records = [json.loads(x) for x in path.read_text().splitlines()]
    persons = [r["num_persons"] for r in records if r["type"] == "frame"]
    return records[0], persons


def _yolox_counts(frames: int) -> list[int]:
    """Persons the embedded YOLOX-nano finds on the sample's first frames, run directly."""
    from instanthmr.detector import create_detector
    from instanthmr.sources.files import open_source, sample_video_path

    det = create_detector("yolox-nano", device="cpu")
    with open_source(video=sample_video_path()) as src:
        return [len(det.detect(f.image)) for _, f in zip(range(frames), src, strict=False)]


def test_start_without_an_rfdetr_export_uses_the_embedded_detector(
    tmp_path, monkeypatch, capsys, no_proxy
) -> None:
    """On a CPU with no models/rfdetr-nano.onnx nothing is exported or downloaded (the
    RF-DETR host is unreachable here): the demo runs the YOLOX-nano inside the package."""
    from onnx_builders import build_oracle

    monkeypatch.setattr(start, "RFDETR_WEIGHTS_URL", NOWHERE)
    monkeypatch.setattr(start, "has_display", lambda: False)
    monkeypatch.chdir(tmp_path)
    model = tmp_path / "oracle.onnx"
    onnx.save(build_oracle(), model)
    assert start.main(["--model", str(model), "--max-frames", "2", "--device", "cpu"]) == 0
    out, err = capsys.readouterr()
    assert "--detector-variant yolox-nano" in out and "exporting" not in out
    assert "detector YOLOX-nano (embedded) on CPUExecutionProvider" in err
    assert not (tmp_path / "models").exists()
    header, persons = _header_and_persons(tmp_path / "out" / "sample-poses.jsonl")
    assert header["detector"]["name"] == "YOLOX-nano (embedded)"
    assert header["model_file"] == "oracle.onnx" and header["model_kind"] == "instanthmr"
    assert persons == _yolox_counts(2) and min(persons) >= 1


def test_start_with_an_rfdetr_export_uses_it(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "models").mkdir()
    export = tmp_path / "models" / "rfdetr-nano.onnx"
    export.write_bytes(b"x")
    assert start.released_detector(None) == Path("models/rfdetr-nano.onnx")
    argv = start.demo_arguments(Path("m.onnx"), Path("models/rfdetr-nano.onnx"), Path("o"),
                                "instanthmr", [])  # fmt: skip
    assert argv[argv.index("--detector-model") + 1] == str(Path("models/rfdetr-nano.onnx"))


def test_start_on_a_gpu_falls_back_to_yolox_when_rfdetr_cannot_download(
    tmp_path, monkeypatch, capsys, no_proxy
) -> None:
    """The GPU branch of the rule (exported RF-DETR) needs rfdetr's COCO checkpoint; where
    its host cannot be reached the embedded detector runs instead of failing."""
    from instanthmr.detector import choice

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(start, "RFDETR_WEIGHTS_URL", NOWHERE)
    monkeypatch.setattr(choice, "gpu_provider", lambda _device: "CUDAExecutionProvider")
    monkeypatch.setattr(choice, "rfdetr_installed", lambda: True)
    assert start.released_detector(None) is None
    out = capsys.readouterr().out
    assert "cannot be fetched" in out and "does not resolve" in out and "YOLOX-nano" in out


def test_demo_arguments(monkeypatch) -> None:
    monkeypatch.setattr(start, "has_display", lambda: False)
    argv = start.demo_arguments(Path("m.onnx"), None, Path("out"), "random-init", [])
    assert argv[argv.index("--export") + 1] == str(Path("out/sample-random-init-poses.jsonl"))
    assert "--headless" in argv and argv[argv.index("--model") + 1] == "m.onnx"
    assert argv[argv.index("--detector-variant") + 1] == "yolox-nano"
    assert "--detector-model" not in argv and "--det-confidence" not in argv  # real boxes
    mine = ["--video", "v.mp4", "--export", "p.csv", "--save", "r.rrd"]
    argv = start.demo_arguments(Path("m.onnx"), Path("d.onnx"), Path("out"), "instanthmr", mine)
    assert argv[-len(mine) :] == mine and argv.count("--export") == 1
    assert "--headless" not in argv and "--write-video" not in argv
    assert argv[argv.index("--detector-model") + 1] == "d.onnx"


def test_start_random_init_runs_the_sample_and_says_meaningless(
    tmp_path, monkeypatch, capsys, hmr_onnx
) -> None:
    """With the random-init HMR already cached in models/, start runs the demo on it with
    the embedded detector: real boxes, meaningless poses."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "models").mkdir()
    shutil.copy(hmr_onnx, tmp_path / start.RANDOM_HMR)
    monkeypatch.setattr(start, "has_display", lambda: False)
    code = start.main(["--random-init", "--max-frames", "2", "--device", "cpu"])
    out = capsys.readouterr().out
    assert code == 0 and "MEANINGLESS" in out and "RANDOM-INIT" in out
    header, persons = _header_and_persons(tmp_path / "out" / "sample-random-init-poses.jsonl")
    assert header["model_kind"] == "random-init"
    assert header["detector"]["name"] == "YOLOX-nano (embedded)"
    assert persons == _yolox_counts(2)
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
