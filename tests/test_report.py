"""plan.json content: every figure comes from metrics/analysis, arranged with app ids, JSON-ready."""

from __future__ import annotations

import json

from migplan import metrics
from migplan.model import App, Dependency, Inventory, Plan, Rule, Scenario
from migplan.report import format_table, period_rows, plan_report, scenario_dict, summary_lines, wave_rows

TINY_PLAN = Plan((3, 2, 2, 2, 1, 1), 3)  # web, api, user, order, mysql, redis


def test_tiny_report_matches_the_hand_computation(tiny_inventory: Inventory) -> None:
    """Figures of tests/data/tiny/README.md."""
    evaluation = metrics.evaluate(tiny_inventory, TINY_PLAN)
    solver = {"status": "OPTIMAL", "objective": 7.5}
    report = plan_report(tiny_inventory, TINY_PLAN, evaluation, solver=solver)
    assert report["feasible"] is True and report["violations"] == 0
    assert report["chatty_cost"] == 2500.0
    assert report["solver"] == {"status": "OPTIMAL", "objective": 7.5}  # passed through as given
    # the objective is computed, as evaluate computes it: chatty cost + the risk term
    assert report["objective"] == metrics.objective(tiny_inventory, TINY_PLAN.array, 1.0) > 2500.0
    periods = report["periods"]
    assert [p["cross_site_qps"] for p in periods] == [1500.0, 1000.0]
    assert [round(p["link_load_gbps"], 6) for p in periods] == [0.0176, 0.064]
    assert [p["max_added_latency_ms"] for p in periods] == [90.0, 30.0]
    assert [p["apps_over_budget"] for p in periods] == [0, 0]
    waves = report["waves"]
    loads = [(w["apps"], w["instances"], w["data_gb"]) for w in waves]
    assert loads == [(2, 4.0, 220.0), (3, 6.0, 15.0), (1, 4.0, 0.0)]
    assert [w["capacity"] for w in waves] == [{"apps": 2.0}, {"apps": 3.0}, {"apps": 3.0}]
    assert abs(sum(w["risk_share"] for w in waves) - 1.0) < 1e-9
    assert report["cycles"] == []
    assert report["bringup_order"][0] in (["mysql"], ["redis"])
    json.dumps(report, allow_nan=False)  # valid JSON as it is


def test_scenario_dict_has_every_key_shaped_like_the_toml() -> None:
    scenario = Scenario(waves=2, capacity_instances=(1.0, 2.0), rules=(Rule("apart", ("a", "b")),))
    data = scenario_dict(scenario)
    assert data["wave_capacity"] == {"apps": None, "instances": (1.0, 2.0), "data_gb": None, "max_risk": None}
    assert data["constraint"] == [{"kind": "apart", "apps": ["a", "b"]}]
    assert set(data) == {
        "source",
        "target",
        "rtt_ms",
        "waves",
        "default_latency_budget_ms",
        "link_gbps",
        "callees_first",
        "split_cycles",
        "risk_weight",
        "wave_capacity",
        "constraint",
    }


def test_unbounded_latency_and_over_budget_apps_by_id() -> None:
    """a ⇄ b call each other once per request (spectral radius 1); b's call to d is split."""
    inv = Inventory(
        (App("a", 1.0), App("b", 1.0), App("d", 1.0)),
        (Dependency("a", "b", 1.0), Dependency("b", "a", 1.0), Dependency("b", "d", 2.0)),
        Scenario(waves=2, split_cycles=True),
    )
    plan = Plan((2, 2, 1), 2)
    report = plan_report(inv, plan, metrics.evaluate(inv, plan))
    assert report["periods"][0]["max_added_latency_ms"] == "unbounded"
    assert report["periods"][0]["apps_over_budget_ids"] == ["a", "b"]
    assert report["feasible"] is False and report["violation_counts"]["latency"] == 2
    assert report["cycles"] == [["a", "b"]]
    json.dumps(report, allow_nan=False)
    header, rows = period_rows(report)
    assert header[1] == "cross-site QPS"
    assert rows == [["1", "2.0", "0.000", "unbounded", "2"]]
    assert "INFEASIBLE" in summary_lines(report)[1]


def test_text_tables(tiny_inventory: Inventory) -> None:
    report = plan_report(tiny_inventory, TINY_PLAN, metrics.evaluate(tiny_inventory, TINY_PLAN))
    header, rows = wave_rows(report)
    assert header == ["wave", "apps", "instances", "data GB", "risk share"]
    assert rows[0] == ["1", "2", "4", "220.0", f"{report['waves'][0]['risk_share']:.1%}"]
    table = format_table(["x", "value"], [["a", "1"], ["bb", "10"]]).splitlines()
    assert table == ["x   value", "--  -----", "a       1", "bb     10"]
