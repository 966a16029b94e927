"""``python -m migplan``: the same command line as the ``migplan`` script."""

from migplan.cli import main

if __name__ == "__main__":
    main(prog_name="migplan")
