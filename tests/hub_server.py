"""A tiny local stand-in for the Hugging Face Hub, for download tests (test helper, not API).

It answers exactly the requests that ``huggingface_hub.hf_hub_download`` (2.x) makes for one
file, read from its source (``file_download.py``: ``get_hf_file_metadata``, ``http_get``;
``utils/_http.py``: ``hf_raise_for_status``, ``_httpx2_follow_hub_redirects_with_backoff``):

1. ``HEAD {endpoint}/{repo_id}/resolve/{revision}/{filename}``. The client reads
   ``X-Repo-Commit`` (required), ``X-Linked-Etag`` or ``ETag`` (required, becomes the blob
   name in the cache), ``X-Linked-Size`` or ``Content-Length`` (the expected size) and, for a
   redirect, ``Location``. It follows redirects only to the same origin; a redirect to
   another origin (the CDN that serves large LFS files) is not followed, and the client later
   sends its ``GET`` straight to ``Location``.
2. ``GET`` on the file itself (the CDN address, or the resolve URL for small files), with
   ``Range: bytes=N-`` when it resumes after a dropped connection.

Errors carry the Hub's ``X-Error-Code`` header, which the client maps to its exceptions:
``RepoNotFound`` (401, as the Hub answers unauthenticated clients), ``RevisionNotFound`` and
``EntryNotFound`` (404, with ``X-Repo-Commit``). No ``/api/...`` call is made for a single-file
download. The one API call ``huggingface_hub`` 2.4 makes is ``GET /api/agent-harnesses``
(``utils/_detect_agent.py``, fetched at most once a day for the user agent unless
``HF_HUB_DISABLE_TELEMETRY`` or offline mode is set); it gets an empty registry. Any other
path gets a plain 404. Every request is recorded, so tests can assert on them.

No Xet headers (``X-Xet-Hash``, ``Link: xet-auth``) are ever sent, so the client takes the
plain HTTP path even when ``hf_xet`` is installed.

Two ``ThreadingHTTPServer`` instances listen on 127.0.0.1 only, on random free ports: the
"hub" and the "cdn" (a different origin, like the real CDN). Use it as a context manager; it
stops and joins its threads on exit. ``fault`` makes the file GETs misbehave:

- ``"short"``: send half of the body with no ``Content-Length`` and close. The HTTP layer
  sees a normal end of body; only the size announced by the HEAD call reveals the loss.
- ``"drop"``: announce the full ``Content-Length``, send the first ``drop_keep`` fraction of
  the body and close (the peer hangs up). ``fault_times`` GETs are dropped; later GETs are
  served normally (``Range: bytes=N-`` is honoured with a 206).
- ``"drop_then_503"``: the first GET is dropped as above, every later GET gets a 503.
- ``"corrupt"``: the right size, the wrong bytes (one byte flipped), so the content does not
  match the sha256 the HEAD call announced.
- ``"not_hub"``: answer the HEAD with a 200 that lacks the Hub's headers (a proxy or web
  server that is not a Hub).
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

COMMIT = hashlib.sha1(b"instanthmr test commit").hexdigest()
FAULTS = (None, "short", "drop", "drop_then_503", "corrupt", "not_hub")
_RESOLVE = re.compile(r"^/(?P<repo>[^/]+/[^/]+)/resolve/(?P<rev>[^/]+)/(?P<file>.+)$")
_CDN = re.compile(r"^/cdn/(?P<sha>[0-9a-f]{64})$")
_RANGE = re.compile(r"^bytes=(?P<start>\d+)-$")


def git_blob_sha1(content: bytes) -> str:
    """The git object id of a file, which the Hub sends as the ``ETag`` of a non-LFS file."""
    return hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()


class HubServer:
    """Serve ``files`` (``{repo_id: {filename: bytes}}``) the way the Hub does, on loopback.

    Args:
        files: the repositories and their files.
        lfs: serve files like LFS files (302 to the "cdn" origin, ``X-Linked-Etag`` = sha256)
            rather than like small git files (200 from the resolve URL, ``ETag`` = git sha1).
        fault: one of ``FAULTS`` (see the module docstring); may be changed between calls.
        fault_times: how many GETs the ``"drop"`` fault affects.
        drop_keep: the fraction of the body a dropped GET still sends.
        commit: the commit id the repositories are at (served for ``main`` and for itself).
    """

    def __init__(
        self,
        files: Mapping[str, Mapping[str, bytes]],
        *,
        lfs: bool = True,
        fault: str | None = None,
        fault_times: int = 1,
        drop_keep: float = 0.5,
        commit: str = COMMIT,
    ) -> None:
        if fault not in FAULTS:
            raise ValueError(f"fault must be one of {FAULTS}, got {fault!r}")
        self.files = {repo: dict(entries) for repo, entries in files.items()}
        self.lfs = lfs
        self.fault = fault
        self.fault_times = fault_times
        self.drop_keep = drop_keep
        self.commit = commit
        self._lock = threading.Lock()
        self._requests: list[dict[str, Any]] = []
        self._gets_faulted = 0
        self._servers: list[ThreadingHTTPServer] = []
        self._threads: list[threading.Thread] = []

    # ------------------------------------------------------------------ lifecycle
    def __enter__(self) -> HubServer:
        handler = _make_handler(self)
        for _ in ("hub", "cdn"):
            server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
            server.daemon_threads = True
            thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
            thread.daemon = True
            thread.start()
            self._servers.append(server)
            self._threads.append(thread)
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def stop(self) -> None:
        """Stop both listeners and join their threads (idempotent)."""
        for server in self._servers:
            server.shutdown()
            server.server_close()
        for thread in self._threads:
            thread.join(timeout=5)
        self._servers.clear()
        self._threads.clear()

    @property
    def url(self) -> str:
        """The endpoint to put in ``HF_ENDPOINT``."""
        return f"http://127.0.0.1:{self._servers[0].server_address[1]}"

    @property
    def cdn_url(self) -> str:
        """The origin that serves LFS file bodies."""
        return f"http://127.0.0.1:{self._servers[1].server_address[1]}"

    # ------------------------------------------------------------------ bookkeeping
    @property
    def requests(self) -> list[dict[str, Any]]:
        """Every request received so far: ``{"origin", "method", "path", "range"}``."""
        with self._lock:
            return list(self._requests)

    def clear_requests(self) -> None:
        """Forget the recorded requests."""
        with self._lock:
            self._requests.clear()

    def _record(self, origin: str, method: str, path: str, range_header: str | None) -> None:
        with self._lock:
            self._requests.append(
                {"origin": origin, "method": method, "path": path, "range": range_header}
            )

    def _take_fault(self) -> str | None:
        """The fault to apply to this file GET (counts the limited ones)."""
        with self._lock:
            if self.fault == "drop":
                if self._gets_faulted >= self.fault_times:
                    return None
                self._gets_faulted += 1
                return "drop"
            if self.fault == "drop_then_503":
                self._gets_faulted += 1
                return "drop" if self._gets_faulted == 1 else "503"
            return self.fault

    def _find_sha(self, sha: str) -> bytes | None:
        for entries in self.files.values():
            for content in entries.values():
                if hashlib.sha256(content).hexdigest() == sha:
                    return content
        return None


def _make_handler(hub: HubServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        timeout = 10  # a stuck client cannot hold a thread for long

        def log_message(self, format: str, *args: Any) -> None:
            return

        @property
        def origin(self) -> str:
            return "hub" if self.server is hub._servers[0] else "cdn"

        def do_HEAD(self) -> None:
            self._dispatch(head=True)

        def do_GET(self) -> None:
            self._dispatch(head=False)

        # ------------------------------------------------------------------ routing
        def _dispatch(self, *, head: bool) -> None:
            path = self.path.split("?", 1)[0]
            hub._record(self.origin, self.command, path, self.headers.get("Range"))
            if self.origin == "hub" and path == "/api/agent-harnesses" and not head:
                body = json.dumps({"standardEnvVars": [], "harnesses": {}}).encode()
                headers = {"Content-Type": "application/json", "Content-Length": str(len(body))}
                self._send(200, headers, body, head=False)
                return
            match = _RESOLVE.match(path) if self.origin == "hub" else None
            if match:
                self._resolve(match["repo"], match["rev"], match["file"], head=head)
                return
            match = _CDN.match(path) if self.origin == "cdn" else None
            content = hub._find_sha(match["sha"]) if match else None
            if content is None:
                self._error(404, None, "Not found", head=head)
                return
            self._body(content, hashlib.sha256(content).hexdigest(), head=head)

        def _resolve(self, repo: str, rev: str, filename: str, *, head: bool) -> None:
            if repo not in hub.files:
                self._error(401, "RepoNotFound", "Repository not found", head=head)
                return
            if rev not in ("main", hub.commit):
                self._error(404, "RevisionNotFound", f"Invalid rev id: {rev}", head=head)
                return
            content = hub.files[repo].get(filename)
            if content is None:
                self._error(404, "EntryNotFound", "Entry not found", head=head, commit=True)
                return
            if hub.fault == "not_hub":
                self._send(200, {"Content-Length": str(len(content))}, b"", head=True)
                return
            if hub.lfs:
                sha = hashlib.sha256(content).hexdigest()
                headers = {
                    "Location": f"{hub.cdn_url}/cdn/{sha}",
                    "X-Repo-Commit": hub.commit,
                    "X-Linked-Etag": f'"{sha}"',
                    "X-Linked-Size": str(len(content)),
                    "ETag": f'W/"{git_blob_sha1(sha.encode())}"',
                    "Content-Length": "0",
                }
                self._send(302, headers, b"", head=True)
                return
            self._body(content, git_blob_sha1(content), head=head, commit=True)

        # ------------------------------------------------------------------ responses
        def _body(self, content: bytes, etag: str, *, head: bool, commit: bool = False) -> None:
            headers = {"ETag": f'"{etag}"', "Accept-Ranges": "bytes"}
            if commit:
                headers["X-Repo-Commit"] = hub.commit
            if head:
                headers["Content-Length"] = str(len(content))
                self._send(200, headers, b"", head=True)
                return
            fault = hub._take_fault()
            if fault == "503":
                self._error(503, None, "Service unavailable", head=False)
                return
            status, start = 200, 0
            range_match = _RANGE.match(self.headers.get("Range") or "")
            if range_match and int(range_match["start"]) < len(content):
                status, start = 206, int(range_match["start"])
                headers["Content-Range"] = f"bytes {start}-{len(content) - 1}/{len(content)}"
            body = content[start:]
            if fault == "corrupt":
                body = bytes([body[0] ^ 0xFF]) + body[1:]
            if fault == "short":
                self._send(status, headers, body[: len(body) // 2], head=False)  # no length
                return
            headers["Content-Length"] = str(len(body))
            if fault == "drop":
                body = body[: int(len(body) * hub.drop_keep)]
            self._send(status, headers, body, head=False)

        def _error(
            self, status: int, code: str | None, message: str, *, head: bool, commit: bool = False
        ) -> None:
            headers = {"Content-Type": "application/json"}
            if code is not None:
                headers["X-Error-Code"] = code
                headers["X-Error-Message"] = message
            if commit:
                headers["X-Repo-Commit"] = hub.commit
            body = json.dumps({"error": message}).encode()
            headers["Content-Length"] = str(len(body))
            self._send(status, headers, body, head=head)

        def _send(self, status: int, headers: dict[str, str], body: bytes, *, head: bool) -> None:
            self.send_response(status)
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("Connection", "close")
            self.end_headers()
            if not head and body:
                self.wfile.write(body)
            self.wfile.flush()
            self.close_connection = True

    return Handler
