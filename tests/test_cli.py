"""i2i.cli.run: what every tool shares — exit codes, one-line errors, ``--debug``, and the
process group shut down whatever happens."""
from __future__ import annotations

import sys

import pytest

from i2i import cli
from i2i.errors import CheckpointError, ConfigError


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Records the allocator tuning and the process-group shutdown that ``run`` does around ``main``."""
    import i2i.distributed
    import i2i.perf

    seen: list[str] = []
    monkeypatch.setattr(i2i.perf, "tune_allocator", lambda: seen.append("tune"))
    monkeypatch.setattr(i2i.distributed, "shutdown", lambda: seen.append("shutdown"))
    monkeypatch.delenv("I2I_DEBUG", raising=False)
    return seen


def raising(exc: BaseException):  # noqa: ANN201
    def main(argv: list[str]) -> int:
        raise exc

    return main


def test_main_gets_the_arguments_and_its_status_is_returned(calls: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    got: list[list[str]] = []
    assert cli.run(lambda argv: got.append(argv) or 3, ["a", "--b"]) == 3
    monkeypatch.setattr(sys, "argv", ["tool.py", "x", "y"])
    assert cli.run(lambda argv: got.append(argv) or 0) == 0  # default: sys.argv[1:]
    assert got == [["a", "--b"], ["x", "y"]]
    assert calls == ["tune", "shutdown", "tune", "shutdown"]


def test_a_user_error_is_one_line_and_exit_2(calls: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.EXIT_USER_ERROR == 2
    assert cli.run(raising(ConfigError("expected int, got 'x'\nsecond line", "data.batch_size")), []) == 2
    assert capsys.readouterr().err == "error: data.batch_size: expected int, got 'x'\\nsecond line\n"
    assert cli.run(raising(CheckpointError("run/export: holds NaN\u2028weights")), []) == 2
    assert capsys.readouterr().err == "error: run/export: holds NaN\\u2028weights\n"
    assert calls.count("shutdown") == 2


def test_a_bug_is_one_line_naming_its_type_and_exit_1(calls: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.run(raising(ZeroDivisionError("division by zero\nmore detail")), []) == cli.EXIT_FAILURE == 1
    assert capsys.readouterr().err == "error: ZeroDivisionError: division by zero (run with --debug for the traceback)\n"
    assert cli.run(raising(RuntimeError()), []) == 1
    assert capsys.readouterr().err == "error: RuntimeError:  (run with --debug for the traceback)\n"


def test_an_interrupt_is_exit_130(calls: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.run(raising(KeyboardInterrupt()), []) == 130
    assert capsys.readouterr().err == "error: interrupted\n" and calls[-1] == "shutdown"


def test_debug_shows_the_traceback(calls: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError, match="bad"):
        cli.run(raising(ConfigError("bad")), ["--debug"])
    with pytest.raises(ZeroDivisionError):
        cli.run(raising(ZeroDivisionError()), ["--debug"])
    monkeypatch.setenv("I2I_DEBUG", "1")
    with pytest.raises(ConfigError):
        cli.run(raising(ConfigError("bad")), [])
    assert calls.count("shutdown") == 3  # shut down on the way out, traceback or not
