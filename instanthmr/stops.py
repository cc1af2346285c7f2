"""Stop signals that do not cut a step in two: the state :func:`deferred_stops` shares with
the handler that :func:`instanthmr.commands.errors.stop_signals` installs.

Inside a :func:`deferred_stops` block a Ctrl-C, SIGTERM or SIGHUP handled by that handler is
held, and raised when the outermost block ends; so a frame reaches every output or none (the
demo), and a batch input is recorded in the manifest and its files renamed into place, or
neither. Without the handler (a library caller), Python's default Ctrl-C behaviour applies.
"""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator


class Interrupted(KeyboardInterrupt):
    """A stop signal (SIGTERM, SIGHUP) turned into a KeyboardInterrupt; ``signum`` says which."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = int(signum)


class StopState:
    """Signal state of this process: how deep in :func:`deferred_stops`, and a stop that
    arrived there."""

    depth = 0
    pending: int | None = None


def raise_stop(signum: int) -> None:
    """Raise what a stop signal means in the main thread: KeyboardInterrupt for Ctrl-C,
    :class:`Interrupted` for the others."""
    if signum == signal.SIGINT:
        raise KeyboardInterrupt
    raise Interrupted(signum)


@contextlib.contextmanager
def deferred_stops() -> Iterator[None]:
    """A block a stop signal does not cut in two: one arriving inside is raised at its end.

    The demo writes each frame to every output inside one, so after Ctrl-C or SIGTERM the
    results files, the animation, the video and the recording hold the same frames; a batch
    records an input and renames its files inside one.
    """
    StopState.depth += 1
    try:
        yield
    finally:
        StopState.depth -= 1
        if StopState.depth == 0 and StopState.pending is not None:
            signum, StopState.pending = StopState.pending, None
            raise_stop(signum)
