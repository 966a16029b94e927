"""Per-row types of the input files (SPEC §2) for pydantic, and their errors as Findings.

pydantic does the coercion and collects every bad cell of a row at once; this module only
says what each column expects, in the user's words, so that a message names the file,
row, column, the bad value and what would have been accepted.  Rows are TypedDicts (three
times faster to validate than models) whose optional columns are simply absent when
empty, so the defaults stay in one place: the dataclasses of ``migplan.model``.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from functools import cache
from typing import TYPE_CHECKING, Annotated, Any, NotRequired

from pydantic import BeforeValidator, ConfigDict, Field, TypeAdapter, ValidationError
from pydantic_core import PydanticCustomError
from typing_extensions import TypedDict  # pydantic needs this one on Python < 3.12 (a pydantic dependency)

from migplan.model import Finding

if TYPE_CHECKING:
    from migplan.io.table import Record

Row = dict[str, Any]  # a validated row: column -> typed value, absent = default

_BOOLS = {
    "true": True,
    "yes": True,
    "y": True,
    "1": True,
    "false": False,
    "no": False,
    "n": False,
    "0": False,
}
BOOL_WORDS = "true/false, yes/no, y/n or 1/0"


def _parse_bool(value: object) -> object:
    """Only the spellings a CMDB export uses; ``on``/``t`` and friends are refused as typos."""
    if isinstance(value, str):
        parsed = _BOOLS.get(value) if value in _BOOLS else _BOOLS.get(value.lower())
        if parsed is None:
            raise ValueError(f"expected {BOOL_WORDS}")
        return parsed
    return value


Bool = Annotated[bool, BeforeValidator(_parse_bool)]


def _digits_only(kind: str) -> BeforeValidator:
    """Refuse ``1_000``: Python's int() and float() read it as 1000, no spreadsheet writes it,
    and ``1_0`` read as 10 would be a silent guess at a typo."""

    def check(value: object) -> object:
        if isinstance(value, str) and "_" in value:
            raise PydanticCustomError(kind, "underscores are not part of a number")
        return value

    return BeforeValidator(check)


_FLOAT_TEXT = _digits_only("float_parsing")
Integer = Annotated[int, _digits_only("int_parsing")]
# the largest number an input cell or scenario key may hold: sums and products of such numbers
# over a whole estate stay far inside float64 and the solver's int64 (three calls of 1e308 qps
# made the total qps inf and the planner fail)
MAX_NUMBER = 1e15
NUMBER = "a number ≥ 0, at most 1e15"
NonNegative = Annotated[float, Field(ge=0, le=MAX_NUMBER, allow_inf_nan=False), _FLOAT_TEXT]
Text = Annotated[str, Field(min_length=1)]


class AppRow(TypedDict):
    """One apps.csv row.  Empty cells are absent, so ``App(**row)`` takes model.py's defaults."""

    __pydantic_config__ = ConfigDict(extra="ignore")  # type: ignore[misc]

    app_id: Text
    qps: NonNegative
    name: NotRequired[str]
    team: NotRequired[str]
    criticality: NotRequired[Annotated[Integer, Field(ge=1, le=5)]]
    latency_budget_ms: NotRequired[NonNegative]
    instances: NotRequired[Annotated[Integer, Field(ge=1, le=int(MAX_NUMBER))]]
    data_gb: NotRequired[NonNegative]
    stateful: NotRequired[Bool]
    kind: NotRequired[str]
    rehearsed: NotRequired[Bool]
    group: NotRequired[str]
    pinned_wave: NotRequired[Integer]
    earliest_wave: NotRequired[Integer]
    latest_wave: NotRequired[Integer]
    risk: NotRequired[NonNegative]


class DependencyRow(TypedDict):
    """One dependencies.csv row (``Dependency(**row)``)."""

    __pydantic_config__ = ConfigDict(extra="ignore")  # type: ignore[misc]

    caller: Text
    callee: Text
    qps: NonNegative
    calls_per_request: NotRequired[NonNegative]
    sync: NotRequired[Bool]
    kb_per_call: NotRequired[NonNegative]


class WaveRow(TypedDict):
    """One waves.csv row (a plan read back)."""

    __pydantic_config__ = ConfigDict(extra="ignore")  # type: ignore[misc]

    app_id: Text
    wave: Integer


APP_COLUMNS = tuple(k for k in AppRow.__annotations__ if not k.startswith("__"))
DEPENDENCY_COLUMNS = tuple(k for k in DependencyRow.__annotations__ if not k.startswith("__"))

EXPECTED: dict[str, str] = {
    "app_id": "a non-empty id",
    "caller": "a non-empty app_id",
    "callee": "a non-empty app_id",
    "qps": NUMBER,
    "criticality": "an integer 1–5",
    "latency_budget_ms": f"{NUMBER} (ms)",
    "instances": "an integer ≥ 1, at most 1e15",
    "data_gb": NUMBER,
    "stateful": BOOL_WORDS,
    "rehearsed": BOOL_WORDS,
    "sync": BOOL_WORDS,
    "pinned_wave": "an integer wave number",
    "earliest_wave": "an integer wave number",
    "latest_wave": "an integer wave number",
    "wave": "an integer wave number",
    "risk": NUMBER,
    "calls_per_request": NUMBER,
    "kb_per_call": f"{NUMBER} (KB)",
}

_REASONS: dict[str, str] = {
    "missing": "is empty",
    "string_too_short": "is empty",
    "float_parsing": "is not a number",
    "float_type": "is not a number",
    "finite_number": "is not a finite number",
    "int_parsing": "is not an integer",
    "int_type": "is not an integer",
    "int_from_float": "is not an integer",
    "greater_than_equal": "is too small",
    "greater_than": "is too small",
    "less_than_equal": "is too large",
    "less_than": "is too large",
    "bool_parsing": "is not a yes/no value",
    "bool_type": "is not a yes/no value",
    "value_error": "is not a yes/no value",
}

CODES: dict[str, str] = {"missing": "missing-value", "string_too_short": "missing-value"}


def row_findings(
    error: ValidationError, cells: dict[str, str], *, file: str, row: int, where: str = ""
) -> list[Finding]:
    """One Finding per bad cell of a row, in column order as pydantic reports them."""
    findings = []
    for item in error.errors():
        column = str(item["loc"][0]) if item["loc"] else ""
        kind = item["type"]
        reason = _REASONS.get(kind, item["msg"])
        findings.append(
            Finding(
                "error",
                CODES.get(kind, "bad-value"),
                f"{column} {reason}{where}",
                file=file,
                row=row,
                column=column,
                value=cells.get(column) if kind not in CODES else None,
                expected=EXPECTED.get(column),
            )
        )
    return findings


@cache
def _adapter(model: type) -> TypeAdapter[Any]:
    return TypeAdapter(model)


@cache
def _list_adapter(model: type) -> TypeAdapter[list[Any]]:
    return TypeAdapter(list[model])  # type: ignore[valid-type]


def validate_row(
    model: type,
    cells: dict[str, str],
    *,
    file: str,
    row: int,
    where: str = "",
    ignore: Collection[str] = (),
) -> tuple[Row | None, list[Finding]]:
    """The row as a typed dict or None, with the findings of every bad cell.

    ``ignore``: columns whose findings are dropped (the row is still None), because an
    error elsewhere already explains them (a column named twice in the header).
    """
    try:
        return _adapter(model).validate_python(cells), []
    except ValidationError as exc:
        findings = row_findings(exc, cells, file=file, row=row, where=where)
        return None, [f for f in findings if f.column not in ignore]


def validate_records(
    model: type, records: Sequence[Record], *, file: str, ignore: Collection[str] = ()
) -> tuple[list[Row | None], list[Finding]]:
    """Every complete record as a typed dict (None where a cell is bad), one finding per bad cell.

    One bulk validation first (fast: 150,000 rows in a fraction of a second); only when that
    fails are the rows validated one by one to keep the good ones and locate the bad cells.
    ``ignore`` as for ``validate_row``.
    """
    complete = [r for r in records if r.complete]
    try:
        parsed: list[Row | None] = _list_adapter(model).validate_python([r.cells for r in complete])
    except ValidationError:
        pass
    else:
        return parsed, []
    parsed, findings = [], []
    for rec in complete:
        row, problems = validate_row(
            model, rec.cells, file=file, row=rec.row, where=rec.where(), ignore=ignore
        )
        parsed.append(row)
        findings += problems
    return parsed, findings
