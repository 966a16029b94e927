"""Infeasibility explanations: a small core of the user's rules, told with app names and numbers."""

from __future__ import annotations

import time

import pytest

from migplan.model import App, Dependency, Finding, Inventory, Rule, Scenario
from migplan.solve import explain as explain_module
from migplan.solve.blocks import build_blocks
from migplan.solve.cpsat import build_problem
from migplan.solve.explain import explain
from migplan.solve.search import Budget


def _inv(apps: list[App], deps: list[Dependency], **scenario: object) -> Inventory:
    return Inventory(tuple(apps), tuple(deps), Scenario(**scenario))  # type: ignore[arg-type]


def why(inv: Inventory) -> tuple[Finding, ...]:
    problem = build_problem(inv, build_blocks(inv), 0.0)
    return explain(inv, problem, Budget.start(60, 60, None)).findings


def text(findings: tuple[Finding, ...]) -> str:
    return "\n".join(f.message for f in findings)


def test_pin_conflict_in_a_group_names_both_pins() -> None:
    apps = [App("a", 1, group="g", pinned_wave=1), App("b", 1, group="g", pinned_wave=3)]
    found = why(_inv(apps, [], waves=3))
    assert found[0].severity == "error"
    assert "a pinned to wave 1" in text(found) and "b pinned to wave 3" in text(found)


def test_capacity_too_small_for_all_apps() -> None:
    apps = [App(f"s{i}", 1) for i in range(5)]
    found = why(_inv(apps, [], waves=2, capacity_apps=2.0))
    assert found[0].code == "infeasible" and "proven" in found[0].message
    assert [f.code for f in found[1:]] == ["core-capacity"]
    assert "4 over 2 waves" in found[1].message and "5 apps" in found[1].message


def test_before_cycle_names_both_rules() -> None:
    apps = [App("a", 1), App("b", 1), App("c", 1)]
    rules = (Rule("before", ("a", "b")), Rule("before", ("b", "a")), Rule("apart", ("a", "c")))
    found = why(_inv(apps, [], waves=3, rules=rules))
    codes = sorted(f.code for f in found[1:])
    assert codes == ["core-before", "core-before"]  # the apart rule is not part of the conflict
    assert "a, b" in text(found) and "b, a" in text(found)


def test_latency_forced_by_pins_tells_the_call_and_its_cost() -> None:
    apps = [
        App("user-svc", 10, latency_budget_ms=40, pinned_wave=1),
        App("mysql-user", 10, pinned_wave=5),
        App("other", 1),
    ]
    deps = [Dependency("user-svc", "mysql-user", 100, calls_per_request=2)]
    found = why(_inv(apps, deps, waves=5))
    codes = sorted(f.code for f in found[1:])
    assert codes == ["core-latency", "core-pin", "core-pin"]
    latency = next(f for f in found if f.code == "core-latency")
    assert "user-svc (latency budget 40 ms, pinned to wave 1)" in latency.message
    assert "2 sync call(s) per request to mysql-user (pinned to wave 5)" in latency.message
    assert "adds 60 ms" in latency.message
    assert set(found[0].apps) == {"user-svc", "mysql-user"}


def test_apart_with_more_apps_than_waves() -> None:
    apps = [App(x, 1) for x in "abcd"]
    found = why(_inv(apps, [], waves=3, rules=(Rule("apart", ("a", "b", "c", "d")),)))
    (member,) = found[1:]
    assert member.code == "core-apart"
    assert "4 apps (a, b, c, d) must move in different waves, and there are 3 waves" in member.message


def test_window_and_callees_first_conflict() -> None:
    apps = [App("caller", 1, latest_wave=1), App("callee", 1, earliest_wave=2)]
    found = why(_inv(apps, [Dependency("caller", "callee", 5)], waves=2, callees_first=True))
    codes = sorted(f.code for f in found[1:])
    assert codes == ["core-callees-first", "core-window", "core-window"]
    assert "caller must move in waves 1..1" in text(found)
    assert "callee must move in waves 2..2" in text(found)


def test_a_feasible_estate_yields_a_plan_instead_of_a_reason() -> None:
    apps = [App("a", 1), App("b", 1)]
    inv = _inv(apps, [Dependency("a", "b", 1)], waves=2)
    found = explain(inv, build_problem(inv, build_blocks(inv), 0.0), Budget.start(60, 60, None))
    assert found.findings == ()
    assert found.waves is not None and len(found.waves) == 2


def test_calls_below_a_divergent_cycle_are_named_when_they_bind() -> None:
    apps = [App("a", 1), App("b", 1), App("c", 1)]
    deps = [Dependency("a", "b", 1), Dependency("b", "a", 1), Dependency("b", "c", 1)]
    found = why(_inv(apps, deps, waves=2, capacity_apps=2.0))
    assert found[0].code == "infeasible"
    note = next(f for f in found if f.code == "core-unbounded-latency")
    assert "b → c" in note.message and "unbounded" in note.message


def test_a_proof_model_too_large_to_build_in_time_is_declined_with_its_size(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    apps = [App("a", 1, latency_budget_ms=40, pinned_wave=1), App("b", 1, pinned_wave=3)]
    inv = _inv(apps, [Dependency("a", "b", 10, calls_per_request=2)], waves=3)
    assert why(inv)[0].code == "infeasible"  # proven when the model is small enough
    monkeypatch.setattr(explain_module, "EXPLAIN_MAX_TERMS", 1)  # 1 coefficient x 2 periods
    (finding,) = why(inv)
    assert finding.code == "no-plan-found"
    assert "2 terms" in finding.message


def test_a_proof_model_slower_to_build_than_the_wall_left_is_not_built(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """At 60 waves the build ran 17 s past --time-limit for a 2 s wall: its size decides first."""
    apps = [App("a", 1, latency_budget_ms=40, pinned_wave=1), App("b", 1, pinned_wave=3)]
    inv = _inv(apps, [Dependency("a", "b", 10, calls_per_request=2)], waves=3)
    monkeypatch.setattr(explain_module, "BUILD_TERMS_PER_SECOND", 1.0)  # 2 terms: 2 s to build
    built: list[object] = []
    monkeypatch.setattr(explain_module, "build_model", lambda *args, **kw: built.append(args))
    problem = build_problem(inv, build_blocks(inv), 0.0)
    (finding,) = explain(inv, problem, Budget.start(10.0, 10.0, None), wall=1.0).findings
    assert finding.code == "no-plan-found"
    assert "2 terms" in finding.message and "about 2 s to build, more than the 1 s left" in finding.message
    assert built == []


def test_building_the_proof_model_counts_in_its_wall_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """A slow build leaves the first solve only what is left of ``wall`` (at least the minimum)."""
    build, solve = explain_module.build_model, explain_module.solve
    seen: list[float] = []

    def slow_build(*args: object, **kwargs: object) -> object:
        time.sleep(0.4)
        return build(*args, **kwargs)  # type: ignore[arg-type]

    def spy(*args: object, **kwargs: object) -> object:
        seen.append(float(kwargs["wall_time"]))  # type: ignore[arg-type]
        return solve(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(explain_module, "build_model", slow_build)
    monkeypatch.setattr(explain_module, "solve", spy)
    apps = [App(f"s{i}", 1) for i in range(5)]
    inv = _inv(apps, [], waves=2, capacity_apps=2.0)
    problem = build_problem(inv, build_blocks(inv), 0.0)
    explain(inv, problem, Budget.start(60, 60, None), wall=1.0)
    assert explain_module.MIN_SEARCH_SECONDS <= seen[0] <= 0.6
    seen.clear()
    explain(inv, problem, Budget.start(60, 60, None), wall=0.2)
    assert seen[0] == explain_module.MIN_SEARCH_SECONDS  # the build used it all: the minimum
