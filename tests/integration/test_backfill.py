"""``prometheus backfill`` on a real database: runs created for every session (and started
when their data is complete), each reprocess mode audited, a dry run that writes nothing,
a second backfill that changes nothing, bad input refused, and --wait."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import date, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, text

from prometheus.config import Settings
from prometheus.ingestion import BatchKey, BatchStatus, mark_batches, require_datasets
from prometheus.pipeline.phases import Phase
from prometheus.pipeline.state import get_or_create_run, list_runs, run_events
from tests.support import reactor_tasks
from tests.support.cli_runner import Result, invoke
from tests.support.inprocess import ReactorThreads
from tests.support.placing import place

# XNYS: Thanksgiving (27 Nov) closed, the 28th a half day, the 29th and 30th a weekend.
RANGE = ["--from", "2025-11-24", "--to", "2025-12-02"]
SESSIONS = [date(2025, 11, d) for d in (24, 25, 26, 28)] + [date(2025, 12, 1), date(2025, 12, 2)]


def data_complete(engine: Engine, days: list[date], region: str = "US") -> None:
    """Batches COMPLETE for these days, then the region requires them: no run is made
    (the requirement moves only runs that wait), as for history loaded before a backfill."""
    with engine.begin() as conn:
        keys = [BatchKey("prices", day, region) for day in days]
        mark_batches(conn, keys, BatchStatus.COMPLETE)
    require_datasets(engine, region, ["prices"])


def backfill(capsys: pytest.CaptureFixture[str], db_url: str, *args: str) -> Result:
    return invoke(capsys, db_url, "backfill", *RANGE, "--region", "US", *args)


def snapshot(engine: Engine) -> tuple[list[Any], int, int]:
    with engine.connect() as conn:
        runs = conn.execute(text("SELECT * FROM engine_runs ORDER BY run_id")).all()
        events = conn.execute(text("SELECT count(*) FROM engine_run_events")).scalar_one()
        batches = conn.execute(text("SELECT count(*) FROM ingestion_batches")).scalar_one()
    return list(runs), events, batches


def phases(engine: Engine) -> dict[date, Phase]:
    return {r.as_of_date: r.phase for r in list_runs(engine, region="US")}


def resets(engine: Engine, as_of: date) -> list[tuple[str | None, str, str, dict[str, Any]]]:
    (run,) = [r for r in list_runs(engine, region="US") if r.as_of_date == as_of]
    return [
        (e.from_phase, e.to_phase, e.actor, e.detail)
        for e in run_events(engine, run.run_id)
        if e.detail.get("override") == "backfill"
    ]


def test_a_run_for_every_session_started_when_its_data_is_complete(
    engine: Engine, db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    data_complete(engine, SESSIONS[:2])
    done = backfill(capsys, db_url)
    assert done.code == 0, done.err
    assert done.out == (
        "backfill 2025-11-24..2025-12-02 US: 6 session(s), 6 created, 0 reset, 0 left\n"
    )
    assert "US: created 6 run(s), 2025-11-24..2025-12-02" in done.err
    assert phases(engine) == {
        day: Phase.DATA_READY if day in SESSIONS[:2] else Phase.WAITING_FOR_DATA for day in SESSIONS
    }  # no run on the holiday or the weekend; the half day has one

    before = snapshot(engine)
    again = backfill(capsys, db_url)
    assert again.out.endswith("6 session(s), 0 created, 0 reset, 6 left\n")
    assert snapshot(engine) == before


def mixed(engine: Engine) -> dict[str, date]:
    """Runs in every phase on five of the sessions; the half day (28th) has none."""
    days = {
        "waiting": SESSIONS[0],
        "completed": SESSIONS[1],
        "failed": SESSIONS[2],
        "active": SESSIONS[4],
        "ready": SESSIONS[5],
    }
    phase = {
        "waiting": Phase.WAITING_FOR_DATA,
        "completed": Phase.COMPLETED,
        "failed": Phase.FAILED,
        "active": Phase.SIGNALS_DONE,
        "ready": Phase.DATA_READY,
    }
    for name, day in days.items():
        place(engine, get_or_create_run(engine, day, "US"), phase[name])
    return days


def test_a_dry_run_prints_the_plan_and_writes_nothing(
    engine: Engine, db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    days = mixed(engine)
    before = snapshot(engine)
    shown = backfill(capsys, db_url, "--dry-run", "--reprocess", "all", "--reason", "restated")
    assert shown.code == 0, shown.err
    assert shown.out == (
        "backfill 2025-11-24..2025-12-02 US: 6 session(s), would create 1, reset 2, leave 3"
        " (dry run: nothing written)\n"
    )
    assert "US: create 1 run(s), 2025-11-28..2025-11-28" in shown.err
    assert f"({days['failed']}" not in shown.err  # runs are named by id, then date
    assert "leave 2 run(s): in progress" not in shown.err
    assert snapshot(engine) == before

    plan = json.loads(backfill(capsys, db_url, "--dry-run", "--format", "json").out)
    assert plan["dry_run"] is True and plan["created"] == 1 and plan["left"] == 5
    assert [(r["as_of_date"], r["action"]) for r in plan["runs"]][3] == ("2025-11-28", "create")
    assert snapshot(engine) == before


def test_reprocess_failed_then_all_each_reset_once_and_audited(
    engine: Engine, db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    days = mixed(engine)
    data_complete(engine, [days["failed"]])
    failed = backfill(capsys, db_url, "--reprocess", "failed", "--reason", "vendor fixed")
    assert failed.out.endswith("6 session(s), 1 created, 1 reset, 4 left\n"), failed.err
    after = phases(engine)
    assert after[days["failed"]] is Phase.DATA_READY  # its data is complete: ready at once
    assert after[days["completed"]] is Phase.COMPLETED
    ((from_phase, to_phase, actor, detail),) = resets(engine, days["failed"])
    assert (from_phase, to_phase) == ("FAILED", "WAITING_FOR_DATA")
    assert actor.startswith("cli:") and detail == {"override": "backfill", "reason": "vendor fixed"}

    before = snapshot(engine)
    again = backfill(capsys, db_url, "--reprocess", "failed", "--reason", "vendor fixed")
    assert again.out.endswith("0 created, 0 reset, 6 left\n")
    assert snapshot(engine) == before

    everything = backfill(capsys, db_url, "--reprocess", "all", "--reason", "restated")
    assert everything.out.endswith("0 created, 1 reset, 5 left\n")
    assert phases(engine)[days["completed"]] is Phase.WAITING_FOR_DATA
    assert [r[:2] for r in resets(engine, days["completed"])] == [("COMPLETED", "WAITING_FOR_DATA")]
    (redone,) = [r for r in list_runs(engine) if r.as_of_date == days["completed"]]
    place(engine, redone, Phase.COMPLETED)
    before = snapshot(engine)
    same = backfill(capsys, db_url, "--reprocess", "all", "--reason", "restated")
    assert same.out.endswith("0 created, 0 reset, 6 left\n")  # reset for it already
    assert "COMPLETED, reprocessed for this reason already" in same.err
    assert snapshot(engine) == before


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--region", "XX"], "unknown region 'XX'"),
        (["--region", "US", "--reprocess", "failed"], "--reason must say why"),
        (["--region", "US", "--reprocess", "some"], "expected none, failed or all"),
        (["--region", "US", "--timeout", "1m"], "--timeout goes with --wait"),
        (["--region", "US", "--dry-run", "--wait"], "nothing to --wait for"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_writes_nothing(
    engine: Engine,
    db_url: str,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    message: str,
) -> None:
    mixed(engine)
    before = snapshot(engine)
    result = invoke(capsys, db_url, "backfill", *RANGE, *args)
    assert result.code == 2, result
    assert len(result.err_lines) == 1 and message in result.err, result.err
    assert snapshot(engine) == before


@pytest.mark.parametrize(
    ("dates", "message"),
    [
        (["--from", "2025-12-02", "--to", "2025-11-24"], "--from 2025-12-02 is after --to"),
        (["--from", "2100-01-01", "--to", "2100-01-31"], "reaches outside the XNYS calendar"),
    ],
)
def test_dates_that_make_no_range_are_bad_input(
    engine: Engine,
    db_url: str,
    capsys: pytest.CaptureFixture[str],
    dates: list[str],
    message: str,
) -> None:
    result = invoke(capsys, db_url, "backfill", *dates, "--region", "US")
    assert result.code == 2, result
    assert len(result.err_lines) == 1 and message in result.err, result.err
    assert snapshot(engine) == ([], 0, 0)


@pytest.fixture
def reactor_settings(settings: Settings) -> Settings:
    return replace(
        settings,
        phase_tasks=reactor_tasks.MODULE,
        max_attempts=1,
        sweep_interval=timedelta(hours=1),
    )


def test_wait_follows_the_range_until_it_settles_and_exits_1_if_a_run_failed(
    engine: Engine,
    db_url: str,
    capsys: pytest.CaptureFixture[str],
    reactors: ReactorThreads,
    reactor_settings: Settings,
) -> None:
    data_complete(engine, SESSIONS)
    reactor_tasks.plan(engine, 3, "SIGNALS_DONE", failures=1)  # run 3: to be created
    reactors.start(reactor_settings).wait_ready()
    done = backfill(capsys, db_url, "--wait", "--timeout", "60s", "--format", "json")
    assert done.code == 1, done.err
    record = json.loads(done.out)
    assert record["created"] == 6
    assert record["settled"] == {"completed": 5, "failed": 1}
    failed = [r.run_id for r in list_runs(engine, phase=Phase.FAILED)]
    assert failed == [3]


def test_wait_gives_up_after_its_timeout_while_runs_wait_for_data(
    engine: Engine,
    db_url: str,
    capsys: pytest.CaptureFixture[str],
    reactors: ReactorThreads,
    reactor_settings: Settings,
) -> None:
    data_complete(engine, SESSIONS[:5])
    reactors.start(reactor_settings).wait_ready()
    done = backfill(capsys, db_url, "--wait", "--timeout", "3s")
    assert done.code == 1
    assert "did not settle within 0:00:03: 5/6 settled" in done.err
    assert "1 waiting for data" in done.err
