"""Inventory loading: every SPEC §2 rule, row numbering, merge policy, overrides."""

from __future__ import annotations

import csv
import io
import os
import unicodedata
from pathlib import Path

import pytest
from conftest import WriteInventory
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from migplan.io import table
from migplan.io.inventory import apply_overrides, load_inventory, option_findings
from migplan.io.scenario import MAX_RISK_WEIGHT, MAX_WAVES
from migplan.model import App, Dependency, Finding, Inventory, Rule, Scenario

TINY_DEPS = "caller,callee,qps\nweb,api,10\n"
TWO_APPS = "app_id,qps\nweb,1\napi,2\n"


def codes(findings: tuple[Finding, ...]) -> list[str]:
    return [f.code for f in findings]


def only(findings: tuple[Finding, ...], code: str) -> Finding:
    """The single finding with ``code``."""
    matches = [f for f in findings if f.code == code]
    assert len(matches) == 1, [f.render() for f in findings]
    return matches[0]


def test_tiny_inventory_is_read_as_written(tiny_inventory: Inventory) -> None:
    inv = tiny_inventory
    assert inv.ids == ("web", "api", "user", "order", "mysql", "redis")
    assert inv.apps[2] == App(
        "user",
        500.0,
        name="User service",
        team="core",
        criticality=2,
        instances=2,
        data_gb=10.0,
        kind="service",
    )
    assert inv.apps[3].rehearsed is False and inv.apps[3].latest_wave == 2
    assert inv.apps[4].stateful is True and inv.apps[4].group == "db"
    assert inv.dependencies[1] == Dependency("api", "user", 500.0, 0.5, True, 4.0)
    assert inv.dependencies[6].sync is False
    assert inv.scenario == Scenario(
        source="hangzhou",
        target="guizhou",
        rtt_ms=30.0,
        waves=3,
        default_latency_budget_ms=100.0,
        link_gbps=1.0,
        capacity_apps=(2.0, 3.0, 3.0),
        max_risk=0.8,
        rules=(Rule("before", ("mysql", "user")),),
    )


def test_defaults_fill_empty_cells_and_missing_columns(write_inventory: WriteInventory) -> None:
    folder = write_inventory("app_id,qps,criticality,kind\nweb,5,,\n", "caller,callee,qps\n")
    result = load_inventory(folder)
    assert result.inventory is not None
    assert result.inventory.apps == (App("web", 5.0),)
    assert result.inventory.scenario == Scenario()
    assert only(result.findings, "default-scenario").severity == "info"


def test_bom_case_spaces_and_column_order(write_inventory: WriteInventory) -> None:
    apps = "\ufeff QPS , App ID,Stateful\n 12.5 , web ,Yes\n3,api,N\n"
    deps = "QPS,Callee,CALLER,Sync\n 7 ,api,web,0\n"
    result = load_inventory(write_inventory(apps.encode("utf-8"), deps))
    assert result.inventory is not None, [f.render() for f in result.findings]
    assert result.inventory.apps == (App("web", 12.5, stateful=True), App("api", 3.0))
    assert result.inventory.dependencies == (Dependency("web", "api", 7.0, sync=False),)


def test_windows_line_ends(write_inventory: WriteInventory) -> None:
    folder = write_inventory(b"app_id,qps\r\nweb,1\r\napi,2\r\n", b"caller,callee,qps\r\nweb,api,3\r\n")
    inv = load_inventory(folder).inventory
    assert inv is not None and inv.ids == ("web", "api") and inv.dependencies[0].qps == 3.0


def test_semicolon_separated_file_gets_a_hint(write_inventory: WriteInventory) -> None:
    result = load_inventory(write_inventory("app_id;qps\nweb;1\n"))
    assert [f.column for f in result.errors] == ["app_id", "qps"]
    assert "separate columns with semicolons" in result.errors[0].message


def test_unknown_columns_only_warn(write_inventory: WriteInventory) -> None:
    result = load_inventory(write_inventory("app_id,qps,owner email,\nweb,1,a@b,x\napi,1,c@d,y\n", TINY_DEPS))
    assert result.inventory is not None
    warning = only(result.findings, "unknown-column")
    assert warning.severity == "warning" and warning.file == "apps.csv" and warning.row == 1
    assert "'owner email'" in warning.message and "unnamed column 4" in warning.message


def test_blank_rows_are_counted_and_keep_row_numbers(write_inventory: WriteInventory) -> None:
    result = load_inventory(write_inventory("app_id,qps\nweb,1\n\n,,\napi,x\n", TINY_DEPS))
    assert result.inventory is None
    blank = only(result.findings, "blank-rows")
    assert blank.severity == "info" and "2 blank row(s): 3, 4" in blank.message
    bad = only(result.findings, "bad-value")
    assert (bad.file, bad.row, bad.column, bad.value) == ("apps.csv", 5, "qps", "x")


def test_multiline_quoted_cell_is_one_row(write_inventory: WriteInventory) -> None:
    """Rows count records as a spreadsheet shows them; the message also names the text line."""
    apps = 'app_id,name,qps\nweb,"Web\nfront\nend",1\napi,API,-2\n'
    result = load_inventory(write_inventory(apps, TINY_DEPS))
    bad = only(result.findings, "bad-value")
    assert (bad.row, bad.column, bad.value) == (3, "qps", "-2")
    assert "text line 5" in bad.message


def test_duplicate_dependencies_are_merged_with_a_warning(write_inventory: WriteInventory) -> None:
    deps = """\
        caller,callee,qps,calls_per_request,sync,kb_per_call
        web,api,30,1,false,2
        api,web,1,1,true,4
        web,api,10,0.5,true,10
        """
    result = load_inventory(write_inventory(TWO_APPS, deps))
    assert result.inventory is not None
    merged = result.inventory.dependencies[0]
    # qps 30 + 10, sync if any, calls of the sync row only (0.5: async calls add no latency),
    # kb (30·2 + 10·10) / 40 = 4
    assert merged == Dependency("web", "api", 40.0, 0.5, True, 4.0)
    assert result.inventory.m == 2
    warning = only(result.findings, "duplicate-dependency")
    assert warning.severity == "warning" and "rows 2 and 4" in warning.message
    assert warning.apps == ("web", "api")


def test_merge_sums_calls_over_all_rows_when_none_is_sync(write_inventory: WriteInventory) -> None:
    """Regression (fuzz case dep_dup_async_merge): calls_per_request of async rows made a sync pair slower."""
    deps = """\
        caller,callee,qps,calls_per_request,sync
        web,api,5,2,false
        web,api,5,3,false
        api,web,1,1,true
        api,web,1,4,false
        api,web,1,0.5,true
        """
    inv = load_inventory(write_inventory(TWO_APPS, deps)).inventory
    assert inv is not None
    assert inv.dependencies == (
        Dependency("web", "api", 10.0, 5.0, False, 4.0),  # all async: every row counts
        Dependency("api", "web", 3.0, 1.5, True, 4.0),  # sync rows only: 1 + 0.5
    )


def test_merge_of_zero_qps_rows_takes_the_plain_mean(write_inventory: WriteInventory) -> None:
    deps = "caller,callee,qps,kb_per_call\nweb,api,0,2\nweb,api,0,6\n"
    inv = load_inventory(write_inventory(TWO_APPS, deps)).inventory
    assert inv is not None and inv.dependencies == (Dependency("web", "api", 0.0, 2.0, True, 4.0),)


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("true", True),
        ("YES", True),
        ("y", True),
        ("1", True),
        ("False", False),
        ("no", False),
        ("N", False),
        ("0", False),
    ],
)
def test_boolean_spellings(write_inventory: WriteInventory, text: str, value: bool) -> None:
    inv = load_inventory(
        write_inventory(f"app_id,qps,stateful\nweb,1,{text}\n", "caller,callee,qps\n")
    ).inventory
    assert inv is not None and inv.apps[0].stateful is value


@pytest.mark.parametrize("text", ["on", "t", "maybe", "2"])
def test_other_booleans_are_errors(write_inventory: WriteInventory, text: str) -> None:
    result = load_inventory(write_inventory(f"app_id,qps,rehearsed\nweb,1,{text}\n", "caller,callee,qps\n"))
    bad = only(result.findings, "bad-value")
    assert (bad.row, bad.column, bad.value) == (2, "rehearsed", text) and "yes/no" in (bad.expected or "")


@pytest.mark.parametrize("text", ["12k", "NaN", "inf", "-1", "1,5", "0x10"])
def test_bad_numbers(write_inventory: WriteInventory, text: str) -> None:
    result = load_inventory(write_inventory(f'app_id,qps\nweb,"{text}"\n', "caller,callee,qps\n"))
    assert result.inventory is None
    bad = only(result.findings, "bad-value")
    assert (bad.file, bad.row, bad.column, bad.value) == ("apps.csv", 2, "qps", text)


def test_numbers_past_1e15_are_refused_by_name(write_inventory: WriteInventory) -> None:
    # three calls of 1e308 qps add up to inf: the planner could not scale them
    apps = "app_id,qps,instances,latency_budget_ms\nweb,1e15,1,1e300\napi,2e15,10000000000000000,5\n"
    deps = "caller,callee,qps,calls_per_request,kb_per_call\nweb,api,1e308,1e16,1e15\n"
    scenario = "link_gbps = 1e16\n[wave_capacity]\ndata_gb = [1e15, 1e16]\napps = 2e15\n"
    result = load_inventory(write_inventory(apps, deps, scenario))
    assert result.inventory is None
    bad = {(f.file, f.row, f.column, f.value): f for f in result.errors}
    assert set(bad) == {
        ("apps.csv", 2, "latency_budget_ms", "1e300"),
        ("apps.csv", 3, "qps", "2e15"),
        ("apps.csv", 3, "instances", "10000000000000000"),
        ("dependencies.csv", 2, "qps", "1e308"),
        ("dependencies.csv", 2, "calls_per_request", "1e16"),
        ("scenario.toml", 1, "link_gbps", "1e+16"),
        ("scenario.toml", 3, "wave_capacity.data_gb", "1e+16"),
        ("scenario.toml", 4, "wave_capacity.apps", "2000000000000000.0"),
    }, sorted(map(str, bad))
    assert all("at most 1e15" in (f.expected or "") for f in bad.values())
    assert "too large" in bad["apps.csv", 3, "qps", "2e15"].message


def test_numbers_and_ids_are_stripped(write_inventory: WriteInventory) -> None:
    inv = load_inventory(
        write_inventory("app_id,qps,data_gb\n  web  , 1e3 ,  2.5\n", "caller,callee,qps\n")
    ).inventory
    assert inv is not None and inv.apps == (App("web", 1000.0, data_gb=2.5),)


def test_risk_column_overrides_the_score(write_inventory: WriteInventory) -> None:
    inv = load_inventory(write_inventory("app_id,qps,risk\nweb,1,7.5\napi,1,\n", TINY_DEPS)).inventory
    assert inv is not None and [a.risk for a in inv.apps] == [7.5, None]


def test_cross_row_errors_name_both_rows(write_inventory: WriteInventory) -> None:
    apps = "app_id,qps\nweb,1\napi,1\nweb,2\n"
    deps = "caller,callee,qps\nweb,apl,1\nweb,web,1\nghost,api,1\n"
    result = load_inventory(write_inventory(apps, deps))
    dup = only(result.findings, "duplicate-app")
    assert (dup.row, dup.apps) == (4, ("web",)) and "rows 2 and 4" in dup.message
    unknown = [f for f in result.findings if f.code == "unknown-app"]
    assert [(f.row, f.column, f.value) for f in unknown] == [(2, "callee", "apl"), (4, "caller", "ghost")]
    assert "did you mean 'api'" in unknown[0].message
    assert only(result.findings, "self-call").row == 3


def test_every_error_is_reported_at_once(write_inventory: WriteInventory) -> None:
    apps = "app_id,qps,criticality,instances,pinned_wave\nweb,x,0,0,13\napi,1,3.5,1,\n,2,,,\n"
    deps = "caller,callee,qps,sync\nweb,api,-1,maybe\n"
    scenario = "waves = 12\nrtt = 3\n[wave_capacity]\napps = [1, 2]\nmax_risk = 0\n"
    scenario += '[[constraint]]\nkind = "x"\napps = ["web"]\n'
    result = load_inventory(write_inventory(apps, deps, scenario))
    assert result.inventory is None
    got = {(f.file, f.row, f.column) for f in result.errors}
    assert got >= {
        ("apps.csv", 2, "qps"),
        ("apps.csv", 2, "criticality"),
        ("apps.csv", 2, "instances"),
        ("apps.csv", 3, "criticality"),
        ("apps.csv", 4, "app_id"),
        ("dependencies.csv", 2, "qps"),
        ("dependencies.csv", 2, "sync"),
        ("scenario.toml", 2, "rtt"),
        ("scenario.toml", 4, "wave_capacity.apps"),
        ("scenario.toml", 5, "wave_capacity.max_risk"),
        ("scenario.toml", 7, "constraint[1].kind"),
        ("scenario.toml", 8, "constraint[1].apps"),
    }, sorted(map(str, got))


def test_pins_and_windows_against_k(write_inventory: WriteInventory) -> None:
    apps = """\
        app_id,qps,pinned_wave,earliest_wave,latest_wave,group
        a,1,4,,,
        b,1,,0,2,
        c,1,2,3,,
        d,1,1,,,g
        e,1,,2,,g
        """
    result = load_inventory(write_inventory(apps, "caller,callee,qps\n", "waves = 3\n"))
    found = {(f.code, f.row, f.column) for f in result.errors}
    assert found == {
        ("wave-out-of-range", 2, "pinned_wave"),
        ("wave-out-of-range", 3, "earliest_wave"),
        ("pin-outside-window", 4, "pinned_wave"),
        ("group-window-conflict", 6, "group"),
    }


def test_group_pin_conflict_names_apps_and_pins(write_inventory: WriteInventory) -> None:
    apps = "app_id,qps,group,pinned_wave\na,1,g,1\nb,1,g,\nc,1,g,2\n"
    conflict = only(load_inventory(write_inventory(apps)).findings, "group-pin-conflict")
    assert conflict.apps == ("a", "c") and "a pinned to 1, c pinned to 2" in conflict.message


@pytest.mark.parametrize(
    ("scenario", "code", "row", "column"),
    [
        ("wavez = 3\n", "unknown-key", 1, "wavez"),
        ("[wave_capacity]\ncpus = 3\n", "unknown-key", 2, "wave_capacity.cpus"),
        ("waves = 3\n\n[extra]\nfoo = 1\n", "unknown-key", 3, "extra"),  # a table: its header's line
        ("[[extra]]\nfoo = 1\n", "unknown-key", 1, "extra"),
        (
            '[[constraint]]\nkind = "apart"\napps = ["a", "b"]\nwhy = "x"\n',
            "unknown-key",
            4,
            "constraint.why",
        ),
        ('[constraint]\nkind = "apart"\n', "bad-value", 1, "constraint"),
        ("wave_capacity = 3\n", "bad-value", 1, "wave_capacity"),
        ("waves = 2.5\n", "bad-value", 1, "waves"),
        ("callees_first = 1\n", "bad-value", 1, "callees_first"),
        ("link_gbps = 0\n", "bad-value", 1, "link_gbps"),
        ("rtt_ms = nan\n", "bad-value", 1, "rtt_ms"),
        ("waves = 3\n[wave_capacity]\ninstances = [1, 2]\n", "capacity-length", 3, "wave_capacity.instances"),
        ('[[constraint]]\nkind = "before"\napps = ["a", "a"]\n', "rule-repeats-app", 3, "constraint[1].apps"),
        ('[[constraint]]\nkind = "before"\n', "missing-key", 1, "constraint[1].apps"),
        ("a = [1,\n", "bad-toml", 1, None),
        ("a = 1\nb = = 2\n", "bad-toml", 2, None),
    ],
)
def test_scenario_errors(
    write_inventory: WriteInventory, scenario: str, code: str, row: int, column: str | None
) -> None:
    result = load_inventory(write_inventory(TWO_APPS, TINY_DEPS, scenario))
    assert result.inventory is None
    finding = only(result.findings, code)
    assert (finding.file, finding.row, finding.column) == ("scenario.toml", row, column)


def test_unknown_key_lists_the_known_keys(write_inventory: WriteInventory) -> None:
    finding = only(load_inventory(write_inventory(TWO_APPS, TINY_DEPS, "rtt = 3\n")).findings, "unknown-key")
    assert "'rtt'" in finding.message and "rtt_ms" in finding.message and "wave_capacity" in finding.message


def test_scenario_capacity_number_and_flags(write_inventory: WriteInventory) -> None:
    scenario = "waves = 4\nsplit_cycles = true\nrisk_weight = 0\n"
    scenario += "[wave_capacity]\ninstances = 10\ndata_gb = [1, 2, 3, 4.5]\n"
    inv = load_inventory(write_inventory(TWO_APPS, TINY_DEPS, scenario)).inventory
    assert inv is not None
    assert inv.scenario.capacity_instances == 10.0 and inv.scenario.capacity_data_gb == (1.0, 2.0, 3.0, 4.5)
    assert inv.scenario.split_cycles is True and inv.scenario.risk_weight == 0.0


def test_missing_folder_and_file_instead_of_folder(tmp_path: Path) -> None:
    assert codes(load_inventory(tmp_path / "nope").findings) == ["no-inventory"]
    (tmp_path / "f").write_text("x")
    assert "is a file" in load_inventory(tmp_path / "f").findings[0].message


def test_a_folder_name_the_file_system_refuses_is_a_finding(tmp_path: Path) -> None:
    """Regression (hostile-input audit): a name past 255 bytes raised OSError, a traceback."""
    [finding] = load_inventory(tmp_path / ("a" * 300)).findings
    assert finding.code == "no-inventory" and "cannot be read" in finding.message


def test_missing_files_are_each_reported(tmp_path: Path) -> None:
    result = load_inventory(tmp_path)
    assert [(f.code, f.file) for f in result.errors] == [
        ("missing-file", "apps.csv"),
        ("missing-file", "dependencies.csv"),
    ]


def test_overrides_recheck_against_the_new_k(tiny_inventory: Inventory) -> None:
    scenario, findings = apply_overrides(tiny_inventory, waves=4, rtt_ms=10, risk_weight=0)
    assert scenario is None
    assert [(f.code, f.column) for f in findings] == [("capacity-length", "wave_capacity.apps")]
    ok, findings = apply_overrides(
        tiny_inventory.scenario.with_overrides(capacity_apps=3.0), waves=4, rtt_ms=10
    )
    assert findings == () and ok is not None and (ok.waves, ok.rtt_ms, ok.risk_weight) == (4, 10, 1.0)


def test_overrides_report_pins_outside_the_new_k(write_inventory: WriteInventory) -> None:
    inv = load_inventory(
        write_inventory("app_id,qps,latest_wave\nweb,1,5\n", "caller,callee,qps\n")
    ).inventory
    assert inv is not None
    scenario, findings = apply_overrides(inv, waves=4, rtt_ms=-1)
    assert scenario is None
    assert {(f.code, f.file, f.column) for f in findings} == {
        ("bad-option", "--rtt-ms", None),
        ("wave-out-of-range", "apps.csv", "latest_wave"),
    }
    assert "--waves" in findings[-1].message


_ids = st.text("abcdefgh-_.", min_size=1, max_size=6)
_apps = st.lists(
    st.builds(
        App,
        app_id=_ids,
        qps=st.floats(0, 1e6, allow_nan=False),
        name=st.text('xyz ,"\n', max_size=5).map(str.strip),
        criticality=st.integers(1, 5),
        instances=st.integers(1, 50),
        stateful=st.booleans(),
        rehearsed=st.booleans(),
        latency_budget_ms=st.none() | st.floats(0, 500, allow_nan=False),
    ),
    min_size=1,
    max_size=8,
    unique_by=lambda a: a.app_id,
)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(apps=_apps)
def test_apps_written_as_csv_load_back_unchanged(write_inventory: WriteInventory, apps: list[App]) -> None:
    """Whatever a spreadsheet writes (quotes, commas, line breaks in names) reads back as written."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    columns = [
        "app_id",
        "qps",
        "name",
        "criticality",
        "instances",
        "stateful",
        "rehearsed",
        "latency_budget_ms",
    ]
    writer.writerow(columns)
    for a in apps:
        budget = "" if a.latency_budget_ms is None else repr(a.latency_budget_ms)
        writer.writerow(
            [a.app_id, repr(a.qps), a.name, a.criticality, a.instances, a.stateful, a.rehearsed, budget]
        )
    # bytes: the fixture dedents text, which would blank a whitespace-only line inside a quoted name
    result = load_inventory(write_inventory(buffer.getvalue().encode()))
    assert result.inventory is not None, [f.render() for f in result.findings]
    assert result.inventory.apps == tuple(apps)


_app = st.sampled_from(["web", "api", "db"])
_dependency_rows = st.lists(
    st.tuples(_app, _app, st.integers(0, 1000)),
    max_size=12,
).map(lambda rows: [r for r in rows if r[0] != r[1]])


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=_dependency_rows)
def test_merging_keeps_every_call(write_inventory: WriteInventory, rows: list[tuple[str, str, int]]) -> None:
    """Whatever the duplicates, each pair appears once and no qps is lost or invented."""
    deps = "caller,callee,qps\n" + "".join(f"{a},{b},{q}\n" for a, b, q in rows)
    inv = load_inventory(write_inventory("app_id,qps\nweb,1\napi,1\ndb,1\n", deps)).inventory
    assert inv is not None
    pairs = [(d.caller, d.callee) for d in inv.dependencies]
    assert sorted(pairs) == sorted({(a, b) for a, b, _ in rows})
    for d in inv.dependencies:
        assert d.qps == sum(q for a, b, q in rows if (a, b) == (d.caller, d.callee))


# ---------------------------------------------------------------- fuzzing regressions


@pytest.mark.parametrize("waves", ["10000000000", "9223372036854775807", str(MAX_WAVES + 1)])
def test_scenario_waves_above_the_limit_are_refused(write_inventory: WriteInventory, waves: str) -> None:
    """Regression (fuzz toml_waves_huge, toml_waves_int64): validated, then crashed the planner."""
    result = load_inventory(write_inventory(TWO_APPS, TINY_DEPS, f"rtt_ms = 30\nwaves = {waves}\n"))
    bad = only(result.errors, "bad-value")
    assert (bad.file, bad.row, bad.column, bad.value) == ("scenario.toml", 2, "waves", waves)
    assert bad.expected is not None and f"at most {MAX_WAVES}" in bad.expected


def test_scenario_waves_at_the_limit_are_accepted(write_inventory: WriteInventory) -> None:
    inv = load_inventory(write_inventory(TWO_APPS, TINY_DEPS, f"waves = {MAX_WAVES}\n")).inventory
    assert inv is not None and inv.K == MAX_WAVES == 1000


@pytest.mark.parametrize(("weight", "ok"), [("1e15", False), ("1000.5", False), ("1000", True), ("0", True)])
def test_scenario_risk_weight_is_capped(write_inventory: WriteInventory, weight: str, ok: bool) -> None:
    """Regression (fuzz toml_risk_weight_huge): 1e15 overflowed the solver's objective."""
    result = load_inventory(write_inventory(TWO_APPS, TINY_DEPS, f"risk_weight = {weight}\n"))
    assert result.ok is ok
    if not ok:
        bad = only(result.errors, "bad-value")
        assert (bad.column, bad.value) == ("risk_weight", str(float(weight)))
        assert bad.expected == f"a number ≥ 0, at most {MAX_RISK_WEIGHT:g}" == "a number ≥ 0, at most 1000"


def test_bad_overrides_name_the_option_value_and_limit(tiny_inventory: Inventory) -> None:
    """Regression (fuzz bigK, rw): --waves 1000000 and --risk-weight 1e15 crashed the planner."""
    scenario, findings = apply_overrides(
        tiny_inventory, waves=1_000_000, rtt_ms=float("nan"), risk_weight=1e15
    )
    assert scenario is None
    assert [(f.code, f.file, f.message, f.value) for f in findings] == [
        ("bad-option", "--waves", "--waves is too large", "1000000"),
        ("bad-option", "--rtt-ms", "--rtt-ms is not a number", "nan"),
        ("bad-option", "--risk-weight", "--risk-weight is too large", "1e+15"),
    ]
    assert findings[0].expected is not None and "at most 1000" in findings[0].expected
    assert findings[2].expected == "a number ≥ 0, at most 1000"
    assert option_findings(waves=MAX_WAVES, rtt_ms=0.0, risk_weight=MAX_RISK_WEIGHT) == []


def test_pin_outside_the_override_k_names_its_row(write_inventory: WriteInventory) -> None:
    """Regression (fuzz pin5_override): with --waves the error lost its row; without, it had one."""
    apps = "app_id,qps,pinned_wave\nweb,1,\napi,1,5\n"
    result = load_inventory(write_inventory(apps, TINY_DEPS, "waves = 5\n"))
    assert result.inventory is not None and result.rows == (2, 3)
    scenario, findings = apply_overrides(result.inventory, waves=3, rows=result.rows)
    bad = only(findings, "wave-out-of-range")
    assert scenario is None and bad.location() == "apps.csv:3:pinned_wave"
    assert "--waves" in bad.message


@pytest.mark.parametrize(
    ("column", "value"), [("qps", "1_000"), ("instances", "1_0"), ("pinned_wave", "1_0")]
)
def test_underscores_in_numbers_are_refused(write_inventory: WriteInventory, column: str, value: str) -> None:
    """Regression (fuzz num_qps_underscore, int_instances_underscore): Python read 1_0 as 10."""
    apps = f"app_id,qps,{column}\nweb,1,{value}\n" if column != "qps" else f"app_id,qps\nweb,{value}\n"
    result = load_inventory(write_inventory(apps))
    bad = only(result.errors, "bad-value")
    assert (bad.row, bad.column, bad.value) == (2, column, value)
    assert bad.message in (f"{column} is not a number", f"{column} is not an integer")
    assert bad.expected is not None


@pytest.mark.parametrize(
    "content", ['waves = "f\u00fcnf"\n'.encode("latin-1"), "waves = 3\n".encode("utf-16")]
)
def test_a_non_utf8_scenario_gets_a_toml_hint(write_inventory: WriteInventory, content: bytes) -> None:
    """Regression (fuzz toml_latin1, toml_utf16): the hint said "save the file as 'CSV UTF-8'"."""
    bad = only(load_inventory(write_inventory(TWO_APPS, TINY_DEPS, content)).errors, "not-utf8")
    assert bad.file == "scenario.toml" and "save scenario.toml as UTF-8" in bad.message
    assert "CSV" not in bad.message
    csv_bad = only(
        load_inventory(write_inventory("app_id,qps\nw\u00e9b,1\n".encode("latin-1"), name="csv")).errors,
        "not-utf8",
    )
    assert "'CSV UTF-8'" in csv_bad.message


def test_a_fifo_is_refused_without_blocking(write_inventory: WriteInventory) -> None:
    """Regression (fuzz fs_apps_fifo): reading a named pipe blocked forever."""
    folder = write_inventory(None)
    os.mkfifo(folder / "apps.csv")
    bad = only(load_inventory(folder).errors, "not-a-file")
    assert bad.file == "apps.csv" and "named pipe" in bad.message and bad.expected == "a regular file"


def test_a_link_to_a_device_is_refused(write_inventory: WriteInventory) -> None:
    """Regression (fuzz fs_apps_devzero): a link to /dev/zero grew memory without limit."""
    folder = write_inventory(None)
    (folder / "apps.csv").symlink_to("/dev/zero")
    bad = only(load_inventory(folder).errors, "not-a-file")
    assert "a device" in bad.message and "/dev/zero" in bad.message


def test_a_link_to_a_regular_file_is_read(write_inventory: WriteInventory, tmp_path: Path) -> None:
    folder = write_inventory(None)
    (tmp_path / "real.csv").write_text(TWO_APPS)
    (folder / "apps.csv").symlink_to(tmp_path / "real.csv")
    inv = load_inventory(folder).inventory
    assert inv is not None and inv.ids == ("web", "api")


def test_files_above_the_size_limit_are_refused(
    write_inventory: WriteInventory, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert table.MAX_FILE_BYTES == 2**30
    monkeypatch.setattr(table, "MAX_FILE_BYTES", len(TWO_APPS) - 1)
    bad = only(load_inventory(write_inventory(TWO_APPS)).errors, "file-too-large")
    assert (bad.file, bad.value) == ("apps.csv", f"{len(TWO_APPS)} bytes")
    assert "1 GiB" in bad.message


def test_ids_differing_only_in_unicode_normalisation_say_so(write_inventory: WriteInventory) -> None:
    """Regression (fuzz id_nfc_nfd): "did you mean 'café'?" printed the same text as the bad id."""
    nfc, nfd = unicodedata.normalize("NFC", "café"), unicodedata.normalize("NFD", "café")
    result = load_inventory(
        write_inventory(f"app_id,qps\n{nfc},1\napi,1\n", f"caller,callee,qps\n{nfd},api,1\n")
    )
    bad = only(result.errors, "unknown-app")
    assert bad.value == nfd and "Unicode normalisation" in bad.message and "did you mean" not in bad.message


def test_a_known_column_twice_is_one_error_not_one_per_row(write_inventory: WriteInventory) -> None:
    """Regression (fuzz dup_header_known): every row also got "qps is not a number"."""
    apps = "app_id,name,qps,kind,QPS\nweb,Web,edge,frontend,5\napi,API,core,service,6\n"
    result = load_inventory(write_inventory(apps))
    assert [(f.code, f.row, f.column) for f in result.errors] == [("duplicate-column", 1, "qps")]
    assert "neither is read" in result.errors[0].message


def test_an_unclosed_quote_is_not_also_reported_as_no_rows(write_inventory: WriteInventory) -> None:
    """Regression (fuzz unclosed_quote, huge_field): a false "header but no rows" came with it."""
    result = load_inventory(write_inventory('app_id,name,qps\nweb,"Web,1\napi,API,2\n'))
    assert codes(result.errors) == ["bad-csv"]


@pytest.mark.parametrize("name", ["Scenario.toml", "scenario.yaml", "scenario.toml.txt"])
def test_a_misnamed_scenario_file_is_a_warning_not_a_silent_default(
    write_inventory: WriteInventory, name: str
) -> None:
    """Regression (fuzz2): waves = 3 in Scenario.toml planned 12 waves with only an info note,
    which plan and evaluate do not print."""
    folder = write_inventory(TWO_APPS, TINY_DEPS)
    (folder / name).write_text("waves = 3\n")
    result = load_inventory(folder)
    assert result.inventory is not None and result.inventory.K == 12
    note = only(result.findings, "default-scenario")
    assert note.severity == "warning" and f"{name} is not read" in note.message
    (folder / name).unlink()
    assert only(load_inventory(folder).findings, "default-scenario").severity == "info"


def test_a_scenario_nested_too_deeply_is_an_error_not_a_traceback(write_inventory: WriteInventory) -> None:
    """Regression (fuzz2): 500 nested arrays raised RecursionError out of tomllib."""
    deep = "x = " + "[" * 500 + "]" * 500 + "\n"
    bad = only(load_inventory(write_inventory(TWO_APPS, TINY_DEPS, deep)).errors, "bad-toml")
    assert bad.file == "scenario.toml" and "nested too deeply" in bad.message


def test_a_rule_naming_thousands_of_unknown_apps_gets_one_short_error(
    write_inventory: WriteInventory,
) -> None:
    """Regression (fuzz2): 30,000 names took 25 s (a quadratic repeat check) and printed a
    698 KB line; the names now show the first 20 and a count."""
    names = ", ".join(f'"ghost-{i}"' for i in range(3000))
    rule = f'[[constraint]]\nkind = "before"\napps = [{names}, "ghost-7"]\n'
    errors = load_inventory(write_inventory(TWO_APPS, TINY_DEPS, rule)).errors
    unknown, repeated = only(errors, "rule-unknown-app"), only(errors, "rule-repeats-app")
    assert unknown.message == "constraint[1] (before) names 3,001 app(s) not in apps.csv"
    assert unknown.value is not None and unknown.value.endswith("ghost-19 and 2,981 more")
    assert len(unknown.apps) == 3001  # every name stays in the finding (--json)
    assert "ghost-7" in repeated.message


def test_a_misspelt_weighed_kind_is_a_warning_once_per_value(write_inventory: WriteInventory) -> None:
    """Regression (hostile-input audit): ``databse`` silently weighed 1 instead of 1.3."""
    apps = (
        "app_id,qps,kind\nweb,1,frontend\napi,2,Databse\ndb,3,Databse\ncp,1,control plane\nq,1,middleware\n"
    )
    result = load_inventory(write_inventory(apps, TINY_DEPS))
    assert result.inventory is not None  # a warning, not an error: any kind is allowed
    found = [f for f in result.findings if f.code == "unweighed-kind"]
    assert [(f.value, f.row, f.apps) for f in found] == [
        ("Databse", 3, ("api", "db")),
        ("control plane", 5, ("cp",)),
    ]
    assert "'database'" in found[0].message and "rows 3, 4" in found[0].message


def test_excels_separator_line_is_skipped_and_said(write_inventory: WriteInventory) -> None:
    """Regression (hostile-input audit): ``sep=,`` before the header gave an error per row."""
    result = load_inventory(write_inventory("sep=,\n" + TWO_APPS, TINY_DEPS))
    assert result.inventory is not None and [a.app_id for a in result.inventory.apps] == ["web", "api"]
    assert only(result.findings, "separator-line").row == 1
    other = load_inventory(write_inventory("sep=;\n" + TWO_APPS.replace(",", ";"), TINY_DEPS))
    assert "bad-separator" in codes(other.errors)


def test_a_field_past_the_csv_modules_limit_is_read(write_inventory: WriteInventory) -> None:
    """Regression (hostile-input audit): a 200,000-character name stopped the file with "field
    larger than field limit (131072); check the quotes", and the rows after it went unchecked."""
    name = "n" * 200_000
    result = load_inventory(write_inventory(f"app_id,name,qps\nweb,{name},1\napi,API,-2\n", TINY_DEPS))
    assert "bad-csv" not in codes(result.findings)
    assert [(f.row, f.column) for f in result.errors] == [(3, "qps")]  # the row after it is checked
