"""The ``migplan`` script and ``python -m migplan``: the command line of ``migplan.cli``.

Why a wrapper: importing the command line (numpy, pydantic, click) takes about a second,
and a Ctrl-C in that second raised KeyboardInterrupt with a traceback, before click could
turn it into its "Aborted!" (exit 1, as for an interrupted plan without a plan).
"""

from __future__ import annotations

import sys

EXIT_INTERRUPTED = 1  # as an interrupted plan with no plan found


def run() -> None:
    try:
        from migplan.cli import main
    except KeyboardInterrupt:
        print("Aborted!", file=sys.stderr)
        sys.exit(EXIT_INTERRUPTED)
    main(prog_name="migplan")


if __name__ == "__main__":
    run()
