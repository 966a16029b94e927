"""Baselines (migplan/baselines.py) and the benchmark harness logic (bench/run.py)."""

from __future__ import annotations

import datetime as dt
import itertools
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from bench import run as bench
from migplan import metrics
from migplan.baselines import BASELINES, fiedler_order, louvain_pack
from migplan.model import App, Dependency, Inventory, Plan, Scenario
from migplan.solve.split import block_cost


def estate(n: int = 90, K: int = 5, seed: int = 3) -> Inventory:
    """A layered call graph with pins, a window, a group and a pilot wave."""
    rng = np.random.default_rng(seed)
    extra: dict[int, dict[str, object]] = {
        0: {"pinned_wave": K},
        5: {"pinned_wave": 1},
        9: {"earliest_wave": 3},
        20: {"group": "g"},
        21: {"group": "g"},
        40: {"latest_wave": 2},
    }
    apps = tuple(App(f"a{i}", 10.0, instances=1 + i % 3, **extra.get(i, {})) for i in range(n))  # type: ignore[arg-type]
    deps: dict[tuple[int, int], float] = {}
    for i in range(1, n):
        for _ in range(2):
            j = int(rng.integers(max(0, i - 12), i))
            deps[(i, j)] = float(rng.integers(1, 200))
    cap = float(np.ceil(1.2 * n / K))
    scenario = Scenario(waves=K, capacity_apps=(cap / 2,) + (cap,) * (K - 1), capacity_instances=2.5 * n / K)
    return Inventory(apps, tuple(Dependency(f"a{u}", f"a{v}", q) for (u, v), q in deps.items()), scenario)


def test_every_baseline_gives_a_valid_deterministic_plan() -> None:
    inv = estate()
    for name, method in BASELINES.items():
        plan = method(inv, 7)
        w = plan.array
        assert plan.K == inv.K and w.shape == (inv.n,), name
        assert ((w >= 1) & (w <= inv.K)).all(), name
        assert w[0] == inv.K and w[5] == 1 and w[9] >= 3 and w[40] <= 2, name
        assert w[20] == w[21], name
        ev = metrics.evaluate(inv, plan)
        assert ev.violation_counts["capacity"] == 0, name
        assert ev.violation_counts["pin"] == 0 and ev.violation_counts["window"] == 0, name
        assert np.array_equal(method(inv, 7).array, w), name


def test_mapping_beats_louvain_pack_and_random() -> None:
    inv = estate(150, 6, seed=1)
    costs = {name: metrics.chatty_cost(inv, method(inv, 0).array) for name, method in BASELINES.items()}
    assert costs["latency-blind-mapping"] < costs["louvain-pack"] < costs["random-order"]


def test_louvain_pack_fills_waves_first_fit_largest_first() -> None:
    """Two 3-cliques and a 2-clique, 3 per wave: the 3-cliques take waves 1 and 2."""
    edges = list(itertools.combinations(range(3), 2)) + list(itertools.combinations(range(3, 6), 2))
    edges.append((6, 7))
    apps = tuple(App(f"a{i}", 1.0) for i in range(8))
    deps = tuple(Dependency(f"a{u}", f"a{v}", 100.0) for u, v in edges)
    inv = Inventory(apps, deps, Scenario(waves=3, capacity_apps=3))
    w = louvain_pack(inv, 0).array
    assert sorted({int(w[0]), int(w[3])}) == [1, 2]
    assert len(set(w[:3].tolist())) == 1 and len(set(w[3:6].tolist())) == 1
    assert w[6] == w[7] == 3


def test_fiedler_order_of_a_path_is_the_path() -> None:
    n = 12
    rows = np.arange(n - 1)
    A = sp.csr_matrix((np.ones(n - 1), (rows, rows + 1)), shape=(n, n))
    A = (A + A.T).tocsr()
    perm = np.random.default_rng(0).permutation(n)
    shuffled = A[perm][:, perm]  # block i of shuffled is block perm[i] of the path
    order = fiedler_order(shuffled.tocsr(), 0)
    along = perm[order]
    assert along.tolist() in (list(range(n)), list(range(n))[::-1])
    waves = np.empty(n, dtype=np.int64)
    waves[order] = np.arange(n) // 4 + 1
    assert block_cost(shuffled.tocsr(), waves) == 2.0


def test_fiedler_order_handles_components_and_isolated_blocks() -> None:
    A = sp.csr_matrix(np.array([[0, 1, 0, 0, 0], [1, 0, 0, 0, 0], [0] * 5, [0, 0, 0, 0, 2], [0, 0, 0, 2, 0]]))
    order = fiedler_order(A.astype(float).tocsr(), 0)
    assert sorted(order.tolist()) == [0, 1, 2, 3, 4]
    pos = {b: i for i, b in enumerate(order.tolist())}
    assert abs(pos[0] - pos[1]) == 1 and abs(pos[3] - pos[4]) == 1


def test_bench_rows_ratios_and_table_in_process() -> None:
    """The --quick logic on a tiny generated estate, in-process (no timing assertions)."""
    tiny = bench.Dataset("tiny", 60, 2, time_limit=5.0)
    missing = bench.Dataset("missing", folder="datasets/does-not-exist")
    names = ["louvain-pack", "latency-blind-mapping"]
    rows = bench.run_bench((tiny, missing), names, isolate=False)
    by = {(r["dataset"], r["method"]): r for r in rows}
    ref = by[("tiny", "louvain-pack")]
    assert ref["apps"] == 60 and ref["ratio_louvain"] == 1.0
    mapping = by[("tiny", "latency-blind-mapping")]
    assert mapping["ratio_mapping"] == 1.0
    assert mapping["ratio_louvain"] == mapping["chatty_cost"] / ref["chatty_cost"]
    assert "not found" in by[("missing", "louvain-pack")]["note"]
    table = bench.markdown(rows, {"nproc": "2"}, "python -m bench.run --quick")
    assert table.count("\n| tiny |") == 2 and "nproc: 2" in table


def test_planner_quality_labels() -> None:
    row = {"method": bench.PLANNER, "status": "optimal", "gap": 0.0}
    assert bench.quality(row) == "proven optimal"
    assert bench.quality({**row, "status": "infeasible", "gap": None}) == "proven infeasible"
    assert bench.quality({**row, "status": "feasible", "gap": 0.25}) == "gap ≤ 25.0% (feasible)"
    assert bench.quality({**row, "status": "feasible", "gap": None}) == "gap unknown (feasible)"
    weak = bench.quality({**row, "status": "feasible", "gap": 0.97})
    assert weak == "gap unknown (lower bound too weak) (feasible)"
    weak = bench.quality({**row, "status": "feasible", "gap": 0.998})
    assert weak == "gap unknown (lower bound too weak) (feasible)"
    assert bench.quality({"method": "louvain-pack"}) == ""


def test_bench_rejects_unknown_only_names() -> None:
    with pytest.raises(SystemExit) as exit_info:
        bench.main(["--quick", "--only", "no-such-method"])
    assert exit_info.value.code == 2


def test_a_partial_bench_run_keeps_the_days_table(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bench, "RESULTS", tmp_path)
    day = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d")
    full = tmp_path / f"{day}-bench-quick.md"
    full.write_text("the full table")
    assert bench.main(["--quick", "--only", "demo", "--only", "random-order"]) == 0
    assert full.read_text() == "the full table"
    partial = tmp_path / f"{day}-bench-quick-only-demo-random-order.md"
    assert "| demo | 40 | random-order |" in partial.read_text()


@pytest.mark.parametrize("shape", ["ba", "layered", "chain"])
def test_shaped_bench_estates_have_a_feasible_planted_plan_with_binding_budgets(shape: str) -> None:
    """bench.shapes counts "no plan" as the planner's failure: its planted plan must meet every
    rule, and with slack 0 some budget is exactly what that plan needs."""
    from bench.shapes import shaped_estate

    inv, planted = shaped_estate(f"{shape}:200:1:0")
    evaluation = metrics.evaluate(inv, planted)
    assert inv.n == 200 and evaluation.feasible
    tight = np.isclose(evaluation.added_latency.max(axis=1), inv.budgets, rtol=0, atol=1.0)
    assert np.count_nonzero(tight & (inv.budgets > 0)) > 0


def test_shaped_bench_rules_are_met_by_the_planted_plan_and_bind() -> None:
    """bench.shapes --rules: pins, windows, groups, rules and limits the planted plan meets."""
    from bench.shapes import shaped_estate, with_rules

    inv, planted = shaped_estate("layered:400:1:0.2")
    ruled = with_rules(inv, planted)
    assert metrics.evaluate(ruled, planted).feasible
    assert sum(a.pinned_wave is not None for a in ruled.apps) == 8  # 2 % of 400
    assert ruled.scenario.rules and ruled.scenario.link_gbps and ruled.scenario.max_risk
    shifted = Plan.from_array(np.roll(planted.array, 1), inv.K)  # every app's neighbour's wave
    counts = metrics.evaluate(ruled, shifted).violation_counts
    assert counts["pin"] > 0 and counts["window"] > 0
