"""Retention on purpose: ``prometheus runs purge --before D --reason R`` (SPEC section 5).

Terminal runs dated before the cutoff go, with their events and reference results; the
purge itself is recorded and that record outlives them; active runs and anything on or
after the cutoff stay exactly as they were. Nothing else may delete a run.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import replace
from datetime import date, datetime, timedelta
from typing import Any

import psycopg
import pytest
from psycopg import sql
from sqlalchemy import Engine, text

from prometheus.calendar import TradingCalendar
from prometheus.config import Settings, libpq_url
from prometheus.db.queries import query
from prometheus.pipeline.calendar_runs import CALENDAR_LOOKBACK
from prometheus.pipeline.phases import Phase
from prometheus.pipeline.retention import purge_runs
from prometheus.pipeline.state import Run, get_or_create_run, list_runs, update_phase
from tests.support import reactor_tasks
from tests.support.cli_runner import Result, invoke
from tests.support.inprocess import ReactorThreads
from tests.support.lock_waits import lock_waiters
from tests.support.placing import place
from tests.support.waiting import wait_until

CUTOFF = date(2026, 1, 1)
OLD = date(2025, 6, 2)
TABLES = ("engine_runs", "engine_run_events", "signal_scores", "engine_run_purges")


@pytest.fixture
def raw(db_url: str) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(libpq_url(db_url), autocommit=True) as conn:
        yield conn


@pytest.fixture
def actor() -> str:
    return f"cli:{Settings.from_env({}).os_user}"


def run_in(engine: Engine, day: date, region: str, phase: Phase) -> Run:
    return place(engine, get_or_create_run(engine, day, region, actor="setup"), phase)


def with_result(raw: psycopg.Connection[Any], run: Run) -> Run:
    """A reference result row for the run, as the signals task writes them."""
    raw.execute(
        "INSERT INTO signal_scores VALUES (%s, 'AAA', 0.01, 0.02, 5e6, 0.5, 0.7)", (run.run_id,)
    )
    return run


def rows(raw: psycopg.Connection[Any], table: str, run_ids: list[int] | None = None) -> list[Any]:
    """A table's rows (those of ``run_ids`` only, if given), in a stable order."""
    query = sql.SQL("SELECT * FROM {}").format(sql.Identifier(table))
    if run_ids is not None:
        query += sql.SQL(" WHERE run_id = ANY(%s)")
    return sorted(raw.execute(query, (run_ids,) if run_ids is not None else None), key=repr)


def everything(raw: psycopg.Connection[Any]) -> dict[str, list[Any]]:
    return {table: rows(raw, table) for table in TABLES}


@pytest.fixture
def history(engine: Engine, raw: psycopg.Connection[Any]) -> dict[str, list[Run]]:
    """Runs on both sides of the cutoff, in every kind of phase, with results."""
    doomed = [
        with_result(raw, run_in(engine, OLD, "US", Phase.COMPLETED)),
        run_in(engine, OLD, "EU", Phase.FAILED),
        with_result(raw, run_in(engine, CUTOFF - timedelta(days=1), "US", Phase.COMPLETED)),
    ]
    kept = [
        run_in(engine, OLD, "JP", Phase.WAITING_FOR_DATA),
        with_result(raw, run_in(engine, OLD, "UK", Phase.SIGNALS_DONE)),
        with_result(raw, run_in(engine, CUTOFF, "US", Phase.COMPLETED)),  # not before it
        run_in(engine, CUTOFF + timedelta(days=3), "EU", Phase.FAILED),
    ]
    return {"doomed": doomed, "kept": kept}


def purge(capsys: pytest.CaptureFixture[str], db_url: str, *args: str) -> Result:
    return invoke(capsys, db_url, "runs", "purge", *args)


def test_a_purge_removes_old_terminal_runs_and_records_itself(
    capsys: pytest.CaptureFixture[str],
    db_url: str,
    raw: psycopg.Connection[Any],
    history: dict[str, list[Run]],
    actor: str,
) -> None:
    doomed = [r.run_id for r in history["doomed"]]
    kept = [r.run_id for r in history["kept"]]
    kept_before = {t: rows(raw, t, kept) for t in TABLES[:3]}
    doomed_events = len(rows(raw, "engine_run_events", doomed))
    assert doomed_events > len(doomed)

    result = purge(capsys, db_url, "--before", "2026-01-01", "--reason", "keep two quarters")

    assert result.code == 0, result
    assert result.out == (
        f"purged 3 run(s) and {doomed_events} event(s) dated before 2026-01-01 (purge 1)\n"
    )
    assert {t: rows(raw, t, doomed) for t in TABLES[:3]} == {t: [] for t in TABLES[:3]}
    assert {t: rows(raw, t, kept) for t in TABLES[:3]} == kept_before
    ((purge_id, at, who, reason, cutoff, runs, events),) = rows(raw, "engine_run_purges")
    assert (purge_id, who, reason, cutoff, runs, events) == (
        1,
        actor,
        "keep two quarters",
        CUTOFF,
        3,
        doomed_events,
    )
    assert at is not None


def test_a_dry_run_counts_and_deletes_nothing(
    capsys: pytest.CaptureFixture[str],
    db_url: str,
    raw: psycopg.Connection[Any],
    history: dict[str, list[Run]],
) -> None:
    before = everything(raw)
    doomed_events = len(rows(raw, "engine_run_events", [r.run_id for r in history["doomed"]]))
    args = ["--before", "2026-01-01", "--reason", "how much?", "--dry-run"]

    text = purge(capsys, db_url, *args)
    assert text.code == 0, text
    assert text.out == (
        f"would purge 3 run(s) and {doomed_events} event(s) dated before 2026-01-01"
        " (dry run: nothing deleted)\n"
    )
    as_json = purge(capsys, db_url, *args, "--format", "json")
    assert as_json.code == 0, as_json
    assert json.loads(as_json.out) == {
        "before": "2026-01-01",
        "runs_purged": 3,
        "events_purged": doomed_events,
        "dry_run": True,
        "purge_id": None,
    }
    assert everything(raw) == before


def test_the_purge_record_outlives_further_purges(
    engine: Engine, raw: psycopg.Connection[Any], history: dict[str, list[Run]]
) -> None:
    first = purge_runs(engine, CUTOFF, actor="cli:ops", reason="first")
    again = purge_runs(engine, CUTOFF, actor="cli:ops", reason="again")
    assert (first.runs_purged, again.runs_purged, again.events_purged) == (3, 0, 0)
    assert [(r[0], r[3], r[5]) for r in rows(raw, "engine_run_purges")] == [
        (first.purge_id, "first", 3),
        (again.purge_id, "again", 0),
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--before", "2026-01-01"], "--reason"),
        (["--before", "2026-01-01", "--reason", "   "], "--reason must say why"),
        (["--before", "2026-13-01", "--reason", "r"], "invalid date '2026-13-01'"),
        (["--before", "01.01.2026", "--reason", "r"], "invalid date '01.01.2026'"),
        (["--reason", "r"], "--before"),
        (["--before", "2999-01-01", "--reason", "typo"], "the latest allowed cutoff is"),
    ],
)
def test_bad_input_exits_2_and_writes_nothing(
    capsys: pytest.CaptureFixture[str],
    db_url: str,
    raw: psycopg.Connection[Any],
    history: dict[str, list[Run]],
    args: list[str],
    message: str,
) -> None:
    before = everything(raw)
    result = purge(capsys, db_url, *args)
    assert result.code == 2, result
    assert result.out == ""
    assert len(result.err_lines) == 1, result.err
    assert message in result.err_lines[0]
    assert "Traceback" not in result.err
    assert everything(raw) == before


def test_a_purge_never_reaches_runs_the_reactor_would_create_and_run_again(
    capsys: pytest.CaptureFixture[str],
    db_url: str,
    engine: Engine,
    raw: psycopg.Connection[Any],
    reactors: ReactorThreads,
    settings: Settings,
) -> None:
    """Every US session of the last two weeks has its data, so its run is made and
    completed. The reactor's calendar service recreates the missing run of any session of
    its window, and that run, its data complete, goes DATA_READY at once and runs every
    phase again: a cutoff inside the window is refused, naming the latest allowed one, and
    a purge at that cutoff leaves the calendar nothing to bring back."""
    raw.execute("INSERT INTO region_datasets VALUES ('US', 'prices')")
    now: datetime = raw.execute("SELECT now()").fetchone()[0]  # type: ignore[index]
    calendar = TradingCalendar(settings.region_exchanges)
    window = {s.date for s in calendar.closed_sessions("US", now, CALENDAR_LOOKBACK)}
    sessions = [s.date for s in calendar.closed_sessions("US", now, timedelta(days=14))]
    assert window and set(sessions) > window, "two weeks hold sessions in and before the window"
    latest = (now - CALENDAR_LOOKBACK).date()

    running = reactors.start(
        replace(settings, phase_tasks=reactor_tasks.MODULE, sweep_interval=timedelta(hours=1))
    )
    with engine.begin() as conn:  # the data of every session: readiness makes the runs
        conn.execute(
            text(
                "INSERT INTO ingestion_batches (dataset, as_of_date, region, status, completed_at)"
                " SELECT 'prices', d, 'US', 'COMPLETE', now() FROM unnest(CAST(:days AS date[])) d"
            ),
            {"days": sessions},
        )

    def us_runs() -> dict[date, tuple[int, Phase]]:
        return {r.as_of_date: (r.run_id, r.phase) for r in list_runs(engine, region="US")}

    def all_completed() -> dict[date, tuple[int, Phase]]:
        runs = us_runs()
        ok = runs.keys() == set(sessions) and {p for _, p in runs.values()} == {Phase.COMPLETED}
        return runs if ok else {}

    done = wait_until(all_completed, what="every session's run COMPLETED")
    running.wait_ready()
    assert running.reactor.calendar_runs.rounds >= 1
    before = everything(raw)

    for too_recent in (now.date(), latest + timedelta(days=1)):
        refused = purge(capsys, db_url, "--before", too_recent.isoformat(), "--reason", "r")
        assert refused.code == 2, refused
        assert len(refused.err_lines) == 1, refused.err
        assert f"the latest allowed cutoff is {latest.isoformat()}" in refused.err_lines[0]
    assert everything(raw) == before

    allowed = purge(capsys, db_url, "--before", latest.isoformat(), "--reason", "old enough")
    assert allowed.code == 0, allowed
    kept = {d: run for d, run in done.items() if d >= latest}
    assert kept.keys() >= window
    assert us_runs() == kept

    rounds = running.reactor.calendar_runs.rounds
    running.reactor.calendar_runs.wake()  # a calendar round after the purge
    wait_until(lambda: running.reactor.calendar_runs.rounds > rounds, what="a calendar round")
    running.wait_ready()
    assert us_runs() == kept  # nothing recreated, nothing run again
    assert rows(raw, "engine_run_events") == [
        e for e in before["engine_run_events"] if e[1] in {i for i, _ in kept.values()}
    ]


def test_a_run_retried_while_the_purge_waits_is_not_purged(
    engine: Engine, raw: psycopg.Connection[Any]
) -> None:
    """The retry holds the FAILED run's lock and makes it active; the purge, which found
    it terminal, waits for the lock, sees it active, and leaves it."""
    failed = update_phase(
        engine, run_in(engine, OLD, "US", Phase.DATA_READY), Phase.FAILED, actor="worker"
    )
    done: list[int] = []
    retry = {
        "run_id": failed.run_id,
        "to_phase": "DATA_READY",
        "actor": "cli:ops",
        "reason": "fixed",
        "override": "retry",
    }
    with engine.connect() as conn, conn.begin():  # `runs retry`, between lock and commit
        conn.execute(query("lock_run"), {"run_id": failed.run_id}).one()
        conn.execute(query("force_phase"), retry).one()
        purger = threading.Thread(
            target=lambda: done.append(
                purge_runs(engine, CUTOFF, actor="cli:ops", reason="r").runs_purged
            )
        )
        purger.start()
        wait_until(lambda: lock_waiters(raw) == 1, what="the purge waiting for the run")
    purger.join(timeout=30)
    assert done == [0]
    assert [r[0] for r in rows(raw, "engine_runs")] == [failed.run_id]


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE engine_run_purges SET reason = 'nothing happened'",
        "DELETE FROM engine_run_purges",
        "TRUNCATE engine_run_purges",
    ],
)
def test_the_purge_record_is_append_only(
    engine: Engine, raw: psycopg.Connection[Any], statement: str
) -> None:
    purge_runs(engine, CUTOFF, actor="cli:ops", reason="nothing to purge yet")
    before = rows(raw, "engine_run_purges")
    with pytest.raises(psycopg.Error) as refused:
        raw.execute(statement.encode())
    assert refused.value.sqlstate == "PX002"
    assert rows(raw, "engine_run_purges") == before
