"""The state machine as the database enforces it: the full 6x6 matrix, through Python and
through raw SQL; forced moves (only through the audited override); audit rows; timestamps;
NOTIFY on prometheus_engine_runs."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

import psycopg
import pytest
from sqlalchemy import Engine

from prometheus.config import libpq_url
from prometheus.errors import IllegalTransition
from prometheus.pipeline import overrides
from prometheus.pipeline.phases import Phase, is_legal
from prometheus.pipeline.state import Run, get_or_create_run, run_events, update_phase
from tests.support.placing import place

CHANNEL = "prometheus_engine_runs"
PAIRS = list(itertools.product(Phase, Phase))
DAY = date(2026, 11, 24)
FORCE = "SELECT * FROM prometheus_force_phase(%s, %s, 'op', 'a reason', 'set-phase')"


@pytest.fixture
def raw(db_url: str) -> Iterator[psycopg.Connection[Any]]:
    """A plain autocommit psycopg connection: SQL as an operator at psql would write it."""
    with psycopg.connect(libpq_url(db_url), autocommit=True) as conn:
        yield conn


@pytest.fixture
def listener(db_url: str) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(libpq_url(db_url), autocommit=True) as conn:
        conn.execute(f"LISTEN {CHANNEL}")
        yield conn


def run_in(engine: Engine, phase: Phase, day: date = DAY, region: str = "US") -> Run:
    """A run placed in ``phase`` (by an audited forced move when it is not the first)."""
    run = get_or_create_run(engine, day, region, actor="setup")
    if phase is not run.phase:
        run = place(engine, run, phase)
    return run


def phase_of(raw: psycopg.Connection[Any], run_id: int) -> str:
    row = raw.execute("SELECT phase FROM engine_runs WHERE run_id = %s", (run_id,)).fetchone()
    assert row is not None
    return str(row[0])


def event_count(raw: psycopg.Connection[Any], run_id: int) -> int:
    row = raw.execute("SELECT count(*) FROM engine_run_events WHERE run_id = %s", (run_id,))
    return int(row.fetchone()[0])  # type: ignore[index]  # count(*) always returns a row


def next_notification(conn: psycopg.Connection[Any], timeout: float = 5.0) -> dict[str, Any]:
    for notify in conn.notifies(timeout=timeout, stop_after=1):
        assert notify.channel == CHANNEL
        payload: dict[str, Any] = json.loads(notify.payload)
        return payload
    raise AssertionError(f"no notification on {CHANNEL} within {timeout}s")


def test_python_table_and_database_function_agree(raw: psycopg.Connection[Any]) -> None:
    for source, target in PAIRS:
        row = raw.execute(
            "SELECT prometheus_is_legal_transition(%s, %s)", (str(source), str(target))
        ).fetchone()
        assert row == (is_legal(source, target),), (source, target)


def test_the_schema_accepts_exactly_the_phase_names(raw: psycopg.Connection[Any]) -> None:
    row = raw.execute(
        "SELECT pg_get_constraintdef(oid) FROM pg_constraint"
        " WHERE conrelid = 'engine_runs'::regclass AND contype = 'c'"
        " AND pg_get_constraintdef(oid) LIKE '%phase%'"
    ).fetchone()
    assert row is not None
    for phase in Phase:
        assert f"'{phase}'" in row[0]
    row = raw.execute(
        "INSERT INTO engine_runs (as_of_date, region) VALUES (%s, 'US') RETURNING run_id", (DAY,)
    ).fetchone()
    assert row is not None
    with pytest.raises(psycopg.errors.CheckViolation):  # even the forced path
        raw.execute(FORCE, (row[0], "DONE"))


def test_every_pair_through_update_phase(engine: Engine, raw: psycopg.Connection[Any]) -> None:
    for n, (source, target) in enumerate(PAIRS):
        run = run_in(engine, source, DAY + timedelta(days=n))
        events_before = event_count(raw, run.run_id)
        if is_legal(source, target):
            moved = update_phase(engine, run, target, actor="matrix")
            assert moved.phase is target
            assert phase_of(raw, run.run_id) == target
            assert event_count(raw, run.run_id) == events_before + 1
        else:
            with pytest.raises(IllegalTransition):
                update_phase(engine, run, target, actor="matrix")
            assert phase_of(raw, run.run_id) == source, (source, target)
            assert event_count(raw, run.run_id) == events_before


def test_every_pair_through_raw_sql(engine: Engine, raw: psycopg.Connection[Any]) -> None:
    for n, (source, target) in enumerate(PAIRS):
        run = run_in(engine, source, DAY + timedelta(days=n))
        events_before = event_count(raw, run.run_id)
        update = "UPDATE engine_runs SET phase = %s WHERE run_id = %s"
        if is_legal(source, target):
            raw.execute(update, (str(target), run.run_id))
            assert phase_of(raw, run.run_id) == target
            assert event_count(raw, run.run_id) == events_before + 1
        elif source is target:
            # Writing the phase a run is already in is not a transition: no error, no event.
            raw.execute(update, (str(target), run.run_id))
            assert phase_of(raw, run.run_id) == source
            assert event_count(raw, run.run_id) == events_before
        else:
            with pytest.raises(psycopg.Error) as caught:
                raw.execute(update, (str(target), run.run_id))
            assert caught.value.sqlstate == "PX001", (source, target)
            assert f"{source} -> {target}" in str(caught.value)
            assert phase_of(raw, run.run_id) == source
            assert event_count(raw, run.run_id) == events_before


def test_a_run_must_start_waiting_for_data(raw: psycopg.Connection[Any]) -> None:
    for phase in Phase:
        if phase is Phase.WAITING_FOR_DATA:
            continue
        with pytest.raises(psycopg.Error) as caught:
            raw.execute(
                "INSERT INTO engine_runs (as_of_date, region, phase) VALUES (%s, 'US', %s)",
                (DAY, str(phase)),
            )
        assert caught.value.sqlstate == "PX001"
    assert raw.execute("SELECT count(*) FROM engine_runs").fetchone() == (0,)


def test_the_override_may_make_any_move_audited(engine: Engine) -> None:
    illegal = [(s, t) for s, t in PAIRS if s is not t and not is_legal(s, t)]
    assert len(illegal) == 22
    for n, (source, target) in enumerate(illegal):
        run = run_in(engine, source, DAY + timedelta(days=n))
        with pytest.raises(IllegalTransition):
            update_phase(engine, run, target, actor="op")
        moved = overrides.set_phase(
            engine, run.as_of_date, "US", target, actor="op", reason="x", force=True
        )
        # Back to WAITING_FOR_DATA with no data required: it stays there.
        assert moved.phase is target
        last = run_events(engine, run.run_id)[-1]
        assert (last.from_phase, last.to_phase, last.actor) == (source, target, "op")
        assert last.detail == {"override": "set-phase", "reason": "x"}


def test_the_force_function_moves_one_run_once_and_the_next_write_is_checked(
    raw: psycopg.Connection[Any],
) -> None:
    row = raw.execute(
        "INSERT INTO engine_runs (as_of_date, region) VALUES (%s, 'US') RETURNING run_id", (DAY,)
    ).fetchone()
    assert row is not None
    with raw.transaction():
        raw.execute(FORCE, (row[0], "COMPLETED"))
        assert phase_of(raw, row[0]) == "COMPLETED"
        # Its grant was for its own statement: the next writer of this transaction is
        # checked again.
        with pytest.raises(psycopg.Error) as caught, raw.transaction():
            raw.execute("UPDATE engine_runs SET phase = 'DATA_READY' WHERE run_id = %s", row)
        assert caught.value.sqlstate == "PX001"
    assert phase_of(raw, row[0]) == "COMPLETED"


def test_creation_and_changes_are_audited_with_actor_and_detail(engine: Engine) -> None:
    run = get_or_create_run(engine, DAY, "US", actor="creator")
    update_phase(engine, run, Phase.DATA_READY, actor="alice", detail={"reason": "data in"})
    events = run_events(engine, run.run_id)
    assert [(e.kind, e.from_phase, e.to_phase, e.actor, e.detail) for e in events] == [
        ("transition", None, "WAITING_FOR_DATA", "creator", {}),
        ("transition", "WAITING_FOR_DATA", "DATA_READY", "alice", {"reason": "data in"}),
    ]
    assert events[0].at <= events[1].at


def test_a_raw_sql_change_is_audited_as_db(engine: Engine, raw: psycopg.Connection[Any]) -> None:
    run = get_or_create_run(engine, DAY, "US")
    raw.execute("UPDATE engine_runs SET phase = 'FAILED' WHERE run_id = %s", (run.run_id,))
    last = run_events(engine, run.run_id)[-1]
    assert (last.from_phase, last.to_phase, last.actor, last.detail) == (
        "WAITING_FOR_DATA",
        "FAILED",
        "db",
        {},
    )


def test_a_stale_run_is_refused_and_nothing_is_written(engine: Engine) -> None:
    run = run_in(engine, Phase.DATA_READY)
    update_phase(engine, run, Phase.SIGNALS_DONE, actor="first")
    events_before = len(run_events(engine, run.run_id))
    with pytest.raises(IllegalTransition, match="changed meanwhile"):
        update_phase(engine, run, Phase.FAILED, actor="second")  # legal, but run is stale
    assert len(run_events(engine, run.run_id)) == events_before


def test_timestamps_follow_updates_and_phase_changes(
    engine: Engine, raw: psycopg.Connection[Any]
) -> None:
    run = get_or_create_run(engine, DAY, "US")
    assert run.created_at == run.updated_at == run.phase_changed_at
    # A change that is not a phase change: updated_at moves, phase_changed_at stays. Times
    # are when the row changed (clock_timestamp), so never before the statement began.
    row = raw.execute(
        "UPDATE engine_runs SET last_error = 'x' WHERE run_id = %s"
        " RETURNING updated_at, phase_changed_at, statement_timestamp()",
        (run.run_id,),
    ).fetchone()
    assert row is not None
    updated_at, phase_changed_at, began = row
    assert updated_at >= began > run.updated_at
    assert phase_changed_at == run.phase_changed_at

    # A phase change: both move, together.
    row = raw.execute(
        "UPDATE engine_runs SET phase = 'DATA_READY' WHERE run_id = %s"
        " RETURNING updated_at, phase_changed_at, statement_timestamp()",
        (run.run_id,),
    ).fetchone()
    assert row is not None
    assert row[0] == row[1] >= row[2] > updated_at


def test_a_phase_change_resets_attempts_but_failed_keeps_them(
    engine: Engine, raw: psycopg.Connection[Any]
) -> None:
    ahead, failed = run_in(engine, Phase.DATA_READY), run_in(engine, Phase.DATA_READY, region="EU")
    raw.execute(
        "UPDATE engine_runs SET attempts = 2, last_error = 'boom', next_attempt_at = now()"
        " WHERE run_id IN (%s, %s)",
        (ahead.run_id, failed.run_id),
    )

    moved = update_phase(engine, ahead, Phase.SIGNALS_DONE, actor="t")
    assert (moved.attempts, moved.last_error, moved.next_attempt_at) == (0, None, None)

    gone = update_phase(engine, failed, Phase.FAILED, actor="t")
    assert (gone.attempts, gone.last_error, gone.next_attempt_at) == (2, "boom", None)


def test_notify_on_create_and_on_phase_change(
    engine: Engine, listener: psycopg.Connection[Any]
) -> None:
    run = get_or_create_run(engine, DAY, "US")
    assert next_notification(listener) == {
        "run_id": run.run_id,
        "as_of_date": "2026-11-24",
        "region": "US",
        "phase": "WAITING_FOR_DATA",
    }
    update_phase(engine, run, Phase.DATA_READY, actor="t")
    assert next_notification(listener) == {
        "run_id": run.run_id,
        "as_of_date": "2026-11-24",
        "region": "US",
        "phase": "DATA_READY",
    }


def test_no_notify_when_the_writer_turns_it_off(
    engine: Engine, raw: psycopg.Connection[Any], listener: psycopg.Connection[Any]
) -> None:
    run = get_or_create_run(engine, DAY, "US")
    assert next_notification(listener)["phase"] == "WAITING_FOR_DATA"

    run = update_phase(engine, run, Phase.DATA_READY, actor="t", notify=False)
    with raw.transaction():
        raw.execute("SET LOCAL prometheus.notify = 'off'")
        raw.execute(
            "UPDATE engine_runs SET phase = 'SIGNALS_DONE' WHERE run_id = %s", (run.run_id,)
        )
    # A later, notifying change: notifications arrive in commit order, so if either silent
    # change had notified, its payload would come first.
    raw.execute("UPDATE engine_runs SET phase = 'UNIVERSES_DONE' WHERE run_id = %s", (run.run_id,))
    assert next_notification(listener)["phase"] == "UNIVERSES_DONE"
    # Silent or not, every change is audited.
    assert [e.to_phase for e in run_events(engine, run.run_id)][-3:] == [
        "DATA_READY",
        "SIGNALS_DONE",
        "UNIVERSES_DONE",
    ]


def test_a_refused_change_does_not_notify(
    engine: Engine, raw: psycopg.Connection[Any], listener: psycopg.Connection[Any]
) -> None:
    run = get_or_create_run(engine, DAY, "US")
    assert next_notification(listener)["phase"] == "WAITING_FOR_DATA"
    with pytest.raises(psycopg.Error):
        raw.execute("UPDATE engine_runs SET phase = 'COMPLETED' WHERE run_id = %s", (run.run_id,))
    update_phase(engine, run, Phase.FAILED, actor="t")
    assert next_notification(listener)["phase"] == "FAILED"
