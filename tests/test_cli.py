"""The ``instanthmr`` console script dispatches to each tool's own ``main``."""

from __future__ import annotations

import pytest

from instanthmr.cli import COMMANDS, main


def test_usage_and_unknown_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "usage: instanthmr <command>" in capsys.readouterr().out
    assert main(["--help"]) == 0
    assert main(["nope"]) == 2
    assert "unknown command 'nope'" in capsys.readouterr().err


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_each_command_has_help(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    if name.startswith("export"):
        pytest.importorskip("torch")
    with pytest.raises(SystemExit) as done:
        main([name, "--help"])
    assert done.value.code == 0
    assert "--" in capsys.readouterr().out  # argparse listed the options
