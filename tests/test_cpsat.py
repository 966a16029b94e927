"""The CP-SAT wave model: each constraint family changes the optimum of a tiny estate as computed by
hand, the full model matches brute force over all K^n plans, and sub-models keep fixed blocks."""

from __future__ import annotations

import gzip
import itertools
from dataclasses import replace

import numpy as np
import pytest
import scipy.sparse as sp
from conftest import DATA, random_apps, random_rules
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ortools.sat import cp_model_pb2
from ortools.sat.python import cp_model

from migplan import metrics
from migplan.model import App, Dependency, Inventory, Plan, Rule, Scenario
from migplan.solve.blocks import build_blocks
from migplan.solve.cpsat import (
    ModelOptions,
    _drop_small_coefficients,
    build_model,
    build_problem,
    configure,
    latency_matrix,
    objective_value,
    relaxed_problem,
    scaled,
    solve,
    violations,
)


def _inv(apps: list[App], deps: list[Dependency], **scenario: object) -> Inventory:
    scenario.setdefault("risk_weight", 0.0)
    return Inventory(tuple(apps), tuple(deps), Scenario(**scenario))  # type: ignore[arg-type]


def _chain(**app_kw: dict[str, object]) -> list[App]:
    """a, b, c, d with per-app keyword overrides."""
    return [App(x, 1.0, **app_kw.get(x, {})) for x in "abcd"]  # type: ignore[arg-type]


# a -> b (10 qps) -> c (5 qps) -> d (1 qps): the cheapest cut is c -> d, then b -> c
CHAIN = [Dependency("a", "b", 10), Dependency("b", "c", 5), Dependency("c", "d", 1)]


def optimum(inv: Inventory) -> tuple[float | None, list[int] | None]:
    """(chatty cost, app waves) of the full model's proven optimum; (None, None) if infeasible."""
    blocks = build_blocks(inv)
    if blocks.conflicts:
        return None, None
    problem = build_problem(inv, blocks, inv.scenario.risk_weight)
    base = np.clip(np.ones(blocks.count, dtype=np.int64), blocks.lo, blocks.hi)
    wm = build_model(problem, base, range(blocks.count), ModelOptions())
    outcome, _ = solve(wm, deterministic_time=10, wall_time=20)
    if outcome.status == "infeasible":
        return None, None
    assert outcome.status == "optimal" and outcome.waves is not None
    waves = blocks.expand(outcome.waves)
    evaluation = metrics.evaluate(inv, Plan.from_array(waves, inv.K))
    assert evaluation.feasible, evaluation.violation_counts
    return evaluation.chatty_cost, waves.tolist()


def test_capacity_forces_the_cheapest_split() -> None:
    assert optimum(_inv(_chain(), CHAIN, waves=2))[0] == 0
    assert optimum(_inv(_chain(), CHAIN, waves=2, capacity_apps=2.0))[0] == 5


def test_pins_force_the_cheapest_cut_between_them() -> None:
    apps = _chain(a={"pinned_wave": 2}, d={"pinned_wave": 1})
    cost, waves = optimum(_inv(apps, CHAIN, waves=2))
    assert cost == 1
    assert waves is not None and waves[0] == 2 and waves[3] == 1


def test_windows_act_like_pins_here() -> None:
    apps = _chain(a={"earliest_wave": 2}, d={"latest_wave": 1})
    assert optimum(_inv(apps, CHAIN, waves=2))[0] == 1


def test_group_and_together_rule_keep_a_and_d_in_one_wave() -> None:
    grouped = _chain(a={"group": "g"}, d={"group": "g"})
    assert optimum(_inv(grouped, CHAIN, waves=2, capacity_apps=2.0))[0] == 11  # a->b and c->d split
    together = (Rule("together", ("a", "d")),)
    assert optimum(_inv(_chain(), CHAIN, waves=2, capacity_apps=2.0, rules=together))[0] == 11


def test_before_rule_splits_the_pair_it_orders() -> None:
    rules = (Rule("before", ("b", "a")),)
    cost, waves = optimum(_inv(_chain(), CHAIN, waves=2, rules=rules))
    assert cost == 10
    assert waves is not None and waves[1] < waves[0]


def test_apart_rule() -> None:
    rules = (Rule("apart", ("c", "d")),)
    assert optimum(_inv(_chain(), CHAIN, waves=2, rules=rules))[0] == 1


def test_callees_first_moves_callees_no_later_than_callers() -> None:
    apps = _chain(d={"pinned_wave": 2})
    assert optimum(_inv(apps, CHAIN, waves=2, capacity_apps=3.0))[0] == 1  # a, b, c in wave 1
    # d in wave 2 pulls every caller to wave 2: four apps, room for three
    assert optimum(_inv(apps, CHAIN, waves=2, capacity_apps=3.0, callees_first=True))[0] is None
    cost, waves = optimum(_inv(apps, CHAIN, waves=2, callees_first=True))
    assert cost == 0 and waves == [2, 2, 2, 2]


def test_link_capacity_keeps_a_heavy_payload_unsplit() -> None:
    deps = [Dependency("a", "b", 10), Dependency("b", "c", 5), Dependency("c", "d", 1, kb_per_call=100)]
    assert optimum(_inv(_chain(), deps, waves=2, capacity_apps=3.0))[0] == 1
    # c -> d carries 0.0008 Gbps, b -> c 0.00016 Gbps: the next cheapest cut is b -> c
    assert optimum(_inv(_chain(), deps, waves=2, capacity_apps=3.0, link_gbps=0.0005))[0] == 5


def test_max_risk_spreads_risk() -> None:
    apps = [App(x, 1.0, risk=1.0) for x in "abcd"]
    assert optimum(_inv(apps, CHAIN, waves=2))[0] == 0
    assert optimum(_inv(apps, CHAIN, waves=2, max_risk=0.75))[0] == 1
    assert optimum(_inv(apps, CHAIN, waves=2, max_risk=0.5))[0] == 5


def test_max_risk_met_exactly_is_feasible() -> None:
    """Shares of 1/3 against max_risk = 1/3 (and everything in one wave at max_risk 1) meet
    the rule by metrics; the model rounded shares up to 1e-5 and called both infeasible."""
    apps = [App(x, 1.0, risk=1.0) for x in "abc"]
    deps = [Dependency("a", "b", 1), Dependency("b", "c", 1)]
    cost, waves = optimum(_inv(apps, deps, waves=3, max_risk=1 / 3))
    assert cost == 2 and waves is not None and sorted(waves) == [1, 2, 3]
    assert (
        optimum(
            _inv([App(x, 1.0, risk=0.1 * (i + 1)) for i, x in enumerate("abc")], deps, waves=1, max_risk=1.0)
        )[0]
        == 0
    )
    assert optimum(_inv(apps, deps, waves=3, max_risk=0.33))[0] is None  # 1/3 is over 0.33


def test_latency_budget_forbids_splitting_a_call_that_costs_one_rtt() -> None:
    assert optimum(_inv(_chain(), CHAIN, waves=2, capacity_apps=3.0))[0] == 1
    tight = _chain(c={"latency_budget_ms": 20.0})  # c -> d split adds 30 ms to c
    cost, waves = optimum(_inv(tight, CHAIN, waves=2, capacity_apps=3.0))
    assert cost == 5  # a, b | c, d: b -> c costs b and a 30 ms each, within their 100 ms
    assert waves is not None and waves[2] == waves[3]


def test_latency_budget_counts_calls_per_request_along_the_path() -> None:
    deps = [Dependency("a", "b", 10), Dependency("b", "c", 5, calls_per_request=2), Dependency("c", "d", 1)]
    # for a: splitting a -> b adds 30 ms, b -> c 2 x 30 = 60 ms, c -> d 2 x 30 = 60 ms (via b)
    apps = _chain(a={"latency_budget_ms": 50.0})
    assert optimum(_inv(apps, deps, waves=2, capacity_apps=3.0))[0] == 10
    apps = _chain(a={"latency_budget_ms": 29.0})
    assert optimum(_inv(apps, deps, waves=2, capacity_apps=3.0))[0] is None


def test_split_cycles_switch() -> None:
    apps = [App("a", 1.0), App("b", 1.0)]
    deps = [Dependency("a", "b", 3, sync=False), Dependency("b", "a", 2, sync=False)]
    assert optimum(_inv(apps, deps, waves=2, capacity_apps=1.0))[0] is None
    assert optimum(_inv(apps, deps, waves=2, capacity_apps=1.0, split_cycles=True))[0] == 5


def test_scaled_rounds_loads_up_and_limits_down_but_keeps_exact_values() -> None:
    assert scaled(np.array([1.001, 30.0]), 100, "up").tolist() == [101, 3000]
    assert scaled(np.array([1.009, 30.0]), 100, "down").tolist() == [100, 3000]
    assert scaled(np.array([0.1 + 0.2]), 10, "down").tolist() == [3]  # float noise is not a rounding step


def test_risk_weight_zero_is_chatty_cost_exactly_and_positive_weight_adds_the_risk_term() -> None:
    inv = _inv(_chain(), CHAIN, waves=3)
    blocks = build_blocks(inv)
    waves = np.array([1, 2, 2, 3])
    plain = build_problem(inv, blocks, 0.0)
    assert objective_value(plain, waves) == pytest.approx(metrics.chatty_cost(inv, waves))
    risky = build_problem(inv, blocks, 1.0)
    share = metrics.wave_risk_share(inv, waves)
    expected = metrics.chatty_cost(inv, waves) + 0.01 * 16 * 3 * (share[0] + share.max())
    assert objective_value(risky, waves) == pytest.approx(expected, rel=1e-3)


def test_sub_model_keeps_fixed_blocks_and_only_improves() -> None:
    inv = _inv(_chain(), CHAIN, waves=3, capacity_apps=2.0)
    blocks = build_blocks(inv)
    problem = build_problem(inv, blocks, 0.0)
    base = np.array([1, 3, 2, 3])
    wm = build_model(problem, base, [1, 2], ModelOptions())
    outcome, _ = solve(wm, deterministic_time=5, wall_time=10)
    assert outcome.waves is not None
    assert outcome.waves[0] == 1 and outcome.waves[3] == 3
    assert metrics.chatty_cost(inv, outcome.waves) <= metrics.chatty_cost(inv, base)
    assert violations(problem, outcome.waves).count == 0


def test_soft_model_never_lets_a_violation_grow() -> None:
    apps = _chain(b={"latency_budget_ms": 20.0}, c={"latency_budget_ms": 20.0})
    inv = _inv(apps, CHAIN, waves=3, capacity_apps=3.0)
    blocks = build_blocks(inv)
    problem = build_problem(inv, blocks, 0.0)
    base = np.array([1, 2, 3, 3])  # b -> c split in period 2: b 10 ms over budget
    before = violations(problem, base)
    assert before.latency.sum() > 0
    wm = build_model(problem, base, [0, 1], ModelOptions(soft=True, chatty=False))
    outcome, _ = solve(wm, deterministic_time=5, wall_time=10)
    assert outcome.waves is not None
    after = violations(problem, outcome.waves)
    assert np.all(after.latency <= before.latency)
    assert after.score < before.score


def _random_inventory(seed: int) -> Inventory:
    """Up to 6 apps, 2-3 waves, random sync/async calls, budgets, pins, groups and rules."""
    rng = np.random.default_rng(seed)
    n, K = int(rng.integers(2, 7)), int(rng.integers(2, 4))
    apps = random_apps(rng, n, K, 50, [15, 25, 40, 100], group_share=0.15)
    deps: dict[tuple[int, int], Dependency] = {}
    for _ in range(int(rng.integers(1, 2 * n))):
        i, j = (int(x) for x in rng.choice(n, 2, replace=False))
        deps[(i, j)] = Dependency(
            f"a{i}", f"a{j}", float(rng.integers(1, 10)), calls_per_request=0.5, sync=bool(rng.random() < 0.7)
        )
    rules = random_rules(rng, n)
    return _inv(
        apps,
        list(deps.values()),
        waves=K,
        capacity_apps=float(-(-n // K) + rng.integers(0, 2)),
        rules=rules,
        callees_first=bool(rng.random() < 0.2),
        link_gbps=0.0002 if rng.random() < 0.15 else None,
        max_risk=0.7 if rng.random() < 0.2 else None,
        split_cycles=bool(rng.random() < 0.3),
    )


def _brute_force(inv: Inventory) -> float | None:
    best = None
    for waves in itertools.product(range(1, inv.K + 1), repeat=inv.n):
        evaluation = metrics.evaluate(inv, Plan(waves, inv.K))
        if evaluation.feasible and (best is None or evaluation.chatty_cost < best):
            best = evaluation.chatty_cost
    return best


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, 10**6))
def test_full_model_optimum_equals_brute_force(seed: int) -> None:
    inv = _random_inventory(seed)
    expected = _brute_force(inv)
    got, _ = optimum(inv)
    if expected is None:
        assert got is None
    else:
        assert got == pytest.approx(expected)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, 10**6))
def test_sub_model_objective_moves_exactly_like_the_chatty_cost(seed: int) -> None:
    """Pinning a sub-model's free blocks to a target plan changes its objective by exactly the
    change in chatty cost: splits to fixed blocks (constants, x or 1 - x) are all signed right."""
    rng = np.random.default_rng(seed)
    n, K = int(rng.integers(3, 9)), int(rng.integers(2, 6))
    apps = [App(f"a{i}", 1.0) for i in range(n)]
    pairs = {tuple(sorted(int(x) for x in rng.choice(n, 2, replace=False))) for _ in range(2 * n)}
    deps = [Dependency(f"a{i}", f"a{j}", float(rng.integers(1, 20)), sync=False) for i, j in pairs]
    inv = _inv(apps, deps, waves=K)  # calls go from lower to higher index: no cycles, one app per block
    problem = build_problem(inv, build_blocks(inv), 0.0)
    assert problem.count == n
    base = rng.integers(1, K + 1, n)
    free = np.flatnonzero(rng.random(n) < 0.6)
    target = base.copy()
    target[free] = rng.integers(1, K + 1, len(free))
    values = []
    for plan in (base, target):
        wm = build_model(problem, base, free, ModelOptions())
        for (b, k), var in wm.x.items():  # fix the free blocks at the plan's waves
            wm.model.add(var == int(plan[b] <= k))
        outcome, solver = solve(wm, deterministic_time=5, wall_time=10)
        assert outcome.waves is not None and np.array_equal(outcome.waves, plan)
        values.append(round(solver.objective_value))  # an integer objective, returned as a float
    chatty = [int(problem.weight @ np.abs(p[problem.eu] - p[problem.ev])) for p in (base, target)]
    assert values[1] - values[0] == chatty[1] - chatty[0]


def test_the_latency_drop_never_forbids_a_split_the_true_budget_allows() -> None:
    # a -> b alone adds 99.3 ms of a's 100; dropping a -> c (0.9 ms) off the budget would
    # leave 99.1 ms and forbid a plan that meets every budget
    from conftest import planner_problem

    apps = [App("a", 1, latency_budget_ms=100), App("b", 1), App("c", 1), App("x", 1)]
    deps = [
        Dependency("a", "b", 10, calls_per_request=3.31),
        Dependency("a", "c", 10, calls_per_request=0.03),
    ]
    inv = Inventory(tuple(apps), tuple(deps), Scenario(waves=2, capacity_apps=2.0))
    plan = np.array([1, 2, 1, 2])  # a -> b split, a -> c not
    assert metrics.evaluate(inv, Plan.from_array(plan, 2)).feasible
    _, problem = planner_problem(inv)
    assert violations(problem, plan).count == 0
    L, dropped, _ = latency_matrix(inv)  # without blocks the 1 % drop applies in full
    assert dropped[0] > 0.8 and L[0].nnz == 1


def test_latencies_past_int64_keep_their_meaning() -> None:
    # a0 -> a1 -> ... -> a79, 3 calls per request each: splitting a_i -> a_(i+1) adds
    # 30 x 3^(i+1) ms to a0 (1e39 ms deep down, past int64 in 0.001 ms units).  20 loose apps and
    # 50 apps per wave: the chain is cut once, after a_29 .. a_49; deeper cuts are cheaper
    # (qps 100 - i), but a0's budget of 1.5 x 30 x 3^46 ms stops them after a_45.
    chain = [Dependency(f"a{i}", f"a{i + 1}", 100.0 - i, calls_per_request=3.0) for i in range(79)]
    loose = [App(f"x{i}", 1.0) for i in range(20)]

    def estate(root_budget: float) -> Inventory:
        apps = [App("a0", 1.0, latency_budget_ms=root_budget)]
        apps += [App(f"a{i}", 1.0, latency_budget_ms=1e300) for i in range(1, 80)]
        return _inv(apps + loose, chain, waves=2, capacity_apps=50.0)

    cost, waves = optimum(estate(1.5 * 30 * 3.0**46))
    assert cost == 100 - 45 and waves is not None
    assert waves[45] != waves[46] and len(set(waves[:46])) == 1 and len(set(waves[46:80])) == 1
    assert optimum(estate(1e300))[0] == 100 - 49  # no budget binds: the deepest cut


def test_a_small_pilot_beside_an_unlimited_wave_still_binds() -> None:
    # units are scaled from the largest capacity: 1e15 used to scale the pilot's 1 app to 0
    pinned = _chain(a={"pinned_wave": 1})
    cost, waves = optimum(_inv(pinned, CHAIN, waves=2, capacity_apps=(1.0, 1e15)))
    assert cost == 10 and waves == [1, 2, 2, 2]  # a alone in the pilot, the rest after it


def test_the_latency_drop_is_per_app_even_beside_huge_latencies() -> None:
    # a0 sits on a 40-deep chain of 3 calls per request (up to 30 x 3^40 ms); w, after it,
    # calls p once (30 ms) and q 0.01 times (0.3 ms): only q's 0.3 ms fit in 1 % of w's 100 ms
    chain = [Dependency(f"a{i}", f"a{i + 1}", 1.0, calls_per_request=3.0) for i in range(40)]
    apps = [App("a0", 1.0, latency_budget_ms=1e15)] + [App(f"a{i}", 1.0) for i in range(1, 41)]
    apps += [App("w", 1.0, latency_budget_ms=100.0), App("p", 1.0), App("q", 1.0)]
    deps = [*chain, Dependency("w", "p", 1.0), Dependency("w", "q", 1.0, calls_per_request=0.01)]
    inv = Inventory(tuple(apps), tuple(deps), Scenario(waves=2))
    L, dropped, _ = latency_matrix(inv)
    w = inv.index["w"]
    assert dropped[w] == pytest.approx(0.3) and L[w].nnz == 1


def test_a_model_whose_hint_meets_every_constraint_is_never_called_infeasible() -> None:
    # a repair sub-model (13 soft rows, latency units near 1e-10 ms) that CP-SAT 9.15's default
    # presolve called infeasible ("linear + amo", google/or-tools#5293), and with two workers
    # and its hint aborted the process; ``configure`` switches that rule off
    proto = cp_model_pb2.CpModelProto()
    proto.ParseFromString(gzip.decompress((DATA / "presolve" / "hinted_repair_model.pb.gz").read_bytes()))
    hint = dict(zip(proto.solution_hint.vars, proto.solution_hint.values, strict=True))
    assert len(hint) == len(proto.variables)
    for ct in proto.constraints:  # the hint is a solution: every enforced linear row holds
        if ct.WhichOneof("constraint") == "linear":
            total = sum(c * hint[v] for v, c in zip(ct.linear.vars, ct.linear.coeffs, strict=True))
            assert ct.linear.domain[0] <= total <= ct.linear.domain[-1] or ct.enforcement_literal
    for workers in (1, 2):
        model = cp_model.CpModel()
        model.proto.parse_text_format(str(proto))
        solver = cp_model.CpSolver()
        configure(solver, deterministic_time=5.0, wall_time=60.0, workers=workers, seed=559909100)
        assert solver.solve(model) in (cp_model.OPTIMAL, cp_model.FEASIBLE)


def test_the_exact_relaxation_sees_a_hair_past_a_budget_that_the_relaxation_does_not() -> None:
    # a's two split calls add 15 + 10.000011 ms against 25.00001 ms: 1e-6 ms over, far past
    # metrics' tolerance (1e-9 relative); in 0.001 ms units rounded the plan's way it fits
    apps = [App("a", 1.0, latency_budget_ms=25.00001), App("b", 1.0), App("c", 1.0)]
    deps = [Dependency("a", "b", 1.0, 0.5), Dependency("a", "c", 1.0, 10.000011 / 30)]
    inv = _inv(apps, deps, waves=2, rtt_ms=30.0)
    waves = np.array([1, 2, 2])
    assert not metrics.evaluate(inv, Plan.from_array(waves, 2)).feasible
    problem = build_problem(inv, build_blocks(inv), 0.0)
    blocks = problem.blocks.of  # one block per app here
    plan = waves[np.argsort(blocks)]
    assert violations(relaxed_problem(problem, 0.0), plan).count == 0  # the hair is lost
    assert violations(relaxed_problem(problem, 0.0, exact=True), plan).count == 1
    at_budget = replace(inv, apps=(replace(apps[0], latency_budget_ms=25.000011), *apps[1:]))
    assert metrics.evaluate(at_budget, Plan.from_array(waves, 2)).feasible  # exactly at the budget ...
    exact = relaxed_problem(build_problem(at_budget, build_blocks(at_budget), 0.0), 0.0, exact=True)
    assert violations(exact, plan).count == 0  # ... is a plan of the exact relaxation


def test_the_relaxation_keeps_the_coefficients_the_search_model_drops() -> None:
    # a (budget 30.2 ms) calls b once (30 ms) and c, d a 200th of the time (0.15 ms each): the
    # search model drops one small call (taking it off the budget); split all three, a pays 30.3
    apps = [App("a", 1.0, latency_budget_ms=30.2), App("b", 1.0), App("c", 1.0), App("d", 1.0)]
    deps = [
        Dependency("a", "b", 1.0, 1.0),
        Dependency("a", "c", 1.0, 0.005),
        Dependency("a", "d", 1.0, 0.005),
    ]
    inv = _inv(apps, deps, waves=2, rtt_ms=30.0)
    waves = np.array([1, 2, 2, 2])
    assert not metrics.evaluate(inv, Plan.from_array(waves, 2)).feasible
    problem = build_problem(inv, build_blocks(inv), 0.0)
    assert problem.dropped_ms[0] > 0 and problem.latency_source.getrow(0).nnz < 3
    plan = waves[np.argsort(problem.blocks.of)]
    for exact in (False, True):  # without the dropped call a relaxation saw 30.15 ms
        assert violations(relaxed_problem(problem, 0.0, exact=exact), plan).count == 1


def test_the_exact_relaxation_holds_max_risk_safely() -> None:
    # risks 1.0000001, 1, 1 against max_risk 1/3: a's wave carries a hair more than a third,
    # which the relaxation's units (1e-5 of a risk point, rounded the plan's way) lose
    apps = [App("a", 1.0, risk=1.0000001), App("b", 1.0, risk=1.0), App("c", 1.0, risk=1.0)]
    inv = _inv(apps, [Dependency("a", "b", 1), Dependency("b", "c", 1)], waves=3, max_risk=1 / 3)
    waves = np.array([1, 2, 3])
    assert metrics.evaluate(inv, Plan.from_array(waves, 3)).violation_counts["risk"] == 1
    problem = build_problem(inv, build_blocks(inv), 0.0)
    plan = waves[np.argsort(problem.blocks.of)]
    assert violations(relaxed_problem(problem, 0.0), plan).count == 0
    assert violations(relaxed_problem(problem, 0.0, exact=True), plan).count == 1


def test_a_kicks_model_is_solved_by_one_worker_with_its_hint_kept() -> None:
    # a -> c split adds 30 ms of a's 10; a may not leave wave 1, so no plan clears its row
    # (b, free, gives the model a hinted variable).  CP-SAT 9.15 aborted the process on such
    # a model (hinted with the plan that breaks the cleared row) with an interleaved search:
    # a kick on a generated 1,800-app estate (seed 120, 16 waves)
    apps = [App("a", 1, latency_budget_ms=10, latest_wave=1), App("b", 1), App("c", 1)]
    inv = _inv(apps, [Dependency("a", "c", 10)], waves=2)
    problem = build_problem(inv, build_blocks(inv), 0.0)
    start = np.array([1, 1, 2])
    row = int(np.flatnonzero(violations(problem, start).latency.sum(axis=1))[0])
    kick = ModelOptions(soft=True, chatty=False, relax_limits=True, clear_row=row)
    wm = build_model(problem, start, [0, 1], kick)
    outcome, solver = solve(wm, deterministic_time=5.0, wall_time=60.0, workers=2)
    assert outcome.status == "infeasible" and solver.parameters.num_workers == 1
    assert wm.model.proto.has_solution_hint()  # kept: the plan the kick should stay near
    plain = build_model(problem, start, [0, 1], replace(kick, clear_row=None))
    outcome, solver = solve(plain, deterministic_time=5.0, wall_time=60.0, workers=2)
    assert outcome.status != "infeasible" and solver.parameters.num_workers == 2


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.lists(st.integers(0, 12), min_size=0, max_size=7), min_size=1, max_size=6),
    st.lists(st.sampled_from([-1, 0, 1, 2, 4, 8, 16]), min_size=6, max_size=6),  # exact shares
)
def test_dropped_coefficients_are_each_rows_smallest_within_its_allowance(
    values: list[list[int]], allowances: list[int]
) -> None:
    """Against a row-by-row reference: ascending values (ties in column order) are dropped
    while their sum stays within the allowance (none where it is 0 or less, all where it is
    infinite); the one-sort version must drop exactly the same entries."""
    width = max(len(r) for r in values) or 1
    dense = np.zeros((len(values), width))
    for i, row in enumerate(values):
        dense[i, : len(row)] = row
    allowance = np.array(allowances[: len(values)], dtype=np.float64)
    allowance[0] = np.inf  # a row whose calls never split: every coefficient goes
    kept, dropped = _drop_small_coefficients(sp.csr_matrix(dense), allowance)
    expected = dense.copy()
    for i in range(len(values)):
        total = 0.0
        for j in sorted(np.flatnonzero(dense[i]), key=lambda j: (dense[i, j], j)):
            share = 2.0 if allowance[i] <= 0 else min(dense[i, j] / allowance[i], 2.0)
            if total + share > 1.0:
                break
            total += share
            expected[i, j] = 0.0
        assert dropped[i] == pytest.approx(dense[i].sum() - expected[i].sum())
    assert np.array_equal(kept.toarray(), expected)
