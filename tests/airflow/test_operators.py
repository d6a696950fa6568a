"""``MarkDataReadyOperator`` and ``AdvanceRunOperator``: ``execute()`` on a real database.

The operators read their database when they execute: ``PROMETHEUS_DATABASE_URL`` in the
environment (``database_env``), or an Airflow connection (``AIRFLOW_CONN_*``).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import date

import pytest

pytest.importorskip("airflow", reason="the airflow extra is not installed")

from airflow.sdk.exceptions import AirflowException, AirflowFailException
from sqlalchemy import Engine

from prometheus.integrations.airflow.operators import (
    AdvanceRunOperator,
    MarkDataReadyOperator,
)
from prometheus.pipeline.phases import Phase
from prometheus.pipeline.state import (
    ensure_run,
    find_run,
    get_or_create_run,
    run_events,
)
from tests.airflow.conftest import task_context
from tests.support import reactor_tasks

DAY = date(2026, 11, 24)


@pytest.fixture
def phase_tasks(monkeypatch: pytest.MonkeyPatch) -> None:
    """The no-op test tasks (failing where a plan says so) for steps run in this process."""
    monkeypatch.setenv("PROMETHEUS_PHASE_TASKS", reactor_tasks.MODULE)
    monkeypatch.setenv("PROMETHEUS_RETRY_BASE_SECONDS", "0")


def test_mark_data_ready_creates_the_run_ready_in_the_tasks_name(
    database_env: str, engine: Engine
) -> None:
    op = MarkDataReadyOperator(task_id="ready_us", as_of_date=DAY.isoformat(), region="us")
    record = op.execute(task_context("ready_us"))
    assert (record["as_of_date"], record["region"], record["phase"]) == (
        "2026-11-24",
        "US",
        "DATA_READY",
    )
    events = run_events(engine, record["run_id"])
    assert [(e.to_phase, e.actor) for e in events] == [
        ("WAITING_FOR_DATA", "airflow:tests.ready_us"),
        ("DATA_READY", "airflow:tests.ready_us"),
    ]


def test_an_airflow_connection_names_the_database(
    db_url: str, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PROMETHEUS_DATABASE_URL", raising=False)
    monkeypatch.setenv("AIRFLOW_CONN_PROMETHEUS_TEST", db_url)
    op = MarkDataReadyOperator(
        task_id="ready", as_of_date=DAY, region="EU", conn_id="prometheus_test"
    )
    assert op.execute(task_context())["phase"] == "DATA_READY"
    run = find_run(engine, DAY, "EU")
    assert run is not None and run.phase is Phase.DATA_READY


@pytest.mark.parametrize(
    ("as_of_date", "region", "message"),
    [
        ("2026-13-01", "US", "invalid as_of_date '2026-13-01'"),
        ("2026-11-28", "US", r"2026-11-28 \(Saturday\) is not a trading day"),
        ("2026-11-24", "ZZ", "unknown region 'ZZ'"),
    ],
)
def test_bad_input_fails_the_task_without_retries(
    database_env: str, engine: Engine, as_of_date: str, region: str, message: str
) -> None:
    op = MarkDataReadyOperator(task_id="ready", as_of_date=as_of_date, region=region)
    with pytest.raises(AirflowFailException, match=message):
        op.execute(task_context())
    assert find_run(engine, date(2026, 11, 28), "US") is None


def test_without_a_database_the_task_says_what_to_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PROMETHEUS_DATABASE_URL", raising=False)
    op = MarkDataReadyOperator(task_id="ready", as_of_date=DAY, region="US")
    with pytest.raises(AirflowFailException, match="set PROMETHEUS_DATABASE_URL"):
        op.execute(task_context())


def test_advance_takes_one_step(database_env: str, engine: Engine, phase_tasks: None) -> None:
    ensure_run(engine, DAY, "US", data_ready=True, actor="test")
    op = AdvanceRunOperator(task_id="advance", as_of_date=DAY, region="US")
    assert op.execute(task_context())["phase"] == "SIGNALS_DONE"
    assert op.execute(task_context())["phase"] == "UNIVERSES_DONE"


def test_a_failed_attempt_fails_the_task_for_a_retry_and_a_failed_run_for_good(
    database_env: str, engine: Engine, phase_tasks: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = ensure_run(engine, DAY, "US", data_ready=True, actor="test")
    reactor_tasks.plan(engine, run.run_id, "DATA_READY", failures=5)
    op = AdvanceRunOperator(task_id="advance", as_of_date=DAY, region="US")
    with pytest.raises(AirflowException, match="planned failure 1 of 5") as first:
        op.execute(task_context())
    assert not isinstance(first.value, AirflowFailException)  # Airflow may retry it

    monkeypatch.setenv("PROMETHEUS_MAX_ATTEMPTS", "2")
    with pytest.raises(AirflowFailException, match=r"is FAILED after 2 attempt.*failure 2 of 5"):
        op.execute(task_context())


def test_advance_until_completed_drives_the_run_without_a_reactor(
    database_env: str, engine: Engine, phase_tasks: None
) -> None:
    get_or_create_run(engine, DAY, "US", actor="test")  # its data is not in yet
    op = AdvanceRunOperator(
        task_id="drive", as_of_date=DAY, region="US", until_completed=True, poll_interval=60
    )
    with ThreadPoolExecutor(max_workers=1) as pool:
        driving = pool.submit(op.execute, task_context("drive"))
        ensure_run(engine, DAY, "US", data_ready=True, actor="ingestion")
        record = driving.result(timeout=10)  # woken by DATA_READY's notification
    assert record["phase"] == "COMPLETED"
    actors = [e.actor for e in run_events(engine, record["run_id"])]
    assert actors[-3:] == ["airflow:tests.drive"] * 3
