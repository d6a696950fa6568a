"""A server that refuses writes (a standby, or ``default_transaction_read_only``) is an
outage, not a task's failure: the reactor counts no attempt, says what the server is and
what to set, drops the connections that met it, and carries on once the server writes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from datetime import date, timedelta
from typing import Any

import psycopg
import pytest
from psycopg import sql
from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError
from structlog.testing import capture_logs

from prometheus.config import Settings, libpq_url
from prometheus.conninfo import ConnInfo
from prometheus.pipeline.phases import Phase
from prometheus.pipeline.state import get_run
from tests.support import reactor_tasks
from tests.support.inprocess import ReactorThreads
from tests.support.runs import make_ready, wait_phase
from tests.support.waiting import wait_until

DAY = date(2026, 11, 24)


@pytest.fixture
def admin(db_url: str) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(libpq_url(db_url), autocommit=True) as conn:
        conn.execute("SET default_transaction_read_only = off")  # this session writes
        yield conn


def test_a_read_only_server_counts_no_attempt_and_its_connections_are_dropped(
    engine: Engine,
    db_url: str,
    settings: Settings,
    reactors: ReactorThreads,
    admin: psycopg.Connection[Any],
) -> None:
    running = reactors.start(
        replace(settings, phase_tasks=reactor_tasks.MODULE, sweep_interval=timedelta(hours=1))
    )
    running.wait_ready()
    run_id = make_ready(engine, DAY, notify=False)  # written before the server turns
    database = sql.Identifier(ConnInfo.parse(db_url, name="test").params["dbname"])
    read_only = sql.SQL("ALTER DATABASE {} SET default_transaction_read_only = on")
    admin.execute(read_only.format(database))
    # The reactor's pooled connections reconnect read-only; its listener stays as it is.
    admin.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s",
        (running.pool_name,),
    )
    with capture_logs() as logs:
        wake(admin, run_id)
        failure = wait_until(
            lambda: next((e for e in logs if e["event"] == "dispatch.failed"), None),
            what="a claim refused by the read-only server",
        )
    assert failure is not None
    assert "is a standby (in recovery) or read-only" in failure["error"]
    assert "target_session_attrs=read-write" in failure["error"]
    run = get_run(engine, run_id)
    assert run is not None and (run.phase, run.attempts) == (Phase.DATA_READY, 0)

    admin.execute(sql.SQL("ALTER DATABASE {} RESET default_transaction_read_only").format(database))
    wake(admin, run_id)
    wait_phase(engine, run_id)  # on fresh connections: the read-only ones were dropped
    done = get_run(engine, run_id)
    assert done is not None and done.attempts == 0


def wake(admin: psycopg.Connection[Any], run_id: int) -> None:
    """The notification a DATA_READY run sends, from the test's own (writable) session."""
    payload = json.dumps({"run_id": run_id, "phase": "DATA_READY"})
    admin.execute("SELECT pg_notify('prometheus_engine_runs', %s)", (payload,))


def test_any_statement_a_read_only_server_refuses_drops_its_connection(engine: Engine) -> None:
    """Not only claims: a heartbeat or a sweep that meets a read-only server drops the
    pool's connections too (kept, they would refuse every write for good; dropped, the
    next connect goes through target_session_attrs again)."""
    with engine.connect() as conn:
        conn.execute(text("SET SESSION default_transaction_read_only = on"))
        conn.commit()
        with pytest.raises(DBAPIError) as caught:
            conn.execute(text("DELETE FROM region_datasets"))
    assert caught.value.connection_invalidated
