"""Helpers every subcommand shares: load or exit 2, print findings, fail with an exit code.

Output rules: results go to stdout, problems to stderr; rich formatting only when the
stream is a terminal, so piped output and tests see plain text.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, NoReturn, TypeVar

import click

from migplan.io.inventory import OPTION_ERROR, apply_overrides, load_inventory, option_findings
from migplan.io.scenario import MAX_RISK_WEIGHT, MAX_WAVES
from migplan.model import Finding, Inventory

EXIT_OK, EXIT_INFEASIBLE, EXIT_BAD_INPUT = 0, 1, 2
PRINT_LIMIT = 200
_SEVERITY_ORDER = {"error": 0, "warning": 1, "info": 2}

F = TypeVar("F", bound=Callable[..., Any])

SEED = click.IntRange(0, 2**31 - 1)  # numpy wants it non-negative, CP-SAT takes 32 bits
MAX_SECONDS = 1e6  # about 11 days: anything larger is a typo, and inf breaks the budgets


class PositiveSeconds(click.FloatRange):
    """A finite number in (0, MAX_SECONDS]: click's FloatRange lets nan through."""

    def __init__(self) -> None:
        super().__init__(min=0, min_open=True, max=MAX_SECONDS)

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number.", param, ctx)
        return number


def fail(code: int, message: str) -> NoReturn:
    """Print ``error: message`` to stderr and exit with ``code`` (no traceback)."""
    click.echo(f"error: {message}", err=True)
    raise SystemExit(code)


def print_findings(
    findings: Iterable[Finding], *, err: bool = True, limit: int = PRINT_LIMIT, file: IO[str] | None = None
) -> None:
    """Every finding on its own line, errors first; beyond ``limit`` only a count is printed."""
    ordered = sorted(findings, key=lambda f: _SEVERITY_ORDER.get(f.severity, 3))
    for finding in ordered[:limit]:
        click.echo(finding.render(), err=err, file=file)
    hidden = ordered[limit:]
    if hidden:
        errors = sum(f.severity == "error" for f in hidden)
        click.echo(
            f"… {len(hidden)} more finding(s) not shown ({errors} error(s)); use --json for all of them",
            err=err,
            file=file,
        )


def count(findings: Iterable[Finding], severity: str) -> int:
    return sum(f.severity == severity for f in findings)


def load_checked(
    folder: Path,
    *,
    waves: int | None = None,
    rtt_ms: float | None = None,
    risk_weight: float | None = None,
    extra: Sequence[Finding] = (),
) -> tuple[Inventory | None, tuple[Finding, ...]]:
    """Load an inventory and apply command-line overrides; None if any error (all are returned).

    Bad option values (and ``extra``: problems with other options, such as --out) are
    reported together with the inventory's errors, so one run shows everything to fix.
    """
    options = (*extra, *option_findings(waves, rtt_ms, risk_weight))
    result = load_inventory(folder)
    if result.inventory is None or any(f.severity == "error" for f in options):
        return None, (*options, *result.findings)
    scenario, problems = apply_overrides(
        result.inventory,
        waves=waves,
        rtt_ms=rtt_ms,
        risk_weight=risk_weight,
        rows=result.rows,
        capacity_rows=result.capacity_rows,
    )
    if scenario is None:
        return None, (*extra, *problems, *result.findings)
    return result.inventory.with_scenario(scenario), (*extra, *result.findings, *problems)


def load_or_exit(
    folder: Path,
    *,
    waves: int | None = None,
    rtt_ms: float | None = None,
    risk_weight: float | None = None,
) -> Inventory:
    """The inventory, or every error printed to stderr and exit 2; warnings are printed too."""
    return load_or_exit_with_findings(folder, waves=waves, rtt_ms=rtt_ms, risk_weight=risk_weight)[0]


def load_or_exit_with_findings(
    folder: Path,
    *,
    waves: int | None = None,
    rtt_ms: float | None = None,
    risk_weight: float | None = None,
    extra: Sequence[Finding] = (),
    show: Sequence[str] = ("error", "warning"),
) -> tuple[Inventory, tuple[Finding, ...]]:
    """Like ``load_or_exit`` but also returns the findings (for plan.json); prints those in ``show``."""
    inv, findings = load_checked(folder, waves=waves, rtt_ms=rtt_ms, risk_weight=risk_weight, extra=extra)
    print_findings([f for f in findings if f.severity in show])
    if inv is None:
        fail(EXIT_BAD_INPUT, f"{where_errors_are(folder, findings)}; nothing was done")
    return inv, findings


def where_errors_are(folder: Path, findings: Iterable[Finding]) -> str:
    """``3 error(s) in the inventory X and 1 in the command-line options``: which of the two to fix."""
    errors = [f for f in findings if f.severity == "error"]
    in_options = sum(f.code == OPTION_ERROR for f in errors)
    in_inventory = len(errors) - in_options
    parts = [f"{in_inventory} error(s) in the inventory {folder}"] if in_inventory else []
    if in_options:
        parts.append(f"{in_options} {'' if parts else 'error(s) '}in the command-line options")
    return " and ".join(parts) or f"the inventory {folder} cannot be used"


@contextmanager
def file_errors_exit(action: str) -> Iterator[None]:
    """Turn an OSError (permission denied, is a directory, disk full) into one line and exit 2."""
    try:
        yield
    except OSError as exc:
        target = f" {exc.filename}" if exc.filename else ""
        fail(EXIT_BAD_INPUT, f"cannot {action}{target}: {exc.strerror or exc}")


def scenario_options(func: F) -> F:
    """--waves / --rtt-ms / --risk-weight, shared by every command that reads an inventory."""
    func = click.option(
        "--risk-weight",
        type=float,
        default=None,
        help=f"Weight of the risk term, 0 to {MAX_RISK_WEIGHT:g} (0: chatty cost only).",
    )(func)
    func = click.option(
        "--rtt-ms",
        type=float,
        default=None,
        help="Extra cross-site round-trip time (overrides scenario.toml).",
    )(func)
    func = click.option(
        "--waves",
        type=int,
        default=None,
        help=f"Number of waves K, 1 to {MAX_WAVES} (overrides scenario.toml).",
    )(func)
    return func


def inventory_argument(func: F) -> F:
    """INVENTORY_DIR; existence is checked by the loader so that it reports like any other error."""
    return click.argument("inventory_dir", type=click.Path(path_type=str), callback=_inventory_path)(func)


def _inventory_path(ctx: click.Context, param: click.Parameter, value: str) -> Path:
    """An empty INVENTORY_DIR is refused (as an empty --out is): ``Path("")`` means the current
    folder, which the user did not name (hostile-input audit: ``migplan validate ""``)."""
    if not value.strip():
        raise click.BadParameter("is empty: expected the path of an inventory folder", ctx, param)
    return Path(value)


def is_terminal(stream: IO[str] | None = None) -> bool:
    stream = stream or sys.stdout
    return bool(getattr(stream, "isatty", lambda: False)())


def print_table(title: str, header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """A table on stdout: rich when stdout is a terminal, plain aligned text otherwise."""
    if is_terminal():
        from rich.console import Console
        from rich.table import Table

        table = Table(title=title, title_justify="left")
        for i, name in enumerate(header):
            table.add_column(name, justify="left" if i == 0 else "right")
        for row in rows:
            table.add_row(*row)
        Console().print(table)
        return
    from migplan.report import format_table

    click.echo(title)
    click.echo(format_table(header, rows))
    click.echo()
