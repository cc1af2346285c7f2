"""``instanthmr serve``: the browser app (also ``python demo.py --serve-app``).

Builds a :class:`~instanthmr.pipeline.PosePipeline` from the demo's pipeline flags and serves
:func:`instanthmr.webapp.create_app` on uvicorn. Binds 127.0.0.1 unless ``--host`` says
otherwise; any other host prints a warning and should come with ``--token``. Guide:
``docs/app.md``.

Flags are checked when they are parsed (a port outside 1..65535, an empty token, an
infinite or NaN limit are refused in one line), and the address is bound before the models
load, so a port in use or a host that does not resolve is reported at once.

Exit codes (:mod:`instanthmr.commands.errors`): 2 a problem with the model, the device,
the address or a flag; after a graceful stop, 130 for Ctrl-C and 143 for SIGTERM.
"""

from __future__ import annotations

import argparse
import errno
import ipaddress
import math
import socket
import sys
from typing import Any

from ..errors import OptionError
from .demo_world import add_world_arguments, check_world_flags, world_option
from .errors import CommandParser, command
from .options import add_pipeline_options, pipeline_options

MB = 1_000_000
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1", "[::1]")


def _positive(kind: type) -> Any:
    def parse(text: str) -> Any:
        value = kind(text)
        if not (math.isfinite(value) and value > 0):
            raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text}")
        return value

    return parse


def _port(text: str) -> int:
    value = int(text)
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be a TCP port in 1..65535, got {text}")
    return value


def _token(text: str) -> str:
    if not text:
        raise argparse.ArgumentTypeError("must not be empty (leave --token out for no token)")
    if any(c.isspace() or not c.isprintable() for c in text) or not text.isascii():
        raise argparse.ArgumentTypeError(
            "must be printable ASCII without spaces (it travels in URLs and headers)"
        )
    return text


def build_parser(prog: str | None = None) -> argparse.ArgumentParser:
    """The serve command line: the demo's pipeline flags plus the server's own."""
    parser = CommandParser(
        prog=prog,
        command="serve",
        description="Serve the InstantHMR browser app: webcam or upload in, people in 3D out.",
        epilog="Then open http://127.0.0.1:8000 (add ?token=... when --token is set). "
        "Guide: docs/app.md",
    )
    add_pipeline_options(parser)
    add_world_arguments(parser)
    # fmt: off
    srv = parser.add_argument_group("server")
    srv.add_argument("--host", default="127.0.0.1",
                     help="address to bind (default: 127.0.0.1, this machine only); "
                     "0.0.0.0 exposes the app to the network: set --token too")
    srv.add_argument("--port", type=_port, default=8000, help="port, 1..65535 (default: 8000)")
    srv.add_argument("--token", type=_token, help="require this token on /ws, /health and /api/* "
                     "(the page takes it from ?token=...); set it whenever the host is "
                     "not loopback")
    srv.add_argument("--max-upload-mb", type=_positive(float), default=50.0, metavar="MB",
                     help="largest upload for /api/predict (default: 50)")
    srv.add_argument("--max-video-frames", type=_positive(int), default=300, metavar="N",
                     help="frames of an uploaded video that are processed (default: 300)")
    srv.add_argument("--max-queue", type=_positive(int), default=8, metavar="N",
                     help="inference jobs that may wait; more get 503 (default: 8)")
    srv.add_argument("--max-fps", type=_positive(float), default=30.0, metavar="FPS",
                     help="the page sends at most this many frames per second (default: 30)")
    srv.add_argument("--keep-results-min", type=_positive(float), default=30.0, metavar="MIN",
                     help="minutes an upload's or a recording's results are kept after their "
                     "last use, for downloads (default: 30)")
    srv.add_argument("--max-results-mb", type=_positive(float), default=500.0, metavar="MB",
                     help="memory all kept results may take (default: 500)")
    srv.add_argument("--max-recording-mb", type=_positive(float), default=100.0, metavar="MB",
                     help="size cap of one live recording (default: 100)")
    srv.add_argument("--no-preview", dest="preview", action="store_false",
                     help="do not re-encode uploaded videos for the browser (saves CPU; the "
                     "page then plays the original file where the browser can)")
    # fmt: on
    return parser


def is_loopback(host: str) -> bool:
    """True for localhost and loopback addresses (127.0.0.0/8, ::1)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def exposure_warning(host: str, token: str | None) -> str | None:
    """The warning printed when the app listens beyond this machine, else None."""
    if is_loopback(host):
        return None
    advice = (
        "a token is set: open the page as http://HOST:PORT/?token=..."
        if token
        else "anyone who can reach this port can use the app and your compute: "
        "restart with --token SECRET"
    )
    return (
        f"WARNING: serving on {host}, reachable from other machines (not only this one). "
        f"{advice}. Traffic is plain HTTP: use a TLS proxy on untrusted networks."
    )


def check_address(host: str, port: int) -> None:
    """Bind ``host:port`` once and release it: OptionError when the port is taken, the host
    does not resolve or is not an address of this machine (before any model is loaded)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise OptionError(
            f"--host {host}: the name does not resolve ({exc.strerror}); give an address of "
            "this machine, e.g. 127.0.0.1 or 0.0.0.0"
        ) from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(address)
        except OSError as exc:
            why = ("the port is in use (another server?); pick another --port"
                   if exc.errno == errno.EADDRINUSE else
                   f"{exc.strerror}; pick another --host or --port")  # fmt: skip
            raise OptionError(f"cannot listen on {host}:{port}: {why}") from None


def run(args: argparse.Namespace) -> int:
    """Build the pipeline and serve until Ctrl-C."""
    import uvicorn

    from ..webapp import AppConfig, create_app

    config = AppConfig(
        token=args.token,
        max_upload_bytes=int(args.max_upload_mb * MB),
        max_video_frames=args.max_video_frames,
        max_queue=args.max_queue,
        max_fps=args.max_fps,
        keep_results_s=args.keep_results_min * 60.0,
        max_results_bytes=int(args.max_results_mb * MB),
        max_recording_bytes=int(args.max_recording_mb * MB),
        preview=args.preview,
        allowed_hosts=LOOPBACK_NAMES if is_loopback(args.host) else None,
    )
    check_address(args.host, args.port)
    warning = exposure_warning(args.host, args.token)
    if warning:
        print(warning, file=sys.stderr)
    # A webcam is live and one static view: detect on need, smoothing and the world stage
    # on; the detector stays in the frame loop, since the app's one inference thread
    # serves every session in turn (mode "serve", instanthmr.options; docs/world.md).
    from ..pipeline import PosePipeline

    options = pipeline_options(args, "serve", world=world_option(args, static=True))
    pipeline = PosePipeline(options=options)
    app = create_app(pipeline, config)
    shown = "127.0.0.1" if args.host in ("0.0.0.0", "::") else args.host
    query = "?token=..." if args.token else ""
    print(f"InstantHMR app: open http://{shown}:{args.port}/{query}", file=sys.stderr)
    # uvicorn.Server, not uvicorn.run: run() swallows the Ctrl-C/SIGTERM that uvicorn raises
    # again after its graceful stop, and the exit code would not say how the server ended
    uvicorn.Server(uvicorn.Config(app, host=args.host, port=args.port, log_level="warning")).run()
    return 0


@command("serve")
def main(argv: list[str] | None = None) -> int:
    """Parse ``argv`` (default ``sys.argv[1:]``), serve, and return the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    check_world_flags(parser, args)
    return run(args)
