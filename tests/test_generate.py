"""The synthetic estate generator, the inventory writer, `migplan generate` and the bundled datasets."""

from __future__ import annotations

import filecmp
import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from migplan import analysis, baselines, metrics
from migplan.cli import main
from migplan.generate import generate_estate
from migplan.generate_options import MAX_RTT_MS, option_problems
from migplan.io.inventory import load_inventory
from migplan.io.planfiles import read_waves_csv
from migplan.io.scenario import MAX_WAVES, parse_scenario
from migplan.io.writer import PLANTED_FILE, cell, plan_writer, scenario_toml, write_inventory
from migplan.model import App, Dependency, Inventory, Plan, Rule, Scenario

DATASETS = Path(__file__).resolve().parent.parent / "datasets"
FILES = ("apps.csv", "dependencies.csv", "scenario.toml", PLANTED_FILE)
# The commands recorded in the datasets' README files.
BUNDLED = {"netease": (2100, 7, 12), "demo": (40, 3, 5)}


def _entry_qps(inv: Inventory) -> float:
    return sum(a.qps for a in inv.apps if a.kind in ("frontend", "gateway"))


def _write(folder: Path, n: int, seed: int, waves: int = 12) -> Path:
    estate = generate_estate(n, seed, waves)
    write_inventory(folder, estate.inventory, {PLANTED_FILE: plan_writer(estate.inventory, estate.planted)})
    return folder


# ---------------------------------------------------------------- determinism


def test_progress_hears_every_phase_in_order_and_does_not_change_the_estate() -> None:
    phases: list[str] = []
    heard = generate_estate(120, 3, progress=phases.append)
    assert phases == ["apps and calls", "traffic", "planted plan", "budgets and limits"]
    assert heard == generate_estate(120, 3)


def test_same_seed_gives_identical_files_and_another_seed_does_not(tmp_path: Path) -> None:
    a = _write(tmp_path / "a", 200, 5)
    b = _write(tmp_path / "b", 200, 5)
    c = _write(tmp_path / "c", 200, 6)
    for name in FILES:
        assert filecmp.cmp(a / name, b / name, shallow=False), name
    assert not filecmp.cmp(a / "dependencies.csv", c / "dependencies.csv", shallow=False)
    assert generate_estate(200, 5) == generate_estate(200, 5)


# ---------------------------------------------------------------- feasibility by construction


@pytest.mark.parametrize(("n", "waves"), [(20, 2), (40, 5), (151, 12), (300, 12), (300, 3)])
def test_planted_plan_is_feasible(n: int, waves: int) -> None:
    estate = generate_estate(n, 11, waves)
    ev = metrics.evaluate(estate.inventory, estate.planted)
    assert ev.feasible, ev.violation_counts
    assert estate.inventory.n == n
    assert estate.planted.K == waves == estate.inventory.K


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    n=st.integers(36, 240),
    seed=st.integers(0, 2**32 - 1),
    waves=st.integers(2, 12),
    rtt=st.floats(1.0, 120.0),
)
def test_planted_plan_is_feasible_for_any_seed_size_and_rtt(
    n: int, seed: int, waves: int, rtt: float
) -> None:
    estate = generate_estate(n, seed, waves, rtt)
    ev = metrics.evaluate(estate.inventory, estate.planted)
    assert ev.feasible, ev.violation_counts
    assert estate.inventory.scenario.rtt_ms == rtt
    assert sorted(set(estate.planted.waves)) == list(range(1, waves + 1))  # no empty wave


def test_budgets_capacities_and_limits_are_derived_from_the_planted_plan() -> None:
    inv, plan = (e := generate_estate(300, 2)).inventory, e.planted
    ev = metrics.evaluate(inv, plan)
    worst = ev.added_latency.max(axis=1)
    assert np.all(inv.budgets >= worst)
    assert np.all(inv.budgets == np.ceil(inv.budgets))  # whole milliseconds
    # Budgets bind: many apps have little or no room for added latency.
    assert np.mean(inv.budgets <= 12) > 0.1
    caps = inv.scenario.capacity("apps")
    assert caps is not None
    assert caps[0] < caps[1]  # a pilot wave first
    assert caps[0] == math.ceil(ev.wave_apps[0] * 1.15)
    assert inv.scenario.link_gbps is not None and inv.scenario.link_gbps >= ev.link_load_gbps.max() * 1.2
    assert inv.scenario.max_risk is not None and inv.scenario.max_risk >= ev.wave_risk_share.max() * 1.15
    assert inv.scenario.source == "hangzhou" and inv.scenario.target == "guizhou"


@pytest.mark.parametrize("blind", [baselines.latency_blind_mapping, baselines.louvain_pack])
def test_latency_budgets_bind_for_latency_blind_plans(blind: Callable[[Inventory, int], Plan]) -> None:
    """The planted plan meets every budget; good plans that ignore latency do not."""
    estate = generate_estate(200, 1)
    assert metrics.evaluate(estate.inventory, estate.planted).violation_counts["latency"] == 0
    assert metrics.evaluate(estate.inventory, blind(estate.inventory, 0)).violation_counts["latency"] >= 10


def test_pins_and_rules_agree_with_the_planted_plan() -> None:
    inv, plan = (e := generate_estate(1400, 3)).inventory, e.planted
    pinned = [(a.pinned_wave, w) for a, w in zip(inv.apps, plan.waves, strict=True) if a.pinned_wave]
    assert len(pinned) >= 2 and all(p == w for p, w in pinned)
    kinds = {r.kind for r in inv.scenario.rules}
    assert kinds == {"before", "apart"}


# ---------------------------------------------------------------- the estate's shape


def test_a_two_thousand_app_estate_has_netease_totals() -> None:
    inv = generate_estate(2000, 1).inventory
    assert inv.n == 2000
    assert _entry_qps(inv) > 1_000_000
    assert 1.5 * inv.n < inv.m < 5 * inv.n
    kinds = [a.kind for a in inv.apps]
    for kind in ("frontend", "gateway", "service", "middleware", "database", "control-plane"):
        assert kind in kinds
    assert kinds.count("service") > inv.n / 2
    assert inv.apps[0].app_id.startswith("cp-")  # systematic ids at large n, sorted
    assert all(a.app_id != a.app_id.upper() for a in inv.apps)


def test_cycles_are_few_small_and_bounded() -> None:
    inv = generate_estate(300, 4).inventory
    cycles = analysis.cycles(inv)
    assert cycles
    assert all(2 <= len(c) <= 4 for c in cycles)
    assert any(all(inv.apps[i].kind == "service" for i in c) for c in cycles)
    assert np.isfinite(metrics.added_latency(inv, np.arange(inv.n) % inv.K + 1)).all()


def test_calls_are_mostly_light_some_async_mostly_inside_teams() -> None:
    inv = generate_estate(300, 8).inventory
    assert np.median(inv.edge_calls) < 1
    assert 0.05 < 1 - inv.edge_sync.mean() < 0.3
    assert inv.edge_kb.min() >= 1 and inv.edge_kb.max() <= 64
    team = np.array([a.team for a in inv.apps])
    kind = np.array([a.kind for a in inv.apps])
    ss = (kind[inv.caller] == "service") & (kind[inv.callee] == "service")
    assert np.mean(team[inv.caller][ss] == team[inv.callee][ss]) > 0.7


def test_app_qps_covers_its_inbound_traffic() -> None:
    """qps = own background + Σ inbound dependency qps (up to the 0.01 rounding)."""
    inv = generate_estate(250, 9).inventory
    inbound = np.bincount(inv.callee, weights=inv.edge_qps, minlength=inv.n)
    qps = np.array([a.qps for a in inv.apps])
    assert np.all(qps >= inbound - 0.01 * (1 + np.bincount(inv.callee, minlength=inv.n)))
    caller_qps = qps[inv.caller]
    assert np.allclose(inv.edge_qps, caller_qps * inv.edge_calls, rtol=1e-3, atol=0.02)


def test_small_estates_have_readable_ids() -> None:
    ids = set(generate_estate(40, 3, 5).inventory.ids)
    assert {"service-registry", "config-center", "api-gateway", "web-frontend", "mysql-user"} <= ids


@pytest.mark.parametrize(
    ("n", "waves", "rtt"), [(19, 2, 30.0), (30, 12, 30.0), (100, 1, 30.0), (100, 4, -1.0)]
)
def test_impossible_sizes_are_refused(n: int, waves: int, rtt: float) -> None:
    with pytest.raises(ValueError):
        generate_estate(n, 0, waves, rtt)


# ---------------------------------------------------------------- writer round trip


def test_generated_inventory_round_trips_through_files(tmp_path: Path) -> None:
    estate = generate_estate(120, 12, 6)
    write_inventory(tmp_path, estate.inventory)
    result = load_inventory(tmp_path)
    assert not result.findings, [f.render() for f in result.findings]
    assert result.inventory == estate.inventory


def test_odd_values_round_trip(tmp_path: Path) -> None:
    apps = (
        App("a,1", 0.1 + 0.2, name='say "hi"', team="t", criticality=1, latency_budget_ms=12.5, risk=3.25),
        App(
            "b-ü",
            1e-7,
            latency_budget_ms=None,
            instances=7,
            data_gb=1234.5678,
            stateful=True,
            rehearsed=False,
        ),
        App("c", 123456789.125, kind="database", group="g", pinned_wave=2, risk=None),
        App("d", 0.0, group="g", earliest_wave=1, latest_wave=3, risk=0.0),
    )
    deps = (
        Dependency("a,1", "b-ü", 0.30000000000000004, 1 / 3, False, 64.0),
        Dependency("b-ü", "c", 5.0, 0.0, True, 0.5),
    )
    scenario = Scenario(
        source='hang"zhou',
        rtt_ms=12.5,
        waves=3,
        link_gbps=0.1,
        callees_first=True,
        capacity_apps=(1.0, 2.0, 3.0),
        capacity_data_gb=1e6,
        max_risk=0.7,
        rules=(Rule("before", ("a,1", "c")), Rule("apart", ("b-ü", "d"))),
        split_cycles=True,
        risk_weight=0.0,
    )
    inv = Inventory(apps, deps, scenario)
    write_inventory(tmp_path, inv)
    result = load_inventory(tmp_path)
    assert result.inventory == inv, [f.render() for f in result.findings]
    assert (tmp_path / "apps.csv").read_text(encoding="utf-8").splitlines()[0].endswith(",risk")


def test_scenario_with_defaults_only_reads_back_equal() -> None:
    scenario, findings = parse_scenario(scenario_toml(Scenario()), None)
    assert not findings
    assert scenario == Scenario()


def test_cell_formats() -> None:
    assert [cell(None), cell(True), cell(False), cell(3.0), cell(0.1), cell(7), cell("x")] == [
        "",
        "true",
        "false",
        "3",
        "0.1",
        "7",
        "x",
    ]
    with pytest.raises(ValueError):
        cell(float("nan"))


# ---------------------------------------------------------------- command line


def test_generate_command_writes_a_loadable_folder_with_a_feasible_planted_plan(tmp_path: Path) -> None:
    out = tmp_path / "estate"
    result = CliRunner().invoke(
        main, ["generate", "--apps", "60", "--seed", "2", "--waves", "4", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert "wrote 60 apps" in result.output
    loaded = load_inventory(out)
    assert loaded.inventory is not None and not loaded.errors
    assert loaded.inventory == generate_estate(60, 2, 4).inventory
    plan, findings = read_waves_csv(out / PLANTED_FILE, loaded.inventory)
    assert plan is not None and not findings
    assert metrics.evaluate(loaded.inventory, plan).feasible


def test_generate_does_not_overwrite_an_inventory_without_force(tmp_path: Path) -> None:
    """Regression (fuzz2): --out an existing inventory silently replaced its three files."""
    out = tmp_path / "estate"
    out.mkdir()
    (out / "apps.csv").write_text("app_id,qps\nmine,1\n")
    args = ["generate", "--apps", "40", "--out", str(out)]
    refused = CliRunner().invoke(main, args)
    assert refused.exit_code == 2
    assert "--out " + str(out) + " already holds apps.csv" in refused.output and "--force" in refused.output
    assert (out / "apps.csv").read_text() == "app_id,qps\nmine,1\n"
    assert CliRunner().invoke(main, [*args, "--force"]).exit_code == 0
    assert load_inventory(out).inventory == generate_estate(40, 0).inventory
    empty = CliRunner().invoke(main, ["generate", "--apps", "40", "--out", ""])
    assert empty.exit_code == 2 and "--out is empty" in empty.output


@pytest.mark.parametrize("args", [["--apps", "5"], ["--apps", "50", "--waves", "0"], ["--apps", "x"]])
def test_generate_command_rejects_bad_arguments_with_exit_2(tmp_path: Path, args: list[str]) -> None:
    result = CliRunner().invoke(main, ["generate", *args, "--out", str(tmp_path / "o")])
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    assert not (tmp_path / "o").exists()


# ---------------------------------------------------------------- bundled datasets


@pytest.mark.parametrize("name", sorted(BUNDLED))
def test_bundled_dataset_loads_cleanly_and_its_planted_plan_is_feasible(name: str) -> None:
    folder = DATASETS / name
    result = load_inventory(folder)
    assert result.inventory is not None and not result.findings, [f.render() for f in result.findings]
    plan, findings = read_waves_csv(folder / PLANTED_FILE, result.inventory)
    assert plan is not None and not findings
    ev = metrics.evaluate(result.inventory, plan)
    assert ev.feasible, ev.violation_counts
    assert (folder / "README.md").is_file()


@pytest.mark.parametrize("name", sorted(BUNDLED))
def test_bundled_dataset_is_what_its_recorded_command_writes(name: str, tmp_path: Path) -> None:
    """If this fails, regenerate with the command in datasets/<name>/README.md."""
    n, seed, waves = BUNDLED[name]
    fresh = _write(tmp_path, n, seed, waves)
    for file in FILES:
        assert filecmp.cmp(fresh / file, DATASETS / name / file, shallow=False), file


def test_netease_dataset_has_the_public_figures() -> None:
    inv = load_inventory(DATASETS / "netease").inventory
    assert inv is not None
    assert inv.n >= 2000 and inv.K == 12 and inv.scenario.rtt_ms == 30
    assert _entry_qps(inv) > 1_000_000


def test_demo_dataset_shows_every_feature() -> None:
    inv = load_inventory(DATASETS / "demo").inventory
    assert inv is not None
    assert 30 <= inv.n <= 50 and 4 <= inv.K <= 6
    assert analysis.cycles(inv)
    assert any(a.group for a in inv.apps)
    assert any(a.pinned_wave for a in inv.apps)
    assert not inv.edge_sync.all()
    assert inv.scenario.rules
    assert isinstance(inv.scenario.capacity_apps, tuple)


def test_every_bad_generator_option_is_named_at_once() -> None:
    """Regression (fuzz gen): --rtt-ms 1e300 wrote an inventory its own validator rejected."""
    assert option_problems(40, 12, 30.0) == []
    assert option_problems(20, 0, float("nan")) == [
        ("waves", "0", f"an integer from 2 to {MAX_WAVES}"),
        ("rtt_ms", "nan", "a number from 0 to 1,000,000 (ms)"),
    ]
    assert option_problems(35, 12, 1e300) == [
        ("apps", "35", "at least max(20, 3 x waves) = 36 and at most 200,000"),
        ("rtt_ms", "1e+300", "a number from 0 to 1,000,000 (ms)"),
    ]
    with pytest.raises(ValueError, match="rtt_ms = 1e\\+300"):
        generate_estate(40, 0, 12, 1e300)


def test_the_largest_rtt_still_gives_an_inventory_that_loads(tmp_path: Path) -> None:
    """At MAX_RTT_MS the budgets (many round trips deep) stay inside the loader's 1e15 limit."""
    write_inventory(tmp_path, generate_estate(40, 0, 12, MAX_RTT_MS).inventory)
    assert load_inventory(tmp_path).ok


def test_generate_help_and_errors_state_the_real_app_rule(tmp_path: Path) -> None:
    """The help said "at least 20 apps" while 12 waves need 36."""
    help_text = " ".join(CliRunner().invoke(main, ["generate", "--help"]).output.split())
    assert "at least max(20, 3 x waves)" in help_text
    result = CliRunner().invoke(
        main, ["generate", "--apps", "20", "--rtt-ms", "1e300", "--out", str(tmp_path / "o")]
    )
    assert result.exit_code == 2
    assert result.output.strip() == (
        "error: 2 bad option(s): --apps 20: expected at least max(20, 3 x waves) = 36 and at most 200,000; "
        "--rtt-ms 1e+300: expected a number from 0 to 1,000,000 (ms); nothing was written"
    )
    assert not (tmp_path / "o").exists()
