"""`migplan validate` and `migplan evaluate` as a user runs them: real processes, exit codes, output."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import BROKEN, TINY, WriteInventory, run_migplan_in_process, run_migplan_process

from migplan.cli.common import file_errors_exit

TINY_PLAN = TINY / "plan" / "waves.csv"
CASES = sorted(p.name for p in BROKEN.iterdir() if p.is_dir())
COMMANDS = ("validate", "evaluate")

Runs = dict[tuple[str, str], subprocess.CompletedProcess[str]]


def _args(case: str, command: str) -> list[str | Path]:
    folder = BROKEN / case
    return [command, folder] if command == "validate" else [command, folder, "--plan", TINY_PLAN]


@pytest.fixture(scope="module")
def corpus_runs() -> Runs:
    """Every broken inventory through both commands, in one separate Python process.

    ``tests/cli_batch.py`` says why one process runs them all; ``test_broken_inventory_as_
    its_own_process`` checks a few cases the slow way, one process per command line.
    """
    jobs = [(case, command) for case in CASES for command in COMMANDS]
    commands = [[str(a) for a in _args(*job)] for job in jobs]
    done = subprocess.run(
        [sys.executable, str(Path(__file__).parent / "cli_batch.py")],
        input=json.dumps(commands),
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    results = [
        subprocess.CompletedProcess(cmd, r["code"], r["stdout"], r["stderr"])
        for cmd, r in zip(commands, json.loads(done.stdout), strict=True)
    ]
    return dict(zip(jobs, results, strict=True))


def test_the_corpus_covers_at_least_twenty_faults() -> None:
    assert len(CASES) >= 20
    assert all((BROKEN / case / "expected.txt").read_text(encoding="utf-8").strip() for case in CASES)


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("case", CASES)
def test_broken_inventory_is_reported_with_its_location(corpus_runs: Runs, case: str, command: str) -> None:
    result = corpus_runs[(case, command)]
    output = result.stdout + result.stderr
    assert result.returncode == 2, output
    assert "Traceback" not in output
    for expected in (BROKEN / case / "expected.txt").read_text(encoding="utf-8").splitlines():
        if expected.strip():
            assert expected in output, f"{expected!r} not in:\n{output}"


@pytest.mark.parametrize(("case", "command"), [("bad-number", "evaluate"), ("non-utf8", "validate")])
def test_broken_inventory_as_its_own_process(corpus_runs: Runs, case: str, command: str) -> None:
    """The batch driver and a real one-off process give the same exit code and output."""
    alone = run_migplan_process(*_args(case, command))
    batched = corpus_runs[(case, command)]
    assert (alone.returncode, alone.stdout, alone.stderr) == (2, batched.stdout, batched.stderr)


def test_validate_tiny(tiny_dir: Path) -> None:
    result = run_migplan_process("validate", tiny_dir)
    assert result.returncode == 0, result.stdout + result.stderr
    assert (
        result.stdout.strip().splitlines()[-1] == "6 apps, 7 dependencies, 3 waves: 0 error(s), 0 warning(s)"
    )
    assert result.stderr == ""


def test_validate_prints_warnings_but_succeeds(write_inventory: WriteInventory) -> None:
    folder = write_inventory(
        "app_id,qps,colour\nweb,1,red\napi,1,blue\n", "caller,callee,qps\nweb,api,1\nweb,api,2\n"
    )
    result = run_migplan_in_process("validate", folder, "--json")
    assert result.returncode == 0
    payload = json.loads(result.stdout)
    assert payload["valid"] is True and payload["inventory"] == {"apps": 2, "dependencies": 1, "waves": 12}
    assert {f["code"] for f in payload["findings"]} >= {"unknown-column", "duplicate-dependency"}


def test_validate_exits_1_when_the_rules_leave_no_plan(write_inventory: WriteInventory) -> None:
    """Readable files whose before rules form a cycle: plan proves it at once, so validate
    says it too (it passed them with exit 0 before)."""
    rules = '[[constraint]]\nkind = "before"\napps = ["web", "api"]\n'
    rules += '[[constraint]]\nkind = "before"\napps = ["api", "web"]\n'
    folder = write_inventory(
        "app_id,qps\nweb,1\napi,1\n", "caller,callee,qps\nweb,api,1\n", f"waves = 3\n{rules}"
    )
    result = run_migplan_in_process("validate", folder)
    assert result.returncode == 1, result.stdout
    assert "the before rules form a cycle" in result.stdout
    assert "0 error(s)" in result.stdout and "no plan can exist (1 reason(s) above)" in result.stdout
    payload = json.loads(run_migplan_in_process("validate", folder, "--json").stdout)
    assert payload["valid"] is True and payload["plan_can_exist"] is False
    fine = write_inventory("app_id,qps\nweb,1\napi,1\n", "caller,callee,qps\nweb,api,1\n", "waves = 3\n")
    assert json.loads(run_migplan_in_process("validate", fine, "--json").stdout)["plan_can_exist"] is True


def test_validate_finds_a_block_the_budgets_tie_together_too_big_for_any_wave(
    write_inventory: WriteInventory,
) -> None:
    """a's budget (20 ms) is below one round trip (30 ms), so a, b and c share a wave in every
    plan, and a wave holds 1 app: plan proved it at once, validate passed it with exit 0."""
    folder = write_inventory(
        "app_id,qps,latency_budget_ms\na,10,20\nb,10,\nc,5,\n",
        "caller,callee,qps\na,b,10\nb,c,5\n",
        "waves = 3\n[wave_capacity]\napps = 1\n",
    )
    result = run_migplan_in_process("validate", folder)
    assert result.returncode == 1, result.stdout
    assert "a, b, c (3 apps) must move in one wave" in result.stdout
    roomy = write_inventory(
        "app_id,qps,latency_budget_ms\na,10,20\nb,10,\nc,5,\n",
        "caller,callee,qps\na,b,10\nb,c,5\n",
        "waves = 3\n[wave_capacity]\napps = 3\n",
    )
    assert run_migplan_in_process("validate", roomy).returncode == 0


def test_many_errors_are_capped_on_screen_but_counted(write_inventory: WriteInventory) -> None:
    apps = "app_id,qps\n" + "".join(f"a{i},x\n" for i in range(250))
    result = run_migplan_in_process("validate", write_inventory(apps))
    assert result.returncode == 2
    assert result.stdout.count("is not a number") == 200
    assert "more finding(s) not shown (50 error(s))" in result.stdout
    assert "250 error(s)" in result.stdout


def test_evaluate_feasible_plan_prints_tables(tiny_dir: Path) -> None:
    result = run_migplan_process("evaluate", tiny_dir, "--plan", TINY_PLAN)
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "1              1,500.0      0.018          90.0                 0" in out
    assert "2              1,000.0      0.064          30.0                 0" in out
    assert "chatty cost: 2,500.0" in out and "verdict: FEASIBLE" in out


def test_evaluate_json_is_the_plan_report(tiny_dir: Path) -> None:
    result = run_migplan_in_process("evaluate", tiny_dir, "--plan", TINY_PLAN, "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["feasible"] is True and report["chatty_cost"] == 2500.0
    assert [p["cross_site_qps"] for p in report["periods"]] == [1500.0, 1000.0]
    assert [w["apps"] for w in report["waves"]] == [2, 3, 1]
    assert report["scenario"]["wave_capacity"]["apps"] == [2.0, 3.0, 3.0]


def test_evaluate_infeasible_plan_exits_1(tiny_dir: Path, tmp_path: Path) -> None:
    plan = tmp_path / "waves.csv"
    plan.write_text(
        "app_id,wave\n" + "".join(f"{a},1\n" for a in ("web", "api", "user", "order", "mysql", "redis"))
    )
    result = run_migplan_process("evaluate", tiny_dir, "--plan", plan)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "verdict: INFEASIBLE" in result.stdout and "capacity" in result.stdout
    assert "Traceback" not in result.stderr


def test_evaluate_bad_plan_file_exits_2_with_rows(tiny_dir: Path, tmp_path: Path) -> None:
    plan = tmp_path / "waves.csv"
    plan.write_text("app_id,wave\nweb,1\nghost,2\nweb,9\n")
    result = run_migplan_in_process("evaluate", tiny_dir, "--plan", plan)
    assert result.returncode == 2
    assert "waves.csv:3:app_id: error: app_id 'ghost' is not in the inventory" in result.stderr
    assert "waves.csv:4:wave" in result.stderr and "5 app(s) of the inventory have no wave" in result.stderr


@pytest.mark.parametrize("plan_arg", ["folder", "missing"])
def test_evaluate_plan_path_problems_exit_2(tiny_dir: Path, tmp_path: Path, plan_arg: str) -> None:
    plan = tmp_path if plan_arg == "folder" else tmp_path / "nope.csv"
    result = run_migplan_in_process("evaluate", tiny_dir, "--plan", plan)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert ("is a folder" if plan_arg == "folder" else "not found") in result.stderr


def test_inventory_argument_that_is_a_file(tmp_path: Path) -> None:
    (tmp_path / "x.csv").write_text("a")
    result = run_migplan_in_process("validate", tmp_path / "x.csv")
    assert result.returncode == 2 and "is a file, not a folder" in result.stdout


def test_waves_override_is_rechecked(tiny_dir: Path) -> None:
    result = run_migplan_in_process("evaluate", tiny_dir, "--plan", TINY_PLAN, "--waves", "2")
    assert result.returncode == 2
    assert "wave_capacity.apps lists 3 numbers but --waves asks for 2 waves" in result.stderr
    # the finding points at the list's own line of scenario.toml
    lines = (tiny_dir / "scenario.toml").read_text().splitlines()
    row = next(i for i, line in enumerate(lines, start=1) if line.replace(" ", "").startswith("apps="))
    assert f"scenario.toml:{row}:wave_capacity.apps: error" in result.stderr


def test_unreadable_inventory_file(write_inventory: WriteInventory) -> None:
    folder = write_inventory(TINY.joinpath("apps.csv").read_text(), deps=None)
    (folder / "dependencies.csv").mkdir()
    result = run_migplan_in_process("validate", folder)
    assert result.returncode == 2 and "is a folder, not a file" in result.stdout


def test_file_errors_exit_turns_an_os_error_into_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info, file_errors_exit("write"):
        raise PermissionError(13, "Permission denied", "/x/plan.json")
    assert exit_info.value.code == 2
    assert capsys.readouterr().err == "error: cannot write /x/plan.json: Permission denied\n"


def test_evaluate_names_the_options_the_plan_was_made_with(tiny_dir: Path, tmp_path: Path) -> None:
    """Regression (fuzz2): a plan made with --rtt-ms 5 was judged at the inventory's 30 ms
    without a word about the plan.json beside it."""
    plan = tmp_path / "waves.csv"
    plan.write_text(TINY_PLAN.read_text())
    (tmp_path / "plan.json").write_text(
        json.dumps({"scenario": {"waves": 3, "rtt_ms": 5.0, "risk_weight": 1}})
    )
    result = run_migplan_in_process("evaluate", tiny_dir, "--plan", plan)
    assert "made with rtt_ms = 5, the inventory has 30: add --rtt-ms 5" in result.stderr
    assert "waves = " not in result.stderr  # the same waves: nothing to say
    matched = run_migplan_in_process("evaluate", tiny_dir, "--plan", plan, "--rtt-ms", "5")
    assert "made with" not in matched.stderr
    (tmp_path / "plan.json").write_text("not json")
    assert "made with" not in run_migplan_in_process("evaluate", tiny_dir, "--plan", plan).stderr


def test_an_empty_inventory_path_is_refused_not_read_as_the_current_folder() -> None:
    """Regression (hostile-input audit): ``migplan validate ""`` checked the current folder."""
    done = run_migplan_in_process("validate", "")
    assert done.returncode == 2 and "is empty" in done.stderr


def test_validate_past_the_latency_model_limit_warns_instead_of_crashing(
    write_inventory: WriteInventory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Regression: ``validate`` on 50,000 generated apps raised LatencyModelTooLargeError (a
    traceback) from its latency checks, which need every coefficient; ``plan`` named the limit.
    Here the limit is lowered so that a pinned split call reaches it."""
    from migplan import metrics

    folder = write_inventory(
        "app_id,qps,pinned_wave\nweb,10,1\napi,10,2\n",
        "caller,callee,qps,sync\nweb,api,10,true\n",
        "waves = 2\n",
    )
    monkeypatch.setattr(metrics, "MAX_COEFFICIENTS", 0)
    result = run_migplan_in_process("validate", folder)
    assert result.returncode == 0, result.stdout
    assert "warning: the latency checks were skipped: the latency model needs more than 0" in result.stdout
    assert "`migplan plan` stops there too" in result.stdout
    assert "0 error(s), 1 warning(s)" in result.stdout
    result = run_migplan_in_process("validate", folder, "--json")
    payload = json.loads(result.stdout)
    assert payload["plan_can_exist"] is True
    assert [f["code"] for f in payload["findings"]] == ["latency-model-too-large"]
