"""Load an inventory folder (apps.csv, dependencies.csv, scenario.toml) and report every problem.

Per-cell types are pydantic models (``migplan.io.schema``); what spans rows is plain code
here: unique ids, known callers and callees, self-calls, duplicate dependencies, wave pins
and windows against K, and pins that contradict each other inside a group.

Duplicate caller → callee rows are merged with a warning, because CMDB and flow exports
often list one pair once per endpoint or port: qps is summed (it counts calls), the pair is
sync if any row is, and calls_per_request is summed over the sync rows only when any row is
sync (over all rows otherwise), because only sync calls add latency (SPEC §2): an async row's
calls must not make the merged sync pair slower.  kb_per_call is the qps-weighted mean (the
plain mean when all qps are 0).  Nothing the user gave is dropped silently: blank rows are
counted in one info finding, unknown columns give a warning.
"""

from __future__ import annotations

import difflib
import unicodedata
from collections import defaultdict
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from migplan.io.scenario import FILE as SCENARIO_FILE
from migplan.io.scenario import MAX_RISK_WEIGHT, MAX_WAVES, RISK_WEIGHT, WAVES, capacity_lines, parse_scenario
from migplan.io.schema import (
    APP_COLUMNS,
    DEPENDENCY_COLUMNS,
    MAX_NUMBER,
    NUMBER,
    AppRow,
    DependencyRow,
    validate_records,
)
from migplan.io.table import Table, read_table, read_text
from migplan.metrics import KIND_FACTOR
from migplan.model import App, Dependency, Finding, Inventory, Scenario
from migplan.text import listing

APPS_FILE = "apps.csv"
DEPENDENCIES_FILE = "dependencies.csv"
WAVE_COLUMNS = ("pinned_wave", "earliest_wave", "latest_wave")
OPTION_ERROR = "bad-option"  # the code of every finding about a command-line option


@dataclass(frozen=True)
class LoadResult:
    """The inventory (None iff any error) and every finding, errors first in file order."""

    inventory: Inventory | None
    findings: tuple[Finding, ...]
    rows: tuple[int, ...] = ()  # apps.csv row of each inventory app, for later findings
    capacity_rows: Mapping[str, int] = field(default_factory=dict)  # scenario.toml line per capacity key

    @property
    def errors(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.severity == "error")

    @property
    def ok(self) -> bool:
        return self.inventory is not None


def load_inventory(folder: Path) -> LoadResult:
    """Read and check an inventory folder; see the module docstring for the rules."""
    folder = Path(folder)
    try:
        found = folder.is_dir()
        what = "is a file, not a folder" if folder.exists() else "does not exist"
    except OSError as exc:  # a name too long, a parent folder the user may not enter
        found, what = False, f"cannot be read: {exc.strerror or exc}"
    if not found:
        return LoadResult(None, (Finding("error", "no-inventory", f"inventory folder {folder} {what}"),))
    findings: list[Finding] = []
    apps_table = read_table(folder / APPS_FILE, known=APP_COLUMNS, required=("app_id", "qps"))
    deps_table = read_table(
        folder / DEPENDENCIES_FILE, known=DEPENDENCY_COLUMNS, required=("caller", "callee", "qps")
    )
    findings += apps_table.findings
    apps, rows, ids, problems = _read_apps(apps_table)
    findings += problems

    # ids are checked only against a complete apps.csv, so one broken file gives no knock-on errors
    known = ids if apps_table.readable and not apps_table.truncated and ids else None
    scenario, problems, capacity_rows = _read_scenario(folder / SCENARIO_FILE, known)
    findings += problems

    findings += deps_table.findings
    dependencies, problems = _read_dependencies(deps_table, known)
    findings += problems

    findings += window_findings(apps, rows)
    if scenario is not None:
        findings += wave_range_findings(apps, rows, scenario.waves)
    findings += group_findings(apps, rows)
    findings += kind_findings(apps, rows)

    findings.sort(key=_reading_order)
    errors = [f for f in findings if f.severity == "error"]
    others = [f for f in findings if f.severity != "error"]
    if errors or scenario is None:
        return LoadResult(None, tuple(errors + others))
    inventory = Inventory(tuple(apps), tuple(dependencies), scenario)
    return LoadResult(inventory, tuple(others), tuple(rows), capacity_rows)


def option_findings(
    waves: int | None = None, rtt_ms: float | None = None, risk_weight: float | None = None
) -> list[Finding]:
    """Command-line overrides outside the limits scenario.toml has for the same keys (None = not given)."""
    findings = []
    for option, value, low, high, expected in (
        ("--waves", waves, 1, MAX_WAVES, WAVES),
        ("--rtt-ms", rtt_ms, 0, MAX_NUMBER, f"{NUMBER} (ms)"),
        ("--risk-weight", risk_weight, 0, MAX_RISK_WEIGHT, RISK_WEIGHT),
    ):
        if value is None or low <= value <= high:
            continue
        reason = "is too small" if value < low else "is too large" if value > high else "is not a number"
        findings.append(
            Finding(
                "error",
                OPTION_ERROR,
                f"{option} {reason}",
                file=option,
                value=f"{value:g}" if isinstance(value, float) else str(value),
                expected=expected,
            )
        )
    return findings


def apply_overrides(
    target: Inventory | Scenario,
    waves: int | None = None,
    rtt_ms: float | None = None,
    risk_weight: float | None = None,
    rows: Sequence[int] | None = None,
    capacity_rows: Mapping[str, int] | None = None,
) -> tuple[Scenario | None, tuple[Finding, ...]]:
    """The scenario with command-line overrides, re-checked against the new K (None if any error).

    ``rows``: the apps.csv row of each app (``LoadResult.rows``), so that a pin outside the
    new K names its row as it does when K comes from scenario.toml; ``capacity_rows``
    (``LoadResult.capacity_rows``): the same for a capacity list of the old K.
    """
    scenario = target.scenario if isinstance(target, Inventory) else target
    findings = option_findings(waves, rtt_ms, risk_weight)
    bad = {f.file for f in findings}
    given = {"--waves": waves, "--rtt-ms": rtt_ms, "--risk-weight": risk_weight}
    changes = {o[2:].replace("-", "_"): v for o, v in given.items() if v is not None and o not in bad}
    if waves is not None and "--waves" not in bad and waves != scenario.waves:
        for resource in ("apps", "instances", "data_gb"):
            raw = getattr(scenario, f"capacity_{resource}")
            if isinstance(raw, tuple) and len(raw) != waves:
                findings.append(
                    Finding(
                        "error",
                        "capacity-length",
                        f"wave_capacity.{resource} lists {len(raw)} numbers "
                        f"but --waves asks for {waves} waves",
                        file=SCENARIO_FILE,
                        row=(capacity_rows or {}).get(resource),
                        column=f"wave_capacity.{resource}",
                        value=str(len(raw)),
                        expected=f"one number per wave ({waves}), or a single number",
                    )
                )
        if isinstance(target, Inventory):
            findings += wave_range_findings(list(target.apps), rows, waves, source="--waves")
    if any(f.severity == "error" for f in findings):
        return None, tuple(findings)
    return scenario.with_overrides(**changes), tuple(findings)


def _read_apps(table: Table) -> tuple[list[App], list[int], set[str], list[Finding]]:
    """Apps with their rows; ``ids`` also holds ids of broken rows, to avoid knock-on errors."""
    apps: list[App] = []
    rows: list[int] = []
    seen: dict[str, list[int]] = defaultdict(list)
    if not table.readable:
        return apps, rows, set(), []
    for rec in table.records:
        raw_id = rec.cells.get("app_id")
        if raw_id:
            seen[raw_id].append(rec.row)
    parsed_rows, findings = validate_records(AppRow, table.records, file=table.file, ignore=table.ambiguous)
    complete = [rec for rec in table.records if rec.complete]
    for rec, parsed in zip(complete, parsed_rows, strict=True):
        if parsed is not None:
            apps.append(App(**parsed))
            rows.append(rec.row)
    if not table.records and not table.truncated:  # truncated: the CSV error is the finding
        findings.append(
            Finding(
                "error",
                "no-apps",
                "no applications: apps.csv has a header but no rows",
                file=table.file,
                row=2,
                expected="one row per application",
            )
        )
    for app_id, where in seen.items():
        if len(where) > 1:
            findings.append(
                Finding(
                    "error",
                    "duplicate-app",
                    f"app_id {app_id!r} appears on rows {_and(where)}: ids must be unique",
                    file=table.file,
                    row=where[1],
                    column="app_id",
                    value=app_id,
                    expected="a unique id",
                    apps=(app_id,),
                )
            )
    return apps, rows, set(seen), findings


def _read_scenario(
    path: Path, ids: Collection[str] | None
) -> tuple[Scenario | None, list[Finding], dict[str, int]]:
    """The scenario (None on any error), its findings, and its capacity keys' lines."""
    if not path.exists():
        default = Scenario()
        note = f"no {SCENARIO_FILE}: using defaults ({default.waves} waves, rtt {default.rtt_ms:g} ms)"
        near = _near_scenario_files(path.parent)
        if near:  # Scenario.toml, scenario.yaml, scenario.toml.txt: meant as the scenario, never read
            listed = ", ".join(near)
            verb = "is" if len(near) == 1 else "are"
            note += f"; {listed} {verb} not read: the file must be named {SCENARIO_FILE}"
            warning = Finding("warning", "default-scenario", note, file=SCENARIO_FILE, value=listed)
            return default, [warning], {}
        return default, [Finding("info", "default-scenario", note, file=SCENARIO_FILE)], {}
    text, problems = read_text(path, SCENARIO_FILE)
    if text is None:
        return None, problems, {}
    return (*parse_scenario(text, ids), capacity_lines(text))


def _near_scenario_files(folder: Path) -> list[str]:
    """Files whose name starts with "scenario" in any case (sorted): a misnamed scenario file."""
    try:
        names = [entry.name for entry in folder.iterdir() if entry.is_file()]
    except OSError:
        return []
    return sorted(name for name in names if name.lower().startswith("scenario"))


def _read_dependencies(table: Table, ids: Collection[str] | None) -> tuple[list[Dependency], list[Finding]]:
    """Checked dependencies, duplicates merged (see the module docstring)."""
    pairs: dict[tuple[str, str], list[tuple[int, Dependency]]] = defaultdict(list)
    unknown: list[tuple[int, str, str]] = []
    if not table.readable:
        return [], []
    parsed_rows, findings = validate_records(
        DependencyRow, table.records, file=table.file, ignore=table.ambiguous
    )
    complete = [rec for rec in table.records if rec.complete]
    for rec, parsed in zip(complete, parsed_rows, strict=True):
        if parsed is None:
            continue
        dep = Dependency(**parsed)
        caller, callee = dep.caller, dep.callee
        ok = ids is None or (caller in ids and callee in ids)
        if not ok:
            unknown += [(rec.row, c, v) for c, v in (("caller", caller), ("callee", callee)) if v not in ids]  # type: ignore[operator]
        if caller == callee:
            findings.append(
                Finding(
                    "error",
                    "self-call",
                    f"{caller!r} calls itself: a self-call never crosses sites, remove the row",
                    file=table.file,
                    row=rec.row,
                    column="callee",
                    value=callee,
                    expected="another app",
                    apps=(caller,),
                )
            )
            ok = False
        if ok:
            pairs[(caller, callee)].append((rec.row, dep))
    findings += _unknown_app_findings(unknown, ids or (), table.file)
    dependencies = []
    for (caller, callee), group in pairs.items():
        if len(group) == 1:
            dependencies.append(group[0][1])
            continue
        dependencies.append(_merge([d for _, d in group]))
        where = [r for r, _ in group]
        findings.append(
            Finding(
                "warning",
                "duplicate-dependency",
                f"{caller} → {callee} appears on rows {_and(where)}: merged into one dependency "
                "(qps summed; sync if any row is sync, calls_per_request summed over the sync rows then; "
                "kb_per_call qps-weighted mean)",
                file=table.file,
                row=where[1],
                apps=(caller, callee),
            )
        )
    return dependencies, findings


def _merge(rows: Sequence[Dependency]) -> Dependency:
    """One dependency from duplicate rows of a caller → callee pair (policy: module docstring)."""
    qps = sum(d.qps for d in rows)
    kb = (
        sum(d.qps * d.kb_per_call for d in rows) / qps
        if qps > 0
        else sum(d.kb_per_call for d in rows) / len(rows)
    )
    sync = [d for d in rows if d.sync]
    return Dependency(
        rows[0].caller,
        rows[0].callee,
        qps,
        sum(d.calls_per_request for d in (sync or rows)),
        bool(sync),
        kb,
    )


def _unknown_app_findings(
    unknown: list[tuple[int, str, str]], ids: Collection[str], file: str
) -> list[Finding]:
    """One error per row naming an app not in apps.csv; near-miss suggestions while they are cheap.

    An id equal to a known one after Unicode NFC normalisation gets its own hint: the two
    print identically, so "did you mean 'café'?" would only puzzle the reader.
    """
    suggest = len(unknown) <= 20
    by_nfc = {unicodedata.normalize("NFC", i): i for i in ids} if unknown else {}
    findings = []
    for row, column, value in unknown:
        hint = ""
        same = by_nfc.get(unicodedata.normalize("NFC", value))
        if same is not None:
            # looks identical on screen: say why the ids still differ (é as one character or as e + ´)
            hint = (
                f"; it looks like apps.csv's {same!r} but differs in Unicode normalisation "
                "(an accent stored as its own character): save both files in the same form (NFC)"
            )
        elif suggest:
            close = difflib.get_close_matches(value, list(ids), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
        findings.append(
            Finding(
                "error",
                "unknown-app",
                f"{column} {value!r} is not an app_id in apps.csv{hint}",
                file=file,
                row=row,
                column=column,
                value=value,
                expected="an app_id from apps.csv",
                apps=(value,),
            )
        )
    return findings


def kind_findings(apps: Sequence[App], rows: Sequence[int] | None) -> list[Finding]:
    """A warning per ``kind`` value that misspells one the risk term weighs (``databse``).

    Any kind is allowed (SPEC: e.g. frontend, service), but only control-plane, database
    and middleware weigh more in the risk term; a typo of one would quietly weigh 1.0.
    """
    spelled: dict[str, list[int]] = defaultdict(list)
    for i, app in enumerate(apps):
        kind = app.kind.strip().lower()
        if kind not in KIND_FACTOR:
            spelled[app.kind].append(i)
    findings = []
    for value, idx in spelled.items():
        close = difflib.get_close_matches(value.strip().lower(), list(KIND_FACTOR), n=1, cutoff=0.75)
        if not close:
            continue
        where = [rows[i] for i in idx] if rows is not None else []
        at = f", rows {listing(str(r) for r in where)}" if where else ""
        findings.append(
            Finding(
                "warning",
                "unweighed-kind",
                f"kind {value!r} ({len(idx)} app(s){at}) looks like {close[0]!r}, which weighs"
                f" {KIND_FACTOR[close[0]]:g} in the risk term; as written it weighs 1",
                file=APPS_FILE,
                row=where[0] if where else None,
                column="kind",
                value=value,
                expected=f"{close[0]!r}, or any other kind that is meant",
                apps=tuple(apps[i].app_id for i in idx),
            )
        )
    return findings


def window_findings(apps: Sequence[App], rows: Sequence[int] | None) -> list[Finding]:
    """earliest_wave > latest_wave, or a pin outside the app's own window (independent of K)."""
    findings = []
    for i, app in enumerate(apps):
        row = rows[i] if rows is not None else None
        lo, hi, pin = app.earliest_wave, app.latest_wave, app.pinned_wave
        if lo is not None and hi is not None and lo > hi:
            findings.append(
                Finding(
                    "error",
                    "empty-window",
                    f"{app.app_id}: earliest_wave {lo} is after latest_wave {hi}",
                    file=APPS_FILE,
                    row=row,
                    column="earliest_wave",
                    value=str(lo),
                    expected=f"≤ latest_wave ({hi})",
                    apps=(app.app_id,),
                )
            )
        elif pin is not None and ((lo is not None and pin < lo) or (hi is not None and pin > hi)):
            findings.append(
                Finding(
                    "error",
                    "pin-outside-window",
                    f"{app.app_id}: pinned_wave {pin} is outside its own window "
                    f"{lo if lo is not None else 1}..{hi if hi is not None else 'K'}",
                    file=APPS_FILE,
                    row=row,
                    column="pinned_wave",
                    value=str(pin),
                    expected="a wave inside earliest_wave..latest_wave",
                    apps=(app.app_id,),
                )
            )
    return findings


def wave_range_findings(
    apps: Sequence[App], rows: Sequence[int] | None, k: int, source: str = SCENARIO_FILE
) -> list[Finding]:
    """pinned/earliest/latest waves must lie in 1..K (K from scenario.toml or --waves)."""
    findings = []
    for i, app in enumerate(apps):
        for column in WAVE_COLUMNS:
            value = getattr(app, column)
            if value is not None and not 1 <= value <= k:
                findings.append(
                    Finding(
                        "error",
                        "wave-out-of-range",
                        f"{app.app_id}: {column} {value} is outside waves 1..{k} ({k} waves from {source})",
                        file=APPS_FILE,
                        row=rows[i] if rows is not None else None,
                        column=column,
                        value=str(value),
                        expected=f"1..{k}",
                        apps=(app.app_id,),
                    )
                )
    return findings


def group_findings(apps: Sequence[App], rows: Sequence[int] | None) -> list[Finding]:
    """Members of a group share one wave: their pins must agree and their windows overlap."""
    members: dict[str, list[int]] = defaultdict(list)
    for i, app in enumerate(apps):
        if app.group:
            members[app.group].append(i)
    findings = []
    for group, idx in members.items():
        pinned = [(apps[i].app_id, apps[i].pinned_wave) for i in idx if apps[i].pinned_wave is not None]
        row = rows[idx[-1]] if rows is not None else None
        if len({w for _, w in pinned}) > 1:
            findings.append(
                Finding(
                    "error",
                    "group-pin-conflict",
                    f"group {group!r} must move in one wave but its pins disagree: "
                    + ", ".join(f"{a} pinned to {w}" for a, w in pinned),
                    file=APPS_FILE,
                    row=row,
                    column="pinned_wave",
                    value=group,
                    expected="the same pinned_wave for every pinned member",
                    apps=tuple(a for a, _ in pinned),
                )
            )
            continue
        lows = [(_lower(apps[i]), apps[i].app_id) for i in idx]
        highs = [(_upper(apps[i]), apps[i].app_id) for i in idx]
        (lo, lo_app), (hi, hi_app) = max(lows), min(highs)
        if lo > hi:
            findings.append(
                Finding(
                    "error",
                    "group-window-conflict",
                    f"group {group!r} must move in one wave but {lo_app} cannot move before wave {lo} "
                    f"and {hi_app} must move by wave {hi}",
                    file=APPS_FILE,
                    row=row,
                    column="group",
                    value=group,
                    expected="overlapping windows for all members",
                    apps=(lo_app, hi_app),
                )
            )
    return findings


def _lower(app: App) -> int:
    return max((b for b in (app.earliest_wave, app.pinned_wave) if b is not None), default=1)


_FILE_ORDER = {APPS_FILE: 0, DEPENDENCIES_FILE: 1, SCENARIO_FILE: 2}


def _reading_order(finding: Finding) -> tuple[int, int]:
    """File by file, row by row: the order in which a person fixes them (stable otherwise)."""
    return _FILE_ORDER.get(finding.file or "", 3), finding.row or 0


def _upper(app: App) -> float:
    bounds = [b for b in (app.latest_wave, app.pinned_wave) if b is not None]
    return min(bounds) if bounds else float("inf")


def _and(rows: Sequence[int]) -> str:
    text = [str(r) for r in rows[:10]] + (["…"] if len(rows) > 10 else [])
    return ", ".join(text[:-1]) + " and " + text[-1] if len(text) > 1 else text[0]
