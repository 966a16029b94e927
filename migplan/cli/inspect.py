"""``migplan validate`` and ``migplan evaluate``: check an inventory, measure a given plan.

Heavy modules (metrics, analysis) are imported inside the commands so that a broken
inventory is reported without loading scipy.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import click

from migplan.cli import main
from migplan.cli.common import (
    EXIT_BAD_INPUT,
    EXIT_INFEASIBLE,
    EXIT_OK,
    count,
    fail,
    inventory_argument,
    load_checked,
    load_or_exit_with_findings,
    print_findings,
    print_table,
    scenario_options,
    where_errors_are,
)

if TYPE_CHECKING:
    from migplan.model import Finding


@main.command()
@inventory_argument
@scenario_options
@click.option("--json", "as_json", is_flag=True, help="Print the findings as JSON.")
def validate(
    inventory_dir: Path, waves: int | None, rtt_ms: float | None, risk_weight: float | None, as_json: bool
) -> None:
    """Check INVENTORY_DIR and print every problem (exit 0: usable, 1: no plan can exist, 2: errors).

    Findings are this command's result, so they go to stdout.  A readable inventory also
    gets the planner's cheap proofs that no plan exists (pins that split a cycle, rules
    that contradict each other, more load than all waves hold): the same errors ``plan``
    stops with, a second later, instead of exit 0 here.
    """
    inv, findings = load_checked(inventory_dir, waves=waves, rtt_ms=rtt_ms, risk_weight=risk_weight)
    found = list(findings)
    impossible: list[Finding] = []
    if inv is not None:
        from migplan import analysis
        from migplan.solve.precheck import no_plan_findings

        found += analysis.findings(inv)
        checked = no_plan_findings(inv)
        impossible = [f for f in checked if f.severity == "error"]
        found += [f for f in checked if f.severity != "error"]  # checks that could not run
    errors, warnings = count(found, "error"), count(found, "warning")  # the proofs are not input errors
    found += impossible
    if as_json:
        from migplan.report import finding_dict

        summary = {"apps": inv.n, "dependencies": inv.m, "waves": inv.K} if inv is not None else None
        payload = {
            "valid": inv is not None,
            "plan_can_exist": inv is not None and not impossible,
            "inventory": summary,
            "findings": [finding_dict(f) for f in found],
        }
        click.echo(json.dumps(payload, indent=2, ensure_ascii=False))
    else:
        print_findings(found, err=False)
        if inv is not None:
            verdict = f"; no plan can exist ({len(impossible)} reason(s) above)" if impossible else ""
            click.echo(
                f"{inv.n} apps, {inv.m} dependencies, {inv.K} waves: {errors} error(s), {warnings} warning(s)"
                + verdict
            )
        else:
            click.echo(
                f"{where_errors_are(inventory_dir, found)}, {warnings} warning(s): nothing can be planned"
            )
    raise SystemExit(EXIT_BAD_INPUT if errors else EXIT_INFEASIBLE if impossible else EXIT_OK)


@main.command()
@inventory_argument
@click.option(
    "--plan", "plan_path", required=True, type=click.Path(path_type=Path), help="waves.csv to evaluate."
)
@scenario_options
@click.option("--json", "as_json", is_flag=True, help="Print the full plan report (plan.json content).")
def evaluate(
    inventory_dir: Path,
    plan_path: Path,
    waves: int | None,
    rtt_ms: float | None,
    risk_weight: float | None,
    as_json: bool,
) -> None:
    """Measure the plan in WAVES_CSV against INVENTORY_DIR (exit 0 feasible, 1 infeasible, 2 bad input)."""
    from migplan import analysis, metrics
    from migplan.io.planfiles import planned_with, read_waves_csv
    from migplan.report import period_rows, plan_report, summary_lines, wave_rows

    inv, load_findings = load_or_exit_with_findings(
        inventory_dir, waves=waves, rtt_ms=rtt_ms, risk_weight=risk_weight
    )
    plan, plan_findings = read_waves_csv(plan_path, inv)
    plan_findings = (*plan_findings, *planned_with(plan_path, inv))
    print_findings([f for f in plan_findings if f.severity != "info"])
    if plan is None:
        fail(EXIT_BAD_INPUT, f"{count(plan_findings, 'error')} error(s) in the plan {plan_path}")
    evaluation = metrics.evaluate(inv, plan)
    report = plan_report(inv, plan, evaluation, extra_findings=[*load_findings, *plan_findings])
    if as_json:
        click.echo(json.dumps(report, indent=2, allow_nan=False, ensure_ascii=False))
    else:
        print_table("Periods (after wave k, before wave k+1)", *period_rows(report))
        print_table("Waves", *wave_rows(report))
        violations = [f for f in evaluation.findings if f.severity == "error"]
        if violations:
            click.echo("Violations:")
            print_findings(violations, err=False)
        notes = [f for f in (*evaluation.findings, *analysis.findings(inv, plan)) if f.severity == "warning"]
        if notes:
            click.echo("Warnings:")
            print_findings(notes, err=False)
        for line in summary_lines(report):
            click.echo(line)
    raise SystemExit(EXIT_OK if evaluation.feasible else EXIT_INFEASIBLE)
