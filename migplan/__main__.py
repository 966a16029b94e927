"""The ``migplan`` script and ``python -m migplan``: the command line of ``migplan.cli``.

Why a wrapper: importing the command line (numpy, pydantic, click) takes about a second,
and a Ctrl-C in that second raised KeyboardInterrupt with a traceback, before click could
turn it into its "Aborted!" (exit 1, as for an interrupted plan without a plan).  The
solver is imported later, inside a command; a Ctrl-C while OR-Tools' native module starts
comes out as ``ImportError: initialization failed`` caused by the KeyboardInterrupt, which
click does not catch.  Any error caused by a Ctrl-C is reported as the abort it is.
"""

from __future__ import annotations

import codecs
import contextlib
import errno
import sys
from typing import NoReturn

EXIT_INTERRUPTED = 1  # as an interrupted plan with no plan found
EXIT_NO_OUTPUT = 2  # as for files migplan cannot write (``cli.common.file_errors_exit``)
# writing to the terminal or a redirect failed (``> /dev/full``); files name themselves
OUTPUT_ERRORS = (errno.ENOSPC, errno.EIO, errno.EBADF, errno.EDQUOT)


def _interrupted(error: BaseException) -> bool:
    """Whether ``error`` was raised because of a Ctrl-C (somewhere in its chain of causes)."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        if isinstance(current, KeyboardInterrupt):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False


def _aborted() -> NoReturn:
    print("Aborted!", file=sys.stderr)
    sys.exit(EXIT_INTERRUPTED)


def _tolerant_streams() -> None:
    """stdout and stderr that print any file name and any message instead of raising.

    A file name that is not valid UTF-8 reaches Python as lone surrogates; under a UTF-8
    locale stdout is strict and raised UnicodeEncodeError (a traceback), while stderr wrote
    "\\udcff".  On a UTF-8 stream both now write the name's own bytes back, as ``ls`` shows
    them; on any other encoding, what it cannot hold (a file name, "≤") is backslash-escaped.
    """
    for stream in (sys.stdout, sys.stderr):
        encoding = getattr(stream, "encoding", None)
        if encoding is None or not hasattr(stream, "reconfigure"):
            continue
        utf8 = codecs.lookup(encoding).name == "utf-8"
        with contextlib.suppress(ValueError, OSError):  # a stream already closed or detached
            stream.reconfigure(errors="surrogateescape" if utf8 else "backslashreplace")


def run() -> None:
    _tolerant_streams()
    try:
        from migplan.cli import main

        main(prog_name="migplan")
    except KeyboardInterrupt:  # before click runs; within a command click prints "Aborted!" itself
        _aborted()
    except Exception as error:  # e.g. ImportError from a native module; others may wrap it too
        if _interrupted(error):
            _aborted()
        if isinstance(error, OSError) and error.filename is None and error.errno in OUTPUT_ERRORS:
            _unwritable(error)
        raise


def _unwritable(error: OSError) -> NoReturn:
    """stdout could not take the report: say so on stderr (if that still works), exit 2."""
    with contextlib.suppress(OSError):  # stderr may be gone too: the exit code says it then
        print(f"error: cannot write the output: {error.strerror or error}", file=sys.stderr)
    sys.exit(EXIT_NO_OUTPUT)


if __name__ == "__main__":
    run()
