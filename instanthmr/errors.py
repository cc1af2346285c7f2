"""The user-error classes: problems the user can fix (a bad file, flag, path or device).

Every exception that means "the input, a model file, an option, an output path or the
device is wrong" derives from :class:`UserError`, next to its usual built-in base
(``ValueError``, ``RuntimeError``, ``OSError``), so library callers keep catching what they
caught before. The commands (:mod:`instanthmr.commands.errors`) print a user error in one
line, ``instanthmr <command>: error: <problem>; <fix>``, and exit with code 2; any other
exception is a bug and keeps its traceback.

The classes defined here are for problems that have no more specific home:

- :class:`ModelFileError`: a model file that is empty, truncated, not ONNX, or of a kind or
  precision the run cannot use;
- :class:`OptionError`: options that cannot apply together, or a value out of range;
- :class:`DetectorUnavailableError`: no detector file, and no way to make one here;
- :class:`DatasetError`: a dataset, annotation or ground-truth file that cannot be read;
- :class:`MissingDependencyError`: an optional extra that is not installed (names the pip
  command).

Others live beside their code and derive from :class:`UserError` too: ``SourceError``,
``UnwritablePathError``, ``ProviderError``, ``ContractError``, ``ParityError``,
``WeightsNotFoundError``, ``BatchConfigError``, ``InputError``, ``CheckpointError``.
"""

from __future__ import annotations


class UserError(Exception):
    """A problem the user can fix; its message names the problem and, after ``; ``, the fix.

    ``fix`` (a class or instance attribute) is appended by :func:`describe` when the
    message does not already contain it.
    """

    fix: str = ""


class ModelFileError(UserError, ValueError):
    """A model file that cannot be used: empty, truncated, not ONNX, or the wrong kind."""


class OptionError(UserError, ValueError):
    """Options that cannot apply together, or a value out of its range."""


class DetectorUnavailableError(UserError, RuntimeError):
    """No detector file, and none can be made or downloaded here; names the ways forward."""


class MissingDependencyError(UserError, ImportError):
    """An optional package (an extra) that the run needs is not installed."""


class DatasetError(UserError, ValueError):
    """A dataset, annotation or ground-truth file that cannot be read; names file and problem."""


PATH_ERRORS: tuple[type[BaseException], ...] = (
    FileNotFoundError,
    NotADirectoryError,
    IsADirectoryError,
    PermissionError,
)
"""Built-in errors about a path the user gave (a missing file, a folder for a file, no
permission): user errors too, whichever code raised them."""

_PATH_FIX = "check the path"


def is_user_error(exc: BaseException) -> bool:
    """True for a :class:`UserError` or one of :data:`PATH_ERRORS`."""
    return isinstance(exc, (UserError, *PATH_ERRORS))


def describe(exc: BaseException) -> str:
    """``<problem>; <fix>`` of a user error, on one line (newlines and runs of spaces
    become single spaces, so a multi-line message still prints as one line)."""
    text = " ".join(str(exc).split())
    if isinstance(exc, OSError) and not isinstance(exc, UserError) and exc.filename:
        if str(exc.filename) not in text:  # OSError(errno, strerror, filename) forms
            text = f"{text}: {exc.filename}"
    fix = getattr(exc, "fix", "") or ("" if isinstance(exc, UserError) else _PATH_FIX)
    if not text:
        text = type(exc).__name__
    if fix and fix not in text:
        text = f"{text.rstrip('.')}; {fix}"
    return text
