"""scenario.toml (SPEC §2) -> migplan.model.Scenario, every problem a Finding with its line.

Defaults live in one place, ``migplan.model.Scenario``: only the keys the file gives are
passed on.  Types are strict (TOML has real numbers and booleans, so ``rtt_ms = "30"`` is a
mistake worth reporting, not something to guess at).  tomllib does not keep line numbers
of values, so a finding's row is the first line that assigns the key in its table.

Two limits keep user numbers inside what the planner can hold, for scenario.toml and the
command-line overrides alike (the CLI and the solver read them from here):

* ``MAX_WAVES`` = 1000: the planner keeps arrays of K and K x K numbers per estate, so
  10^10 waves crashed it allocating memory; no migration runs more than a few dozen waves.
* ``MAX_RISK_WEIGHT`` = 1000: the risk term is a share-based score scaled to the chatty
  cost; a weight of 1e14 overflowed the solver's 64-bit objective, and any weight far
  above the chatty cost already makes the chatty cost irrelevant.
"""

from __future__ import annotations

import json
import math
import re
import tomllib
from collections import Counter
from collections.abc import Collection
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from migplan.io.schema import MAX_NUMBER, NUMBER, NonNegative
from migplan.model import Finding, Rule, Scenario
from migplan.text import listing

FILE = "scenario.toml"
MAX_WAVES = 1000
MAX_RISK_WEIGHT = 1000.0
WAVES = f"an integer ≥ 1, at most {MAX_WAVES} (the most waves migplan plans)"
RISK_WEIGHT = f"a number ≥ 0, at most {MAX_RISK_WEIGHT:g}"


class ScenarioKeys(BaseModel):
    """Top-level scalar keys; None = not given (the model's default applies)."""

    model_config = ConfigDict(strict=True)

    source: str | None = None
    target: str | None = None
    rtt_ms: NonNegative | None = None
    waves: Annotated[int, Field(ge=1, le=MAX_WAVES)] | None = None
    default_latency_budget_ms: NonNegative | None = None
    link_gbps: Annotated[float, Field(gt=0, le=MAX_NUMBER, allow_inf_nan=False)] | None = None
    callees_first: bool | None = None
    split_cycles: bool | None = None
    risk_weight: Annotated[float, Field(ge=0, le=MAX_RISK_WEIGHT, allow_inf_nan=False)] | None = None


class ConstraintKeys(BaseModel):
    """One [[constraint]] table."""

    model_config = ConfigDict(strict=True)

    kind: Literal["before", "together", "apart"]
    apps: Annotated[list[Annotated[str, Field(min_length=1)]], Field(min_length=2)]


class MaxRisk(BaseModel):
    model_config = ConfigDict(strict=True)

    max_risk: Annotated[float, Field(gt=0, le=1, allow_inf_nan=False)]


CAPACITY_KEYS = ("apps", "instances", "data_gb")
TOP_KEYS = (*ScenarioKeys.model_fields, "wave_capacity", "constraint")
WAVE_CAPACITY_KEYS = (*CAPACITY_KEYS, "max_risk")
CONSTRAINT_KEYS = tuple(ConstraintKeys.model_fields)

EXPECTED = {
    "source": "text",
    "target": "text",
    "rtt_ms": f"{NUMBER} (ms)",
    "waves": WAVES,
    "default_latency_budget_ms": f"{NUMBER} (ms)",
    "link_gbps": "a number > 0, at most 1e15 (Gbps)",
    "callees_first": "true or false",
    "split_cycles": "true or false",
    "risk_weight": RISK_WEIGHT,
    "kind": '"before", "together" or "apart"',
    "apps": "a list of at least 2 app ids",
    "max_risk": "a number in (0, 1]",
}

_TOML_LINE = re.compile(r"line (\d+)")


def parse_scenario(text: str, app_ids: Collection[str] | None) -> tuple[Scenario | None, list[Finding]]:
    """Parse and check scenario.toml text; constraint apps are checked against ``app_ids`` if given."""
    try:
        data = tomllib.loads(text)
    except RecursionError:  # tomllib recurses per nesting level: 500 nested arrays overflow it
        return None, [
            Finding(
                "error",
                "bad-toml",
                "arrays or tables nested too deeply to read",
                file=FILE,
                expected="the keys of the scenario file (see the README), nested at most a few levels",
            )
        ]
    except tomllib.TOMLDecodeError as exc:
        match = _TOML_LINE.search(str(exc))
        row = int(match.group(1)) if match else max(1, len(text.splitlines()))  # "at end of document"
        return None, [
            Finding(
                "error",
                "bad-toml",
                f"not valid TOML: {exc}",
                file=FILE,
                row=row,
                expected="TOML (key = value lines)",
            )
        ]
    return scenario_from_dict(data, text, app_ids)


def scenario_from_dict(
    data: dict[str, Any], text: str = "", app_ids: Collection[str] | None = None
) -> tuple[Scenario | None, list[Finding]]:
    """Check the parsed TOML tables and build the Scenario (None if any error)."""
    lines = _Lines(text)
    findings = _unknown_keys(data, TOP_KEYS, "", lines, None)
    scalars = {k: v for k, v in data.items() if k in ScenarioKeys.model_fields}
    keys = ScenarioKeys()
    try:
        keys = ScenarioKeys.model_validate(scalars)
    except ValidationError as exc:
        findings += _errors(exc, scalars, "", lines, None)
    given: dict[str, Any] = {k: v for k, v in keys.model_dump().items() if v is not None}
    waves = given.get("waves", Scenario.waves) if "waves" not in scalars or "waves" in given else None

    capacity = data.get("wave_capacity", {})
    if not isinstance(capacity, dict):
        findings.append(_bad_table("wave_capacity", "a [wave_capacity] table", capacity, lines))
        capacity = {}
    findings += _unknown_keys(capacity, WAVE_CAPACITY_KEYS, "wave_capacity", lines, None)
    for key in CAPACITY_KEYS:
        if key in capacity:
            value, problems = _capacity(key, capacity[key], waves, lines)
            findings += problems
            given[f"capacity_{key}"] = value
    if "max_risk" in capacity:
        try:
            given["max_risk"] = MaxRisk.model_validate({"max_risk": capacity["max_risk"]}).max_risk
        except ValidationError as exc:
            findings += _errors(exc, capacity, "wave_capacity", lines, None)

    rules, problems = _rules(data.get("constraint", []), app_ids, lines)
    findings += problems
    given["rules"] = tuple(rules)
    if any(f.severity == "error" for f in findings):
        return None, findings
    return Scenario(**given), findings


def capacity_lines(text: str) -> dict[str, int]:
    """The line of each ``wave_capacity`` list or number in scenario.toml text, for findings
    made after parsing (a list that does not match ``--waves``)."""
    lines = _Lines(text)
    found = {key: lines.find("wave_capacity", key) for key in CAPACITY_KEYS}
    return {key: row for key, row in found.items() if row is not None}


def _capacity(key: str, value: object, waves: int | None, lines: _Lines) -> tuple[object, list[Finding]]:
    """A number for every wave, or a list of exactly K numbers."""
    column = f"wave_capacity.{key}"
    row = lines.find("wave_capacity", key)
    expected = f"{NUMBER}, or a list of K such numbers"

    def number(v: object) -> bool:
        return (
            isinstance(v, int | float)
            and not isinstance(v, bool)
            and math.isfinite(v)
            and 0 <= v <= MAX_NUMBER
        )

    if isinstance(value, list):
        bad = [i for i, v in enumerate(value) if not number(v)]
        if bad:
            return None, [
                Finding(
                    "error",
                    "bad-value",
                    f"{column}: item {bad[0] + 1} of the list is not {NUMBER}",
                    file=FILE,
                    row=row,
                    column=column,
                    value=_literal(value[bad[0]]),
                    expected=expected,
                )
            ]
        if waves is not None and len(value) != waves:
            return None, [
                Finding(
                    "error",
                    "capacity-length",
                    f"{column} lists {len(value)} numbers but there are {waves} waves",
                    file=FILE,
                    row=row,
                    column=column,
                    value=str(len(value)),
                    expected=f"one number per wave ({waves})",
                )
            ]
        return tuple(float(v) for v in value), []
    if number(value):
        return float(value), []  # type: ignore[arg-type]
    return None, [
        Finding(
            "error",
            "bad-value",
            f"{column} is not {NUMBER}, or a list",
            file=FILE,
            row=row,
            column=column,
            value=_literal(value),
            expected=expected,
        )
    ]


def _rules(raw: object, app_ids: Collection[str] | None, lines: _Lines) -> tuple[list[Rule], list[Finding]]:
    """[[constraint]] tables -> Rules; apps must be known, distinct, at least two."""
    if not isinstance(raw, list) or not all(isinstance(t, dict) for t in raw):
        return [], [_bad_table("constraint", "[[constraint]] tables (double brackets)", raw, lines)]
    rules: list[Rule] = []
    findings: list[Finding] = []
    for i, table in enumerate(raw):
        label = f"constraint[{i + 1}]"
        findings += _unknown_keys(table, CONSTRAINT_KEYS, "constraint", lines, i)
        fields = {k: v for k, v in table.items() if k in CONSTRAINT_KEYS}
        try:
            parsed = ConstraintKeys.model_validate(fields)
        except ValidationError as exc:
            findings += _errors(exc, fields, label, lines, i)
            continue
        row = lines.find("constraint", "apps", i)
        repeated = sorted(a for a, times in Counter(parsed.apps).items() if times > 1)
        if repeated:
            findings.append(
                Finding(
                    "error",
                    "rule-repeats-app",
                    f"{label} ({parsed.kind}) lists {listing(repeated, 20)} more than once",
                    file=FILE,
                    row=row,
                    column=f"{label}.apps",
                    apps=tuple(repeated),
                )
            )
        unknown = [a for a in parsed.apps if app_ids is not None and a not in app_ids]
        if unknown:
            findings.append(
                Finding(
                    "error",
                    "rule-unknown-app",
                    f"{label} ({parsed.kind}) names {len(unknown):,} app(s) not in apps.csv",
                    file=FILE,
                    row=row,
                    column=f"{label}.apps",
                    value=listing(unknown, 20),
                    expected="app ids from apps.csv",
                    apps=tuple(unknown),
                )
            )
        rules.append(Rule(parsed.kind, tuple(parsed.apps)))
    return rules, findings


def _unknown_keys(
    table: dict[str, Any], known: tuple[str, ...], name: str, lines: _Lines, index: int | None
) -> list[Finding]:
    where = f"[{name}] of " if name else "the top level of "
    if index is not None:
        where = f"[[{name}]] number {index + 1} of "
    return [
        Finding(
            "error",
            "unknown-key",
            f"unknown key {key!r} in {where}{FILE}; known keys: {', '.join(known)}",
            file=FILE,
            row=lines.find(name, key, index),
            column=f"{name}.{key}" if name else key,
            value=key,
            expected="one of the known keys",
        )
        for key in table
        if key not in known
    ]


def _errors(
    exc: ValidationError, given: dict[str, Any], prefix: str, lines: _Lines, index: int | None
) -> list[Finding]:
    findings = []
    table = prefix.split("[")[0]
    for item in exc.errors():
        key = str(item["loc"][0]) if item["loc"] else ""
        column = f"{prefix}.{key}" if prefix else key
        missing = item["type"] == "missing"
        findings.append(
            Finding(
                "error",
                "missing-key" if missing else "bad-value",
                f"{column} is missing" if missing else f"{column}: {item['msg'].lower()}",
                file=FILE,
                row=lines.find(table, "" if missing else key, index),
                column=column,
                value=None if missing else _literal(given.get(key)),
                expected=EXPECTED.get(key),
            )
        )
    return findings


def _bad_table(key: str, expected: str, value: object, lines: _Lines) -> Finding:
    return Finding(
        "error",
        "bad-value",
        f"{key} must be {expected}",
        file=FILE,
        row=lines.find("", key) or lines.find(key, ""),
        column=key,
        value=_literal(value)[:60],
        expected=expected,
    )


def _literal(value: object) -> str:
    """A value as TOML would show it: text in double quotes, so ``"30"`` is visibly not ``30``."""
    return json.dumps(value, ensure_ascii=False, default=str)


class _Lines:
    """Line numbers of ``key =`` assignments per table, for pointing at a value in the file."""

    _HEADER = re.compile(r"^\s*(\[\[?)\s*([A-Za-z0-9_\-\"'. ]+?)\s*\]\]?")
    _ASSIGN = re.compile(r"^\s*[\"']?([A-Za-z0-9_\-]+)[\"']?\s*=")

    def __init__(self, text: str) -> None:
        self.where: dict[tuple[str, int | None, str], int] = {}
        table, index = "", None
        counts: dict[str, int] = {}
        for number, line in enumerate(text.splitlines(), start=1):
            header = self._HEADER.match(line)
            if header:
                table = header.group(2).strip("\"' ")
                if header.group(1) == "[[":
                    index = counts.get(table, 0)
                    counts[table] = index + 1
                else:
                    index = None
                self.where.setdefault((table, index, ""), number)
                continue
            assign = self._ASSIGN.match(line)
            if assign:
                dotted = assign.group(1).split(".")
                self.where.setdefault((table, index, dotted[-1]), number)

    def find(self, table: str, key: str, index: int | None = None) -> int | None:
        """First line assigning ``key`` in ``[table]`` (``index``-th ``[[table]]``), else the header
        of the table ``key`` names (``[extra]``: an unknown key that is a table), else ``table``'s."""
        nested = f"{table}.{key}" if table else key
        return (
            self.where.get((table, index, key))
            or self.where.get((nested, None, ""))
            or self.where.get((nested, 0, ""))
            or self.where.get((table, index, ""))
        )
