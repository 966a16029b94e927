"""Run many ``migplan`` command lines in ONE fresh Python process (used by the CLI tests).

Starting Python and importing numpy/pydantic/scipy costs about a second per process on a
busy machine; the broken-inventory corpus has ~80 command lines.  This driver runs them
one after another in a single subprocess, each exactly as ``python -m migplan ARGS`` would
(click's standalone mode, real stdout/stderr text, the exit code), and records a traceback
if one escapes.  Input: a JSON list of argument lists on stdin; output: a JSON list of
``{"code", "stdout", "stderr"}``.
"""

from __future__ import annotations

import contextlib
import io
import json
import sys
import traceback


def run_all(commands: list[list[str]]) -> list[dict[str, object]]:
    from migplan.cli import main

    results: list[dict[str, object]] = []
    for argv in commands:
        out, err = io.StringIO(), io.StringIO()
        code: object = 0
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                main.main(argv, prog_name="migplan", standalone_mode=True)
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
            except BaseException:  # what a user would see as a crash: keep it for the test to flag
                traceback.print_exc(file=err)
                code = 1
        results.append({"code": code, "stdout": out.getvalue(), "stderr": err.getvalue()})
    return results


if __name__ == "__main__":
    json.dump(run_all(json.load(sys.stdin)), sys.stdout)
