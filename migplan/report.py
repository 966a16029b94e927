"""The plan report (plan.json content) and the tables the CLI prints, as plain data.

Pure: no I/O, no metric computed here.  Every number comes from ``metrics.evaluate`` (the
one definition of each figure) or from ``analysis``; this module only arranges them with
application ids instead of positions.  Values are JSON-ready (``to_jsonable``): an
unbounded latency is the string ``"unbounded"``, a NaN is ``null``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from typing import Any

import numpy as np

from migplan import __version__, analysis, metrics
from migplan.metrics import Evaluation
from migplan.model import Finding, Inventory, Plan, Scenario

REPORT_FORMAT = "migplan-plan/1"
UNBOUNDED = "unbounded"


def plan_report(
    inv: Inventory,
    plan: Plan,
    evaluation: Evaluation,
    solver: Mapping[str, object] | None = None,
    extra_findings: Sequence[Finding] = (),
) -> dict[str, Any]:
    """Everything plan.json holds: scenario, solver info, figures per period and wave, findings.

    ``solver`` is passed through as given (status, seed, parameters, stages, timings,
    objective, gap); ``extra_findings`` are the loader's warnings and the solver's notes.
    """
    found = [*extra_findings, *evaluation.findings, *analysis.findings(inv, plan)]
    figures = {
        "objective": metrics.objective(inv, plan.array, _risk_weight(inv, solver)),
        "chatty_cost": evaluation.chatty_cost,
        "violation_counts": dict(evaluation.violation_counts),
        "violations": sum(evaluation.violation_counts.values()),
        "periods": period_table(inv, evaluation),
        "waves": wave_table(inv, evaluation),
    }
    return _report(inv, solver, found, {"feasible": evaluation.feasible}, figures)


def no_plan_report(
    inv: Inventory,
    solver: Mapping[str, object],
    reason: str,
    findings: Sequence[Finding],
    closest_plan: str | None = None,
) -> dict[str, Any]:
    """plan.json when no feasible plan was found: the same keys, no figures, and the reason.

    Why write one at all: a script that runs the planner needs the status and the reasons
    (the named apps, rules and numbers) as data, not only as text on stderr.
    ``closest_plan``: the file beside it that holds the search's closest plan, if any.
    """
    figures = dict.fromkeys(("objective", "chatty_cost", "violation_counts", "violations"))
    head = {"feasible": False, "reason": reason, "closest_plan": closest_plan}
    return _report(inv, solver, findings, head, {**figures, "periods": [], "waves": []})


def _report(
    inv: Inventory,
    solver: Mapping[str, object] | None,
    found: Sequence[Finding],
    head: Mapping[str, Any],
    figures: Mapping[str, Any],
) -> dict[str, Any]:
    """plan.json's layout: ``head`` (feasible, reason) first, then inventory, scenario, solver,
    the plan's ``figures``, findings, cycles and bring-up order."""
    ids = inv.ids
    return to_jsonable(
        {
            "format": REPORT_FORMAT,
            "migplan_version": __version__,
            **head,
            "inventory": {"apps": inv.n, "dependencies": inv.m, "dependency_qps": float(inv.edge_qps.sum())},
            "scenario": scenario_dict(inv.scenario),
            "solver": dict(solver) if solver is not None else None,
            **figures,
            "findings": [finding_dict(f) for f in found],
            "cycles": [[ids[i] for i in cycle] for cycle in analysis.cycles(inv)],
            "bringup_order": [[ids[i] for i in step] for step in analysis.bringup_order(inv)],
        }
    )


def scenario_dict(scenario: Scenario) -> dict[str, Any]:
    """Every scenario key as used (defaults and overrides filled in), shaped like scenario.toml.

    Unset capacities and limits are None (null): unlimited.
    """
    return {
        "source": scenario.source,
        "target": scenario.target,
        "rtt_ms": scenario.rtt_ms,
        "waves": scenario.waves,
        "default_latency_budget_ms": scenario.default_latency_budget_ms,
        "link_gbps": scenario.link_gbps,
        "callees_first": scenario.callees_first,
        "split_cycles": scenario.split_cycles,
        "risk_weight": scenario.risk_weight,
        "wave_capacity": {
            "apps": scenario.capacity_apps,
            "instances": scenario.capacity_instances,
            "data_gb": scenario.capacity_data_gb,
            "max_risk": scenario.max_risk,
        },
        "constraint": [{"kind": r.kind, "apps": list(r.apps)} for r in scenario.rules],
    }


def period_table(inv: Inventory, evaluation: Evaluation) -> list[dict[str, Any]]:
    """One row per period k = 1..K-1 (after wave k, before wave k+1)."""
    over = evaluation.latency_violations
    latency = evaluation.added_latency
    link_cap = inv.scenario.link_gbps
    rows = []
    for k in range(evaluation.K - 1):
        over_ids = [inv.ids[i] for i in np.flatnonzero(over[:, k])] if over.shape[1] > k else []
        load = float(evaluation.link_load_gbps[k])
        rows.append(
            {
                "period": k + 1,
                "after_wave": k + 1,
                "cross_site_qps": float(evaluation.cross_site_qps[k]),
                "link_load_gbps": load,
                "link_utilization": load / link_cap if link_cap else None,
                "max_added_latency_ms": float(latency[:, k].max()) if latency.shape[0] else 0.0,
                "apps_over_budget": len(over_ids),
                "apps_over_budget_ids": over_ids,
            }
        )
    return rows


def wave_table(inv: Inventory, evaluation: Evaluation) -> list[dict[str, Any]]:
    """One row per wave 1..K: load moved, capacity where one is set, risk share."""
    caps = {res: inv.scenario.capacity(res) for res in ("apps", "instances", "data_gb")}
    rows = []
    for w in range(evaluation.K):
        rows.append(
            {
                "wave": w + 1,
                "apps": int(evaluation.wave_apps[w]),
                "instances": float(evaluation.wave_instances[w]),
                "data_gb": float(evaluation.wave_data_gb[w]),
                "risk_share": float(evaluation.wave_risk_share[w]),
                "capacity": {res: float(c[w]) for res, c in caps.items() if c is not None},
            }
        )
    return rows


def finding_dict(finding: Finding) -> dict[str, Any]:
    """A Finding as JSON data (None fields kept so every record has the same keys)."""
    data = asdict(finding)
    data["apps"] = list(finding.apps)
    return data


def to_jsonable(value: Any) -> Any:
    """Plain JSON types: numpy scalars/arrays unwrapped, inf -> "unbounded", NaN -> None."""
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | np.ndarray):
        return [to_jsonable(v) for v in value]
    if isinstance(value, Finding):
        return finding_dict(value)
    if isinstance(value, np.bool_ | bool):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        number = float(value)
        if math.isnan(number):
            return None
        if math.isinf(number):
            return UNBOUNDED if number > 0 else "-" + UNBOUNDED
        return number
    return value


# -- tables for people ------------------------------------------------------------------------


def _num(value: Any, digits: int = 1) -> str:
    if value is None:
        return "-"
    if isinstance(value, str):
        return value
    return f"{value:,.{digits}f}"


def period_rows(report: Mapping[str, Any]) -> tuple[list[str], list[list[str]]]:
    """Header and text rows of the per-period table of a plan report."""
    header = ["period", "cross-site QPS", "link Gbps", "max added ms", "apps over budget"]
    rows = [
        [
            str(p["period"]),
            _num(p["cross_site_qps"]),
            _num(p["link_load_gbps"], 3),
            _num(p["max_added_latency_ms"]),
            str(p["apps_over_budget"]),
        ]
        for p in report["periods"]
    ]
    return header, rows


def wave_rows(report: Mapping[str, Any]) -> tuple[list[str], list[list[str]]]:
    """Header and text rows of the per-wave table of a plan report."""
    header = ["wave", "apps", "instances", "data GB", "risk share"]
    rows = [
        [
            str(w["wave"]),
            str(w["apps"]),
            _num(w["instances"], 0),
            _num(w["data_gb"]),
            f"{w['risk_share']:.1%}" if isinstance(w["risk_share"], float) else "-",
        ]
        for w in report["waves"]
    ]
    return header, rows


def summary_lines(report: Mapping[str, Any]) -> list[str]:
    """Chatty cost, verdict and violation counts in a few lines."""
    lines = [f"chatty cost: {_num(report['chatty_cost'])} (qps × waves split)"]
    if report["feasible"]:
        lines.append(
            "verdict: FEASIBLE (every capacity, pin, window, group, rule, link and latency check holds)"
        )
    else:
        counts = ", ".join(f"{k} {v}" for k, v in report["violation_counts"].items() if v)
        lines.append(f"verdict: INFEASIBLE: {report['violations']} violation(s): {counts}")
    return lines


def format_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Plain-text table, first column left-aligned, numbers right-aligned."""
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows, strict=True)]

    def line(cells: Sequence[str]) -> str:
        parts = [
            str(c).ljust(w) if i == 0 else str(c).rjust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ]
        return "  ".join(parts).rstrip()

    return "\n".join([line(header), line(["-" * w for w in widths]), *(line(r) for r in rows)])


def _risk_weight(inv: Inventory, solver: Mapping[str, object] | None) -> float:
    """The planner's --risk-weight when it planned, else the scenario's (evaluate's overrides included)."""
    weight = (solver or {}).get("risk_weight")
    return float(weight) if isinstance(weight, int | float) else inv.scenario.risk_weight
