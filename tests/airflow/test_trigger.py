"""``EngineRunPhaseTrigger`` as the triggerer runs it: rebuilt from ``serialize()``, woken
by the engine's NOTIFY, backed by its poll, and never given a password.

Each trigger runs in an event loop of its own thread (``fire``) and is known to be
waiting once its backend is idle after reading the run. Poll intervals of a minute and
deadlines of 30 s leave the notification as the only way to an event within ``WAKE``.
"""

from __future__ import annotations

import importlib
import json
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

import psycopg
import pytest

pytest.importorskip("airflow", reason="the airflow extra is not installed")

from sqlalchemy import Engine

from prometheus.config import Settings
from prometheus.integrations.airflow.triggers import EngineRunPhaseTrigger
from prometheus.pipeline.phases import NEXT, Phase
from prometheus.pipeline.state import (
    advance_run,
    ensure_run,
    get_or_create_run,
    get_run,
    update_phase,
)
from tests.airflow.conftest import Fire
from tests.support import reactor_tasks
from tests.support.reactor_process import ReactorProcesses
from tests.support.waiting import wait_until, waiting_on_a_run

DAY = date(2026, 11, 24)
WAKE = 10.0  # the deadline for an event that a notification brings in milliseconds


def trigger(*, poll_interval: float = 60.0, in_seconds: float = 30.0, **kwargs: Any) -> Any:
    deadline = datetime.now(UTC) + timedelta(seconds=in_seconds)
    return EngineRunPhaseTrigger(
        as_of_date=DAY.isoformat(),
        region=kwargs.pop("region", "US"),
        poll_interval=poll_interval,
        deadline=deadline.isoformat(),
        **kwargs,
    )


def walk(engine: Engine, run_id: int, to: Phase, *, notify: bool = True) -> None:
    run = get_run(engine, run_id)
    assert run is not None
    while run.phase is not to:
        run = update_phase(engine, run, NEXT[run.phase], actor="test", notify=notify)


def test_serialize_round_trips_and_carries_no_password(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PROMETHEUS_DATABASE_URL", "postgresql://engine:s3cret@db.example/prod")
    original = trigger(conn_id="prometheus_prod", phase="SIGNALS_DONE")
    classpath, kwargs = original.serialize()
    module, _, name = classpath.rpartition(".")
    rebuilt = getattr(importlib.import_module(module), name)(**kwargs)
    assert rebuilt.serialize() == (classpath, kwargs)
    text = json.dumps(kwargs)  # what the metadata database stores
    assert "s3cret" not in text and "db.example" not in text
    assert kwargs["conn_id"] == "prometheus_prod"


def test_the_notification_wakes_it_long_before_its_poll(
    engine: Engine, database_env: str, reactors: ReactorProcesses, fire: Fire
) -> None:
    reactors.start()
    run = get_or_create_run(engine, DAY, "US", actor="test")
    waiting = fire(trigger())

    ensure_run(engine, DAY, "US", data_ready=True, actor="test")  # the reactor does the rest

    event = waiting.result(timeout=WAKE)
    assert event["status"] == "reached"
    assert (event["run"]["run_id"], event["run"]["phase"]) == (run.run_id, "COMPLETED")


def test_a_missed_notification_is_made_up_for_by_the_poll(
    engine: Engine, database_env: str, fire: Fire
) -> None:
    run = get_or_create_run(engine, DAY, "US", actor="test")
    waiting = fire(trigger(poll_interval=0.2))
    walk(engine, run.run_id, Phase.COMPLETED, notify=False)  # nobody is told
    assert waiting.result(timeout=WAKE)["status"] == "reached"


def test_a_failed_run_fires_with_its_last_error(
    engine: Engine, database_env: str, settings: Settings, fire: Fire
) -> None:
    run = ensure_run(engine, DAY, "US", data_ready=True, actor="test")
    reactor_tasks.plan(engine, run.run_id, "DATA_READY", failures=1)
    waiting = fire(trigger())
    one_attempt = replace(settings, phase_tasks=reactor_tasks.MODULE, max_attempts=1)
    advance_run(engine, run.run_id, settings=one_attempt, actor="test")

    event = waiting.result(timeout=WAKE)
    assert event["status"] == "failed"
    assert "planned failure 1 of 1 in DATA_READY" in event["message"]
    assert event["run"]["last_error"].endswith("planned failure 1 of 1 in DATA_READY")


def test_the_deadline_fires_a_timeout_that_says_where_the_run_is(
    engine: Engine, database_env: str, fire: Fire
) -> None:
    ensure_run(engine, DAY, "US", data_ready=True, actor="test")
    event = fire(trigger(in_seconds=0.5, poll_interval=0.1)).result(timeout=WAKE)
    assert event["status"] == "timeout"
    assert "did not reach COMPLETED" in event["message"]
    assert "(it is DATA_READY)" in event["message"]


def test_a_lost_connection_is_made_again_and_the_wait_goes_on(
    engine: Engine, database_env: str, db_url: str, fire: Fire
) -> None:
    run = get_or_create_run(engine, DAY, "US", actor="test")
    armed = trigger()
    waiting = fire(armed)
    with psycopg.connect(db_url, autocommit=True) as admin:
        admin.execute(
            "SELECT pg_terminate_backend(pid, 10000) FROM pg_stat_activity"
            " WHERE application_name = %s",
            (armed.application_name,),
        )
    assert not waiting.done()
    # The old backend is gone (terminate waited for it): this is the new connection.
    wait_until(lambda: waiting_on_a_run(db_url, armed.application_name), what="reconnected")
    walk(engine, run.run_id, Phase.COMPLETED)
    assert waiting.result(timeout=WAKE)["status"] == "reached"
