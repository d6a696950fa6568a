"""The audit trail holds against ordinary sessions (sql/triggers/0011_audited_force.sql).

No setting opens a way past the guard or into the trail: a session that sets
``prometheus.force`` (the old switch) is checked like any other. The one way past the
transition table is the audited override, and what one write says (actor, reason,
notify) never leaks into the next write of the same transaction.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date
from typing import Any

import psycopg
import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError

from prometheus.config import libpq_url
from prometheus.db.queries import query
from prometheus.pipeline.phases import Phase
from prometheus.pipeline.state import get_or_create_run, run_events, update_phase
from tests.support.ingestion_data import snapshot

DAY = date(2026, 11, 24)

#: What a session must not do, however it has set prometheus.force; the SQLSTATE says why.
REFUSED = [
    ("UPDATE engine_runs SET phase = 'COMPLETED' WHERE run_id = {run}", "PX001"),
    (
        "INSERT INTO engine_runs (as_of_date, region, phase) VALUES ('2026-11-25', 'US', 'FAILED')",
        "PX001",
    ),
    ("UPDATE engine_run_events SET actor = 'someone else' WHERE run_id = {run}", "PX002"),
    ("DELETE FROM engine_run_events WHERE run_id = {run}", "PX002"),
    ("DELETE FROM engine_runs WHERE run_id = {run}", "PX002"),
    ("TRUNCATE engine_run_events", "PX002"),
    ("TRUNCATE engine_runs CASCADE", "PX002"),
    (
        "TRUNCATE engine_runs, engine_run_events, signal_scores, universe_members, book_weights",
        "PX002",
    ),
]


@pytest.fixture
def raw(db_url: str) -> Iterator[psycopg.Connection[Any]]:
    """A session at psql, in autocommit: each test opens its transactions itself."""
    with psycopg.connect(libpq_url(db_url), autocommit=True) as conn:
        yield conn


@pytest.mark.parametrize("force", ["SET LOCAL prometheus.force = 'on'", None])
@pytest.mark.parametrize(("statement", "sqlstate"), REFUSED)
def test_no_session_setting_opens_the_guard_or_the_trail(
    engine: Engine,
    db_url: str,
    raw: psycopg.Connection[Any],
    force: str | None,
    statement: str,
    sqlstate: str,
) -> None:
    run = get_or_create_run(engine, DAY, "US", actor="setup")
    before = snapshot(db_url)
    with pytest.raises(psycopg.Error) as refused, raw.transaction():
        if force:
            raw.execute(force)
        raw.execute(statement.format(run=run.run_id).encode())
    assert refused.value.sqlstate == sqlstate, refused.value
    assert snapshot(db_url) == before


def test_a_grant_from_another_transaction_is_worth_nothing(
    engine: Engine, raw: psycopg.Connection[Any]
) -> None:
    """Even a grant row committed by hand (only the owner could) opens nothing later:
    the guard honours only those its own transaction wrote."""
    run = get_or_create_run(engine, DAY, "US", actor="setup")
    raw.execute(
        "INSERT INTO engine_run_grants (kind, run_id, to_phase) VALUES ('force', %s, 'COMPLETED')",
        (run.run_id,),
    )
    with pytest.raises(psycopg.Error) as refused:
        raw.execute("UPDATE engine_runs SET phase = 'COMPLETED' WHERE run_id = %s", (run.run_id,))
    assert refused.value.sqlstate == "PX001"


def test_the_force_function_wants_a_reason(engine: Engine, raw: psycopg.Connection[Any]) -> None:
    run = get_or_create_run(engine, DAY, "US", actor="setup")
    for actor, reason in (("cli:ops", "  "), ("", "why"), ("cli:ops", None)):
        with pytest.raises(psycopg.errors.InvalidParameterValue):
            raw.execute(
                "SELECT prometheus_force_phase(%s, 'COMPLETED', %s, %s, 'set-phase')",
                (run.run_id, actor, reason),
            )
    assert [e.to_phase for e in run_events(engine, run.run_id)] == ["WAITING_FOR_DATA"]


def test_a_forced_write_then_a_plain_one_in_one_transaction(engine: Engine) -> None:
    """The second write is validated, and audited, as if it were alone."""
    run = get_or_create_run(engine, DAY, "US", actor="setup")
    move = text("UPDATE engine_runs SET phase = :phase WHERE run_id = :id")
    with engine.connect() as conn, conn.begin():
        conn.execute(
            query("force_phase"),
            {
                "run_id": run.run_id,
                "to_phase": "UNIVERSES_DONE",
                "actor": "cli:ops",
                "reason": "rebook",
                "override": "set-phase",
            },
        ).one()
        savepoint = conn.begin_nested()
        with pytest.raises(DBAPIError, match="illegal transition: UNIVERSES_DONE -> DATA_READY"):
            conn.execute(move, {"phase": "DATA_READY", "id": run.run_id})
        savepoint.rollback()
        conn.execute(move, {"phase": "COMPLETED", "id": run.run_id})
    assert [(e.to_phase, e.actor, e.detail) for e in run_events(engine, run.run_id)] == [
        ("WAITING_FOR_DATA", "setup", {}),
        ("UNIVERSES_DONE", "cli:ops", {"override": "set-phase", "reason": "rebook"}),
        ("COMPLETED", "db", {}),
    ]


def test_what_a_write_says_does_not_leak_into_the_next(engine: Engine, db_url: str) -> None:
    """update_phase with an actor, a reason and notify off; then a plain write in the same
    transaction: audited as the database's own, with no detail, and notified."""
    run = get_or_create_run(engine, DAY, "US", actor="setup")
    with psycopg.connect(libpq_url(db_url), autocommit=True) as listener:
        listener.execute("LISTEN prometheus_engine_runs")
        with engine.begin() as conn:
            ready = update_phase(
                conn, run, Phase.DATA_READY, actor="worker", detail={"why": "x"}, notify=False
            )
            conn.execute(
                text("UPDATE engine_runs SET phase = 'SIGNALS_DONE' WHERE run_id = :id"),
                {"id": ready.run_id},
            )
        heard = [json.loads(n.payload)["phase"] for n in listener.notifies(timeout=5, stop_after=1)]
    assert heard == ["SIGNALS_DONE"]
    assert [(e.to_phase, e.actor, e.detail) for e in run_events(engine, run.run_id)] == [
        ("WAITING_FOR_DATA", "setup", {}),
        ("DATA_READY", "worker", {"why": "x"}),
        ("SIGNALS_DONE", "db", {}),
    ]
