"""The `prometheus` CLI in-process: exit codes, one-line errors without tracebacks, no
password in any output, and the data formats of `runs list` and `runs show`."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from datetime import date
from typing import Any

import psycopg
import pytest
import typer
from sqlalchemy import Engine

from prometheus.cli.app import app
from prometheus.cli.runs import RUN_COLUMNS
from prometheus.config import libpq_url
from prometheus.pipeline.phases import Phase
from prometheus.pipeline.state import ensure_run, find_run, get_or_create_run, update_phase
from tests.support.cli_runner import Result, invoke
from tests.support.market_data import seed_region

DAY = date(2026, 11, 24)
TARGET = ["--as-of", "2026-11-24", "--region", "US"]
SECRET_URL = "postgresql://u:secret@127.0.0.1:1/x"


def assert_one_line_error(result: Result, code: int, message: str) -> None:
    assert result.code == code, result
    assert result.out == ""
    assert len(result.err_lines) == 1, result.err
    assert result.err_lines[0].startswith("prometheus: error: ")
    assert message in result.err_lines[0]
    assert "Traceback" not in result.err


def event_count(engine: Engine) -> int:
    with engine.connect() as conn:
        count: int = conn.exec_driver_sql("SELECT count(*) FROM engine_run_events").scalar_one()
        return count


@pytest.fixture
def plugin_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The CLI reads its settings from the environment: the failing test tasks (which pick
    their behaviour by region, so the region map names those regions), no backoff."""
    monkeypatch.setenv("PROMETHEUS_PHASE_TASKS", "tests.support.task_modules")
    monkeypatch.setenv("PROMETHEUS_REGION_EXCHANGES", "US=XNYS,RAISES=XNYS")
    monkeypatch.setenv("PROMETHEUS_RETRY_BASE_SECONDS", "0")
    yield


# --- bad input: exit 2, one line, nothing written --------------------------------------------


def test_a_malformed_date_exits_2_and_writes_nothing(
    engine: Engine, db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    for bad in ("2026-13-01", "2026-02-30", "24/11/2026", "2026-11-24T00:00", "tomorrow", ""):
        result = invoke(capsys, db_url, "runs", "ensure", "--as-of", bad, "--region", "US")
        assert_one_line_error(result, 2, f"invalid date {bad!r}")
    assert event_count(engine) == 0


def test_an_unknown_phase_exits_2_and_writes_nothing(
    engine: Engine, db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    get_or_create_run(engine, DAY, "US")
    before = event_count(engine)
    for args in (
        ["runs", "list", "--phase", "DONE"],
        ["runs", "set-phase", *TARGET, "--phase", "RUNNING", "--force", "--reason", "x"],
    ):
        assert_one_line_error(invoke(capsys, db_url, *args), 2, "unknown phase")
    assert event_count(engine) == before


def test_a_bad_region_and_an_unknown_option_exit_2(
    db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    result = invoke(capsys, db_url, "runs", "ensure", "--as-of", "2026-11-24", "--region", "U S")
    assert_one_line_error(result, 2, "invalid region")
    assert_one_line_error(invoke(capsys, db_url, "runs", "list", "--bogus"), 2, "--bogus")
    assert_one_line_error(invoke(capsys, db_url, "runs", "list", "--format", "xml"), 2, "xml")
    result = invoke(capsys, db_url, "--log-level", "loud", "runs", "list")
    assert_one_line_error(result, 2, "invalid log level 'loud'")


def test_an_override_racing_another_writer_is_refused_and_writes_nothing(
    engine: Engine, db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """`runs cancel` while another writer holds the run (and is failing it): the override
    does not queue behind the lock and then write over that change; it says the run is
    busy (exit 1, one line) and leaves the other writer's change the only one."""
    run = ensure_run(engine, DAY, "US", data_ready=True, actor="setup")
    with psycopg.connect(libpq_url(db_url), autocommit=True) as other, other.transaction():
        other.execute("UPDATE engine_runs SET phase = 'FAILED' WHERE run_id = %s", (run.run_id,))
        result = invoke(capsys, db_url, "runs", "cancel", *TARGET, "--reason", "late")
    assert_one_line_error(result, 1, "being advanced right now")
    events = [e for e in _events(engine, run.run_id) if e["to_phase"] == "FAILED"]
    assert [e["actor"] for e in events] == ["db"]  # only the other writer's change


def _events(engine: Engine, run_id: int) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        rows = conn.exec_driver_sql(
            "SELECT to_phase, actor FROM engine_run_events WHERE run_id = %s ORDER BY event_id",
            (run_id,),
        )
        return [dict(r._mapping) for r in rows]


def test_a_missing_run_exits_2(db_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    for command in ("show", "advance"):
        result = invoke(capsys, db_url, "runs", command, *TARGET)
        assert_one_line_error(result, 2, "no run for 2026-11-24 US")


def test_an_unupgraded_database_exits_1(
    empty_db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    result = invoke(capsys, empty_db_url, "runs", "ensure", *TARGET)
    assert_one_line_error(result, 1, "run `prometheus db upgrade`")


# --- the password never shows -----------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ["runs", "list"],
        ["runs", "ensure", *TARGET],
        ["db", "status"],
        ["db", "upgrade"],
    ],
)
def test_an_unreachable_database_exits_1_without_the_password(
    capsys: pytest.CaptureFixture[str], args: list[str]
) -> None:
    result = invoke(capsys, SECRET_URL, "--log-level", "DEBUG", *args)
    assert_one_line_error(result, 1, "database error")
    assert "secret" not in result.out + result.err
    assert "127.0.0.1" in result.err  # still says where it tried


def test_a_non_postgres_url_exits_2_without_the_password(
    capsys: pytest.CaptureFixture[str],
) -> None:
    result = invoke(capsys, "mysql://u:secret@127.0.0.1:1/x", "runs", "list")
    assert_one_line_error(result, 2, "PostgreSQL")
    assert "secret" not in result.out + result.err


# --- happy paths and their exit codes -----------------------------------------------------------


def test_ensure_and_advance(
    engine: Engine, db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    seed_region(engine, "US", DAY)
    result = invoke(capsys, db_url, "runs", "ensure", *TARGET)
    assert result.code == 0
    assert result.out == "run 1 2026-11-24 US: WAITING_FOR_DATA\n"
    assert invoke(capsys, db_url, "runs", "advance", *TARGET).code == 0  # waits: not a failure
    assert invoke(capsys, db_url, "runs", "ensure", *TARGET, "--data-ready").code == 0
    result = invoke(capsys, db_url, "runs", "advance", *TARGET)
    assert result.code == 0, result.err
    assert result.out == "run 1 2026-11-24 US: advanced, now SIGNALS_DONE\n"
    run = find_run(engine, DAY, "US")
    assert run is not None and run.phase is Phase.SIGNALS_DONE
    actors = {e["actor"] for e in _events(engine, run.run_id)}
    assert all(a.startswith("cli:") for a in actors), actors


@pytest.mark.usefixtures("plugin_env")
def test_a_failed_attempt_exits_1(
    engine: Engine, db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    ensure_run(engine, DAY, "RAISES", data_ready=True, actor="setup")
    target = ["--as-of", "2026-11-24", "--region", "RAISES"]
    result = invoke(capsys, db_url, "runs", "advance", *target)
    assert result.code == 1
    assert "TaskFailure: signals failed on attempt 1" in result.out
    result = invoke(capsys, db_url, "runs", "advance-all")
    assert result.code == 1
    assert result.out == "advanced 1 run(s), 1 failed attempt(s)\n"
    run = find_run(engine, DAY, "RAISES")
    assert run is not None and run.attempts == 2


def test_advance_all_exits_0_when_every_step_succeeds(
    engine: Engine, db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    for region in ("US", "EU"):
        seed_region(engine, region, DAY)
        ensure_run(engine, DAY, region, data_ready=True, actor="setup")
    get_or_create_run(engine, DAY, "JP")  # waiting: not due, not stepped
    result = invoke(capsys, db_url, "runs", "advance-all")
    assert result.code == 0, result.err
    assert result.out == "advanced 2 run(s), 0 failed attempt(s)\n"


def _seed_list(engine: Engine) -> None:
    get_or_create_run(engine, DAY, "US")
    ensure_run(engine, DAY, "EU", data_ready=True, actor="setup")
    run = get_or_create_run(engine, date(2026, 11, 23), "US")
    update_phase(engine, run, Phase.FAILED, actor="setup", detail={"reason": 'a, "b"'})


def test_runs_list_as_json(engine: Engine, db_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    _seed_list(engine)
    result = invoke(capsys, db_url, "runs", "list", "--format", "json")
    assert result.code == 0, result.err
    rows = json.loads(result.out)
    assert [list(r) for r in rows] == [RUN_COLUMNS] * 3
    assert [(r["as_of_date"], r["region"], r["phase"]) for r in rows] == [
        ("2026-11-23", "US", "FAILED"),
        ("2026-11-24", "EU", "DATA_READY"),
        ("2026-11-24", "US", "WAITING_FOR_DATA"),
    ]
    assert all(isinstance(r["run_id"], int) for r in rows)

    result = invoke(capsys, db_url, "runs", "list", "--format", "json", "--region", "us")
    assert [r["region"] for r in json.loads(result.out)] == ["US", "US"]
    result = invoke(capsys, db_url, "runs", "list", "--format", "json", "--phase", "failed")
    assert [r["phase"] for r in json.loads(result.out)] == ["FAILED"]


def test_runs_list_as_csv(engine: Engine, db_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    _seed_list(engine)
    result = invoke(capsys, db_url, "runs", "list", "--format", "csv")
    assert result.code == 0, result.err
    reader = csv.DictReader(io.StringIO(result.out))
    assert reader.fieldnames == RUN_COLUMNS
    rows = list(reader)
    assert [(r["as_of_date"], r["region"], r["phase"]) for r in rows] == [
        ("2026-11-23", "US", "FAILED"),
        ("2026-11-24", "EU", "DATA_READY"),
        ("2026-11-24", "US", "WAITING_FOR_DATA"),
    ]
    assert rows[0]["next_attempt_at"] == ""


def test_runs_list_as_a_table(
    engine: Engine, db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    _seed_list(engine)
    result = invoke(capsys, db_url, "runs", "list")
    assert result.code == 0
    header, *rows = result.out.splitlines()
    columns = "id as_of region phase tries next changed last_error"
    assert header.split() == columns.split()
    assert [row.split()[1:4] for row in rows] == [
        ["2026-11-23", "US", "FAILED"],
        ["2026-11-24", "EU", "DATA_READY"],
        ["2026-11-24", "US", "WAITING_FOR_DATA"],
    ]


def test_runs_show_as_json_includes_the_events(
    engine: Engine, db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    run = ensure_run(engine, DAY, "US", data_ready=True, actor="setup")
    update_phase(engine, run, Phase.FAILED, actor="ops", detail={"reason": "bad data"})
    result = invoke(capsys, db_url, "runs", "show", *TARGET, "--format", "json")
    assert result.code == 0, result.err
    shown = json.loads(result.out)
    assert (shown["run_id"], shown["phase"], shown["as_of_date"]) == (
        run.run_id,
        "FAILED",
        "2026-11-24",
    )
    assert [(e["from_phase"], e["to_phase"], e["actor"]) for e in shown["events"]] == [
        (None, "WAITING_FOR_DATA", "setup"),
        ("WAITING_FOR_DATA", "DATA_READY", "setup"),
        ("DATA_READY", "FAILED", "ops"),
    ]
    assert shown["events"][-1]["detail"] == {"reason": "bad data"}


def test_runs_show_as_csv_gives_the_run_then_its_events(
    engine: Engine, db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    ensure_run(engine, DAY, "US", data_ready=True, actor="setup")
    result = invoke(capsys, db_url, "runs", "show", *TARGET, "--format", "csv")
    assert result.code == 0
    lines = result.out.splitlines()
    assert lines[0] == ",".join(RUN_COLUMNS)
    assert lines[2].startswith("event_id,at,kind")
    assert len(lines) == 2 + 1 + 2  # run header and row, events header and two events


def _commands(command: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    """Every command path in the tree (typer's own click objects: groups have .commands)."""
    yield path
    for name, sub in getattr(command, "commands", {}).items():
        yield from _commands(sub, (*path, name))


def test_every_command_has_help(capsys: pytest.CaptureFixture[str]) -> None:
    commands = list(_commands(typer.main.get_command(app)))
    assert ("runs", "set-phase") in commands and ("db", "upgrade") in commands
    for path in commands:
        result = invoke(capsys, SECRET_URL, *path, "--help")
        assert result.code == 0, (path, result.err)
        assert "Usage" in result.out, path


@pytest.mark.usefixtures("plugin_env")
def test_tables_fit_columns_and_stay_whole_in_a_pipe(
    engine: Engine, db_url: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`COLUMNS` decides the width (a terminal's own when stdout is one); a pipe or file
    without it gets every value whole, on one line per row."""
    ensure_run(engine, DAY, "RAISES", data_ready=True, actor="setup")
    target = ["--as-of", "2026-11-24", "--region", "RAISES"]
    assert invoke(capsys, db_url, "runs", "advance", *target).code == 1  # last_error set
    error = "TaskFailure: signals failed on attempt 1"

    monkeypatch.delenv("COLUMNS", raising=False)
    piped = invoke(capsys, db_url, "runs", "list").out.splitlines()
    assert piped[-1].endswith(error) and len(piped[-1]) > 80
    for columns in (80, 100):
        monkeypatch.setenv("COLUMNS", str(columns))
        for args in (["runs", "list"], ["runs", "show", *target]):
            lines = invoke(capsys, db_url, *args).out.splitlines()
            assert max(len(line) for line in lines) <= columns, (args, lines)
    shown = invoke(capsys, db_url, "runs", "show", *target).out
    assert f"last_error        {error}" in shown  # whole in `show`, whatever the width
