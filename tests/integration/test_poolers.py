"""Behind stock PgBouncer in transaction mode (Debian's ``pgbouncer``, its own process on a
free port, in front of the test server): the CLI and ``db upgrade`` work; a reactor whose
work connections go through it, listening on a direct ``PROMETHEUS_LISTEN_URL``, advances
every run exactly once with no failed attempt; and one that listens through it too is
never silently deaf: /healthz degraded, one line saying why and what to set, `check`
says so, and it polls, so every run still completes exactly once, without the sweep."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from dataclasses import replace
from datetime import date, timedelta
from functools import partial
from typing import Any

import pytest
from sqlalchemy import Engine, text
from structlog.testing import capture_logs

from prometheus.config import Settings
from prometheus.db.connect import (
    PREPARE_THRESHOLD,
    connect_listener,
    connect_listener_async,
    make_engine,
)
from prometheus.db.driver import driver_connection
from prometheus.db.migrate import discover, upgrade
from prometheus.orchestration.waiting import WaitTimedOut, await_phase, wait_for_phase
from prometheus.pipeline.phases import Phase
from prometheus.pipeline.state import find_run, get_or_create_run, update_phase
from tests.support import reactor_tasks
from tests.support.cli_runner import invoke
from tests.support.clusters import PgBouncer
from tests.support.inprocess import ReactorThreads, RunningReactor
from tests.support.market_data import seed_region
from tests.support.placing import place
from tests.support.threads import Worker
from tests.support.waiting import wait_until

DAY = date(2026, 11, 24)
RUNS = 200
HOUR = timedelta(hours=1)


def test_the_cli_works_through_a_transaction_pooler(
    bouncer: PgBouncer, db_url: str, engine: Engine, capsys: pytest.CaptureFixture[str]
) -> None:
    seed_region(engine, "US", DAY)  # prices for the reference tasks
    pooled = bouncer.url(db_url)
    target = ["--as-of", str(DAY), "--region", "US"]
    assert invoke(capsys, pooled, "db", "status").code == 0
    made = invoke(capsys, pooled, "runs", "ensure", *target, "--data-ready")
    assert made.code == 0, made.err
    for _ in range(3):
        stepped = invoke(capsys, pooled, "runs", "advance", *target)
        assert stepped.code == 0, stepped.err
    run = find_run(engine, DAY, "US")
    assert run is not None and run.phase is Phase.COMPLETED
    assert run.attempts == 0


def test_db_upgrade_works_through_a_transaction_pooler_even_twice_at_once(
    bouncer: PgBouncer, empty_db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """No lock outlives a transaction: a session lock taken through the pooler would stay
    on one server connection, and the next upgrade would wait for it forever (or share
    it, and apply a file twice)."""
    pooled = bouncer.url(empty_db_url)
    engines = [make_engine(pooled, application_name=f"upgrader-{n}") for n in range(2)]
    try:
        upgraders = [Worker(partial(upgrade, engine)) for engine in engines]
        for upgrader in upgraders:
            upgrader.start()
        results = [upgrader.finish(timeout=60) for upgrader in upgraders]
        assert sorted(results[0] + results[1]) == sorted(m.name for m in discover())
    finally:
        for engine in engines:
            engine.dispose()
    again = invoke(capsys, pooled, "db", "upgrade")
    assert again.code == 0, again.err
    assert "up to date (0 file(s) applied)" in again.out
    assert invoke(capsys, pooled, "db", "status").code == 0


def test_a_reactor_behind_a_transaction_pooler_with_a_direct_listen_url_is_exactly_once(
    bouncer: PgBouncer,
    db_url: str,
    engine: Engine,
    settings: Settings,
    reactors: ReactorThreads,
) -> None:
    running = reactors.start(
        replace(
            settings,
            database_url=bouncer.url(db_url),
            listen_url=db_url,
            phase_tasks=reactor_tasks.MODULE,
            sweep_interval=HOUR,  # so only notifications move the runs
            concurrency=4,
            metrics_port=0,
        )
    )
    running.wait_ready()
    make_ready_many(engine, RUNS)
    wait_until(lambda: completed(engine) == RUNS, timeout=60, what=f"{RUNS} runs COMPLETED")
    assert_exactly_once(engine, running.reactor_id)
    assert healthz_when(running, 200, lambda r: r["listener_hears"] is True) is not None


def test_a_reactor_listening_through_a_transaction_pooler_says_so_and_polls(
    bouncer: PgBouncer,
    db_url: str,
    engine: Engine,
    settings: Settings,
    reactors: ReactorThreads,
    capsys: pytest.CaptureFixture[str],
) -> None:
    pooled = bouncer.url(db_url)
    with capture_logs() as logs:
        running = reactors.start(
            replace(
                settings,
                database_url=pooled,  # and so the listen URL too
                phase_tasks=reactor_tasks.MODULE,
                sweep_interval=HOUR,  # only polling can find the runs
                listener_check_interval=timedelta(seconds=1),
                heartbeat_interval=timedelta(seconds=1),
                concurrency=4,
                metrics_port=0,
            )
        )
        report = wait_until(
            lambda: healthz_when(running, 503, lambda r: r["listener_problem"] is not None),
            timeout=30,
            what="/healthz degraded by a deaf listener",
        )
        assert report is not None
        assert (report["status"], report["listener_hears"], report["polling"]) == (
            "degraded",
            False,
            True,
        )

        make_ready_many(engine, RUNS)
        wait_until(lambda: completed(engine) == RUNS, timeout=60, what=f"{RUNS} runs COMPLETED")
        wait_until(  # a few more proofs, each lost too: still one line
            lambda: (
                running.sample("prometheus_service_failures_total") == 0
                and running.reactor.listener_check.rounds >= 4
            ),
            what="more listener checks",
        )
        deaf = [e for e in logs if e["event"] == "listener.deaf"]
    assert len(deaf) == 1, deaf
    assert "PROMETHEUS_LISTEN_URL" in deaf[0]["hint"]
    assert "transaction pooler" in deaf[0]["hint"]
    assert running.sample("prometheus_polls_total") > 0
    assert running.sample("prometheus_listener_hears") == 0
    assert_exactly_once(engine, running.reactor_id)

    checked = invoke(capsys, db_url, "check")
    assert checked.code == 1
    assert any(line.startswith("LISTENER_DEAF: reactor ") for line in checked.out.splitlines())


def healthz_when(
    running: RunningReactor, code: int, condition: Callable[[dict[str, Any]], bool]
) -> dict[str, Any] | None:
    status, report = running.healthz()
    return report if status == code and condition(report) else None


def make_ready_many(engine: Engine, runs: int) -> None:
    with engine.begin() as conn:  # many statements per pooled connection: past any
        for offset in range(runs):  # prepare threshold, on every server connection
            run = get_or_create_run(conn, DAY + timedelta(days=offset), "US", actor="test")
            update_phase(conn, run, Phase.DATA_READY, actor="test")


def completed(engine: Engine) -> int:
    with engine.connect() as conn:
        done: int = conn.execute(
            text("SELECT count(*) FROM engine_runs WHERE phase = 'COMPLETED'")
        ).scalar_one()
        return done


def assert_exactly_once(engine: Engine, reactor_id: str) -> None:
    """No failed attempt, and each run stepped through its three phases once, by it."""
    with engine.connect() as conn:
        failed_attempts = conn.execute(
            text("SELECT count(*) FROM engine_run_events WHERE kind = 'attempt_failed'")
        ).scalar_one()
        per_run = conn.execute(
            text(
                "SELECT count(*) FILTER (WHERE actor = :reactor) AS steps, count(*) AS n"
                " FROM engine_run_events WHERE kind = 'transition'"
                " GROUP BY run_id"
            ),
            {"reactor": reactor_id},
        ).all()
    assert failed_attempts == 0
    assert len(per_run) == RUNS
    assert {(row.steps, row.n) for row in per_run} == {(3, 5)}  # created, ready, 3 phases


def test_server_side_prepared_statements_only_where_no_pooler_is_in_the_way(
    engine: Engine, pooled_engine: Engine
) -> None:
    """Direct connections keep psycopg's prepared statements (the hot path's planning,
    saved); behind PgBouncer they are off, or the next statement would run on a server
    connection that never saw the PREPARE (the 200-run test above fails then)."""

    def prepare_threshold(db: Engine) -> int | None:
        with db.connect() as conn, driver_connection(conn) as driver:
            return driver.prepare_threshold

    assert prepare_threshold(engine) == PREPARE_THRESHOLD
    assert prepare_threshold(pooled_engine) is None


READS = 20  # past psycopg's prepare threshold (5) several times over


def test_a_wait_reads_its_run_again_and_again_through_a_transaction_pooler(
    bouncer: PgBouncer, db_url: str, engine: Engine, pooled_engine: Engine
) -> None:
    """Without PROMETHEUS_LISTEN_URL a wait LISTENs (to no avail) and reads its run through
    the pooler, once per poll. Past psycopg's prepare threshold a read must still not be
    a server-side prepared statement: the pooler would run it on a server connection that
    never saw the PREPARE ("prepared statement ... does not exist"). Other clients keep
    the pooler's server connections changing hands meanwhile, as in any deployment."""
    runs = {region: get_or_create_run(engine, DAY, region, actor="test") for region in ("US", "EU")}
    pooled = bouncer.url(db_url)
    stop = threading.Event()

    def churn() -> None:
        while not stop.is_set():
            with pooled_engine.begin() as conn:
                conn.execute(text("SELECT pg_sleep(0.002)"))

    churners = [threading.Thread(target=churn, daemon=True) for _ in range(3)]
    for churner in churners:
        churner.start()
    try:
        with connect_listener(pooled, application_name="tests-pooled-wait") as conn:
            for _ in range(READS):  # each: LISTEN, one read of the run, out of time
                with pytest.raises(WaitTimedOut):
                    wait_for_phase(conn, DAY, "US", timeout=0)
            place(engine, runs["US"], Phase.COMPLETED)
            assert wait_for_phase(conn, DAY, "US", timeout=10).phase is Phase.COMPLETED

        async def await_through_the_pooler() -> Phase:
            async with await connect_listener_async(
                pooled, application_name="tests-pooled-await"
            ) as aconn:
                for _ in range(READS):
                    with pytest.raises(WaitTimedOut):
                        await await_phase(aconn, DAY, "EU", timeout=0)
                await asyncio.to_thread(place, engine, runs["EU"], Phase.COMPLETED)
                return (await await_phase(aconn, DAY, "EU", timeout=10)).phase

        assert asyncio.run(await_through_the_pooler()) is Phase.COMPLETED
    finally:
        stop.set()
        for churner in churners:
            churner.join(10)
