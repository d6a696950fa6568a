"""The seed's one-shot managers, as cron runs them: flags, exit codes, CSV, a real process."""

from __future__ import annotations

import csv
import io
import os
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import Engine

from prometheus.pipeline.phases import Phase
from prometheus.pipeline.state import find_run, run_events
from prometheus.scripts import run_engine_state, show_engine_runs
from tests.support.cli_runner import Result, invoke_main
from tests.support.market_data import instrument_ids, seed_instruments

DAY = date(2026, 11, 24)
TARGET = ["--as-of", "2026-11-24", "--region", "US"]


@pytest.fixture
def seeded(engine: Engine) -> Engine:
    with engine.begin() as conn:
        seed_instruments(conn, "US", instrument_ids("US", 12), DAY)
    return engine


def manage(capsys: pytest.CaptureFixture[str], db_url: str, *args: str) -> tuple[int, str, str]:
    result = invoke_main(capsys, run_engine_state.main, ["--database-url", db_url, *args])
    return result.code, result.out, result.err


def show(capsys: pytest.CaptureFixture[str], db_url: str, *args: str) -> Result:
    return invoke_main(capsys, show_engine_runs.main, ["--database-url", db_url, *args])


def test_ensure_then_advance_all_three_times_completes_the_run(
    seeded: Engine, db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = manage(capsys, db_url, *TARGET, "--ensure", "--data-ready")
    assert code == 0, err
    for expected in (Phase.SIGNALS_DONE, Phase.UNIVERSES_DONE, Phase.COMPLETED):
        code, _, err = manage(capsys, db_url, "--advance-all")
        assert code == 0, err
        assert f"now {expected}" in err  # each run's step, on stderr
        run = find_run(seeded, DAY, "US")
        assert run is not None and run.phase is expected

    code, out, _ = manage(capsys, db_url, "--advance-all")  # nothing left to do
    assert code == 0
    assert out == "advanced 0 run(s), 0 failed attempt(s)\n"

    result = show(capsys, db_url)
    assert result.code == 0
    rows = list(csv.DictReader(io.StringIO(result.out)))
    assert [(r["as_of_date"], r["region"], r["phase"]) for r in rows] == [
        ("2026-11-24", "US", "COMPLETED")
    ]


def test_ensure_is_safe_to_repeat(
    engine: Engine, db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    for _ in range(3):
        code, _, err = manage(capsys, db_url, *TARGET, "--ensure", "--data-ready")
        assert code == 0, err
    run = find_run(engine, DAY, "US")
    assert run is not None and run.phase is Phase.DATA_READY
    assert len(run_events(engine, run.run_id)) == 2  # created once, made ready once


def test_show_and_advance_one_run(
    seeded: Engine, db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    manage(capsys, db_url, *TARGET, "--ensure", "--data-ready")
    code, out, _ = manage(capsys, db_url, *TARGET)
    assert code == 0
    assert "DATA_READY" in out
    code, _, err = manage(capsys, db_url, *TARGET, "--ensure", "--advance")
    assert code == 0, err
    run = find_run(seeded, DAY, "US")
    assert run is not None and run.phase is Phase.SIGNALS_DONE


def test_show_engine_runs_csv_parses_with_the_csv_module(
    engine: Engine, db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    manage(capsys, db_url, *TARGET, "--ensure")
    manage(capsys, db_url, "--as-of", "2026-11-23", "--region", "EU", "--ensure", "--data-ready")
    result = show(capsys, db_url)
    assert result.code == 0
    assert result.err == ""
    reader = csv.DictReader(io.StringIO(result.out))
    rows = list(reader)
    assert reader.fieldnames is not None and "phase" in reader.fieldnames
    assert [(r["as_of_date"], r["region"], r["phase"], r["attempts"]) for r in rows] == [
        ("2026-11-23", "EU", "DATA_READY", "0"),
        ("2026-11-24", "US", "WAITING_FOR_DATA", "0"),
    ]
    assert all(int(r["run_id"]) > 0 for r in rows)

    result = show(capsys, db_url, "--region", "EU")
    assert result.code == 0
    rows = list(csv.DictReader(io.StringIO(result.out)))
    assert [r["region"] for r in rows] == ["EU"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--bogus"], "unrecognized arguments: --bogus"),
        ([], "give --as-of and --region, or --advance-all"),
        (["--as-of", "2026-11-24"], "give --as-of and --region"),
        (["--advance-all", "--region", "US"], "--advance-all takes no other run flags"),
        ([*TARGET, "--data-ready"], "--data-ready goes with --ensure"),
    ],
)
def test_bad_flags_exit_2_with_one_line(
    capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    with pytest.raises(SystemExit) as caught:
        run_engine_state.main(args)
    assert caught.value.code == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert len(err.strip().splitlines()) == 1, err
    assert message in err
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--as-of", "2026-02-30", "--region", "US", "--ensure"], "invalid date"),
        (["--as-of", "2026-11-24", "--region", "US"], "no run for 2026-11-24 US"),
    ],
)
def test_bad_values_exit_2_with_one_line(
    db_url: str, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    code, out, err = manage(capsys, db_url, *args)
    assert code == 2
    assert out == ""
    assert len(err.strip().splitlines()) == 1, err
    assert message in err


def test_show_engine_runs_bad_flags_exit_2(db_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    for args, message in ((["--bogus"], "--bogus"), (["--phase", "DONE"], "unknown phase")):
        result = show(capsys, db_url, *args)
        assert result.code == 2
        assert result.out == ""
        assert len(result.err_lines) == 1, result.err
        assert message in result.err


def test_run_engine_state_as_a_real_process(engine: Engine, db_url: str, tmp_path: Path) -> None:
    """As cron runs it: a fresh interpreter, an environment with nothing of ours but the URL."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROMETHEUS_")}
    env["PROMETHEUS_DATABASE_URL"] = db_url
    command = [sys.executable, "-m", "prometheus.scripts.run_engine_state", *TARGET]
    done = subprocess.run(
        [*command, "--ensure", "--data-ready"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    run = find_run(engine, DAY, "US")
    assert run is not None and run.phase is Phase.DATA_READY
    assert all(e.actor.startswith("cli:") for e in run_events(engine, run.run_id))

    bad = subprocess.run(
        [*command, "--advance-all"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines() == [
        "run_engine_state: error: --advance-all takes no other run flags"
    ]


def test_show_engine_runs_takes_the_url_in_any_position_and_form(
    engine: Engine, db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    manage(capsys, db_url, *TARGET, "--ensure")
    for args in (
        [f"--database-url={db_url}"],
        ["--region", "US", "--database-url", db_url],
        ["--phase", "waiting_for_data", f"--database-url={db_url}"],
    ):
        result = invoke_main(capsys, show_engine_runs.main, args)
        assert result.code == 0, (args, result.err)
        rows = list(csv.DictReader(io.StringIO(result.out)))
        assert [(r["region"], r["phase"]) for r in rows] == [("US", "WAITING_FOR_DATA")]
