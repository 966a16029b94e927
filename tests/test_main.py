"""The ``migplan`` wrapper: a Ctrl-C while a command imports a native module is an abort; a
report that cannot be written is an error, not a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import migplan.cli
from migplan import __main__ as entry


def _import_interrupted(**_: object) -> None:
    """As OR-Tools' pybind module does when Ctrl-C lands while it initialises."""
    try:
        raise KeyboardInterrupt
    except KeyboardInterrupt as interrupt:
        raise ImportError("initialization failed") from interrupt


def _import_broken(**_: object) -> None:
    raise ImportError("no module named ortools")


def test_an_import_broken_by_ctrl_c_is_reported_as_aborted(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Regression (CI, stop 28): the ImportError escaped click and printed a traceback."""
    monkeypatch.setattr(migplan.cli, "main", _import_interrupted)
    with pytest.raises(SystemExit) as exit_info:
        entry.run()
    assert exit_info.value.code == entry.EXIT_INTERRUPTED
    assert capsys.readouterr().err == "Aborted!\n"


def test_an_import_error_of_its_own_is_not_hidden(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(migplan.cli, "main", _import_broken)
    with pytest.raises(ImportError, match="no module named ortools"):
        entry.run()


def test_any_error_caused_by_ctrl_c_is_reported_as_aborted(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def wrapped(**_: object) -> None:
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt:
            raise SystemError("returned a result with an exception set")  # noqa: B904 (implicit context)

    monkeypatch.setattr(migplan.cli, "main", wrapped)
    with pytest.raises(SystemExit) as exit_info:
        entry.run()
    assert exit_info.value.code == entry.EXIT_INTERRUPTED and capsys.readouterr().err == "Aborted!\n"


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs Linux's /dev/full")
def test_a_report_to_a_full_device_is_an_error_not_a_traceback() -> None:
    """Regression (hostile-input audit): ``migplan validate DIR > /dev/full`` printed a traceback."""
    demo = Path(__file__).resolve().parent.parent / "datasets" / "demo"
    with open("/dev/full", "w") as full:
        done = subprocess.run(
            [sys.executable, "-m", "migplan", "validate", str(demo)],
            stdout=full,
            stderr=subprocess.PIPE,
            text=True,
            timeout=120,
        )
    assert done.returncode == entry.EXIT_NO_OUTPUT
    assert "cannot write the output" in done.stderr and "Traceback" not in done.stderr


@pytest.mark.parametrize("command", ["validate", "plan"])
def test_a_file_name_that_is_not_utf8_prints_as_its_own_bytes(tmp_path: Path, command: str) -> None:
    """Regression (hostile-input audit M6): under a strict UTF-8 stdout, as a UTF-8 desktop
    locale gives, ``validate`` on a folder named ``nope-\\xff`` raised UnicodeEncodeError,
    and ``plan`` printed the name as ``nope-\\udcff``.  Both now print the name's bytes."""
    missing = tmp_path / "nope-\udcff"  # how Python holds the file system's b"nope-\xff"
    args = [sys.executable, "-m", "migplan", command, str(missing)]
    if command == "plan":
        args += ["--out", str(tmp_path / "out")]
    env = {**os.environ, "PYTHONIOENCODING": "utf-8:strict"}
    done = subprocess.run(args, capture_output=True, timeout=120, env=env)
    output = done.stdout + done.stderr
    assert done.returncode == 2 and b"Traceback" not in output
    assert b"nope-\xff does not exist" in output and b"udcff" not in output
