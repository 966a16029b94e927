"""Plan files: read a waves.csv back as a Plan, write a plan folder atomically.

Atomic here means a reader of the plan folder sees every file either as it was or as
newly written, never half-written: all files go to a hidden temporary folder inside the
target first, and only when all of them are complete are they moved in one by one with
``os.replace`` (atomic per file on POSIX and Windows, same file system).  The staging
folder is inside the target, not next to it, so that a writable plan folder is all that
is needed: ``out_dir_findings`` checks exactly that before the planner starts, because a
bad --out found only after an hour of solving loses the hour.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from migplan import analysis
from migplan.io.inventory import OPTION_ERROR
from migplan.io.schema import WaveRow, validate_row
from migplan.io.table import read_table
from migplan.model import Finding, Inventory, Plan
from migplan.report import to_jsonable

WAVES_FILE = "waves.csv"
PLAN_FILE = "plan.json"
WAVES_COLUMNS = ("app_id", "wave", "name", "team", "kind", "criticality", "moved_with")

Writer = Callable[[Path], object]  # fills the file at the given path; any return value is ignored


def read_waves_csv(path: Path, inv: Inventory) -> tuple[Plan | None, tuple[Finding, ...]]:
    """A Plan from app_id + wave columns (others ignored); every app exactly once, waves 1..K."""
    path = Path(path)
    table = read_table(path, known=("app_id", "wave"), required=("app_id", "wave"), warn_unknown=False)
    label = table.file
    findings = list(table.findings)
    if not table.readable:
        return None, tuple(findings)
    K = inv.K
    waves: dict[str, tuple[int, int]] = {}  # app_id -> (wave, row)
    mentioned: set[str] = set()  # ids on any row, bad ones too: not reported missing as well
    for rec in table.records:
        mentioned.add(rec.cells.get("app_id", ""))
        if not rec.complete:
            continue
        parsed, problems = validate_row(
            WaveRow, rec.cells, file=label, row=rec.row, where=rec.where(), ignore=table.ambiguous
        )
        findings += problems
        if parsed is None:
            continue
        app_id, wave = parsed["app_id"], parsed["wave"]
        if app_id not in inv.index:
            findings.append(
                Finding(
                    "error",
                    "unknown-app",
                    f"app_id {app_id!r} is not in the inventory",
                    file=label,
                    row=rec.row,
                    column="app_id",
                    value=app_id,
                    expected="an app_id from apps.csv",
                    apps=(app_id,),
                )
            )
        elif app_id in waves:
            findings.append(
                Finding(
                    "error",
                    "duplicate-app",
                    f"{app_id!r} has a wave on rows {waves[app_id][1]} and {rec.row}: one wave per app",
                    file=label,
                    row=rec.row,
                    column="app_id",
                    value=app_id,
                    apps=(app_id,),
                )
            )
        if not 1 <= wave <= K:
            findings.append(
                Finding(
                    "error",
                    "wave-out-of-range",
                    f"wave {wave} of {app_id!r} is outside 1..{K}",
                    file=label,
                    row=rec.row,
                    column="wave",
                    value=str(wave),
                    expected=f"1..{K}",
                    apps=(app_id,),
                )
            )
        waves.setdefault(app_id, (wave, rec.row))
    missing = [a for a in inv.ids if a not in mentioned]
    if missing:
        shown = ", ".join(missing[:10]) + (f" and {len(missing) - 10} more" if len(missing) > 10 else "")
        findings.append(
            Finding(
                "error",
                "missing-apps",
                f"{len(missing)} app(s) of the inventory have no wave: {shown}",
                file=label,
                column="app_id",
                expected="one row per application",
                apps=tuple(missing),
            )
        )
    if any(f.severity == "error" for f in findings):
        return None, tuple(findings)
    return Plan(tuple(waves[a][0] for a in inv.ids), K), tuple(findings)


def waves_rows(inv: Inventory, plan: Plan) -> list[list[object]]:
    """waves.csv rows sorted by wave then app_id; moved_with names the group or the cycle.

    A blank name is written as the app_id, the default SPEC §2 gives it.
    """
    cycle_of: dict[int, str] = {}
    if not inv.scenario.split_cycles:
        for c, members in enumerate(analysis.cycles(inv), start=1):
            for i in members:
                cycle_of[i] = f"cycle-{c}"
    rows = []
    for i in sorted(range(inv.n), key=lambda i: (plan.waves[i], inv.apps[i].app_id)):
        app = inv.apps[i]
        moved_with = f"group:{app.group}" if app.group else cycle_of.get(i, "")
        # name defaults to app_id (SPEC §2), so every row of the plan has a name to show
        rows.append([app.app_id, plan.waves[i], app.label, app.team, app.kind, app.criticality, moved_with])
    return rows


def write_plan_folder(
    out_dir: Path,
    inv: Inventory,
    plan: Plan,
    report: Mapping[str, Any],
    extra: Mapping[str, Writer] | None = None,
) -> None:
    """Write waves.csv, plan.json (and ``extra`` files: name -> writer) into ``out_dir`` atomically.

    Raises OSError when the folder cannot be written; nothing in ``out_dir`` is changed then.
    """

    def write_waves(path: Path) -> None:
        with path.open("w", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle, lineterminator="\n")
            writer.writerow(WAVES_COLUMNS)
            writer.writerows(waves_rows(inv, plan))

    write_files_atomically(
        out_dir, {WAVES_FILE: write_waves, PLAN_FILE: _json_writer(report), **(extra or {})}
    )


def write_no_plan_folder(out_dir: Path, report: Mapping[str, Any]) -> bool:
    """Write plan.json (no feasible plan: status and reasons) and remove an earlier waves.csv.

    The folder then says what this run found: a waves.csv left from an earlier run next to
    a plan.json saying "no plan" would be read as this run's plan.  Returns whether one was
    removed.  Raises OSError when the folder cannot be written.
    """
    write_files_atomically(out_dir, {PLAN_FILE: _json_writer(report)})
    stale = Path(out_dir) / WAVES_FILE
    if stale.is_file() or stale.is_symlink():
        stale.unlink()
        return True
    return False


def _json_writer(report: Mapping[str, Any]) -> Writer:
    def write_json(path: Path) -> None:
        text = json.dumps(to_jsonable(report), indent=2, allow_nan=False, ensure_ascii=False)
        path.write_text(text + "\n", encoding="utf-8")

    return write_json


def write_files_atomically(out_dir: Path, writers: Mapping[str, Writer]) -> None:
    """Each writer fills a file in a hidden temporary folder inside ``out_dir``; all are then moved in.

    Other files already in ``out_dir`` are left alone.  On any failure the temporary folder
    is removed and ``out_dir`` keeps its old files (missing parent folders are created first).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".migplan-", suffix=".tmp", dir=out_dir))
    try:
        for name, write in writers.items():
            write(staging / name)
        for name in writers:
            os.replace(staging / name, out_dir / name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def out_dir_findings(raw: str, option: str = "--out") -> list[Finding]:
    """Why no plan folder can be written at ``raw`` (empty if one can), checked before solving.

    ``raw`` must be an existing folder, or a missing path whose nearest existing parent is a
    folder (missing folders in between are created).  Writability is tested by creating and
    removing a hidden folder there: permission bits do not tell for root, read-only mounts
    or /proc.
    """

    def bad(reason: str) -> list[Finding]:
        return [
            Finding(
                "error",
                OPTION_ERROR,
                f"{option} {reason}",
                file=option,
                value=raw,
                expected="a folder you can write to, or a new folder's path inside one",
            )
        ]

    if not raw.strip():
        return bad("is empty")
    path = Path(raw)
    if path.exists():
        if not path.is_dir():
            kind = "an existing file" if path.is_file() else "a special file (device, FIFO or socket)"
            return bad(f"is {kind}, not a folder")
        where = path
    elif path.is_symlink():
        return bad("is a symbolic link to a missing target")
    else:
        where = path.absolute().parent
        while not where.exists() and where != where.parent:
            where = where.parent
        if not where.is_dir():
            return bad(f"is inside {where}, which is a file, not a folder")
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".migplan-probe-", dir=where))
    except OSError as exc:
        return bad(f"cannot be written: creating a folder in {where} failed ({exc.strerror or exc})")
    return []
