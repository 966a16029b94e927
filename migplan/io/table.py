"""Reading one user CSV file into records with spreadsheet row numbers, every problem a Finding.

Shared by the inventory loader and the plan reader so that both accept the same files:
UTF-8 with or without a BOM, a header row, column order free, column names matched
after lower-casing and turning spaces or hyphens into underscores.

Row numbers are spreadsheet rows: the header is row 1 and every CSV record counts as one
row, blank ones included, so a quoted cell that spans several text lines is still one row
(as Excel and LibreOffice show it).  When a record does not start on the text line of the
same number, the message also names the text line.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from migplan.model import Finding

_SEPARATORS = re.compile(r"[\s\-]+")


def canonical_column(name: str) -> str:
    """``" App ID "`` -> ``app_id``: how a header cell is matched to a known column."""
    return _SEPARATORS.sub("_", name.strip()).lower()


@dataclass(frozen=True, slots=True)
class Record:
    """One data row: known columns only, cells stripped, empty cells left out (= default)."""

    row: int  # spreadsheet row, header = 1
    line: int  # text line where the record starts
    cells: dict[str, str]
    complete: bool = True  # False: wrong number of fields, cells are the ones that lined up

    def where(self) -> str:
        """Extra text for messages when text line and spreadsheet row differ."""
        return "" if self.line == self.row else f" (text line {self.line})"


@dataclass(frozen=True)
class Table:
    """A CSV file as records; ``readable`` is False when not even the header could be read."""

    file: str
    columns: tuple[str, ...] = ()
    records: tuple[Record, ...] = ()
    findings: tuple[Finding, ...] = field(default_factory=tuple)
    readable: bool = False
    truncated: bool = False  # a CSV syntax error stopped reading: later rows are missing


def read_text(path: Path, label: str) -> tuple[str | None, list[Finding]]:
    """The file's text, or None and one finding saying why it cannot be used."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None, [Finding("error", "missing-file", f"{label} not found in {path.parent}", file=label)]
    except IsADirectoryError:
        return None, [Finding("error", "not-a-file", f"{path} is a folder, not a file", file=label)]
    except OSError as exc:
        reason = exc.strerror or str(exc)
        return None, [Finding("error", "unreadable-file", f"cannot read {path}: {reason}", file=label)]
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        bad = data[exc.start : exc.start + 4]
        return None, [
            Finding(
                "error",
                "not-utf8",
                f"not UTF-8 text at byte {exc.start} (text line {line}); save the file as 'CSV UTF-8'",
                file=label,
                row=line,
                value=bad.hex(" "),
                expected="UTF-8 text",
            )
        ]
    nul = text.find("\x00")
    if nul >= 0:
        line = text.count("\n", 0, nul) + 1
        return None, [
            Finding(
                "error",
                "binary-file",
                f"binary data (a NUL byte) at text line {line}: this is not a CSV text file",
                file=label,
                row=line,
                expected="CSV text",
            )
        ]
    return text, []


def read_table(
    path: Path,
    *,
    known: Iterable[str],
    required: Iterable[str],
    label: str | None = None,
    warn_unknown: bool = True,
) -> Table:
    """Read ``path``; report a missing/undecodable file, a bad header, ragged rows, blank rows.

    Unknown columns give one warning (``warn_unknown``) and are ignored.  A row with the
    wrong number of fields is an error; its record is still returned (``complete=False``)
    so that the caller can register its id and not report knock-on errors.
    """
    label = label or path.name
    text, problems = read_text(path, label)
    if text is None:
        return Table(label, findings=tuple(problems))
    known_set = set(known)
    findings: list[Finding] = []
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    records: list[Record] = []
    blank_rows: list[int] = []
    header: list[str] | None = None
    positions: dict[str, int] = {}
    columns: list[tuple[str, int]] = []
    row = 0
    line = 1
    header_row = 1
    truncated = False
    try:
        for fields in reader:
            row += 1
            start = line
            line = reader.line_num + 1
            if not "".join(fields).strip():
                blank_rows.append(row)
                continue
            if header is None:
                header = fields
                header_row = row
                positions, header_findings = _read_header(fields, row, label, known_set, warn_unknown)
                findings += header_findings
                columns = list(positions.items())
                continue
            complete = len(fields) == len(header)
            if not complete:
                findings.append(
                    Finding(
                        "error",
                        "ragged-row",
                        f"row has {len(fields)} fields but the header has {len(header)}"
                        f"{'' if start == row else f' (text line {start})'}; "
                        "a comma inside a value needs double quotes",
                        file=label,
                        row=row,
                        value=",".join(fields)[:80],
                        expected=f"{len(header)} fields",
                    )
                )
            if complete:
                cells = {name: value for name, pos in columns if (value := fields[pos].strip())}
            else:
                cells = {
                    name: value
                    for name, pos in columns
                    if pos < len(fields) and (value := fields[pos].strip())
                }
            records.append(Record(row, start, cells, complete))
    except csv.Error as exc:
        truncated = True
        findings.append(
            Finding(
                "error",
                "bad-csv",
                f"cannot read the CSV past this row: {exc}; check the quotes",
                file=label,
                row=row + 1,
                expected="well-formed CSV",
            )
        )
    if header is None:
        findings.append(
            Finding("error", "empty-file", "the file is empty: a header row is required", file=label, row=1)
        )
        return Table(label, findings=tuple(findings))
    missing = [c for c in required if c not in positions]
    hint = _separator_hint(header) if missing else ""
    for name in missing:
        findings.append(
            Finding(
                "error",
                "missing-column",
                f"required column {name!r} is missing; the header has: "
                + ", ".join(h.strip() for h in header)
                + hint,
                file=label,
                row=header_row,
                column=name,
            )
        )
    if blank_rows:
        shown = ", ".join(map(str, blank_rows[:10])) + (", …" if len(blank_rows) > 10 else "")
        findings.append(
            Finding(
                "info",
                "blank-rows",
                f"skipped {len(blank_rows)} blank row(s): {shown}",
                file=label,
                row=blank_rows[0],
            )
        )
    return Table(label, tuple(positions), tuple(records), tuple(findings), not missing, truncated)


def _read_header(
    header: list[str], row: int, label: str, known: set[str], warn_unknown: bool
) -> tuple[dict[str, int], list[Finding]]:
    """Known column -> position; duplicate known columns are errors, unknown ones one warning."""
    positions: dict[str, int] = {}
    unknown: list[str] = []
    findings: list[Finding] = []
    for pos, raw in enumerate(header):
        name = canonical_column(raw)
        if name not in known:
            unknown.append(raw.strip() or f"(unnamed column {pos + 1})")
        elif name in positions:
            findings.append(
                Finding(
                    "error",
                    "duplicate-column",
                    f"column {name!r} appears twice in the header "
                    f"(columns {positions[name] + 1} and {pos + 1})",
                    file=label,
                    row=row,
                    column=name,
                )
            )
        else:
            positions[name] = pos
    if unknown and warn_unknown:
        findings.append(
            Finding(
                "warning",
                "unknown-column",
                f"ignoring unknown column(s) {', '.join(map(repr, unknown))}; "
                f"known columns: {', '.join(sorted(known))}",
                file=label,
                row=row,
                column=unknown[0],
            )
        )
    return positions, findings


def _separator_hint(header: list[str]) -> str:
    """Spreadsheets in many locales save CSV with ';' or tabs: say so instead of just 'missing'."""
    if len(header) == 1:
        for sep, name in ((";", "semicolons"), ("\t", "tabs"), ("|", "'|'")):
            if sep in header[0]:
                return f" (the file seems to separate columns with {name}; migplan reads comma-separated CSV)"
    return ""
