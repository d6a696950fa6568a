"""``EngineRunSensor``: it defers to the trigger (``TaskDeferred``), resumes in
``execute_complete`` with the trigger's real event, and pokes when not deferrable."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import date, timedelta
from typing import Any

import pytest

pytest.importorskip("airflow", reason="the airflow extra is not installed")

from airflow.sdk.exceptions import (
    AirflowFailException,
    AirflowSensorTimeout,
    TaskDeferred,
)
from sqlalchemy import Engine

from prometheus.config import Settings
from prometheus.integrations.airflow.sensors import EngineRunSensor
from prometheus.integrations.airflow.triggers import EngineRunPhaseTrigger
from prometheus.pipeline.phases import Phase
from prometheus.pipeline.state import (
    advance_run,
    ensure_run,
    get_or_create_run,
    update_phase,
)
from tests.airflow.conftest import Fire, task_context
from tests.support import reactor_tasks

DAY = date(2026, 11, 24)
WAKE = 10.0


def sensor(**kwargs: Any) -> EngineRunSensor:
    arguments: dict[str, Any] = {
        "as_of_date": "{{ ds }}",
        "region": "US",
        "poke_interval": 60,
        "timeout": timedelta(minutes=5),
    }
    return EngineRunSensor(task_id="wait_completed", **{**arguments, **kwargs})


def deferred(op: EngineRunSensor) -> TaskDeferred:
    with pytest.raises(TaskDeferred) as caught:
        op.execute(task_context("wait_completed"))
    return caught.value


def trigger_of(op: EngineRunSensor) -> EngineRunPhaseTrigger:
    trigger = deferred(op).trigger
    assert isinstance(trigger, EngineRunPhaseTrigger)
    return trigger


def test_the_sensor_defers_to_the_trigger_with_no_password(
    engine: Engine, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The test server trusts every client, so a password in the URL changes nothing
    # but what could leak.
    with_password = db_url.replace("postgres@", "postgres:s3cret@")
    assert "s3cret" in with_password
    monkeypatch.setenv("PROMETHEUS_DATABASE_URL", with_password)
    get_or_create_run(engine, DAY, "US", actor="test")

    deferral = deferred(sensor(as_of_date=DAY.isoformat()))

    assert deferral.method_name == "execute_complete"
    assert isinstance(deferral.trigger, EngineRunPhaseTrigger)
    assert deferral.timeout == timedelta(minutes=5)
    classpath, kwargs = deferral.trigger.serialize()
    assert classpath == "prometheus.integrations.airflow.triggers.EngineRunPhaseTrigger"
    assert {k: kwargs[k] for k in ("as_of_date", "region", "phase", "poll_interval")} == {
        "as_of_date": "2026-11-24",
        "region": "US",
        "phase": "COMPLETED",
        "poll_interval": 60.0,
    }
    assert "s3cret" not in json.dumps(kwargs)


def test_a_run_already_there_is_returned_without_deferring(
    engine: Engine, database_env: str
) -> None:
    run = get_or_create_run(engine, DAY, "US", actor="test")
    for phase in (Phase.DATA_READY, Phase.SIGNALS_DONE):
        run = update_phase(engine, run, phase, actor="test")
    record = sensor(as_of_date=DAY, phase="DATA_READY").execute(task_context())
    assert (record["run_id"], record["phase"]) == (run.run_id, "SIGNALS_DONE")


def test_execute_complete_returns_the_completed_run(
    engine: Engine, database_env: str, fire: Fire
) -> None:
    run = get_or_create_run(engine, DAY, "US", actor="test")
    op = sensor(as_of_date=DAY)
    event = fire(trigger_of(op))
    for phase in (Phase.DATA_READY, Phase.SIGNALS_DONE, Phase.UNIVERSES_DONE, Phase.COMPLETED):
        run = update_phase(engine, run, phase, actor="test")

    record = op.execute_complete(task_context(), event.result(timeout=WAKE))
    assert (record["run_id"], record["phase"]) == (run.run_id, "COMPLETED")


def test_execute_complete_fails_the_task_with_the_runs_last_error(
    engine: Engine, database_env: str, settings: Settings, fire: Fire
) -> None:
    run = ensure_run(engine, DAY, "US", data_ready=True, actor="test")
    reactor_tasks.plan(engine, run.run_id, "DATA_READY", failures=1)
    op = sensor(as_of_date=DAY)
    event = fire(trigger_of(op))
    one_attempt = replace(settings, phase_tasks=reactor_tasks.MODULE, max_attempts=1)
    advance_run(engine, run.run_id, settings=one_attempt, actor="test")

    with pytest.raises(AirflowFailException, match=r"FAILED after 1 attempt.*planned failure"):
        op.execute_complete(task_context(), event.result(timeout=WAKE))


def test_execute_complete_of_a_timeout_is_a_sensor_timeout(
    engine: Engine, database_env: str, fire: Fire
) -> None:
    ensure_run(engine, DAY, "US", data_ready=True, actor="test")
    op = sensor(as_of_date=DAY, timeout=timedelta(seconds=0.5))
    event = fire(trigger_of(op))
    with pytest.raises(AirflowSensorTimeout, match=r"within 0\.5s \(it is DATA_READY\)"):
        op.execute_complete(task_context(), event.result(timeout=WAKE))


def test_without_deferral_it_pokes(engine: Engine, database_env: str) -> None:
    op = sensor(as_of_date=DAY, deferrable=False)
    assert not op.poke(task_context())  # no run yet
    run = get_or_create_run(engine, DAY, "US", actor="test")
    assert not op.poke(task_context())
    run = update_phase(engine, run, Phase.FAILED, actor="test", detail={"reason": "test"})
    with pytest.raises(AirflowFailException, match="is FAILED"):
        op.poke(task_context())


def test_failed_is_not_a_phase_to_wait_for() -> None:
    with pytest.raises(ValueError, match="a FAILED run fails the task"):
        sensor(phase="FAILED")
