"""Find the InstantHMR model file: a local path, or the release on the Hugging Face Hub.

The released weights live in the Hub repository ``momolesang/InstantHMR``
(https://huggingface.co/momolesang/InstantHMR): ``instanthmr.onnx`` (80,961,622 bytes, fp16 weights
with float32 inputs and outputs) and ``instanthmr.pth`` (about 461 MB PyTorch checkpoint).
The weights are under the SAM licence, because they are distilled from
``facebook/sam-3d-body-dinov3``; the InstantHMR code is Apache-2.0.

Downloads go through ``huggingface_hub.hf_hub_download`` and its cache, so ``HF_HOME``,
``HF_HUB_CACHE``, ``HF_ENDPOINT`` and ``HF_HUB_OFFLINE`` work as usual. ``huggingface_hub``
reads those variables once, when it is first imported (often early, by ``timm`` or
``rfdetr``); this module also reads ``HF_ENDPOINT`` and ``HF_HUB_OFFLINE`` at call time, so
setting them later in the same process is honoured too (the model file is then neither
requested nor downloaded; ``huggingface_hub`` may still make its own once-a-day user-agent
request, so for a strictly offline process set the variables before Python starts).

What ``huggingface_hub`` already guarantees, and this module builds on: a download is written
to a process-unique temporary file and moved into the cache only once it is complete; its size
is checked against the size the Hub announced (``OSError: Consistency check failed``), a
dropped connection is resumed with ``Range`` a few times, and on any failure the temporary file
is deleted. What it does not check is the content, so a freshly downloaded LFS file is also
compared with the sha256 the Hub announced (its ``ETag``); a mismatch removes it from the cache.
Files the caller names by path are never written to.

The default model is pinned (:mod:`instanthmr.hmr.pinned`): the published file is downloaded
by its revision, its announced size and hash are checked before the download, its real size
and sha256 after it, and a cached copy is checked (size, blob hash) before it is returned.
A mismatch raises :class:`WeightsMismatchError` naming both hashes and how to accept another
file on purpose; what the failed download wrote is removed, and a good cached copy is never
replaced (a commit revision that is cached is never fetched again).
"""

from __future__ import annotations

import importlib
import os
import re
import socket
import threading
from pathlib import Path
from urllib.parse import urlsplit

from ..errors import OptionError, UserError
from .pinned import (
    RELEASED,
    PinnedFile,
    cached_copy_problem,
    content_problem,
    how_to_accept_another,
)

DEFAULT_MODEL_NAME = "instanthmr"
STANDIN_NAME = "standin"  # the stand-in shipped in the package (instanthmr.hmr.standin)
DEFAULT_REPO_ID = RELEASED.repo_id
DEFAULT_FILENAME = RELEASED.filename
HUB_URL = f"https://huggingface.co/{DEFAULT_REPO_ID}"
WEIGHTS_LICENSE = (
    "the InstantHMR weights are under the SAM licence (distilled from "
    "facebook/sam-3d-body-dinov3); the InstantHMR code is Apache-2.0"
)

_SHA256 = re.compile(r"[0-9a-f]{64}")
_TRUE = {"1", "on", "yes", "true"}

__all__ = [
    "DEFAULT_FILENAME",
    "DEFAULT_MODEL_NAME",
    "DEFAULT_REPO_ID",
    "HUB_URL",
    "RELEASED",
    "WEIGHTS_LICENSE",
    "PinnedFile",
    "WeightsDownloadError",
    "WeightsMismatchError",
    "WeightsNotFoundError",
    "resolve_model",
    "unreachable",
]


class WeightsNotFoundError(UserError, FileNotFoundError):
    """The model file is not available locally and could not be fetched from the Hub.

    The message says why and exactly how to get the file; the original exception (if any) is
    chained as ``__cause__``.
    """


class WeightsDownloadError(WeightsNotFoundError):
    """A download started but did not give a complete, verified file (nothing was cached)."""


class WeightsMismatchError(WeightsDownloadError):
    """The Hub (or the cache) offered another file than the pinned published one.

    The message names both hashes and how to accept another file on purpose.
    """


def resolve_model(
    name_or_path: str | os.PathLike[str] | None = None,
    *,
    repo_id: str = DEFAULT_REPO_ID,
    filename: str = DEFAULT_FILENAME,
    revision: str | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    pinned: PinnedFile | None = RELEASED,
) -> Path:
    """Return the path of a model file, downloading it from the Hugging Face Hub if needed.

    Args:
        name_or_path: one of
            - ``None`` or ``"instanthmr"``: ``filename`` from the Hub repository ``repo_id``
              (by default the published ``instanthmr.onnx``, pinned: see ``pinned``),
              through the Hub cache;
            - ``"standin"``: the stand-in shipped in the package, MediaPipe's BlazePose in
              the InstantHMR contract (NOT InstantHMR: :mod:`instanthmr.hmr.standin`);
            - ``"hf://owner/repo[@revision][/path/in/repo]"``: any file on the Hub, taken as
              named, without the pin (``filename`` when the address names no file);
            - a local file path (returned resolved, never modified), or a directory that
              contains ``filename``.
        repo_id: Hub repository used for ``None`` / ``"instanthmr"``.
        filename: file in that repository (e.g. ``"instanthmr.pth"``).
        revision: branch, tag or commit; ``None`` means ``main`` (or the ``@revision`` of an
            ``hf://`` address), or the pinned revision for the pinned file.
        cache_dir: Hub cache folder; ``None`` uses ``HF_HUB_CACHE`` / ``HF_HOME``.
        pinned: the file ``None`` / ``"instanthmr"`` must be when ``repo_id``, ``filename``
            and ``revision`` are left at (or equal to) its own: downloaded at its revision,
            size and sha256 checked before first use. None turns the check off.

    Returns:
        The absolute path of the file (for Hub files, the path inside the Hub cache).

    Raises:
        WeightsNotFoundError: a local path does not exist, the Hub has no such repository,
            revision or file, the network or offline mode prevents the download and the file
            is not cached. The message tells how to get the file.
        WeightsDownloadError: the download was cut short or its content does not match the
            checksum the Hub announced; the cache keeps no partial or corrupt copy.
        WeightsMismatchError: the pinned file's download or cached copy is another file
            (size or sha256); nothing is kept, and the message says how to accept another
            file on purpose.
        ValueError: a malformed ``hf://`` address or repository id.
    """
    if isinstance(name_or_path, str) and name_or_path.strip().lower() == STANDIN_NAME:
        from .standin import standin_path

        return standin_path()
    if name_or_path is None or (
        isinstance(name_or_path, str) and name_or_path.strip().lower() == DEFAULT_MODEL_NAME
    ):
        pin = pinned
        if pin is not None and (repo_id, filename) == (pin.repo_id, pin.filename) and (
            revision in (None, pin.revision)
        ):
            return _from_hub(repo_id, filename, revision=pin.revision, cache_dir=cache_dir,
                             pin=pin)  # fmt: skip
        return _from_hub(repo_id, filename, revision=revision, cache_dir=cache_dir)
    if isinstance(name_or_path, str) and name_or_path.startswith("hf://"):
        from huggingface_hub import parse_hf_uri

        try:
            uri = parse_hf_uri(name_or_path)
        except ValueError as exc:  # HfUriError, with the reason
            raise OptionError(
                f"{' '.join(str(exc).split())} Write hf://owner/repo/path/to/file.onnx "
                "(optionally owner/repo@revision)"
            ) from None
        if not uri.is_repo:  # an address without a file means ``filename``
            raise OptionError(
                f"{name_or_path!r} does not name a file in a Hub repository; "
                "use hf://owner/repo/path/to/file.onnx (optionally owner/repo@revision)."
            )
        return _from_hub(
            uri.id,
            uri.path_in_repo or filename,
            revision=uri.revision or revision,
            cache_dir=cache_dir,
            repo_type=uri.type,
        )
    if not isinstance(name_or_path, (str, os.PathLike)):
        raise TypeError(
            f"name_or_path must be a path, 'instanthmr', an hf:// address or None, "
            f"got {type(name_or_path).__name__}"
        )
    return _local(Path(name_or_path), filename)


# --------------------------------------------------------------------------- local files
def _local(path: Path, filename: str) -> Path:
    expanded = path.expanduser()
    if expanded.is_file():
        return expanded.resolve()
    if expanded.is_dir():
        candidate = expanded / filename
        if candidate.is_file():
            return candidate.resolve()
        raise WeightsNotFoundError(
            f"{expanded} is a directory without {filename} in it. Pass the model file itself.\n"
            + _how_to_get(DEFAULT_REPO_ID, DEFAULT_FILENAME, None)
        )
    text = str(path)
    looks_like_path = bool(path.suffix) or os.sep in text or "/" in text
    if looks_like_path:
        hint = ""
        first = text.split("/", 1)[0]
        if text.count("/") >= 2 and first not in ("", ".", "..", "~") and not Path(first).exists():
            hint = f" (for a file on the Hub, write hf://{text})"
        problem = f"Model file not found: {expanded}{hint}."
    else:
        problem = (
            f"{text!r} is neither an existing file nor a known model name "
            f"(known: {DEFAULT_MODEL_NAME!r}, {STANDIN_NAME!r}, or hf://owner/repo/file.onnx)."
        )
    raise WeightsNotFoundError(
        problem + "\n" + _how_to_get(DEFAULT_REPO_ID, DEFAULT_FILENAME, None)
    )


# --------------------------------------------------------------------------- the Hub
def _from_hub(
    repo_id: str,
    filename: str,
    *,
    revision: str | None,
    cache_dir: str | os.PathLike[str] | None,
    repo_type: str = "model",
    pin: PinnedFile | None = None,
) -> Path:
    from huggingface_hub import (
        constants,
        get_hf_file_metadata,
        hf_hub_download,
        hf_hub_url,
        try_to_load_from_cache,
    )
    from huggingface_hub.errors import (
        HFValidationError,
        LocalEntryNotFoundError,
        RemoteEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    offline = constants.HF_HUB_OFFLINE or _env_true("HF_HUB_OFFLINE")
    endpoint = (os.environ.get("HF_ENDPOINT") or constants.ENDPOINT).rstrip("/")
    where = f"{filename!r} from {repo_id!r}" + (f" at revision {revision!r}" if revision else "")
    how = _how_to_get(repo_id, filename, revision, repo_type)
    problem = "" if offline else unreachable(endpoint)
    if problem:  # say so at once instead of waiting through the HTTP client's retries
        try:
            cached = try_to_load_from_cache(
                repo_id, filename, cache_dir=cache_dir, revision=revision, repo_type=repo_type
            )
        except HFValidationError as exc:
            raise OptionError(f"Invalid Hub repository or file for {where}: {exc}") from exc
        if isinstance(cached, str):
            return _checked_cache(Path(cached), pin, where)  # the cached copy, as offline
        raise WeightsNotFoundError(
            f"Could not download {where}: the Hub at {endpoint} cannot be reached from this "
            f"machine: {problem}.\n{how}"
        )
    try:
        before = try_to_load_from_cache(
            repo_id, filename, cache_dir=cache_dir, revision=revision, repo_type=repo_type
        )
        stale = ""
        if pin is not None and isinstance(before, str):
            stale = cached_copy_problem(Path(before), pin)
            if not stale or offline:
                return _checked_cache(Path(before), pin, where)  # good (or offline: say why)
        if pin is not None and not offline:  # what the Hub announces, before downloading
            meta = get_hf_file_metadata(
                hf_hub_url(repo_id, filename, revision=revision, repo_type=repo_type,
                           endpoint=endpoint), endpoint=endpoint,
            )  # fmt: skip
            announced = (meta.etag or "").strip('"').removeprefix("W/").strip('"')
            other = meta.size != pin.size or (
                _SHA256.fullmatch(announced) is not None and announced != pin.sha256
            )
            if meta.commit_hash is not None and other:  # (not a Hub: hf_hub_download says so)
                raise WeightsMismatchError(
                    f"The Hub at {endpoint} announces {where} as {meta.size:,} bytes with "
                    f"sha256 {announced or '(none)'}, not the published file ({pin.size:,} "
                    f"bytes, sha256 {pin.sha256}). Nothing was downloaded.\n"
                    + how_to_accept_another(pin)
                )
        path = Path(
            hf_hub_download(
                repo_id,
                filename,
                repo_type=repo_type,
                revision=revision,
                cache_dir=cache_dir,
                endpoint=endpoint,
                local_files_only=offline,
                force_download=bool(stale),  # a damaged cached copy is fetched again
            )
        )
    except WeightsMismatchError:
        raise
    except LocalEntryNotFoundError as exc:
        if offline:
            why = (
                f"Offline mode is on (HF_HUB_OFFLINE) and {where} is not in the Hugging Face "
                f"cache ({cache_dir or constants.HF_HUB_CACHE})."
            )
        else:
            why = f"Could not download {where} via {endpoint}: {_first_line(exc.__cause__ or exc)}"
        raise WeightsNotFoundError(f"{why}\n{how}") from exc
    except RepositoryNotFoundError as exc:  # also gated / private repositories
        raise WeightsNotFoundError(
            f"The Hub at {endpoint} has no (public) repository {repo_id!r}.\n{how}"
        ) from exc
    except RevisionNotFoundError as exc:
        raise WeightsNotFoundError(
            f"The Hub repository {repo_id!r} has no revision {revision!r}.\n{how}"
        ) from exc
    except RemoteEntryNotFoundError as exc:
        raise WeightsNotFoundError(
            f"The Hub repository {repo_id!r} has no file {filename!r}"
            + (f" at revision {revision!r}" if revision else "")
            + f".\n{how}"
        ) from exc
    except HFValidationError as exc:
        raise OptionError(f"Invalid Hub repository or file for {where}: {exc}") from exc
    except (OSError, *_transport_errors()) as exc:
        raise WeightsDownloadError(
            f"The download of {where} via {endpoint} failed: {_first_line(exc)}\n"
            "Nothing was stored in the cache; run the same command again to retry.\n" + how
        ) from exc
    fresh = stale or not isinstance(before, str) or Path(before).resolve() != path.resolve()
    if fresh:
        _verify_blob(path, where, how)
    if pin is not None:
        problem, _ = content_problem(path, pin)
        if problem:
            _drop_download(path)
            raise WeightsMismatchError(
                f"The download of {where} is not the published InstantHMR file: {problem}. "
                "It was removed from the cache (no good copy was replaced).\n"
                + how_to_accept_another(pin)
            )
    return path


def _checked_cache(path: Path, pin: PinnedFile | None, where: str) -> Path:
    """A cached copy, checked against the pin when there is one."""
    problem = cached_copy_problem(path, pin) if pin is not None else ""
    if problem:
        assert pin is not None
        raise WeightsMismatchError(
            f"The cached copy of {where} ({path}) is not the published InstantHMR file: "
            f"{problem}. Delete it and download again with the Hub reachable (unset "
            "HF_HUB_OFFLINE).\n" + how_to_accept_another(pin)
        )
    return path


def _drop_download(path: Path) -> None:
    """Remove a download that failed its check: the cache link and the blob it points to."""
    blob = path.resolve()
    path.unlink(missing_ok=True)
    if blob != path:
        blob.unlink(missing_ok=True)


def _verify_blob(path: Path, where: str, how: str) -> None:
    """Check a fresh LFS download against its sha256 (the blob's name); drop it on mismatch."""
    from huggingface_hub.utils.sha import sha_fileobj

    blob = path.resolve()
    if blob.parent.name != "blobs" or not _SHA256.fullmatch(blob.name):
        return  # not an LFS file (git sha1 ETag) or no symlinks: nothing to compare with
    with blob.open("rb") as f:
        actual = sha_fileobj(f).hex()
    if actual == blob.name:
        return
    path.unlink(missing_ok=True)
    blob.unlink(missing_ok=True)
    raise WeightsDownloadError(
        f"The download of {where} is corrupt: its sha256 is {actual}, the Hub announced "
        f"{blob.name}. The file was removed from the cache; run the same command again.\n{how}"
    )


def _how_to_get(repo_id: str, filename: str, revision: str | None, repo_type: str = "model") -> str:
    """The instructions that end every error: where the file is and how to fetch it by hand."""
    options = "" if repo_type == "model" else f" --repo-type {repo_type}"
    if revision:
        options += f" --revision {revision}"
    local = f"models/{filename}"
    page = f"https://huggingface.co/{'' if repo_type == 'model' else repo_type + 's/'}{repo_id}"
    lines = [
        "To get it:",
        f"  - download it by hand (on any machine with internet access) from {page}:",
        f"      hf download {repo_id} {filename}{options} --local-dir models/",
        f"    then pass the file explicitly: --model {local}  (Python: resolve_model({local!r}));",
        "  - or let InstantHMR download it into the Hugging Face cache: unset HF_HUB_OFFLINE and",
        "    make the Hub reachable (set HF_ENDPOINT to use a mirror).",
    ]
    if repo_id == DEFAULT_REPO_ID:
        lines += [
            "  - for offline testing only, a model that runs but predicts meaningless poses:",
            "      python tools/export_onnx.py --random-init"
            " --output models/instanthmr-random.onnx",
            "    or set up and run everything with random-init models: python install.py run"
            " --random-init",
            "  - for real body motion without InstantHMR: --model standin, MediaPipe's BlazePose"
            " shipped in the",
            "    package (a labelled stand-in: NOT InstantHMR, no body-model parameters),",
            f"Licence: {WEIGHTS_LICENSE}.",
        ]
    return "\n".join(lines)


PROXY_VARIABLES = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY",
                   "all_proxy")  # fmt: skip


def unreachable(url: str, timeout: float = 3.0) -> str:
    """Why ``url``'s host cannot be reached, or "" when a TCP connection to it opens.

    A quick check (name lookup and connect, each within ``timeout`` seconds) made before a
    download, so a machine without network access hears so at once rather than after the
    HTTP client's retries. Behind a proxy (``HTTPS_PROXY`` and friends) the proxy does the
    lookup, so nothing is checked and "" is returned.
    """
    parts = urlsplit(url)
    host = parts.hostname
    if not host or any(os.environ.get(v) for v in PROXY_VARIABLES):
        return ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    found: list[object] = []

    def lookup() -> None:
        try:
            found.append(socket.getaddrinfo(host, port, type=socket.SOCK_STREAM))
        except OSError as exc:
            found.append(exc)

    thread = threading.Thread(target=lookup, daemon=True)  # getaddrinfo has no timeout
    thread.start()
    thread.join(timeout)
    if not found:
        return f"no answer from DNS for {host} within {timeout:g} s"
    if isinstance(found[0], OSError):
        return f"the name {host} does not resolve (DNS: {found[0]})"
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError as exc:
        return f"cannot connect to {host}:{port} ({exc or type(exc).__name__})"
    return ""


def _transport_errors() -> tuple[type[BaseException], ...]:
    """Base exceptions of the HTTP client huggingface_hub uses (httpx2 in 2.x, httpx in 1.x)."""
    found: list[type[BaseException]] = []
    for module_name in ("httpx2", "httpx"):
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        found.append(module.HTTPError)
    return tuple(found)


def _env_true(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in _TRUE


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    first = text.splitlines()[0] if text else ""
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__
