"""stdout is for results, stderr for everything else (README, "Command line").

Every command that creates or changes something prints its result on stdout, one line,
or one JSON object with ``--format json``, so that ``X=$(prometheus ...)`` captures it;
hints, per-run details and logs go to stderr. One case per command.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from prometheus.ingestion import require_datasets
from prometheus.pipeline.holds import HoldScope, place_hold
from prometheus.pipeline.phases import Phase
from prometheus.pipeline.state import ensure_run, get_or_create_run, update_phase
from tests.support.cli_runner import invoke
from tests.support.ingestion_data import add_instruments, price_rows, write_prices
from tests.support.market_data import seed_region

DAY = date(2026, 11, 24)
TARGET = ["--as-of", "2026-11-24", "--region", "US"]


def ready_with_prices(engine: Engine, tmp_path: Path) -> None:
    seed_region(engine, "US", DAY)
    ensure_run(engine, DAY, "US", data_ready=True, actor="setup")


def failed_run(engine: Engine, tmp_path: Path) -> None:
    run = ensure_run(engine, DAY, "US", data_ready=True, actor="setup")
    update_phase(engine, run, Phase.FAILED, actor="setup", detail={"error": "boom"})


def waiting_run(engine: Engine, tmp_path: Path) -> None:
    get_or_create_run(engine, DAY, "US")


def price_file(engine: Engine, tmp_path: Path) -> None:
    add_instruments(engine, "US", ["A", "B"])
    require_datasets(engine, "US", ["prices"])
    write_prices(tmp_path / "prices.csv", price_rows(["A", "B"]))


def instrument_file(engine: Engine, tmp_path: Path) -> None:
    (tmp_path / "instruments.csv").write_text("instrument_id,symbol\nA,AAA\nB,BBB\n")


def old_failed_run(engine: Engine, tmp_path: Path) -> None:
    run = get_or_create_run(engine, date(2025, 1, 6), "US")
    update_phase(engine, run, Phase.FAILED, actor="setup", detail={"reason": "old"})


def nothing(engine: Engine, tmp_path: Path) -> None:
    pass


def held_region(engine: Engine, tmp_path: Path) -> None:
    ensure_run(engine, DAY, "US", data_ready=True, actor="setup")
    place_hold(engine, HoldScope("US"), actor="setup", reason="bad data")


@dataclass(frozen=True)
class Case:
    args: list[str]
    setup: Callable[[Engine, Path], None]
    line: str  # the text result, {tmp} for the test's directory
    record: dict[str, Any]  # keys and values the JSON result must have


CASES = {
    "db upgrade": Case(
        ["db", "upgrade"], nothing, "is up to date (0 file(s) applied)", {"applied": []}
    ),
    "runs ensure": Case(
        ["runs", "ensure", *TARGET],
        nothing,
        "2026-11-24 US: WAITING_FOR_DATA",
        {"as_of_date": "2026-11-24", "region": "US", "phase": "WAITING_FOR_DATA"},
    ),
    "runs advance": Case(
        ["runs", "advance", *TARGET],
        ready_with_prices,
        "2026-11-24 US: advanced, now SIGNALS_DONE",
        {"outcome": "advanced", "task_phase": "DATA_READY", "error": None},
    ),
    "runs advance-all": Case(
        ["runs", "advance-all"],
        ready_with_prices,
        "advanced 1 run(s), 0 failed attempt(s)",
        {"runs": 1, "failed_attempts": 0},
    ),
    "runs retry": Case(
        ["runs", "retry", *TARGET, "--reason", "fixed"],
        failed_run,
        "2026-11-24 US: DATA_READY",
        {"phase": "DATA_READY", "attempts": 0},
    ),
    "runs cancel": Case(
        ["runs", "cancel", *TARGET, "--reason", "stop"],
        waiting_run,
        "2026-11-24 US: FAILED",
        {"phase": "FAILED"},
    ),
    "runs set-phase": Case(
        ["runs", "set-phase", *TARGET, "--phase", "COMPLETED", "--force", "--reason", "done"],
        waiting_run,
        "2026-11-24 US: COMPLETED",
        {"phase": "COMPLETED"},
    ),
    "runs purge": Case(
        ["runs", "purge", "--before", "2026-01-01", "--reason", "retention"],
        old_failed_run,
        "purged 1 run(s) and 2 event(s) dated before 2026-01-01 (purge 1)",
        {"runs_purged": 1, "events_purged": 2, "dry_run": False},
    ),
    "runs hold": Case(
        ["runs", "hold", "--region", "US", "--phase", "UNIVERSES_DONE", "--reason", "books"],
        waiting_run,
        "hold 1 on US UNIVERSES_DONE holds 0 active run(s)",
        {"hold_id": 1, "region": "US", "phase": "UNIVERSES_DONE", "created": True},
    ),
    "runs release": Case(
        ["runs", "release", "1", "--reason", "fixed"],
        held_region,
        "released hold 1 on US",
        {"hold_ids": [1]},
    ),
    "backfill": Case(
        ["backfill", "--from", "2026-11-23", "--to", "2026-11-27", "--region", "US"],
        waiting_run,
        "backfill 2026-11-23..2026-11-27 US: 4 session(s), 3 created, 0 reset, 1 left",
        {"sessions": 4, "created": 3, "reset": 0, "left": 1},
    ),
    "ingest prices": Case(
        ["ingest", "prices", *TARGET, "{tmp}/prices.csv"],
        price_file,
        "prices 2026-11-24 US: 2 row(s) loaded, batch COMPLETE (2 row(s)); run 1 is DATA_READY",
        {"dataset": "prices", "status": "COMPLETE", "row_count": 2, "rows_loaded": 2},
    ),
    "ingest instruments": Case(
        ["ingest", "instruments", "--region", "US", "{tmp}/instruments.csv"],
        instrument_file,
        "US: 2 instrument(s) loaded",
        {"region": "US", "instruments_loaded": 2},
    ),
    "datasets require": Case(
        ["datasets", "require", "--region", "US", "prices", "eod"],
        nothing,
        "US requires: eod, prices (2 added)",
        {"region": "US", "requires": ["eod", "prices"], "added": ["eod", "prices"]},
    ),
    "datasets drop": Case(
        ["datasets", "drop", "--region", "US", "prices", "news"],
        price_file,
        "US requires: (nothing) (1 dropped)",
        {"region": "US", "requires": [], "dropped": ["prices"]},
    ),
}


@pytest.mark.parametrize("name", CASES)
@pytest.mark.parametrize("fmt", ["text", "json"])
def test_a_command_that_changes_something_prints_its_result_on_stdout(
    engine: Engine,
    db_url: str,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    name: str,
    fmt: str,
) -> None:
    case = CASES[name]
    case.setup(engine, tmp_path)
    args = [a.format(tmp=tmp_path) for a in case.args]
    result = invoke(capsys, db_url, *args, "--format", fmt)
    assert result.code == 0, result.err
    assert len(result.out.splitlines()) == 1, result.out
    line = result.out.rstrip("\n")
    if fmt == "text":
        assert line.endswith(case.line), line
        assert case.line not in result.err  # the result is not repeated as a diagnostic
    else:
        record = json.loads(line)
        assert isinstance(record, dict)
        assert {k: record[k] for k in case.record} == case.record, record
        assert line not in result.err


def test_advance_all_details_each_run_on_stderr(
    engine: Engine, db_url: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    ready_with_prices(engine, tmp_path)
    result = invoke(capsys, db_url, "runs", "advance-all")
    assert result.out == "advanced 1 run(s), 0 failed attempt(s)\n"
    assert "run 1 2026-11-24 US: advanced, now SIGNALS_DONE" in result.err
    step = json.loads(invoke(capsys, db_url, "runs", "advance-all", "--format", "json").out)
    assert step["steps"][0]["run"]["phase"] == "UNIVERSES_DONE"


def test_hints_go_to_stderr(db_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    result = invoke(capsys, db_url, "datasets", "drop", "--region", "US", "news")
    assert result.out == "US requires: (nothing) (0 dropped)\n"
    assert result.err == "US did not require: news\n"
