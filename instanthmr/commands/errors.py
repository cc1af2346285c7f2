"""The user-error contract every command shares: one line, the right exit code.

- A user error (:func:`instanthmr.errors.is_user_error`: a bad input, model file, option,
  output path or device) prints ``instanthmr <command>: error: <problem>; <fix>`` on one
  line of stderr, with no traceback, and the command exits with :data:`EXIT_USER_ERROR` (2).
- A bad flag does the same at parse time (:class:`CommandParser`): one line naming the
  flag and the problem, pointing at ``--help``; exit code 2.
- Ctrl-C, SIGTERM and SIGHUP stop a command the same way (:func:`stop_signals`): a
  :class:`KeyboardInterrupt` in the main thread, so every output is finished and closed on
  the way out; the exit code is 128 + the signal number (130 for Ctrl-C, 143 for SIGTERM,
  129 for SIGHUP), what shells, ``timeout`` and service managers expect.
- Anything else is a bug: its traceback is kept.

Each command's ``main(argv)`` is wrapped with :func:`command`, so ``instanthmr demo``,
``python demo.py`` and ``tools/*.py`` behave the same.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any, NoReturn

from ..errors import PATH_ERRORS, UserError, describe, is_user_error
from ..stops import Interrupted, StopState, deferred_stops, raise_stop  # noqa: F401 (re-exported)

EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 128 + signal.SIGINT  # 130: what shells and scripts expect after Ctrl-C
STOP_SIGNALS: tuple[str, ...] = ("SIGTERM", "SIGHUP")
"""Signals handled like Ctrl-C (where the platform has them)."""

Main = Callable[[Sequence[str] | None], "int | None"]


def user_errors() -> tuple[type[BaseException], ...]:
    """The exception classes reported in one line with exit code 2 (see the module docs)."""
    return (UserError, *PATH_ERRORS)


def interrupt_exit_code(exc: BaseException) -> int:
    """128 + the signal that stopped the run (130 for Ctrl-C)."""
    return 128 + getattr(exc, "signum", signal.SIGINT)


def error_line(name: str, exc: BaseException) -> str:
    """The one line a user error prints: ``instanthmr <name>: error: <problem>; <fix>``."""
    return f"instanthmr {name}: error: {describe(exc)}"


@contextlib.contextmanager
def stop_signals() -> Iterator[None]:
    """While inside, Ctrl-C raises KeyboardInterrupt and SIGTERM and SIGHUP raise
    :class:`Interrupted` in the main thread (at once, or at the end of a
    :func:`deferred_stops` block).

    After the first SIGTERM or SIGHUP those two are ignored, so a repeated one cannot cut
    the closing of the outputs short (a second Ctrl-C still stops a closing that hangs).
    The previous handlers come back on exit. Outside the main thread (signals cannot be
    handled there) this does nothing; an ignored SIGINT (a background job) stays ignored.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    stops = [getattr(signal, n) for n in STOP_SIGNALS if hasattr(signal, n)]

    def handler(signum: int, _frame: Any) -> None:
        if signum != signal.SIGINT:
            for s in stops:
                signal.signal(s, signal.SIG_IGN)
        if StopState.depth:
            StopState.pending = StopState.pending or signum
            return
        raise_stop(signum)

    handled = list(stops)
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        handled.append(signal.SIGINT)
    previous = {s: signal.signal(s, handler) for s in handled}
    try:
        yield
    finally:
        for s, old in previous.items():
            signal.signal(s, old)


def command(name: str) -> Callable[[Main], Callable[[Sequence[str] | None], int]]:
    """Wrap a command's ``main(argv)`` in the contract of this module."""

    def wrap(main: Main) -> Callable[[Sequence[str] | None], int]:
        @functools.wraps(main)
        def run(argv: Sequence[str] | None = None) -> int:
            with stop_signals():
                try:
                    return int(main(argv) or 0)
                except KeyboardInterrupt as exc:
                    lead = "\n" if not isinstance(exc, Interrupted) else ""  # after ^C
                    why = f" ({exc.args[0]})" if isinstance(exc, Interrupted) else ""
                    print(f"{lead}instanthmr {name}: interrupted{why}", file=sys.stderr)
                    return interrupt_exit_code(exc)
                except Exception as exc:
                    if not is_user_error(exc):
                        raise
                    print(error_line(name, exc), file=sys.stderr)
                    return EXIT_USER_ERROR

        return run

    return wrap


class CommandParser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line: ``<prog>: error: <problem>; see --help``.

    ``command`` names the default ``prog`` (``instanthmr <command>``); sub-command parsers
    made with ``add_subparsers`` are of this class too.
    """

    def __init__(self, *args: Any, command: str | None = None, **kwargs: Any) -> None:
        if command is not None and kwargs.get("prog") is None:
            kwargs["prog"] = f"instanthmr {command}"
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        """Print one line and exit with code 2 (argparse prints the usage too)."""
        text = " ".join(message.split())
        self.exit(EXIT_USER_ERROR, f"{self.prog}: error: {text}; see `{self.prog} --help`\n")
