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

import contextlib
import csv
import errno
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from migplan import analysis
from migplan.io.inventory import OPTION_ERROR
from migplan.io.schema import WaveRow, validate_row
from migplan.io.table import read_table
from migplan.model import Finding, Inventory, Plan
from migplan.report import to_jsonable
from migplan.text import listing

WAVES_FILE = "waves.csv"
PLAN_FILE = "plan.json"
PREVIOUS_WAVES_FILE = "waves.previous.csv"  # an earlier plan, kept when a later run found none
PREVIOUS_PLAN_FILE = "plan.previous.json"
CLOSEST_WAVES_FILE = "closest-waves.csv"  # no plan found: the search's closest, which breaks some rules
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
        shown = listing(missing, 10)
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


def planned_with(waves_csv: Path, inv: Inventory) -> list[Finding]:
    """Warnings when the plan.json next to ``waves_csv`` was planned with other waves,
    rtt_ms or risk_weight than ``inv`` has (e.g. ``plan --waves 50``): evaluate then judges
    the plan against other rules, and the warning names the option that matches.  Nothing
    when there is no readable plan.json there."""
    try:
        report = json.loads((waves_csv.parent / PLAN_FILE).read_text(encoding="utf-8"))
        used = report["scenario"]
    except (OSError, ValueError, KeyError, TypeError):
        return []
    if not isinstance(used, dict):
        return []
    found = []
    for key, option in (("waves", "--waves"), ("rtt_ms", "--rtt-ms"), ("risk_weight", "--risk-weight")):
        planned, here = used.get(key), getattr(inv.scenario, key)
        if isinstance(planned, int | float) and not isinstance(planned, bool) and planned != here:
            found.append(
                Finding(
                    "warning",
                    "planned-with-other-scenario",
                    f"{waves_csv.parent / PLAN_FILE} says this plan was made with {key} = {planned:g}, "
                    f"the inventory has {here:g}: add {option} {planned:g} to evaluate it as planned",
                )
            )
    return found


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

    write_files_atomically(
        out_dir, {WAVES_FILE: _waves_writer(inv, plan), PLAN_FILE: _json_writer(report), **(extra or {})}
    )
    _drop_stale_closest(out_dir)


def write_no_plan_folder(
    out_dir: Path, report: Mapping[str, Any], closest: tuple[Inventory, Plan] | None = None
) -> bool:
    """Write plan.json (no feasible plan: status and reasons) and, when the search has one,
    its closest plan as closest-waves.csv; keep an earlier plan aside.

    A waves.csv left from an earlier run next to a plan.json saying "no plan" would be read
    as this run's plan, and deleting it would lose a good plan to a run with a shorter
    time limit: it becomes waves.previous.csv (its plan.json plan.previous.json), written
    with the new plan.json in one atomic step.  Returns whether an earlier plan was kept so.
    The closest plan has its own name so that nothing reads it as a plan; a stale one from
    an earlier run is removed.  Raises OSError when the folder cannot be written.
    """
    out_dir = Path(out_dir)
    earlier = out_dir / WAVES_FILE
    writers: dict[str, Writer] = {}
    if earlier.is_file():
        writers[PREVIOUS_WAVES_FILE] = _copy_of(earlier)
        if (out_dir / PLAN_FILE).is_file():
            writers[PREVIOUS_PLAN_FILE] = _copy_of(out_dir / PLAN_FILE)
    writers[PLAN_FILE] = _json_writer(report)
    if closest is not None:
        writers[CLOSEST_WAVES_FILE] = _waves_writer(*closest)
    write_files_atomically(out_dir, writers)
    if closest is None:
        _drop_stale_closest(out_dir)
    if PREVIOUS_WAVES_FILE in writers:
        earlier.unlink()
        return True
    return False


def _drop_stale_closest(out_dir: Path) -> None:
    """An earlier run's closest-waves.csv: beside this run's results it would be read as theirs."""
    with contextlib.suppress(FileNotFoundError):
        (out_dir / CLOSEST_WAVES_FILE).unlink()


def _waves_writer(inv: Inventory, plan: Plan) -> Writer:
    def write_waves(path: Path) -> None:
        with path.open("w", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle, lineterminator="\n")
            writer.writerow(WAVES_COLUMNS)
            writer.writerows(waves_rows(inv, plan))

    return write_waves


def _copy_of(source: Path) -> Writer:
    def copy(path: Path) -> None:
        shutil.copy2(source, path)

    return copy


def _json_writer(report: Mapping[str, Any]) -> Writer:
    def write_json(path: Path) -> None:
        text = json.dumps(to_jsonable(report), indent=2, allow_nan=False, ensure_ascii=False)
        path.write_text(text + "\n", encoding="utf-8")

    return write_json


def write_files_atomically(out_dir: Path, writers: Mapping[str, Writer]) -> None:
    """Each writer fills a file in a hidden temporary folder inside ``out_dir``; all are then moved in.

    Other files already in ``out_dir`` are left alone.  On any failure the temporary folder
    is removed and ``out_dir`` keeps its old files (missing parent folders are created first):
    before the first move every file to be replaced is linked (or copied) aside, and if a
    later move fails the ones already moved are put back, so the folder never holds a new
    waves.csv next to an old plan.json.  An OSError names the file in ``out_dir``, never
    the temporary one.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".migplan-", suffix=".tmp", dir=out_dir))
    try:
        for name, write in writers.items():
            with _naming(out_dir / name):
                write(staging / name)
        _move_in(staging, out_dir, list(writers))
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _move_in(staging: Path, out_dir: Path, names: list[str]) -> None:
    """Move the staged files over ``out_dir``'s: all of them, or none (see above)."""
    backups: dict[str, Path] = {}
    for name in names:
        target = out_dir / name
        with _naming(target):
            if target.is_dir() and not target.is_symlink():
                raise IsADirectoryError(errno.EISDIR, "is a folder, not a file")
            if target.exists() or target.is_symlink():
                backups[name] = _set_aside(target, staging / f".previous-{name}")
    moved: list[str] = []
    try:
        for name in names:
            with _naming(out_dir / name):
                os.replace(staging / name, out_dir / name)
            moved.append(name)
    except OSError:
        for name in moved:  # put the old files back: the folder stays as it was
            if name in backups:
                os.replace(backups[name], out_dir / name)
            else:
                (out_dir / name).unlink(missing_ok=True)
        raise


def _set_aside(target: Path, backup: Path) -> Path:
    """A second name for ``target``'s current content: a hard link, else a copy."""
    try:
        os.link(target, backup, follow_symlinks=False)
    except OSError:  # no hard links on this file system, or an immutable file (its move fails later)
        shutil.copy2(target, backup, follow_symlinks=False)
    return backup


@contextlib.contextmanager
def _naming(path: Path) -> Iterator[None]:
    """Re-raise an OSError with ``path`` as its file (disk full names no file at all)."""
    try:
        yield
    except OSError as exc:
        raise OSError(exc.errno, exc.strerror or str(exc), str(path)) from exc


def out_dir_findings(raw: str, option: str = "--out", files: tuple[str, ...] = ()) -> list[Finding]:
    """Why no plan folder can be written at ``raw`` (empty if one can), checked before solving.

    ``raw`` must be an existing folder, or a missing path whose nearest existing parent is a
    folder (missing folders in between are created).  Writability is tested by creating and
    removing a hidden folder there: permission bits do not tell for root, read-only mounts
    or /proc.  None of ``files`` (the names to be written) may be a folder in ``raw``.
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
    try:
        return _where_findings(Path(raw), files, bad)
    except OSError as exc:  # a name too long, a parent folder the user may not enter
        return bad(f"cannot be checked: {exc.strerror or exc}")


def _where_findings(path: Path, files: tuple[str, ...], bad: Callable[[str], list[Finding]]) -> list[Finding]:
    """``out_dir_findings`` for a non-empty path (may raise OSError from the file system)."""
    if path.exists():
        if not path.is_dir():
            kind = "an existing file" if path.is_file() else "a special file (device, FIFO or socket)"
            return bad(f"is {kind}, not a folder")
        folders = [name for name in files if (path / name).is_dir() and not (path / name).is_symlink()]
        if folders:
            return bad(
                f"holds {', '.join(folders)} as a folder, where the file of that name is to be written"
            )
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
