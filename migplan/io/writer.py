"""Write an Inventory as an inventory folder (apps.csv, dependencies.csv, scenario.toml).

Why: generated estates and imports must be saved in exactly the format the loader reads,
so that ``load_inventory(write_inventory(inv))`` gives back an equal Inventory.  Numbers
are written with ``repr`` (the shortest text that reads back as the same float), whole
numbers without ``.0``, booleans as ``true``/``false`` and absent values as empty cells.
scenario.toml is formatted by hand (tomllib only reads) with the keys the loader accepts:
the top-level scalars, ``[wave_capacity]`` (including ``max_risk``) and ``[[constraint]]``.
Keys equal to the model's default are still written, so the file documents the scenario.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from migplan.io.inventory import APPS_FILE, DEPENDENCIES_FILE
from migplan.io.planfiles import WAVES_COLUMNS, Writer, waves_rows, write_files_atomically
from migplan.io.scenario import FILE as SCENARIO_FILE
from migplan.model import Inventory, Plan, Scenario

PLANTED_FILE = "planted-waves.csv"
APP_HEADER = (
    "app_id", "name", "team", "kind", "qps", "criticality", "latency_budget_ms", "instances", "data_gb",
    "stateful", "rehearsed", "group", "pinned_wave", "earliest_wave", "latest_wave",
)  # fmt: skip
DEPENDENCY_HEADER = ("caller", "callee", "qps", "calls_per_request", "sync", "kb_per_call")
SCALAR_KEYS = (
    "source", "target", "rtt_ms", "waves", "default_latency_budget_ms", "link_gbps",
    "callees_first", "split_cycles", "risk_weight",
)  # fmt: skip


def cell(value: object) -> str:
    """One CSV/TOML scalar: exact round-trip text for floats, true/false, empty for None."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"cannot write the non-finite number {value}")
        return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)
    return str(value)


def app_rows(inv: Inventory) -> list[list[str]]:
    """apps.csv rows in inventory order (the ``risk`` column is added only when some app has one)."""
    with_risk = any(a.risk is not None for a in inv.apps)
    rows = []
    for a in inv.apps:
        row = [cell(getattr(a, column)) for column in APP_HEADER]
        rows.append([*row, cell(a.risk)] if with_risk else row)
    return rows


def dependency_rows(inv: Inventory) -> list[list[str]]:
    return [[cell(getattr(d, column)) for column in DEPENDENCY_HEADER] for d in inv.dependencies]


def _toml_value(value: object) -> str:
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)  # a JSON string is a valid TOML basic string
    if isinstance(value, tuple | list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, float) and value.is_integer():
        return repr(value)  # keep floats as floats (30.0), the loader's float fields accept both
    return cell(value)


def scenario_toml(scenario: Scenario) -> str:
    """scenario.toml text for a Scenario; ``parse_scenario`` reads it back equal."""
    lines = [
        f"{key} = {_toml_value(getattr(scenario, key))}"
        for key in SCALAR_KEYS
        if getattr(scenario, key) is not None
    ]
    capacity = [
        f"{resource} = {_toml_value(value)}"
        for resource, value in (
            ("apps", scenario.capacity_apps),
            ("instances", scenario.capacity_instances),
            ("data_gb", scenario.capacity_data_gb),
            ("max_risk", scenario.max_risk),
        )
        if value is not None
    ]
    if capacity:
        lines += ["", "[wave_capacity]", *capacity]
    for rule in scenario.rules:
        lines += [
            "",
            "[[constraint]]",
            f"kind = {_toml_value(rule.kind)}",
            f"apps = {_toml_value(rule.apps)}",
        ]
    return "\n".join(lines) + "\n"


def _csv_writer(header: Sequence[str], rows: Iterable[Sequence[object]]) -> Writer:
    def write(path: Path) -> None:
        with path.open("w", encoding="utf-8", newline="") as handle:
            out = csv.writer(handle, lineterminator="\n")
            out.writerow(header)
            out.writerows(rows)

    return write


def inventory_writers(inv: Inventory) -> dict[str, Writer]:
    """File name -> writer for the three inventory files."""
    apps_header = [*APP_HEADER, "risk"] if any(a.risk is not None for a in inv.apps) else list(APP_HEADER)
    toml = scenario_toml(inv.scenario)

    def write_toml(path: Path) -> None:
        path.write_text(toml, encoding="utf-8")

    return {
        APPS_FILE: _csv_writer(apps_header, app_rows(inv)),
        DEPENDENCIES_FILE: _csv_writer(DEPENDENCY_HEADER, dependency_rows(inv)),
        SCENARIO_FILE: write_toml,
    }


def plan_writer(inv: Inventory, plan: Plan) -> Writer:
    """A waves.csv-format writer (same columns as ``migplan plan``; read back with read_waves_csv)."""
    return _csv_writer(WAVES_COLUMNS, waves_rows(inv, plan))


def write_inventory(folder: Path, inv: Inventory, extra: Mapping[str, Writer] | None = None) -> None:
    """Write the inventory folder (and ``extra`` files) atomically; other files in it are left alone.

    Raises OSError when the folder cannot be written.
    """
    write_files_atomically(Path(folder), {**inventory_writers(inv), **(extra or {})})
