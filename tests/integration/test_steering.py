"""Declaring a run's data in and stepping it, as an orchestrator's task does, on a real
database: ``mark_data_ready``, ``advance`` (one step, or until it settles) and ``drive``
(step here until COMPLETED, for a site without a reactor)."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import date, datetime, timedelta, tzinfo
from typing import Any

import psycopg
import pytest
from sqlalchemy import Engine

from prometheus.calendar import UnknownRegion
from prometheus.config import Settings
from prometheus.db.connect import connect_listener
from prometheus.errors import NotATradingDay, RunNotFound
from prometheus.orchestration import steering
from prometheus.orchestration.steering import advance, drive, mark_data_ready
from prometheus.orchestration.waiting import RunFailed, WaitTimedOut
from prometheus.pipeline.phases import Phase
from prometheus.pipeline.state import (
    Outcome,
    Step,
    advance_run,
    find_run,
    get_or_create_run,
    run_events,
)
from tests.support import reactor_tasks

DAY = date(2026, 11, 24)  # a Tuesday
SATURDAY = date(2026, 11, 28)
ACTOR = "airflow:test"


@pytest.fixture
def task_settings(settings: Settings) -> Settings:
    return replace(settings, phase_tasks=reactor_tasks.MODULE)


@pytest.fixture
def listener(db_url: str) -> Iterator[psycopg.Connection[Any]]:
    with connect_listener(db_url, application_name="tests-driver") as conn:
        yield conn


def transitions(engine: Engine, run_id: int) -> list[tuple[str | None, str, str]]:
    return [
        (e.from_phase, e.to_phase, e.actor)
        for e in run_events(engine, run_id)
        if e.kind == "transition"
    ]


def test_mark_data_ready_creates_the_run_ready_once(engine: Engine, settings: Settings) -> None:
    run = mark_data_ready(engine, DAY, "US", settings=settings, actor=ACTOR)
    again = mark_data_ready(engine, DAY, "US", settings=settings, actor=ACTOR)
    assert run.phase is again.phase is Phase.DATA_READY
    assert run.run_id == again.run_id
    assert transitions(engine, run.run_id) == [
        (None, "WAITING_FOR_DATA", ACTOR),
        ("WAITING_FOR_DATA", "DATA_READY", ACTOR),
    ]


def test_mark_data_ready_refuses_a_day_the_exchange_does_not_trade(
    engine: Engine, settings: Settings
) -> None:
    with pytest.raises(NotATradingDay, match=r"2026-11-28 \(Saturday\) is not a trading day"):
        mark_data_ready(engine, SATURDAY, "US", settings=settings, actor=ACTOR)
    assert find_run(engine, SATURDAY, "US") is None
    forced = mark_data_ready(engine, SATURDAY, "US", settings=settings, actor=ACTOR, force=True)
    assert forced.phase is Phase.DATA_READY
    with pytest.raises(UnknownRegion, match="unknown region 'ZZ'"):
        mark_data_ready(engine, DAY, "ZZ", settings=settings, actor=ACTOR, force=True)


def test_advance_takes_one_step_or_steps_until_the_run_settles(
    engine: Engine, task_settings: Settings
) -> None:
    run = mark_data_ready(engine, DAY, "US", settings=task_settings, actor=ACTOR)
    one = advance(engine, DAY, "US", settings=task_settings, actor=ACTOR)
    assert (one.outcome, one.phase) == (Outcome.ADVANCED, Phase.DATA_READY)
    assert one.run is not None and one.run.phase is Phase.SIGNALS_DONE

    settled = advance(engine, DAY, "US", settings=task_settings, actor=ACTOR, until_settled=True)
    assert settled.run is not None and settled.run.phase is Phase.COMPLETED
    assert [t[1] for t in transitions(engine, run.run_id)][-2:] == ["UNIVERSES_DONE", "COMPLETED"]


def test_advance_until_settled_stops_at_a_failed_attempt_and_at_missing_data(
    engine: Engine, task_settings: Settings
) -> None:
    run = mark_data_ready(engine, DAY, "US", settings=task_settings, actor=ACTOR)
    reactor_tasks.plan(engine, run.run_id, "SIGNALS_DONE", failures=1)
    step = advance(engine, DAY, "US", settings=task_settings, actor=ACTOR, until_settled=True)
    assert step.outcome is Outcome.RETRY_SCHEDULED
    assert step.run is not None and step.run.phase is Phase.SIGNALS_DONE

    get_or_create_run(engine, DAY, "EU", actor="test")
    waiting = advance(engine, DAY, "EU", settings=task_settings, actor=ACTOR, until_settled=True)
    assert waiting.outcome is Outcome.WAITING


def test_advance_of_a_missing_run_is_run_not_found(engine: Engine, settings: Settings) -> None:
    with pytest.raises(RunNotFound, match="no run for 2026-11-24 JP"):
        advance(engine, DAY, "JP", settings=settings, actor=ACTOR)


def test_drive_waits_for_the_data_then_steps_the_run_to_completed(
    engine: Engine, task_settings: Settings, listener: psycopg.Connection[Any]
) -> None:
    get_or_create_run(engine, DAY, "US", actor="test")
    with ThreadPoolExecutor(max_workers=1) as pool:
        # The poll is far off: only the DATA_READY notification can wake the driver.
        driving = pool.submit(
            drive, engine, listener, DAY, "US",
            settings=task_settings, actor=ACTOR, timeout=30, poll_interval=60,
        )  # fmt: skip
        mark_data_ready(engine, DAY, "US", settings=task_settings, actor="ingestion")
        run = driving.result(timeout=10)  # far below the driver's poll and timeout
    assert run.phase is Phase.COMPLETED
    assert [t[2] for t in transitions(engine, run.run_id)][-3:] == [ACTOR] * 3


def test_drive_waits_out_a_backoff_and_retries(
    engine: Engine, task_settings: Settings, listener: psycopg.Connection[Any]
) -> None:
    backoff = replace(task_settings, retry_base=timedelta(seconds=0.3))
    run = mark_data_ready(engine, DAY, "US", settings=backoff, actor=ACTOR)
    reactor_tasks.plan(engine, run.run_id, "DATA_READY", failures=2)
    done = drive(
        engine, listener, DAY, "US", settings=backoff, actor=ACTOR, timeout=10, poll_interval=60
    )
    assert done.phase is Phase.COMPLETED
    failed = [e for e in run_events(engine, run.run_id) if e.kind == "attempt_failed"]
    assert len(failed) == 2


def test_drive_raises_when_the_run_fails_and_times_out_clearly(
    engine: Engine, task_settings: Settings, listener: psycopg.Connection[Any]
) -> None:
    run = mark_data_ready(engine, DAY, "US", settings=task_settings, actor=ACTOR)
    reactor_tasks.plan(engine, run.run_id, "UNIVERSES_DONE", failures=3)
    with pytest.raises(RunFailed, match="planned failure 3 of 3 in UNIVERSES_DONE"):
        drive(engine, listener, DAY, "US", settings=task_settings, actor=ACTOR, timeout=20)

    get_or_create_run(engine, DAY, "EU", actor="test")  # its data never comes
    with pytest.raises(WaitTimedOut, match=r"EU did not reach COMPLETED within 0\.3s"):
        drive(engine, listener, DAY, "EU", settings=task_settings, actor=ACTOR, timeout=0.3)


def test_drive_waits_out_a_backoff_on_the_databases_clock(
    engine: Engine,
    task_settings: Settings,
    listener: psycopg.Connection[Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The run's next_attempt_at was set by the database's clock, and the wait for it is
    measured by that clock too: a host clock an hour ahead (set here for the steering
    module, whatever it reads) must not turn a 3 s backoff into a step every 50 ms."""

    class HostAhead(datetime):
        @classmethod
        def now(cls, tz: tzinfo | None = None) -> HostAhead:
            return super().now(tz) + timedelta(hours=1)

    monkeypatch.setattr(steering, "datetime", HostAhead, raising=False)
    steps: list[Outcome] = []

    def counted(*args: Any, **kwargs: Any) -> Step:
        step = advance_run(*args, **kwargs)
        steps.append(step.outcome)
        return step

    monkeypatch.setattr(steering, "advance_run", counted)
    backoff = replace(task_settings, retry_base=timedelta(seconds=3))
    run = mark_data_ready(engine, DAY, "US", settings=backoff, actor=ACTOR)
    reactor_tasks.plan(engine, run.run_id, "DATA_READY", failures=1)
    done = drive(
        engine, listener, DAY, "US", settings=backoff, actor=ACTOR, timeout=30, poll_interval=60
    )
    assert done.phase is Phase.COMPLETED
    # The failed attempt, the three phases after the backoff, and at most a step or two
    # that find the backoff ending (the clocks of one database and one wait): not ~60.
    assert steps.count(Outcome.RETRY_SCHEDULED) == 1
    assert steps.count(Outcome.ADVANCED) == 3
    assert steps.count(Outcome.BACKING_OFF) <= 2, steps
