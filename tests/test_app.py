"""The dashboard runs on the bundled demo and shows the planted plan's figures."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parent.parent


def test_dashboard_renders_demo_without_exceptions(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    app = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    app.run()
    assert not app.exception, [e.message for e in app.exception]
    metrics = {m.label: m.value for m in app.metric}
    assert metrics["applications"] == "40"
    assert metrics["feasible"] == "yes"
    assert float(metrics["chatty cost"].replace(",", "")) > 0


def test_dashboard_reports_a_broken_inventory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    (tmp_path / "apps.csv").write_text("app_id,qps\na,-3\n")
    (tmp_path / "dependencies.csv").write_text("caller,callee,qps\n")
    app = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    app.run()
    app.sidebar.text_input[0].set_value(str(tmp_path)).run()
    assert not app.exception
    assert any("errors" in e.value for e in app.error)


def test_plan_waves_runs_the_planner_with_progress_and_shows_its_plan(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The button writes out/<inventory name>/ (not a folder shared by every inventory) and
    the page then shows that plan, with the planner's status from plan.json."""
    monkeypatch.chdir(tmp_path)
    app = AppTest.from_file(str(ROOT / "app.py"), default_timeout=180)
    app.run()
    app.sidebar.text_input[0].set_value(str(ROOT / "datasets" / "demo")).run()
    app.sidebar.slider[0].set_value(5).run()
    app.sidebar.button[0].click().run()
    assert not app.exception, [e.message for e in app.exception]
    assert (tmp_path / "out" / "demo" / "waves.csv").exists()
    assert any("chatty cost" in s.value for s in app.success)
    assert app.sidebar.selectbox[0].value == "out/demo/waves.csv"
    assert any("out/demo/waves.csv: " in c.value and "seed 0" in c.value for c in app.caption)
    assert {m.label: m.value for m in app.metric}["feasible"] == "yes"


def test_a_failed_planner_run_shows_its_reasons(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    inventory = tmp_path / "tight"
    inventory.mkdir()
    (inventory / "apps.csv").write_text("app_id,qps\na,1\nb,1\nc,1\n")
    (inventory / "dependencies.csv").write_text("caller,callee,qps\n")
    (inventory / "scenario.toml").write_text("waves = 2\n[wave_capacity]\napps = 1\n")
    monkeypatch.chdir(tmp_path)
    app = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    app.run()
    app.sidebar.text_input[0].set_value(str(inventory)).run()
    app.sidebar.button[0].click().run()
    assert not app.exception, [e.message for e in app.exception]
    assert any("no feasible plan exists (proven)" in e.value for e in app.error)
    shown = [df.value for df in app.dataframe if "message" in df.value]
    assert any(frame["message"].str.contains("3 apps in total").any() for frame in shown)
    assert not (tmp_path / "out" / "tight" / "waves.csv").exists()


def test_an_uploaded_plan_is_read_by_its_own_name_and_leaves_no_temporary_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Regression (fuzz2): each upload and rerun left /tmp/tmpXXXX.csv behind, and errors
    named that file instead of the upload."""
    monkeypatch.chdir(ROOT)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # where the app's temporary files go
    app = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    app.run()
    app.sidebar.file_uploader[0].set_value(("my-plan.csv", b"app_id,wave\nnot-an-app,1\n", "text/csv")).run()
    assert not app.exception, [e.message for e in app.exception]
    assert any(e.value == "my-plan.csv is not a plan for this inventory" for e in app.error)
    assert not any("No plan yet" in i.value for i in app.info)  # the error says what happened
    planted = (ROOT / "datasets" / "demo" / "planted-waves.csv").read_bytes()
    app.sidebar.file_uploader[0].set_value(("planted.csv", planted, "text/csv")).run()
    assert {m.label: m.value for m in app.metric}["feasible"] == "yes"
    assert list(tmp_path.iterdir()) == []


def test_the_closest_plan_of_a_run_without_one_is_offered_and_marked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run that found no plan left closest-waves.csv: the page offers it, says what it is,
    and shows what it breaks."""
    from migplan.io.inventory import load_inventory
    from migplan.io.planfiles import write_no_plan_folder
    from migplan.model import Plan

    demo = ROOT / "datasets" / "demo"
    inv = load_inventory(demo).inventory
    assert inv is not None
    write_no_plan_folder(tmp_path / "out" / "demo", {"feasible": False}, (inv, Plan((1,) * inv.n, inv.K)))
    monkeypatch.chdir(tmp_path)
    app = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    app.run()
    app.sidebar.text_input[0].set_value(str(demo)).run()
    assert app.sidebar.selectbox[0].options == ["out/demo/closest-waves.csv", str(demo / "planted-waves.csv")]
    assert not app.exception, [e.message for e in app.exception]
    assert any("the planner found no feasible plan" in w.value for w in app.warning)
    assert {m.label: m.value for m in app.metric}["feasible"] == "no"
