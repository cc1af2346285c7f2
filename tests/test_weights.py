"""resolve_model: local paths, and real downloads from a local Hub stand-in (tests/hub_server.py).

The real ``huggingface_hub`` client talks HTTP to the server; nothing is patched or mocked.

Why each download runs in a subprocess: ``huggingface_hub`` reads ``HF_ENDPOINT``, ``HF_HOME``
and ``HF_HUB_OFFLINE`` once, when it is imported, and the pytest process may already have
imported it (``timm`` and ``rfdetr`` do) or may carry the developer's own ``HF_*`` settings
(``HF_HUB_OFFLINE=1`` would block every request in-process). A fresh interpreter with an
explicit environment is exactly what a user's shell gives, and it keeps every test
independent of the others. The child imports ``huggingface_hub`` first, as a real program
would, and may set variables afterwards (``HF_HUB_OFFLINE`` set after import must be honoured
too). The server records every request, so "offline" can be checked as "no request at all".
Only argument and local-path checks, which never reach a network, run in-process.

The served bytes are random, not a model: resolve_model only finds files, it never loads them.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

from instanthmr.hmr.weights import (
    HUB_URL,
    RELEASED,
    WeightsDownloadError,
    WeightsMismatchError,
    WeightsNotFoundError,
    resolve_model,
)

sys.path.insert(0, str(Path(__file__).resolve().parent))
from hub_server import HubServer

REPO_ROOT = Path(__file__).resolve().parents[1]
REPO = "momolesang/InstantHMR"
FILE = "instanthmr.onnx"
CONTENT = random.Random(0).randbytes(200_000)
TEST_REV = hashlib.sha1(b"the test server's pinned commit").hexdigest()
RESOLVE_PATH = f"/{REPO}/resolve/{TEST_REV}/{FILE}"


def pin_for(content: bytes, **changes) -> dict:
    """A pin (as the child's JSON) for the served bytes: the default model, at TEST_REV."""
    pin = {"repo_id": REPO, "filename": FILE, "revision": TEST_REV, "size": len(content),
           "sha256": hashlib.sha256(content).hexdigest()}  # fmt: skip
    return {**pin, **changes}


PINNED = {"pin": pin_for(CONTENT)}  # resolve_model() pinned to what the test server serves

# The child prints one JSON line: for each call, the path, or the error's class names,
# message and cause. A call may set environment variables first ("setenv"), after
# huggingface_hub has been imported, and give a pin ("pin": PinnedFile fields) for the
# default model instead of the published file's.
CHILD = r"""
import json, os, sys
import huggingface_hub.constants  # read the HF_* variables now, as timm/rfdetr imports would
from instanthmr.hmr.weights import PinnedFile, resolve_model
results = []
for call in json.loads(sys.argv[1]):
    os.environ.update(call.get("setenv", {}))
    kwargs = dict(call.get("kwargs", {}))
    if "pin" in call:
        kwargs["pinned"] = PinnedFile(**call["pin"])
    try:
        path = resolve_model(*call.get("args", []), **kwargs)
        results.append({"path": str(path)})
    except Exception as exc:
        results.append({
            "error": [cls.__name__ for cls in type(exc).__mro__],
            "message": str(exc),
            "cause": None if exc.__cause__ is None else type(exc.__cause__).__name__,
        })
print(json.dumps(results))
"""


def run_resolve(
    calls: list[dict], *, endpoint: str, hf_home: Path, cwd: Path, offline: bool = False
) -> list[dict]:
    """Run resolve_model(**call) for each call in a fresh interpreter with a clean HF env."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("HF_", "HUGGINGFACE_", "TRANSFORMERS_"))
        and key.lower() not in ("http_proxy", "https_proxy", "all_proxy")
    }
    env.update(
        HF_ENDPOINT=endpoint,
        HF_HOME=str(hf_home),
        HF_HUB_DISABLE_XET="1",  # plain HTTP path even if hf_xet is installed
        HF_HUB_DISABLE_PROGRESS_BARS="1",
        NO_PROXY="127.0.0.1,localhost",
        PYTHONPATH=str(REPO_ROOT),
    )
    if offline:
        env["HF_HUB_OFFLINE"] = "1"
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, json.dumps(calls)],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def cache_of(hf_home: Path) -> Path:
    return hf_home / "hub"


def cached_path(hf_home: Path, repo: str = REPO, filename: str = FILE,
                revision: str = TEST_REV) -> str | None:  # fmt: skip
    """What an offline hf_hub_download would return (a pure filesystem lookup)."""
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(repo, filename, cache_dir=cache_of(hf_home), revision=revision)
    return found if isinstance(found, str) else None


def blob_files(hf_home: Path) -> list[Path]:
    return [p for p in cache_of(hf_home).glob("models--*/blobs/*") if p.is_file()]


def assert_instructions(message: str) -> None:
    """Every error tells where the weights are, how to fetch them and where to put them."""
    assert HUB_URL in message
    assert f"hf download {REPO} {FILE}" in message and "--local-dir models/" in message
    assert f"--model models/{FILE}" in message
    assert "HF_HUB_OFFLINE" in message
    assert "SAM licence" in message


@pytest.fixture
def hub():
    with HubServer({REPO: {FILE: CONTENT}}, commit=TEST_REV) as server:
        yield server


@pytest.fixture
def env(tmp_path: Path) -> dict:
    (tmp_path / "work").mkdir()
    return {"hf_home": tmp_path / "hf", "cwd": tmp_path / "work"}


# --------------------------------------------------------------------------- downloads
def test_pinned_download_by_revision_then_cached_copy_without_a_request(hub, env):
    first, second = run_resolve([PINNED, {"args": ["instanthmr"], **PINNED}],
                                endpoint=hub.url, **env)  # fmt: skip
    path = Path(first["path"])
    assert path.read_bytes() == CONTENT
    assert path.name == FILE and path.parent.name == TEST_REV  # the pinned revision
    assert path.is_relative_to(cache_of(env["hf_home"]))
    assert second["path"] == first["path"]
    file_gets = [r for r in hub.requests if r["method"] == "GET" and r["origin"] == "cdn"]
    assert len(file_gets) == 1  # the second call found the file in the cache
    heads = [r for r in hub.requests if r["method"] == "HEAD"]
    # the announced size and hash, then the download: both by revision, never "main"
    assert {r["path"] for r in heads} == {RESOLVE_PATH}
    allowed = {RESOLVE_PATH, "/api/agent-harnesses", file_gets[0]["path"]}
    assert {r["path"] for r in hub.requests} <= allowed


def test_offline_returns_cached_file_without_any_request(hub, env):
    (online,) = run_resolve([PINNED], endpoint=hub.url, **env)
    hub.clear_requests()
    (offline,) = run_resolve([PINNED], endpoint=hub.url, offline=True, **env)
    assert offline["path"] == online["path"]
    assert Path(offline["path"]).read_bytes() == CONTENT
    assert hub.requests == []


def test_small_git_file_is_served_from_the_resolve_url(env):
    with HubServer({REPO: {FILE: CONTENT}}, lfs=False, commit=TEST_REV) as server:
        (result,) = run_resolve([PINNED], endpoint=server.url, **env)
        origins = {r["origin"] for r in server.requests}
    assert Path(result["path"]).read_bytes() == CONTENT
    assert origins == {"hub"}


def test_hf_address_downloads_another_repo_file_at_a_revision(env):
    other = b"detector weights" * 1000
    with HubServer({"someone/rf-detr": {"onnx/nano.onnx": other}}) as server:
        results = run_resolve(
            [
                {"args": ["hf://someone/rf-detr/onnx/nano.onnx"]},
                {"args": [f"hf://someone/rf-detr@{server.commit}/onnx/nano.onnx"]},
                {"args": ["hf://someone/rf-detr"]},
                {"args": ["hf://datasets"]},
            ],
            endpoint=server.url,
            **env,
        )
    main, pinned, no_file, no_repo = results
    assert Path(main["path"]).read_bytes() == other
    assert pinned["path"] == main["path"]
    # an address without a file means the default file name
    assert no_file["cause"] == "RemoteEntryNotFoundError"
    assert "'someone/rf-detr' has no file 'instanthmr.onnx'" in no_file["message"]
    assert "ValueError" in no_repo["error"]


# --------------------------------------------------------------------------- errors
def test_offline_and_not_cached_says_how_to_get_the_file(hub, env):
    (result,) = run_resolve([{}], endpoint=hub.url, offline=True, **env)
    assert result["error"][0] == "WeightsNotFoundError"
    assert "FileNotFoundError" in result["error"]
    assert "Offline mode is on" in result["message"]
    assert result["cause"] == "LocalEntryNotFoundError"
    assert_instructions(result["message"])
    assert hub.requests == []


def test_missing_file_repo_and_revision_name_what_is_missing(hub, env):
    results = run_resolve(
        [
            {"kwargs": {"filename": "missing.onnx"}},
            {"kwargs": {"repo_id": "nobody/nothing"}},
            {"kwargs": {"revision": "v9"}},
        ],
        endpoint=hub.url,
        **env,
    )
    no_file, no_repo, no_rev = results
    assert no_file["cause"] == "RemoteEntryNotFoundError"
    assert f"{REPO!r} has no file 'missing.onnx'" in no_file["message"]
    assert f"hf download {REPO} missing.onnx --local-dir models/" in no_file["message"]
    assert no_repo["cause"] == "RepositoryNotFoundError"
    assert "'nobody/nothing'" in no_repo["message"]
    assert "https://huggingface.co/nobody/nothing" in no_repo["message"]
    assert no_rev["cause"] == "RevisionNotFoundError"
    assert "no revision 'v9'" in no_rev["message"]
    assert "--revision v9" in no_rev["message"]
    assert all(r["error"][0] == "WeightsNotFoundError" for r in results)
    assert blob_files(env["hf_home"]) == []


def test_endpoint_that_is_not_a_hub_gives_instructions(env):
    with HubServer({REPO: {FILE: CONTENT}}, fault="not_hub", commit=TEST_REV) as server:
        (result,) = run_resolve([PINNED], endpoint=server.url, **env)
    assert result["error"][0] == "WeightsNotFoundError"
    assert f"Could not download 'instanthmr.onnx' from {REPO!r}" in result["message"]
    assert "X-Repo-Commit" in result["message"]  # huggingface_hub's reason, passed on
    assert_instructions(result["message"])


def test_short_body_fails_clearly_caches_nothing_and_spares_user_files(env):
    user_file = env["cwd"] / "models" / FILE
    user_file.parent.mkdir()
    user_file.write_bytes(b"the user's own model")
    mtime = user_file.stat().st_mtime_ns
    with HubServer({REPO: {FILE: CONTENT}}, fault="short", commit=TEST_REV) as server:
        (failed,) = run_resolve([PINNED], endpoint=server.url, **env)
        assert failed["error"][:2] == ["WeightsDownloadError", "WeightsNotFoundError"]
        assert "Consistency check failed" in failed["message"]
        assert "Nothing was stored in the cache" in failed["message"]
        assert_instructions(failed["message"])
        assert cached_path(env["hf_home"]) is None
        assert blob_files(env["hf_home"]) == []  # no partial or .incomplete file either
        server.fault = None  # the next attempt is not poisoned by the failed one
        (retried,) = run_resolve([PINNED], endpoint=server.url, **env)
    assert Path(retried["path"]).read_bytes() == CONTENT
    assert user_file.read_bytes() == b"the user's own model"
    assert user_file.stat().st_mtime_ns == mtime


def test_dropped_connection_is_resumed_with_a_range_request(env):
    # huggingface_hub retries a body cut short (peer closed before Content-Length bytes) and
    # resumes after what it has written, which it does in 10 MiB chunks: hence the file size.
    from huggingface_hub import constants

    chunk = constants.DOWNLOAD_CHUNK_SIZE  # 10 MiB in 2.4
    content = random.Random(1).randbytes(chunk + 200_000)
    with HubServer({REPO: {FILE: content}}, fault="drop", drop_keep=0.99,
                   commit=TEST_REV) as server:  # fmt: skip
        (result,) = run_resolve([{"pin": pin_for(content)}], endpoint=server.url, **env)
        gets = [r for r in server.requests if r["origin"] == "cdn"]
    assert Path(result["path"]).read_bytes() == content
    assert [r["range"] for r in gets] == [None, f"bytes={chunk}-"]


def test_dropped_connection_then_server_error_caches_nothing(env):
    with HubServer({REPO: {FILE: CONTENT}}, fault="drop_then_503", commit=TEST_REV) as server:
        (result,) = run_resolve([PINNED], endpoint=server.url, **env)
    assert result["error"][0] == "WeightsDownloadError"
    assert result["cause"] == "HfHubHTTPError"
    assert "503" in result["message"]
    assert cached_path(env["hf_home"]) is None
    assert blob_files(env["hf_home"]) == []


def test_corrupt_download_is_removed_from_the_cache(env):
    with HubServer({REPO: {FILE: CONTENT}}, fault="corrupt", commit=TEST_REV) as server:
        (failed,) = run_resolve([PINNED], endpoint=server.url, **env)
        assert failed["error"][0] == "WeightsDownloadError"
        assert "corrupt" in failed["message"]
        assert cached_path(env["hf_home"]) is None
        assert blob_files(env["hf_home"]) == []
        server.fault = None
        (retried,) = run_resolve([PINNED], endpoint=server.url, **env)
    assert Path(retried["path"]).read_bytes() == CONTENT


def test_offline_set_after_import_is_honoured(hub, env):
    (result,) = run_resolve([{"setenv": {"HF_HUB_OFFLINE": "1"}}], endpoint=hub.url, **env)
    assert result["error"][0] == "WeightsNotFoundError"
    assert "Offline mode is on" in result["message"]
    # huggingface_hub itself still fetches its user-agent registry once (it read the
    # variable at import), but the model file is never requested.
    assert {r["path"] for r in hub.requests} <= {"/api/agent-harnesses"}


def test_malformed_hub_names_raise_value_error(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # validation comes first; never reach a network
    with pytest.raises(ValueError, match="Invalid Hub repository"):
        resolve_model(repo_id="not a repo", cache_dir=tmp_path)
    with pytest.raises(ValueError, match="namespace/name"):
        resolve_model("hf://just-a-name")


# --------------------------------------------------------------------------- the pin
def test_published_file_is_pinned_by_revision_size_and_hash():
    assert RELEASED.repo_id == REPO and RELEASED.filename == FILE
    assert RELEASED.revision == "3504446fc31e7f76fdb1cd7e463189e7cf0fdd0f"
    assert RELEASED.size == 80_961_622
    assert RELEASED.sha256 == "f717558094f57d7c9cd084d7981874dbcc3f08e7308501eb98c12844e2cce3b7"


def assert_accept_another(message: str) -> None:
    """A mismatch says how to take another file on purpose."""
    assert f"--model hf://{REPO}@REVISION/{FILE}" in message
    assert f"--model path/to/{FILE}" in message


def test_another_file_at_the_pinned_revision_is_refused_before_download(env):
    """The default model: a server offering other bytes at the published revision."""
    with HubServer({REPO: {FILE: CONTENT}}, commit=RELEASED.revision) as server:
        (result,) = run_resolve([{}], endpoint=server.url, **env)
        gets = [r for r in server.requests if r["method"] == "GET" and r["origin"] == "cdn"]
    assert result["error"][:3] == ["WeightsMismatchError", "WeightsDownloadError",
                                   "WeightsNotFoundError"]  # fmt: skip
    message = result["message"]
    assert hashlib.sha256(CONTENT).hexdigest() in message and RELEASED.sha256 in message
    assert "200,000 bytes" in message and "80,961,622 bytes" in message
    assert "Nothing was downloaded" in message
    assert_accept_another(message)
    assert gets == [] and blob_files(env["hf_home"]) == []


def test_wrong_hash_after_download_is_removed(env):
    """Right size, no sha256 announced (a git file's sha1 ETag): the content check after
    the download catches it, and the file is not kept."""
    wrong = pin_for(CONTENT, sha256="0" * 64)
    with HubServer({REPO: {FILE: CONTENT}}, lfs=False, commit=TEST_REV) as server:
        (result,) = run_resolve([{"pin": wrong}], endpoint=server.url, **env)
    assert result["error"][0] == "WeightsMismatchError"
    message = result["message"]
    assert f"sha256 {hashlib.sha256(CONTENT).hexdigest()} (200,000 bytes)" in message
    assert f"expected {'0' * 64} (200,000 bytes)" in message
    assert "removed from the cache" in message
    assert_accept_another(message)
    assert cached_path(env["hf_home"]) is None and blob_files(env["hf_home"]) == []


@pytest.mark.parametrize("fault", ["short", "corrupt", "other bytes"])
def test_a_bad_download_never_replaces_a_good_cached_copy(env, fault):
    with HubServer({REPO: {FILE: CONTENT}}, commit=TEST_REV) as server:
        (good,) = run_resolve([PINNED], endpoint=server.url, **env)
        if fault == "other bytes":
            server.files[REPO][FILE] = b"x" * len(CONTENT)
        else:
            server.fault = fault
        server.clear_requests()
        (again,) = run_resolve([{"args": ["instanthmr"], **PINNED}], endpoint=server.url, **env)
        file_requests = [r for r in server.requests if r["path"] != "/api/agent-harnesses"]
    assert again["path"] == good["path"]
    assert Path(again["path"]).read_bytes() == CONTENT
    assert file_requests == []  # a cached pinned revision is never fetched again


def test_a_damaged_cached_copy_is_fetched_again(env):
    with HubServer({REPO: {FILE: CONTENT}}, commit=TEST_REV) as server:
        (good,) = run_resolve([PINNED], endpoint=server.url, **env)
        blob = Path(good["path"]).resolve()
        blob.write_bytes(CONTENT[:1000])  # truncated on disk after the download
        (offline,) = run_resolve([PINNED], endpoint=server.url, offline=True, **env)
        (again,) = run_resolve([PINNED], endpoint=server.url, **env)
    assert offline["error"][0] == "WeightsMismatchError"
    assert "is 1,000 bytes, the pinned file 200,000" in offline["message"]
    assert Path(again["path"]).read_bytes() == CONTENT


def test_another_revision_or_a_local_file_is_accepted_on_purpose(env, tmp_path):
    other = b"a newer upstream file" * 100
    with HubServer({REPO: {FILE: other}}, commit=TEST_REV) as server:
        named, no_file = run_resolve(
            [{"args": [f"hf://{REPO}@{TEST_REV}/{FILE}"]}, {"args": [f"hf://{REPO}@{TEST_REV}"]}],
            endpoint=server.url, **env,
        )  # fmt: skip
    assert Path(named["path"]).read_bytes() == other  # no pin on an explicit address
    assert no_file["path"] == named["path"]
    local = tmp_path / "mine.onnx"
    local.write_bytes(b"my own export")
    assert resolve_model(local) == local.resolve()


# --------------------------------------------------------------------------- local files
def test_existing_local_file_is_returned_resolved_and_untouched(tmp_path, monkeypatch):
    model = tmp_path / "models" / "x.onnx"
    model.parent.mkdir()
    model.write_bytes(b"model bytes")
    mtime = model.stat().st_mtime_ns
    monkeypatch.chdir(tmp_path)
    assert resolve_model("models/x.onnx") == model.resolve()
    assert resolve_model(Path("models") / "x.onnx") == model.resolve()
    assert resolve_model(tmp_path / "models" / ".." / "models" / "x.onnx") == model.resolve()
    assert model.read_bytes() == b"model bytes"
    assert model.stat().st_mtime_ns == mtime


def test_directory_with_the_model_file_is_accepted(tmp_path):
    (tmp_path / FILE).write_bytes(b"x")
    assert resolve_model(tmp_path) == (tmp_path / FILE).resolve()
    with pytest.raises(WeightsNotFoundError, match=r"directory without instanthmr\.pth"):
        resolve_model(tmp_path, filename="instanthmr.pth")


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("models/nope.onnx", "Model file not found"),
        ("nope.onnx", "Model file not found"),
        ("someone/repo/file.onnx", "write hf://someone/repo/file.onnx"),
        ("nope", "neither an existing file nor a known model name"),
    ],
)
def test_missing_local_path_says_so_and_how_to_get_the_file(tmp_path, monkeypatch, name, expected):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FileNotFoundError, match=expected) as info:
        resolve_model(name)
    assert isinstance(info.value, WeightsNotFoundError)
    assert_instructions(str(info.value))


def test_wrong_argument_type_is_rejected():
    with pytest.raises(TypeError, match="name_or_path must be"):
        resolve_model(3)  # type: ignore[arg-type]


def test_download_errors_are_file_not_found_errors():
    assert issubclass(WeightsMismatchError, WeightsDownloadError)
    assert issubclass(WeightsDownloadError, WeightsNotFoundError)
    assert issubclass(WeightsNotFoundError, FileNotFoundError)
