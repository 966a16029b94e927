"""Shared fixtures: bundled test inventories, writing small inventories, running the real CLI."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from migplan.io.inventory import load_inventory
from migplan.model import App, Inventory, Rule
from migplan.solve.blocks import Blocks
from migplan.solve.cpsat import Problem
from migplan.solve.pipeline import block_problem

DATA = Path(__file__).parent / "data"
TINY = DATA / "tiny"
BROKEN = DATA / "broken"

WriteInventory = Callable[..., Path]
RunMigplan = Callable[..., subprocess.CompletedProcess[str]]


def random_apps(
    rng: np.random.Generator, n: int, K: int, qps_high: int, budgets: list[float], group_share: float = 0.0
) -> list[App]:
    """Apps a0..a{n-1}: qps below ``qps_high``, a criticality, a budget from ``budgets``, a pin
    with probability 0.1 and, with ``group_share``, the group "g" (drawn only when positive)."""
    return [
        App(
            f"a{i}",
            float(rng.integers(1, qps_high)),
            criticality=int(rng.integers(1, 6)),
            latency_budget_ms=float(rng.choice(budgets)),
            pinned_wave=int(rng.integers(1, K + 1)) if rng.random() < 0.1 else None,
            group="g" if group_share > 0 and rng.random() < group_share else None,
        )
        for i in range(n)
    ]


def random_rules(rng: np.random.Generator, n: int) -> tuple[Rule, ...]:
    """A ``before`` and an ``apart`` rule between two of apps a0..a{n-1}, each with probability 0.3."""
    rules: list[Rule] = []
    if rng.random() < 0.3:
        rules.append(Rule("before", tuple(f"a{i}" for i in rng.choice(n, 2, replace=False))))
    if rng.random() < 0.3:
        rules.append(Rule("apart", tuple(f"a{i}" for i in rng.choice(n, 2, replace=False))))
    return tuple(rules)


def planner_problem(inv: Inventory, risk_weight: float = 1.0) -> tuple[Blocks, Problem]:
    """The exact blocks and block problem the planner builds for ``inv`` (pipeline.plan's first stage)."""
    problem = block_problem(inv, risk_weight)[0]  # not narrowed: only estates of 1,000+ blocks are
    return problem.blocks, problem


@pytest.fixture(scope="session")
def tiny_dir() -> Path:
    """6 apps, 7 dependencies, 3 waves; see tests/data/tiny/README.md for the hand-computed plan."""
    return TINY


@pytest.fixture(scope="session")
def tiny_inventory() -> Inventory:
    result = load_inventory(TINY)
    assert result.inventory is not None, [f.render() for f in result.findings]
    return result.inventory


@pytest.fixture
def write_inventory(tmp_path: Path) -> WriteInventory:
    """``write_inventory(apps_csv, deps_csv, scenario_toml=None, name="inv")`` -> folder.

    Texts are dedented and stripped of a leading newline, so they can be written inline.
    Pass ``None`` for a file to leave it out; bytes are written as they are.
    """

    def write(
        apps: str | bytes | None,
        deps: str | bytes | None = "caller,callee,qps\n",
        scenario: str | bytes | None = None,
        name: str = "inv",
    ) -> Path:
        folder = tmp_path / name
        folder.mkdir(parents=True, exist_ok=True)
        for file, content in (("apps.csv", apps), ("dependencies.csv", deps), ("scenario.toml", scenario)):
            if content is None:
                continue
            if isinstance(content, bytes):
                (folder / file).write_bytes(content)
            else:
                (folder / file).write_text(textwrap.dedent(content).lstrip("\n"), encoding="utf-8")
        return folder

    return write


def run_migplan_process(*args: str | Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """The command line as a user runs it: a separate Python process, output captured as text."""
    return subprocess.run(
        [sys.executable, "-m", "migplan", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.fixture
def run_migplan() -> RunMigplan:
    return run_migplan_process


def run_migplan_in_process(*args: str | Path) -> subprocess.CompletedProcess[str]:
    """The CLI through click's test runner (fast); an escaping exception fails the test."""
    from click.testing import CliRunner

    from migplan.cli import main

    result = CliRunner().invoke(main, [str(a) for a in args], prog_name="migplan")
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return subprocess.CompletedProcess(list(map(str, args)), result.exit_code, result.stdout, result.stderr)


@pytest.fixture
def migplan_cli() -> RunMigplan:
    """In-process CLI runner with the same result shape as ``run_migplan``."""
    return run_migplan_in_process
