"""Failed attempts the savepoint alone cannot handle: late failures, commit-time failures,
tasks stuck outside the database, and error text PostgreSQL cannot store."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import date, timedelta
from typing import Any

import psycopg
import pytest
from psycopg import sql
from sqlalchemy import Engine, text
from sqlalchemy.exc import SQLAlchemyError
from structlog.testing import capture_logs

from prometheus.config import Settings, libpq_url
from prometheus.pipeline.phases import Phase
from prometheus.pipeline.state import Outcome, Run, advance_run, ensure_run, get_run, run_events
from tests.support.lock_waits import lock_waiters
from tests.support.task_modules import BLOCKING_LOCK, SLOW_SECONDS, WEDGE_ENTERED
from tests.support.waiting import wait_until

DAY = date(2026, 11, 24)


@pytest.fixture
def raw(db_url: str) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(libpq_url(db_url), autocommit=True) as conn:
        yield conn


@pytest.fixture
def plugin(settings: Settings) -> Settings:
    return replace(settings, phase_tasks="tests.support.task_modules", max_attempts=3)


def ready(engine: Engine, region: str) -> Run:
    return ensure_run(engine, DAY, region, data_ready=True, actor="setup")


def failed_attempts(engine: Engine, run_id: int) -> list[dict[str, Any]]:
    return [e.detail for e in run_events(engine, run_id) if e.kind == "attempt_failed"]


def test_the_backoff_runs_from_the_failure_not_from_the_start_of_the_attempt(
    engine: Engine, plugin: Settings, raw: psycopg.Connection[Any]
) -> None:
    run = ready(engine, "SLOWFAILS")
    started = raw.execute("SELECT clock_timestamp()").fetchone()
    assert started is not None
    step = advance_run(
        engine, run, settings=replace(plugin, retry_base=timedelta(seconds=1)), actor="t"
    )
    assert step.outcome is Outcome.RETRY_SCHEDULED
    assert step.run is not None and step.run.next_attempt_at is not None
    # It failed SLOW_SECONDS after it started, and then waits its 1 s backoff.
    assert step.run.next_attempt_at >= started[0] + timedelta(seconds=SLOW_SECONDS + 1)


def test_a_deferred_constraint_the_task_broke_is_its_attempt_counted_under_the_lock(
    engine: Engine, plugin: Settings, raw: psycopg.Connection[Any], db_url: str
) -> None:
    """The task's writes break a deferred constraint, which shows only when it is checked
    after the task has returned. The check comes inside the task's savepoint, so the
    attempt is counted there, under the run's lock: a session queued for the run while
    the phase ran (another worker's claim, an operator's script) gets it only with the
    failure counted and its backoff set. (At COMMIT, the failure freed the lock first:
    that session found the run due and nothing counted, free to run the phase again.)"""
    run = ready(engine, "BREAKS_DEFERRED")
    slow = replace(plugin, retry_base=timedelta(minutes=5))
    raw.execute("SELECT pg_advisory_lock(%s)", (BLOCKING_LOCK,))  # holds the task mid-phase
    outcome: list[Outcome] = []
    seen: list[tuple[str, int]] = []

    def step() -> None:
        outcome.append(advance_run(engine, run, settings=slow, actor="t").outcome)

    def queue_for_the_run() -> None:
        with psycopg.connect(libpq_url(db_url)) as conn:
            row = conn.execute(
                "SELECT phase, attempts FROM engine_runs WHERE run_id = %s FOR NO KEY UPDATE",
                (run.run_id,),
            ).fetchone()
            assert row is not None
            seen.append((row[0], row[1]))

    stepper = threading.Thread(target=step, daemon=True)
    stepper.start()
    wait_until(lambda: lock_waiters(raw, "advisory") == 1, what="the task mid-phase")
    queued = threading.Thread(target=queue_for_the_run, daemon=True)
    queued.start()
    wait_until(lambda: lock_waiters(raw) == 2, what="a session queued for the run")
    raw.execute("SELECT pg_advisory_unlock(%s)", (BLOCKING_LOCK,))
    stepper.join(30)
    queued.join(30)

    assert outcome == [Outcome.RETRY_SCHEDULED]
    assert seen == [("DATA_READY", 1)]  # counted before anyone else had the run
    after = get_run(engine, run.run_id)
    assert after is not None
    assert (after.phase, after.attempts) == (Phase.DATA_READY, 1)
    assert after.last_error is not None and "ForeignKeyViolation" in after.last_error
    assert advance_run(engine, run, settings=slow, actor="t").outcome is Outcome.BACKING_OFF
    assert len(failed_attempts(engine, run.run_id)) == 1


def test_a_swallowed_database_error_fails_the_attempt_with_that_error_under_the_lock(
    engine: Engine, plugin: Settings
) -> None:
    """The task catches the error of a failed statement and returns normally. Its writes
    roll back, and the attempt is counted once, in the phase's own transaction, with the
    error the task swallowed (not "current transaction is aborted" from a write-up apart)."""
    run = ready(engine, "SWALLOWS")
    step = advance_run(engine, run, settings=plugin, actor="t")
    expected = (
        "SwallowedDatabaseError: the task caught a database error and carried on in the "
        "aborted transaction: division by zero"
    )
    assert (step.outcome, step.error) == (Outcome.RETRY_SCHEDULED, expected)
    after = get_run(engine, run.run_id)
    assert after is not None
    assert (after.phase, after.attempts, after.last_error) == (Phase.DATA_READY, 1, expected)
    (attempt,) = failed_attempts(engine, run.run_id)
    assert attempt["error"] == expected
    with engine.connect() as conn:
        partial = conn.execute(
            text("SELECT count(*) FROM signal_scores WHERE run_id = :r"), {"r": run.run_id}
        ).scalar_one()
    assert partial == 0


def test_an_error_text_with_a_nul_byte_is_still_recorded(engine: Engine, plugin: Settings) -> None:
    run = ready(engine, "NUL")
    step = advance_run(engine, run, settings=plugin, actor="t")
    assert step.outcome is Outcome.RETRY_SCHEDULED
    assert step.error == "TaskFailure: badbyte"
    assert [d["error"] for d in failed_attempts(engine, run.run_id)] == ["TaskFailure: badbyte"]


@pytest.mark.parametrize("route", ["direct", "through a transaction pooler"])
def test_a_task_stuck_outside_the_database_is_timed_out_and_its_run_freed(
    engine: Engine, plugin: Settings, route: str, request: pytest.FixtureRequest
) -> None:
    """The task sleeps in Python past the phase timeout: no statement to cancel. Its
    session is ended, which frees the run, and the attempt is counted once, as a timeout.
    Through PgBouncer too, where the connection's own key is the pooler's: the session
    ended is the server process the claim ran in."""
    work = engine if route == "direct" else request.getfixturevalue("pooled_engine")
    run = ready(engine, "HANGS")
    short = replace(plugin, phase_timeout=timedelta(seconds=1), retry_base=timedelta(minutes=5))
    outcome: list[BaseException | Outcome] = []

    def advance() -> None:
        try:
            outcome.append(advance_run(work, run, settings=short, actor="stuck").outcome)
        except SQLAlchemyError as exc:  # its connection was ended under it
            outcome.append(exc)

    stuck = threading.Thread(target=advance, daemon=True)
    stuck.start()

    def counted() -> Run | None:
        current = get_run(engine, run.run_id)
        return current if current is not None and current.attempts == 1 else None

    timed_out = wait_until(counted, timeout=20, what="the timed-out attempt to be counted")
    assert timed_out is not None
    assert stuck.is_alive()  # still in its task: the run was freed all the same
    assert timed_out.last_error == "PhaseTimeout: phase timed out after 1s"
    assert advance_run(engine, run, settings=short, actor="t").outcome is Outcome.BACKING_OFF
    stuck.join(30)
    assert not stuck.is_alive()
    after = get_run(engine, run.run_id)
    assert after is not None and after.attempts == 1  # counted once, not again on return
    assert len(failed_attempts(engine, run.run_id)) == 1
    assert outcome and outcome[0] is not Outcome.ADVANCED


def refuse_phase(raw: psycopg.Connection[Any], phase: Phase) -> None:
    """A deferred constraint trigger (someone else's, on our table) that refuses a move to
    ``phase``. Outside a task's savepoint the transaction's constraints are immediate, so
    it refuses the phase change itself, after the task's savepoint is gone, where only a
    write-up apart can count the attempt (as for a COMMIT that fails); a write-up apart,
    in a transaction of its own, meets it at COMMIT."""
    raw.execute(
        "CREATE FUNCTION refuse_at_commit() RETURNS trigger LANGUAGE plpgsql AS $$"
        " BEGIN RAISE EXCEPTION 'refused at commit: %', NEW.phase; END $$"
    )
    raw.execute(
        sql.SQL(
            "CREATE CONSTRAINT TRIGGER refuse_at_commit AFTER UPDATE ON engine_runs"
            " DEFERRABLE INITIALLY DEFERRED FOR EACH ROW"
            " WHEN (NEW.phase = {}) EXECUTE FUNCTION refuse_at_commit()"
        ).format(sql.Literal(str(phase)))
    )


def test_a_completion_refused_after_the_savepoint_is_counted_apart_and_not_logged(
    engine: Engine, plugin: Settings, raw: psycopg.Connection[Any]
) -> None:
    refuse_phase(raw, Phase.SIGNALS_DONE)
    run = ready(engine, "US")
    with capture_logs() as logs:
        step = advance_run(engine, run, settings=plugin, actor="t")
    assert step.outcome is Outcome.RETRY_SCHEDULED  # counted apart, in a transaction of its own
    events = [line["event"] for line in logs]
    assert "phase.completed" not in events, events
    assert "phase.failed" in events


def test_a_run_failure_refused_at_commit_is_not_logged(
    engine: Engine, plugin: Settings, raw: psycopg.Connection[Any]
) -> None:
    refuse_phase(raw, Phase.FAILED)
    run = ready(engine, "RAISES")
    with capture_logs() as logs, pytest.raises(SQLAlchemyError, match="refused at commit"):
        advance_run(engine, run, settings=replace(plugin, max_attempts=1), actor="t")
    events = [line["event"] for line in logs]
    assert "run.failed" not in events, events
    after = get_run(engine, run.run_id)
    assert after is not None and after.phase is Phase.DATA_READY


def advance_in_thread(engine: Engine, run: Run, settings: Settings) -> threading.Thread:
    """Step the run in a thread of its own, as a reactor's worker would; a session ended
    under it shows as a database error there, which is the point of these tests."""

    def advance() -> None:
        with contextlib.suppress(SQLAlchemyError):
            advance_run(engine, run, settings=settings, actor="stuck")

    thread = threading.Thread(target=advance, daemon=True)
    thread.start()
    return thread


def attempts_counted(engine: Engine, run: Run, n: int) -> Callable[[], bool]:
    def probe() -> bool:
        current = get_run(engine, run.run_id)
        return current is not None and current.attempts == n

    return probe


def test_a_timed_out_attempt_waits_a_bounded_time_for_a_run_someone_else_holds(
    engine: Engine,
    plugin: Settings,
    raw: psycopg.Connection[Any],
    db_url: str,
    wedge_release: threading.Event,
) -> None:
    """When the stuck phase's session is ended, a session that was already waiting for
    the run (an operator's script, say) takes it and keeps it. The timeout's write-up does
    not queue behind it for ever: it waits a bounded time, says so, and tries again; the
    attempt is counted once the run is free, and only once."""
    run = ready(engine, "WEDGES")
    short = replace(plugin, phase_timeout=timedelta(seconds=1), retry_base=timedelta(minutes=5))
    holding, let_go = threading.Event(), threading.Event()

    def hold() -> None:
        with psycopg.connect(libpq_url(db_url)) as conn:
            conn.execute("SELECT 1 FROM engine_runs WHERE run_id = %s FOR UPDATE", (run.run_id,))
            holding.set()
            let_go.wait(60)

    holder = threading.Thread(target=hold, daemon=True)
    with capture_logs() as logs:
        stuck = advance_in_thread(engine, run, short)
        try:
            assert WEDGE_ENTERED.wait(30), "the phase never started"
            holder.start()  # queues for the run behind the stuck phase
            wait_until(lambda: lock_waiters(raw) == 1, what="the other session to queue")
            wait_until(
                lambda: [e for e in logs if e["event"] == "attempt.count_delayed"],
                what="the write-up to give up waiting, bounded",
            )
            assert holding.is_set()
            assert attempts_counted(engine, run, 0)()  # not while the other session holds it
        finally:
            let_go.set()
        holder.join(30)
        wait_until(attempts_counted(engine, run, 1), what="the timeout counted")
    after = get_run(engine, run.run_id)
    assert after is not None and after.last_error == "PhaseTimeout: phase timed out after 1s"
    assert len(failed_attempts(engine, run.run_id)) == 1
    wedge_release.set()
    stuck.join(30)
    assert len(failed_attempts(engine, run.run_id)) == 1


def test_a_task_that_returns_after_its_timeout_was_counted_is_not_counted_again(
    engine: Engine, plugin: Settings, wedge_release: threading.Event
) -> None:
    run = ready(engine, "WEDGES")
    short = replace(plugin, phase_timeout=timedelta(seconds=1), retry_base=timedelta(minutes=5))
    stuck = advance_in_thread(engine, run, short)
    wait_until(attempts_counted(engine, run, 1), what="the timeout counted")
    assert stuck.is_alive()
    wedge_release.set()  # the task returns, late, to a session that was ended
    stuck.join(30)
    assert not stuck.is_alive()
    after = get_run(engine, run.run_id)
    assert after is not None and (after.phase, after.attempts) == (Phase.DATA_READY, 1)
    assert len(failed_attempts(engine, run.run_id)) == 1


def test_the_audit_trail_is_append_only(engine: Engine, raw: psycopg.Connection[Any]) -> None:
    run = ready(engine, "US")
    for statement in (
        "UPDATE engine_run_events SET actor = 'someone else'",
        "DELETE FROM engine_run_events",
    ):
        with pytest.raises(psycopg.Error) as refused:
            raw.execute(statement)
        assert refused.value.sqlstate == "PX002"
    assert [e.actor for e in run_events(engine, run.run_id)] == ["setup", "setup"]
