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
import os
import re
import stat
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from migplan.model import Finding

_SEPARATORS = re.compile(r"[\s\-]+")
# the largest input file read: 1 GiB is about 10 million CSV rows, 100 times the largest
# estate measured; anything larger is a wrong file (or a device) and would exhaust memory
MAX_FILE_BYTES = 2**30


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
    ambiguous: tuple[str, ...] = ()  # known columns named twice in the header: their cells are not read


def read_text(path: Path, label: str) -> tuple[str | None, list[Finding]]:
    """The file's text, or None and one finding saying why it cannot be used.

    Only regular files (symbolic links followed) of at most ``MAX_FILE_BYTES`` are read:
    a link to /dev/zero grew memory without limit and a named pipe blocked forever.
    """
    try:
        info = path.stat()
        if stat.S_ISDIR(info.st_mode):
            return None, [Finding("error", "not-a-file", f"{path} is a folder, not a file", file=label)]
        if not stat.S_ISREG(info.st_mode):
            return None, [
                Finding(
                    "error",
                    "not-a-file",
                    f"{path} is {_special_kind(info.st_mode)}, not a regular file"
                    + (f" (a link to {path.resolve()})" if path.is_symlink() else ""),
                    file=label,
                    expected="a regular file",
                )
            ]
        if info.st_size > MAX_FILE_BYTES:
            return None, [_too_large(path, label, f"{info.st_size:,} bytes")]
        with path.open("rb") as handle:
            data = handle.read(MAX_FILE_BYTES + 1)  # the file may grow between stat and read
    except FileNotFoundError:
        if path.is_symlink():
            reason = f"{path} is a symbolic link to {os.readlink(path)}, which does not exist"
            return None, [Finding("error", "missing-file", reason, file=label)]
        return None, [Finding("error", "missing-file", f"{label} not found in {path.parent}", file=label)]
    except OSError as exc:
        reason = exc.strerror or str(exc)
        return None, [Finding("error", "unreadable-file", f"cannot read {path}: {reason}", file=label)]
    if len(data) > MAX_FILE_BYTES:
        return None, [_too_large(path, label, f"more than {MAX_FILE_BYTES:,} bytes")]
    kind = "TOML" if label.endswith(".toml") else "CSV"
    save_as = f"save {label} as UTF-8" if kind == "TOML" else "save the file as 'CSV UTF-8'"
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        bad = data[exc.start : exc.start + 4]
        return None, [
            Finding(
                "error",
                "not-utf8",
                f"not UTF-8 text at byte {exc.start} (text line {line}); {save_as}",
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
                f"binary data (a NUL byte) at text line {line}: this is not a {kind} text file",
                file=label,
                row=line,
                expected=f"{kind} text",
            )
        ]
    return text, []


def _special_kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "a socket" if stat.S_ISSOCK(mode) else "a special file"


def _too_large(path: Path, label: str, size: str) -> Finding:
    return Finding(
        "error",
        "file-too-large",
        f"{path} is larger than 1 GiB, the largest file migplan reads",
        file=label,
        value=size,
        expected=f"at most {MAX_FILE_BYTES:,} bytes (1 GiB)",
    )


def _excel_separator_line(fields: list[str], row: int, label: str) -> Finding | None:
    """The finding for Excel's ``sep=X`` line before the header (skipped: an info for a comma,
    an error for any other separator), or None when ``fields`` is not one."""
    line = ",".join(fields).strip()
    if not (line.lower().startswith("sep=") and len(line) == 5):
        return None
    separator = line[4]
    if separator == ",":
        return Finding("info", "separator-line", "Excel's 'sep=,' line skipped", file=label, row=row)
    return Finding(
        "error",
        "bad-separator",
        f"the file declares {separator!r} as its separator (Excel's 'sep=' line)",
        file=label,
        row=row,
        value=line,
        expected="comma-separated values (save as 'CSV UTF-8 (comma delimited)')",
    )


def read_table(
    path: Path,
    *,
    known: Iterable[str],
    required: Iterable[str],
    label: str | None = None,
    warn_unknown: bool = True,
) -> Table:
    """Read ``path``; report a missing/undecodable file, a bad header, ragged rows, blank rows.

    Unknown columns give one warning (``warn_unknown``) and are ignored.  A known column
    named twice is one error and neither copy is read (``Table.ambiguous``: callers skip
    their per-row errors, which would only repeat it).  A row with the wrong number of
    fields is an error; its record is still returned (``complete=False``) so that the
    caller can register its id and not report knock-on errors.
    """
    label = label or path.name
    text, problems = read_text(path, label)
    if text is None:
        return Table(label, findings=tuple(problems))
    known_set = set(known)
    findings: list[Finding] = []
    # the whole file is in memory already: no field is too large to read (the default limit,
    # 131,072 characters, stopped a file at a long name with a message about quotes)
    csv.field_size_limit(max(csv.field_size_limit(), len(text) + 1))
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    records: list[Record] = []
    blank_rows: list[int] = []
    header: list[str] | None = None
    positions: dict[str, int] = {}
    columns: list[tuple[str, int]] = []
    ambiguous: tuple[str, ...] = ()
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
            if header is None and (separator := _excel_separator_line(fields, row, label)):
                findings.append(separator)
                continue
            if header is None:
                header = fields
                header_row = row
                positions, header_findings = _read_header(fields, row, label, known_set, warn_unknown)
                findings += header_findings
                ambiguous = tuple(
                    f.column for f in header_findings if f.code == "duplicate-column" and f.column
                )
                # which of the two is meant is unknown: neither is read, the header error says why
                columns = [(name, pos) for name, pos in positions.items() if name not in ambiguous]
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
    return Table(label, tuple(positions), tuple(records), tuple(findings), not missing, truncated, ambiguous)


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
                    f"(columns {positions[name] + 1} and {pos + 1}): neither is read, "
                    "rename or remove one",
                    file=label,
                    row=row,
                    column=name,
                    value=raw.strip(),
                    expected="each column once",
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
