"""Waiting for a run's phase (``wait_for_phase`` and ``await_phase``) on a real database.

Each test runs twice, once with the sync wait in a thread and once with the async wait
in an event loop of its own thread. A wait is known to be waiting (listening, the row
read once) when its backend is idle after the read: only then does a test change the
run, so a return can only come from a notification, or from the poll where the test
says so. Poll intervals of a minute with timeouts of 20 s make "woken by the
notification" the only way to succeed: a wait whose time runs out reads the row one last
time, so each test takes its result within ``WAKE`` seconds, a deadline far below the
waits' own timeout and poll interval.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace
from datetime import date
from typing import Any, Protocol

import psycopg
import pytest
from sqlalchemy import Engine

from prometheus.config import Settings
from prometheus.db.connect import connect_listener, connect_listener_async
from prometheus.errors import InputError
from prometheus.orchestration.waiting import (
    RunFailed,
    WaitTimedOut,
    await_phase,
    wait_for_phase,
)
from prometheus.pipeline.phases import NEXT, Phase
from prometheus.pipeline.state import advance_run, get_or_create_run, get_run, update_phase
from tests.support import reactor_tasks
from tests.support.inprocess import ReactorThreads
from tests.support.waiting import wait_until, waiting_on_a_run

DAY = date(2026, 11, 24)
WAITER = "tests-waiter"
NEVER = 60.0  # a poll interval longer than any wait's timeout
TIMEOUT = 30.0  # the waits' own timeout
WAKE = 10.0  # the deadline for a wait's result: a notification wakes it in milliseconds


class Waits(Protocol):
    def __call__(
        self, region: str, phase: Phase = ..., *, timeout: float, poll_interval: float = ...
    ) -> Future[Any]: ...


@pytest.fixture(params=["sync", "async"])
def start_wait(request: pytest.FixtureRequest, db_url: str) -> Iterator[Waits]:
    """Start a wait in the background; its future holds the run or the exception."""
    pool = ThreadPoolExecutor(max_workers=4)
    count = 0

    def start(
        region: str,
        phase: Phase = Phase.COMPLETED,
        *,
        timeout: float,
        poll_interval: float = NEVER,
    ) -> Future[Any]:
        nonlocal count
        count += 1
        name = f"{WAITER}-{count}"
        if request.param == "sync":

            def wait() -> Any:
                with connect_listener(db_url, application_name=name) as conn:
                    return wait_for_phase(
                        conn, DAY, region, phase, timeout=timeout, poll_interval=poll_interval
                    )

        else:

            async def await_it() -> Any:
                conn = await connect_listener_async(db_url, application_name=name)
                async with conn:
                    return await await_phase(
                        conn, DAY, region, phase, timeout=timeout, poll_interval=poll_interval
                    )

            def wait() -> Any:
                return asyncio.run(await_it())

        future = pool.submit(wait)
        wait_until(
            lambda: future.done() or waiting_on_a_run(db_url, name),
            timeout=30,
            interval=0.01,
            what=f"{name} waiting",
        )
        return future

    yield start
    pool.shutdown(wait=True)


@pytest.fixture
def task_settings(settings: Settings) -> Settings:
    return replace(settings, phase_tasks=reactor_tasks.MODULE, max_attempts=1)


def walk(engine: Engine, run_id: int, to: Phase, *, notify: bool = True) -> None:
    """Move the run along the line to ``to``, one audited transition at a time."""
    run = get_run(engine, run_id)
    assert run is not None
    while run.phase is not to:
        run = update_phase(engine, run, NEXT[run.phase], actor="test", notify=notify)


def new_run(engine: Engine, region: str) -> int:
    return get_or_create_run(engine, DAY, region, actor="test").run_id


def test_a_run_already_past_the_phase_is_returned_at_once(
    engine: Engine, start_wait: Waits
) -> None:
    run_id = new_run(engine, "US")
    walk(engine, run_id, Phase.COMPLETED)
    run = start_wait("US", Phase.SIGNALS_DONE, timeout=0).result(timeout=WAKE)
    assert (run.run_id, run.phase) == (run_id, Phase.COMPLETED)


def test_a_reactor_completing_the_run_wakes_the_wait_long_before_its_poll(
    engine: Engine,
    start_wait: Waits,
    reactors: ReactorThreads,
    task_settings: Settings,
) -> None:
    reactor = reactors.start(replace(task_settings, metrics_port=0))
    reactor.wait_ready()
    run_id = new_run(engine, "US")
    wait = start_wait("US", timeout=TIMEOUT)

    walk(engine, run_id, Phase.DATA_READY)  # the reactor takes it from here

    run = wait.result(timeout=WAKE)
    assert (run.run_id, run.phase) == (run_id, Phase.COMPLETED)


def test_a_run_that_does_not_exist_yet_is_found_by_its_notifications(
    engine: Engine, start_wait: Waits
) -> None:
    wait = start_wait("EU", Phase.DATA_READY, timeout=TIMEOUT)
    other = new_run(engine, "US")  # another run's news does not end the wait
    walk(engine, other, Phase.DATA_READY)
    run_id = new_run(engine, "EU")
    walk(engine, run_id, Phase.DATA_READY)
    run = wait.result(timeout=WAKE)
    assert (run.run_id, run.phase) == (run_id, Phase.DATA_READY)


def test_a_missed_notification_is_made_up_for_by_the_poll(
    engine: Engine, db_url: str, start_wait: Waits
) -> None:
    run_id = new_run(engine, "US")
    with psycopg.connect(db_url, autocommit=True) as witness:
        witness.execute("LISTEN prometheus_engine_runs")
        wait = start_wait("US", timeout=TIMEOUT, poll_interval=0.2)

        walk(engine, run_id, Phase.COMPLETED, notify=False)  # every transition silent

        run = wait.result(timeout=WAKE)
        assert (run.run_id, run.phase) == (run_id, Phase.COMPLETED)
        assert list(witness.notifies(timeout=0.2)) == []  # it was the poll


def test_a_failed_run_ends_the_wait_with_its_last_error(
    engine: Engine, start_wait: Waits, task_settings: Settings
) -> None:
    run_id = new_run(engine, "US")
    reactor_tasks.plan(engine, run_id, "DATA_READY", failures=1)
    walk(engine, run_id, Phase.DATA_READY)
    wait = start_wait("US", timeout=TIMEOUT)

    advance_run(engine, run_id, settings=task_settings, actor="test")  # its only attempt

    with pytest.raises(RunFailed, match="planned failure 1 of 1 in DATA_READY") as failed:
        wait.result(timeout=WAKE)
    assert failed.value.run.phase is Phase.FAILED


def test_noise_on_the_channel_does_not_end_the_wait(
    engine: Engine, db_url: str, start_wait: Waits
) -> None:
    run_id = new_run(engine, "US")
    wait = start_wait("US", timeout=TIMEOUT)
    with psycopg.connect(db_url, autocommit=True) as conn:
        for garbage in ("not json", '{"run_id": "x"}', '{"run_id": 999999, "phase": "COMPLETED"}'):
            conn.execute("SELECT pg_notify('prometheus_engine_runs', %s)", (garbage,))
    walk(engine, run_id, Phase.COMPLETED)
    assert wait.result(timeout=WAKE).phase is Phase.COMPLETED


def test_the_timeout_says_where_the_run_is(engine: Engine, start_wait: Waits) -> None:
    run_id = new_run(engine, "US")
    walk(engine, run_id, Phase.DATA_READY)
    wait = start_wait("US", timeout=0.5, poll_interval=0.1)
    with pytest.raises(WaitTimedOut, match=r"2026-11-24 US did not reach COMPLETED within 0.5s"):
        wait.result(timeout=WAKE)
    assert "(it is DATA_READY)" in str(wait.exception())


def test_a_connection_in_a_transaction_is_refused(db_url: str) -> None:
    with (
        psycopg.connect(db_url) as conn,
        pytest.raises(InputError, match="autocommit"),
    ):
        wait_for_phase(conn, DAY, "US", timeout=1)
