"""The state-machine API on a real database: creation races, single execution, row locks,
failed attempts, backoff, the phase timeout and the plug-in tasks."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import replace
from datetime import date, timedelta
from typing import Any, TypeVar

import psycopg
import pytest
from sqlalchemy import Engine

from prometheus.calendar import TradingCalendar
from prometheus.config import Settings, libpq_url
from prometheus.errors import InputError, NotATradingDay
from prometheus.pipeline import tasks as reference
from prometheus.pipeline.phases import TERMINAL, Phase
from prometheus.pipeline.registry import phase_tasks
from prometheus.pipeline.state import (
    Outcome,
    Run,
    Step,
    advance_run,
    ensure_run,
    ensure_session_run,
    get_or_create_run,
    get_run,
    list_active_runs,
    list_due_run_ids,
    run_events,
    seconds_until_next_retry,
)
from tests.support import task_modules
from tests.support.lock_waits import lock_waiters
from tests.support.market_data import seed_region
from tests.support.placing import place
from tests.support.task_modules import BLOCKING_LOCK, PLUGIN_INSTRUMENTS
from tests.support.threads import Worker
from tests.support.waiting import wait_until

DAY = date(2026, 11, 24)
PLUGIN = "tests.support.task_modules"
T = TypeVar("T")


@pytest.fixture
def raw(db_url: str) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(libpq_url(db_url), autocommit=True) as conn:
        yield conn


@pytest.fixture
def plugin(settings: Settings) -> Settings:
    """The test task module, three attempts, no backoff wait."""
    return replace(settings, phase_tasks=PLUGIN, max_attempts=3)


BUSY_WITHIN_S = 10.0  # a skipped claim returns in milliseconds; a waiting one never does


def ready_run(engine: Engine, region: str = "US", day: date = DAY) -> Run:
    return ensure_run(engine, day, region, data_ready=True, actor="setup")


def scalar(raw: psycopg.Connection[Any], sql: str, *params: object) -> Any:
    row = raw.execute(sql, params).fetchone()
    assert row is not None
    return row[0]


def transitions_from(raw: psycopg.Connection[Any], run_id: int, phase: Phase) -> int:
    return int(
        scalar(
            raw,
            "SELECT count(*) FROM engine_run_events"
            " WHERE run_id = %s AND kind = 'transition' AND from_phase = %s",
            run_id,
            str(phase),
        )
    )


def score_ids(raw: psycopg.Connection[Any], run_id: int) -> list[str]:
    rows = raw.execute(
        "SELECT instrument_id FROM signal_scores WHERE run_id = %s ORDER BY 1", (run_id,)
    )
    return [r[0] for r in rows]


# --- creation ------------------------------------------------------------------------------


def test_get_or_create_run_from_two_connections_at_once_yields_one_row(
    engine: Engine, raw: psycopg.Connection[Any]
) -> None:
    with engine.connect() as first, first.begin():
        created = get_or_create_run(first, DAY, "US", actor="first")
        second = Worker(lambda: get_or_create_run(engine, DAY, "US", actor="second"))
        second.start()
        # The second creator is inside its INSERT, waiting on the first's uncommitted row.
        wait_until(
            lambda: lock_waiters(raw, "transactionid") >= 1,
            timeout=10,
            what="the second creator to wait on the first",
        )
    found: Run = second.finish()
    assert found.run_id == created.run_id
    assert scalar(raw, "SELECT count(*) FROM engine_runs") == 1
    events = run_events(engine, created.run_id)
    assert [(e.to_phase, e.actor) for e in events] == [("WAITING_FOR_DATA", "first")]


def test_get_or_create_run_from_many_threads_yields_one_row(
    engine: Engine, raw: psycopg.Connection[Any]
) -> None:
    barrier = threading.Barrier(6)

    def create() -> int:
        barrier.wait(10)
        return get_or_create_run(engine, DAY, "EU").run_id

    workers = [Worker(create) for _ in range(6)]
    for w in workers:
        w.start()
    assert len({w.finish() for w in workers}) == 1
    assert scalar(raw, "SELECT count(*) FROM engine_runs") == 1
    assert scalar(raw, "SELECT count(*) FROM engine_run_events") == 1


def test_ensure_run_is_safe_to_repeat(engine: Engine, settings: Settings) -> None:
    seed_region(engine, "US", DAY)
    first = ensure_run(engine, DAY, "US", data_ready=True, actor="cron")
    again = ensure_run(engine, DAY, "US", data_ready=True, actor="cron")
    assert first.run_id == again.run_id
    assert again.phase is Phase.DATA_READY
    advance_run(engine, first, settings=settings, actor="t")
    assert ensure_run(engine, DAY, "US", data_ready=True, actor="cron").phase is Phase.SIGNALS_DONE
    assert [e.to_phase for e in run_events(engine, first.run_id)] == [
        "WAITING_FOR_DATA",
        "DATA_READY",
        "SIGNALS_DONE",
    ]


def test_a_run_whose_data_is_already_complete_is_created_ready(
    engine: Engine, raw: psycopg.Connection[Any]
) -> None:
    """The database makes such a run DATA_READY within the creating statement; what the
    API returns is the run as it is, not as it was inserted, and --data-ready agrees."""
    raw.execute(
        "INSERT INTO ingestion_batches (dataset, as_of_date, region, status)"
        " VALUES ('prices', %s, 'US', 'COMPLETE'), ('prices', %s, 'EU', 'COMPLETE')",
        (DAY, DAY),
    )
    raw.execute("INSERT INTO region_datasets VALUES ('US', 'prices'), ('EU', 'prices')")
    assert scalar(raw, "SELECT count(*) FROM engine_runs") == 0  # no run created for them yet

    assert get_or_create_run(engine, DAY, "US").phase is Phase.DATA_READY
    ensured = ensure_run(engine, DAY, "EU", data_ready=True, actor="cron")
    assert ensured.phase is Phase.DATA_READY
    assert [e.to_phase for e in run_events(engine, ensured.run_id)] == [
        "WAITING_FOR_DATA",
        "DATA_READY",
    ]


def test_ensure_data_ready_racing_another_writer_is_not_an_error(
    engine: Engine, raw: psycopg.Connection[Any]
) -> None:
    """`--ensure --data-ready` reads the run WAITING_FOR_DATA while another writer (here
    playing the readiness trigger) holds it and makes it DATA_READY: the cron job must
    find the work done, not fail with an illegal transition."""
    run = get_or_create_run(engine, DAY, "US")
    with raw.transaction():
        raw.execute("SELECT 1 FROM engine_runs WHERE run_id = %s FOR UPDATE", (run.run_id,))
        ensure = Worker(lambda: ensure_run(engine, DAY, "US", data_ready=True, actor="cron"))
        ensure.start()
        wait_until(
            lambda: lock_waiters(raw) >= 1,
            timeout=10,
            what="the ensure to wait on the other writer's row lock",
        )
        raw.execute("UPDATE engine_runs SET phase = 'DATA_READY' WHERE run_id = %s", (run.run_id,))
    ensured: Run = ensure.finish()
    assert (ensured.run_id, ensured.phase) == (run.run_id, Phase.DATA_READY)
    events = run_events(engine, run.run_id)
    assert [(e.to_phase, e.actor) for e in events[1:]] == [("DATA_READY", "db")]


def test_list_active_runs_leaves_out_terminal_ones(engine: Engine) -> None:
    for n, phase in enumerate(reversed(list(Phase))):
        run = get_or_create_run(engine, DAY + timedelta(days=n), "US")
        if phase is not Phase.WAITING_FOR_DATA:
            place(engine, run, phase)
    get_or_create_run(engine, DAY, "EU")
    active = list_active_runs(engine)
    assert [(r.as_of_date, r.region) for r in active] == sorted(
        (r.as_of_date, r.region) for r in active
    )
    assert [r.phase for r in active] == [
        Phase.WAITING_FOR_DATA,  # DAY, EU
        Phase.UNIVERSES_DONE,
        Phase.SIGNALS_DONE,
        Phase.DATA_READY,
        Phase.WAITING_FOR_DATA,
    ]
    assert not {r.phase for r in active} & TERMINAL


# --- one step at a time --------------------------------------------------------------------


def test_outcomes_of_runs_with_nothing_to_do(engine: Engine, settings: Settings) -> None:
    waiting = get_or_create_run(engine, DAY, "US")
    other = get_or_create_run(engine, DAY, "EU")
    done = place(engine, other, Phase.COMPLETED)
    assert advance_run(engine, waiting, settings=settings, actor="t").outcome is Outcome.WAITING
    assert advance_run(engine, done, settings=settings, actor="t").outcome is Outcome.TERMINAL
    assert advance_run(engine, 999_999, settings=settings, actor="t") == Step(Outcome.BUSY, None)
    assert len(run_events(engine, waiting.run_id)) == 1  # nothing written


def test_a_run_locked_by_another_transaction_is_busy(
    engine: Engine, settings: Settings, raw: psycopg.Connection[Any]
) -> None:
    seed_region(engine, "US", DAY)
    run = ready_run(engine)
    with raw.transaction():
        raw.execute("SELECT 1 FROM engine_runs WHERE run_id = %s FOR UPDATE", (run.run_id,))
        # In a thread, so a claim that waits for the lock (no SKIP LOCKED) is an assertion
        # here, not a test hung until its timeout: leaving the block releases the lock.
        attempt = Worker(lambda: advance_run(engine, run, settings=settings, actor="t"))
        attempt.start()
        attempt.join(BUSY_WITHIN_S)
        assert not attempt.is_alive(), "advance_run waited for the run's lock: not skipped"
        step = attempt.finish()
        assert step.outcome is Outcome.BUSY
        assert step.run is None
    assert scalar(raw, "SELECT phase FROM engine_runs WHERE run_id = %s", run.run_id) == (
        "DATA_READY"
    )
    assert advance_run(engine, run, settings=settings, actor="t").outcome is Outcome.ADVANCED


def test_concurrent_advances_while_a_phase_runs_are_busy(
    engine: Engine, plugin: Settings, raw: psycopg.Connection[Any]
) -> None:
    run = ready_run(engine, region="BLOCKS")
    raw.execute("SELECT pg_advisory_lock(%s)", (BLOCKING_LOCK,))
    try:
        holder = Worker(lambda: advance_run(engine, run, settings=plugin, actor="holder"))
        holder.start()
        wait_until(
            lambda: lock_waiters(raw, "advisory") == 1,
            timeout=10,
            what="the phase task to block on the test's advisory lock",
        )
        others = [
            Worker(lambda: advance_run(engine, run, settings=plugin, actor="other"))
            for _ in range(4)
        ]
        for w in others:
            w.start()
        assert [w.finish().outcome for w in others] == [Outcome.BUSY] * 4
    finally:
        raw.execute("SELECT pg_advisory_unlock(%s)", (BLOCKING_LOCK,))
    step: Step = holder.finish()
    assert step.outcome is Outcome.ADVANCED
    assert step.run is not None and step.run.phase is Phase.SIGNALS_DONE
    assert transitions_from(raw, run.run_id, Phase.DATA_READY) == 1
    assert score_ids(raw, run.run_id) == sorted(PLUGIN_INSTRUMENTS)


def test_advancing_from_many_threads_applies_each_phase_exactly_once(
    engine: Engine, plugin: Settings, raw: psycopg.Connection[Any]
) -> None:
    run = ready_run(engine, region="OK")
    barrier = threading.Barrier(6)

    def drive() -> list[Outcome]:
        barrier.wait(10)
        outcomes = []
        for _ in range(500):
            step = advance_run(engine, run, settings=plugin, actor=threading.current_thread().name)
            outcomes.append(step.outcome)
            if step.outcome is Outcome.TERMINAL:
                return outcomes
        raise AssertionError(f"run never finished: {outcomes[-5:]}")

    workers = [Worker(drive) for _ in range(6)]
    for w in workers:
        w.start()
    outcomes = [o for w in workers for o in w.finish()]
    assert outcomes.count(Outcome.ADVANCED) == 3
    assert set(outcomes) <= {Outcome.ADVANCED, Outcome.BUSY, Outcome.TERMINAL}
    for phase in (Phase.DATA_READY, Phase.SIGNALS_DONE, Phase.UNIVERSES_DONE):
        assert transitions_from(raw, run.run_id, phase) == 1, phase
    final = get_run(engine, run.run_id)
    assert final is not None and final.phase is Phase.COMPLETED
    assert score_ids(raw, run.run_id) == sorted(PLUGIN_INSTRUMENTS)


# --- failed attempts -----------------------------------------------------------------------


def test_a_failing_task_writes_nothing_is_retried_then_failed(
    engine: Engine, plugin: Settings, raw: psycopg.Connection[Any]
) -> None:
    run = ready_run(engine, region="RAISES")
    for attempt in (1, 2):
        step = advance_run(engine, run, settings=plugin, actor="worker-1")
        assert step.outcome is Outcome.RETRY_SCHEDULED
        assert step.error == f"TaskFailure: signals failed on attempt {attempt}"
        assert step.run is not None
        assert step.run.phase is Phase.DATA_READY
        assert step.run.attempts == attempt
        assert step.run.last_error == step.error
        assert step.run.next_attempt_at is not None
        assert score_ids(raw, run.run_id) == []  # the partial row was rolled back
        assert run.run_id in list_due_run_ids(engine)  # no backoff in these settings

    step = advance_run(engine, run, settings=plugin, actor="worker-1")
    assert step.outcome is Outcome.FAILED
    assert step.run is not None
    assert step.run.phase is Phase.FAILED
    assert step.run.attempts == 3
    assert step.run.last_error == "TaskFailure: signals failed on attempt 3"
    assert step.run.next_attempt_at is None
    assert score_ids(raw, run.run_id) == []

    events = run_events(engine, run.run_id)[2:]  # after creation and DATA_READY
    assert [(e.kind, e.from_phase, e.to_phase, e.actor) for e in events] == [
        ("attempt_failed", "DATA_READY", "DATA_READY", "worker-1"),
        ("attempt_failed", "DATA_READY", "DATA_READY", "worker-1"),
        ("attempt_failed", "DATA_READY", "DATA_READY", "worker-1"),
        ("transition", "DATA_READY", "FAILED", "worker-1"),
    ]
    first = events[0].detail
    assert first["error"] == "TaskFailure: signals failed on attempt 1"
    assert first["attempt"] == 1
    assert first["retry_in_s"] == 0.0
    assert "task_modules.py" in first["where"]
    assert "retry_in_s" not in events[2].detail  # the last attempt schedules nothing
    assert events[3].detail == {"error": step.run.last_error, "attempts": 3}

    assert advance_run(engine, run, settings=plugin, actor="t").outcome is Outcome.TERMINAL
    assert run.run_id not in list_due_run_ids(engine)


def test_a_retry_that_succeeds_clears_the_failure(
    engine: Engine, plugin: Settings, raw: psycopg.Connection[Any]
) -> None:
    run = ready_run(engine, region="FLAKY")
    assert advance_run(engine, run, settings=plugin, actor="t").outcome is (Outcome.RETRY_SCHEDULED)
    step = advance_run(engine, run, settings=plugin, actor="t")
    assert step.outcome is Outcome.ADVANCED
    assert step.run is not None
    assert (step.run.phase, step.run.attempts, step.run.last_error) == (
        Phase.SIGNALS_DONE,
        0,
        None,
    )
    assert step.run.next_attempt_at is None
    assert score_ids(raw, run.run_id) == sorted(PLUGIN_INSTRUMENTS)


def _scheduled_delay(raw: psycopg.Connection[Any], run_id: int) -> timedelta:
    """next_attempt_at minus the moment the failure was written (updated_at), to the second:
    both are clock_timestamp() readings of the same statement, microseconds apart."""
    delay = scalar(
        raw, "SELECT next_attempt_at - updated_at FROM engine_runs WHERE run_id = %s", run_id
    )
    assert isinstance(delay, timedelta)
    return timedelta(seconds=round(delay.total_seconds()))


def _make_due(raw: psycopg.Connection[Any], run_id: int) -> None:
    raw.execute(
        "UPDATE engine_runs SET next_attempt_at = now() - interval '1 second' WHERE run_id = %s",
        (run_id,),
    )


def test_backoff_is_respected_and_doubles(
    engine: Engine, plugin: Settings, raw: psycopg.Connection[Any]
) -> None:
    slow = replace(plugin, retry_base=timedelta(seconds=60), max_attempts=5)
    run = ready_run(engine, region="RAISES")
    assert advance_run(engine, run, settings=slow, actor="t").outcome is Outcome.RETRY_SCHEDULED
    assert _scheduled_delay(raw, run.run_id) == timedelta(seconds=60)

    events_before = len(run_events(engine, run.run_id))
    step = advance_run(engine, run, settings=slow, actor="t")
    assert step.outcome is Outcome.BACKING_OFF
    assert step.run is not None and step.run.attempts == 1
    assert len(run_events(engine, run.run_id)) == events_before  # nothing ran, nothing written
    assert run.run_id not in list_due_run_ids(engine)
    wait = seconds_until_next_retry(engine)
    assert wait is not None and 0 < wait <= 60

    _make_due(raw, run.run_id)
    assert run.run_id in list_due_run_ids(engine)
    step = advance_run(engine, run, settings=slow, actor="t")
    assert step.outcome is Outcome.RETRY_SCHEDULED
    assert step.run is not None and step.run.attempts == 2
    assert _scheduled_delay(raw, run.run_id) == timedelta(seconds=120)
    assert run_events(engine, run.run_id)[-1].detail["retry_in_s"] == 120.0


def test_backoff_is_capped_at_fifteen_minutes(
    engine: Engine, plugin: Settings, raw: psycopg.Connection[Any]
) -> None:
    slow = replace(plugin, retry_base=timedelta(seconds=600), max_attempts=5)
    run = ready_run(engine, region="RAISES")
    advance_run(engine, run, settings=slow, actor="t")
    assert _scheduled_delay(raw, run.run_id) == timedelta(seconds=600)
    _make_due(raw, run.run_id)
    advance_run(engine, run, settings=slow, actor="t")
    assert _scheduled_delay(raw, run.run_id) == timedelta(minutes=15)


def test_a_phase_past_its_timeout_is_cancelled_as_a_failed_attempt(
    engine: Engine, plugin: Settings, raw: psycopg.Connection[Any]
) -> None:
    quick = replace(plugin, phase_timeout=timedelta(seconds=0.5))
    run = ready_run(engine, region="SLEEPS")
    step = advance_run(engine, run, settings=quick, actor="t")
    assert step.outcome is Outcome.RETRY_SCHEDULED
    assert step.error == "PhaseTimeout: phase timed out after 0.5s"
    assert step.run is not None
    assert (step.run.phase, step.run.attempts) == (Phase.DATA_READY, 1)
    assert score_ids(raw, run.run_id) == []
    assert run_events(engine, run.run_id)[-1].kind == "attempt_failed"
    # The sleeping statement was cancelled, not left running on the server.
    assert (
        scalar(
            raw,
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
            " AND state = 'active' AND query LIKE '%%pg_sleep(30)%%' AND pid <> pg_backend_pid()",
        )
        == 0
    )


# --- the plug-in module --------------------------------------------------------------------


def test_a_plugin_missing_a_callable_falls_back_to_the_reference() -> None:
    chosen = phase_tasks(PLUGIN)
    assert chosen[Phase.DATA_READY] is task_modules.signals
    assert chosen[Phase.SIGNALS_DONE] is reference.universes
    assert chosen[Phase.UNIVERSES_DONE] is reference.books
    assert dict(phase_tasks(None)) == {
        Phase.DATA_READY: reference.signals,
        Phase.SIGNALS_DONE: reference.universes,
        Phase.UNIVERSES_DONE: reference.books,
    }


def test_a_run_completes_with_plugin_signals_and_reference_universes_and_books(
    engine: Engine, plugin: Settings, raw: psycopg.Connection[Any]
) -> None:
    run = ready_run(engine, region="OK")
    for _ in range(3):
        assert advance_run(engine, run, settings=plugin, actor="t").outcome is Outcome.ADVANCED
    rows = raw.execute(
        "SELECT instrument_id, weight FROM book_weights WHERE run_id = %s ORDER BY 1",
        (run.run_id,),
    ).fetchall()
    assert [r[0] for r in rows] == sorted(PLUGIN_INSTRUMENTS)
    assert sum(r[1] for r in rows) == pytest.approx(1.0)


def test_an_unimportable_plugin_is_an_input_error(engine: Engine, settings: Settings) -> None:
    run = ready_run(engine)
    broken = replace(settings, phase_tasks="tests.support.no_such_module")
    with pytest.raises(InputError, match=r"cannot import 'tests\.support\.no_such_module'"):
        advance_run(engine, run, settings=broken, actor="t")
    after = get_run(engine, run.run_id)
    assert after is not None and (after.phase, after.attempts) == (Phase.DATA_READY, 0)


def test_a_quiet_stepper_still_announces_completed(
    engine: Engine, settings: Settings, raw: psycopg.Connection[Any]
) -> None:
    """A reactor steps its own runs with notify=False; the run's arrival in COMPLETED is
    announced all the same, for whoever waits on it (a DAG sensor, a dashboard)."""
    seed_region(engine, "US", DAY)
    run = ready_run(engine)
    raw.execute("LISTEN prometheus_engine_runs")
    for _ in range(3):
        advance_run(engine, run, settings=settings, actor="t", notify=False)
    phases = [json.loads(n.payload)["phase"] for n in raw.notifies(timeout=1.0)]
    assert phases == ["COMPLETED"]


def test_ensure_session_run_judges_the_day_before_it_connects(engine: Engine) -> None:
    """The one rule behind `runs ensure` and an orchestrator's mark-data-ready: a day the
    exchange does not trade is refused before any connection (so before an embedded
    server would start), and with force the warning is said before the run is made."""
    said: list[str] = []
    connected: list[str] = []

    def connect() -> Engine:
        connected.append("connected")
        return engine

    def ensure(*, force: bool) -> Run:
        return ensure_session_run(
            connect, TradingCalendar(), date(2026, 11, 28), "US", data_ready=True,
            force=force, actor="test", doing="ensure the run",
            on_forced=lambda warning: said.append(f"{warning} ({len(connected)} connected)"),
        )  # fmt: skip

    with pytest.raises(NotATradingDay) as refused:
        ensure(force=False)
    assert str(refused.value) == (
        "2026-11-28 (Saturday) is not a trading day for US (XNYS); pass --force to"
        " ensure the run anyway"
    )
    assert connected == [] and said == []
    run = ensure(force=True)
    assert said == [
        "2026-11-28 (Saturday) is not a trading day for US (XNYS); going ahead (--force)"
        " (0 connected)"
    ]
    assert connected == ["connected"] and run.phase is Phase.DATA_READY
