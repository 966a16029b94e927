"""Plan files: waves.csv read back as a Plan, plan folders written atomically."""

from __future__ import annotations

import csv
import json
import math
import os
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from migplan.io import planfiles
from migplan.io.planfiles import out_dir_findings, read_waves_csv, write_files_atomically, write_plan_folder
from migplan.model import Finding, Inventory, Plan
from migplan.report import to_jsonable

TINY_PLAN = Plan((3, 2, 2, 2, 1, 1), 3)  # web, api, user, order, mysql, redis


def test_write_then_read_gives_the_same_plan(tmp_path: Path, tiny_inventory: Inventory) -> None:
    out = tmp_path / "deep" / "plan"
    write_plan_folder(out, tiny_inventory, TINY_PLAN, {"feasible": True})
    plan, findings = read_waves_csv(out / "waves.csv", tiny_inventory)
    assert findings == () and plan == TINY_PLAN
    lines = (out / "waves.csv").read_text(encoding="utf-8").splitlines()
    assert lines[0] == "app_id,wave,name,team,kind,criticality,moved_with"
    assert [line.split(",")[:2] for line in lines[1:]] == [
        ["mysql", "1"],
        ["redis", "1"],
        ["api", "2"],
        ["order", "2"],
        ["user", "2"],
        ["web", "3"],
    ]
    assert lines[1].endswith(",group:db") and lines[6] == "web,3,Web frontend,edge,frontend,2,"
    assert json.loads((out / "plan.json").read_text(encoding="utf-8")) == {"feasible": True}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["deep"]  # no staging folder left


def test_plan_json_is_valid_json_with_unbounded_and_missing_numbers(
    tmp_path: Path, tiny_inventory: Inventory
) -> None:
    report = {"latency": np.array([1.5, math.inf]), "gap": math.nan, "n": np.int64(3), "ok": np.bool_(True)}
    write_plan_folder(tmp_path, tiny_inventory, TINY_PLAN, report)
    text = (tmp_path / "plan.json").read_text(encoding="utf-8")
    assert json.loads(text) == {"latency": [1.5, "unbounded"], "gap": None, "n": 3, "ok": True}
    assert "NaN" not in text and "Infinity" not in text


def test_to_jsonable_handles_nested_numpy() -> None:
    assert to_jsonable({1: (np.float32(0.5), [-math.inf])}) == {"1": [0.5, ["-unbounded"]]}


def test_a_failed_write_leaves_the_old_files(
    tmp_path: Path, tiny_inventory: Inventory, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "plan"
    write_plan_folder(out, tiny_inventory, TINY_PLAN, {"version": "old"})
    (out / "notes.txt").write_text("mine")
    before = {p.name: p.read_bytes() for p in out.iterdir()}

    def broken_dumps(*args: object, **kwargs: object) -> str:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(planfiles.json, "dumps", broken_dumps)  # fails after waves.csv is written
    with pytest.raises(OSError, match="No space"):
        write_plan_folder(out, tiny_inventory, Plan((1, 1, 1, 1, 1, 1), 3), {"version": "new"})
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plan"]


def test_extra_files_are_written_with_the_plan(tmp_path: Path) -> None:
    def fail(path: Path) -> None:
        path.write_text("half")
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        write_files_atomically(tmp_path / "out", {"a.txt": lambda p: p.write_text("a"), "b.txt": fail})
    assert list((tmp_path / "out").iterdir()) == []
    write_files_atomically(tmp_path / "out", {"a.txt": lambda p: p.write_text("a")})
    assert (tmp_path / "out" / "a.txt").read_text() == "a"


def _read(tmp_path: Path, inv: Inventory, text: str) -> tuple[Plan | None, tuple[Finding, ...]]:
    path = tmp_path / "waves.csv"
    path.write_text(text, encoding="utf-8")
    return read_waves_csv(path, inv)


def test_extra_columns_are_ignored_and_order_is_free(tmp_path: Path, tiny_inventory: Inventory) -> None:
    text = "Wave,note,App_ID\n1,x,mysql\n1,,redis\n2,,user\n2,,order\n2,,api\n3,,web\n"
    assert _read(tmp_path, tiny_inventory, text) == (TINY_PLAN, ())


def test_plan_errors_carry_rows(tmp_path: Path, tiny_inventory: Inventory) -> None:
    text = "app_id,wave\nmysql,1\nredis,1\nuser,4\norder,x\nmysql,2\nghost,1\napi,0\n"
    plan, findings = _read(tmp_path, tiny_inventory, text)
    assert plan is None
    assert [(f.code, f.row, f.column) for f in findings] == [
        ("wave-out-of-range", 4, "wave"),
        ("bad-value", 5, "wave"),
        ("duplicate-app", 6, "app_id"),
        ("unknown-app", 7, "app_id"),
        ("wave-out-of-range", 8, "wave"),
        ("missing-apps", None, "app_id"),
    ]
    assert findings[-1].apps == ("web",) and "1 app(s)" in findings[-1].message
    assert "rows 2 and 6" in findings[2].message


@pytest.mark.parametrize(
    ("content", "code"),
    [
        (None, "missing-file"),
        ("", "empty-file"),
        ("app_id\nweb\n", "missing-column"),
        (b"\xff\xfe", "not-utf8"),
    ],
)
def test_unusable_plan_files(
    tmp_path: Path, tiny_inventory: Inventory, content: str | bytes | None, code: str
) -> None:
    path = tmp_path / "waves.csv"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content)
    plan, findings = read_waves_csv(path, tiny_inventory)
    assert plan is None and findings[0].code == code and findings[0].file == "waves.csv"


def test_plan_path_that_is_a_folder(tmp_path: Path, tiny_inventory: Inventory) -> None:
    plan, findings = read_waves_csv(tmp_path, tiny_inventory)
    assert plan is None and findings[0].code == "not-a-file"


def test_a_blank_name_is_written_as_the_app_id(tmp_path: Path, tiny_inventory: Inventory) -> None:
    """SPEC §2: name defaults to app_id (fuzz name_empty: the waves.csv name cell was empty)."""
    apps = tuple(replace(a, name="") if a.app_id == "web" else a for a in tiny_inventory.apps)
    write_plan_folder(tmp_path / "plan", replace(tiny_inventory, apps=apps), TINY_PLAN, {})
    rows = list(csv.DictReader((tmp_path / "plan" / "waves.csv").read_text(encoding="utf-8").splitlines()))
    names = {r["app_id"]: r["name"] for r in rows}
    assert names["web"] == "web" and names["api"] == "API gateway"


def test_a_wave_far_past_k_is_one_clear_error(tmp_path: Path, tiny_inventory: Inventory) -> None:
    text = "app_id,wave\nmysql,1\nredis,1\nuser,2\norder,2\napi,2\nweb,10000000000\n"
    plan, findings = _read(tmp_path, tiny_inventory, text)
    assert plan is None
    assert [(f.code, f.row, f.value, f.expected) for f in findings] == [
        ("wave-out-of-range", 7, "10000000000", "1..3")
    ]


def test_underscored_waves_are_refused(tmp_path: Path, tiny_inventory: Inventory) -> None:
    text = "app_id,wave\nmysql,1\nredis,1\nuser,2\norder,2\napi,2\nweb,0_3\n"
    plan, findings = _read(tmp_path, tiny_inventory, text)
    assert plan is None and [(f.row, f.column, f.value) for f in findings] == [(7, "wave", "0_3")]


def test_staging_happens_inside_the_plan_folder(tmp_path: Path, tiny_inventory: Inventory) -> None:
    """A writable plan folder is enough: its parent may be read-only (staging used to go there)."""
    out = tmp_path / "plan"
    seen: list[Path] = []

    def write(path: Path) -> None:
        seen.append(path)
        path.write_text("a")

    write_files_atomically(out, {"a.txt": write})
    assert seen[0].parent.parent == out and seen[0].parent.name.startswith(".migplan-")
    assert [p.name for p in out.iterdir()] == ["a.txt"]


@pytest.mark.parametrize(
    ("make", "raw", "reason"),
    [
        (None, "", "is empty"),
        ("file", "taken", "is an existing file, not a folder"),
        (None, "/dev/null", "is a special file"),
        ("file", "taken/sub/plan", "which is a file, not a folder"),
        ("link", "dangling", "symbolic link to a missing target"),
    ],
)
def test_unwritable_out_paths_are_found_before_solving(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, make: str | None, raw: str, reason: str
) -> None:
    """Regression (fuzz out): --out was checked only after the solve."""
    monkeypatch.chdir(tmp_path)
    if make == "file":
        (tmp_path / "taken").write_text("x")
    elif make == "link":
        (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
    [bad] = out_dir_findings(raw)
    assert (bad.code, bad.file, bad.value) == ("bad-option", "--out", raw)
    assert reason in bad.message and bad.expected is not None


def test_out_path_in_an_unwritable_place(tmp_path: Path) -> None:
    [bad] = out_dir_findings("/proc/migplan-plan")  # even root cannot create folders in /proc
    assert "cannot be written" in bad.message and "/proc" in bad.message


def test_out_path_the_file_system_refuses_to_look_at(tmp_path: Path) -> None:
    """Regression (hostile-input audit): a name past 255 bytes raised OSError, a traceback."""
    raw = str(tmp_path / ("a" * 300) / "plan")
    [bad] = out_dir_findings(raw)
    assert "cannot be checked" in bad.message and bad.value == raw


@pytest.mark.parametrize("raw", [".", "new", "new/deeper/plan", "existing"])
def test_writable_out_paths_pass_and_leave_nothing_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, raw: str
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "existing").mkdir()
    assert out_dir_findings(raw) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["existing"]  # the probe folder is gone


def test_a_failed_move_puts_the_files_already_moved_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Regression (fuzz2): with plan.json immutable, waves.csv was replaced and plan.json not,
    leaving a 40-app plan next to a 60-app report."""
    (tmp_path / "waves.csv").write_text("old waves\n")
    (tmp_path / "plan.json").write_text("old report\n")
    real_replace = os.replace

    def fail_on_plan_json(src: str | Path, dst: str | Path) -> None:
        if Path(dst) == tmp_path / "plan.json" and ".migplan-" in str(src):
            raise PermissionError(1, "Operation not permitted")
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", fail_on_plan_json)
    writers = {"waves.csv": _text("new waves\n"), "plan.json": _text("new report\n"), "extra.txt": _text("x")}
    with pytest.raises(OSError) as caught:
        write_files_atomically(tmp_path, writers)
    assert caught.value.filename == str(tmp_path / "plan.json")  # not the hidden temporary file
    assert (tmp_path / "waves.csv").read_text() == "old waves\n"
    assert (tmp_path / "plan.json").read_text() == "old report\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plan.json", "waves.csv"]


def test_a_writer_error_names_the_file_in_the_folder(tmp_path: Path) -> None:
    """Disk full named no file at all ("cannot write: No space left on device")."""

    def full(path: Path) -> None:
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError) as caught:
        write_files_atomically(tmp_path, {"plan.json": full})
    assert caught.value.filename == str(tmp_path / "plan.json")
    assert list(tmp_path.iterdir()) == []


def test_a_folder_where_plan_json_goes_is_refused_before_solving(tmp_path: Path) -> None:
    (tmp_path / "plan.json").mkdir()
    (finding,) = out_dir_findings(str(tmp_path), files=("waves.csv", "plan.json"))
    assert "holds plan.json as a folder" in finding.message
    assert out_dir_findings(str(tmp_path)) == []


def _text(content: str) -> Callable[[Path], None]:
    def write(path: Path) -> None:
        path.write_text(content)

    return write


def test_the_closest_plan_is_written_only_beside_a_no_plan_report(
    tmp_path: Path, tiny_inventory: Inventory
) -> None:
    """closest-waves.csv holds the search's nearest plan when it found none; a later report,
    with a plan or without a closest one, removes it, so it is never read as another run's."""
    out = tmp_path / "plan"
    near = Plan((1, 1, 1, 1, 1, 1), 3)
    assert not planfiles.write_no_plan_folder(out, {"feasible": False}, (tiny_inventory, near))
    read, errors = read_waves_csv(out / planfiles.CLOSEST_WAVES_FILE, tiny_inventory)
    assert errors == () and read == near
    write_plan_folder(out, tiny_inventory, TINY_PLAN, {"feasible": True})
    assert sorted(p.name for p in out.iterdir()) == ["plan.json", "waves.csv"]
    planfiles.write_no_plan_folder(out, {"feasible": False}, (tiny_inventory, near))
    planfiles.write_no_plan_folder(out, {"feasible": False})  # proven infeasible: no closest plan
    assert sorted(p.name for p in out.iterdir()) == ["plan.json", "plan.previous.json", "waves.previous.csv"]
