"""The dashboard runs on the bundled demo and shows the planted plan's figures."""

from __future__ import annotations

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
