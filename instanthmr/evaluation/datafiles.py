"""Reading dataset files (JSON, JSON lines, pickles) with errors that name the file and problem.

A damaged or wrong file raises :class:`~instanthmr.errors.DatasetError` (a user error: the
commands print it in one line) saying which file, where in it and what was wrong, never a
bare ``Extra data: line 2 column 1`` or ``UnpicklingError``.
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path
from typing import Any

from ..errors import DatasetError


def _json_problem(err: json.JSONDecodeError) -> str:
    return f"not valid JSON at line {err.lineno} column {err.colno} ({err.msg})"


def read_json(path: str | Path, what: str) -> Any:
    """The JSON document in ``path`` (``what`` names it in errors, e.g. "COCO annotations")."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise DatasetError(
            f"{what} file {path} is not UTF-8 text (byte {err.start}); is it the right file?"
        ) from None
    if not text.strip():
        raise DatasetError(f"{what} file {path} is empty; download or write it again")
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise DatasetError(
            f"{what} file {path} is {_json_problem(err)}; it may be truncated or damaged: "
            "download or write it again"
        ) from None


def read_json_lines(path: str | Path, what: str) -> list[Any]:
    """Every non-blank line of ``path`` parsed as JSON; errors name the line."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as err:
        raise DatasetError(f"{what} file {path} is not UTF-8 text (byte {err.start})") from None
    out = []
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError as err:
            raise DatasetError(
                f"{what} file {path}, line {n}: not valid JSON ({err.msg}, column {err.colno})"
            ) from None
    return out


def read_pickle(path: str | Path, what: str, **load_options: Any) -> Any:
    """The object pickled in ``path`` (trusted dataset files only: a pickle can run code)."""
    path = Path(path)
    try:
        with path.open("rb") as fh:
            return pickle.load(fh, **load_options)
    except ModuleNotFoundError:
        raise  # the caller names the missing package (e.g. chumpy)
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError,
            IndexError) as err:  # fmt: skip
        raise DatasetError(
            f"{what} file {path} is not a readable pickle ({type(err).__name__}: {err}); it "
            "may be truncated or damaged: download it again"
        ) from None
