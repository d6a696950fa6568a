"""Airflow tests: a metadata database of their own, the example DAGs as the DAG folder.

Airflow reads its configuration when it is first imported, and the test modules import
it while pytest collects them (``pytest.importorskip``), so the environment is set when
pytest loads this file: ``AIRFLOW_HOME`` in a temporary directory with a SQLite metadata
database, and ``examples/airflow/dags`` as the DAG folder (since 3.1 ``dag.test()`` runs
only a DAG that is in a bundle). ``airflow db migrate`` (Airflow's own CLI: tests use no
Airflow internals) builds the metadata database once per session, for the tests that
need it.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

import pytest

from tests.support.reactor_process import reactors as reactors
from tests.support.waiting import wait_until, waiting_on_a_run

if TYPE_CHECKING:
    from prometheus.integrations.airflow.triggers import EngineRunPhaseTrigger

REPO = Path(__file__).resolve().parents[2]
DAGS_FOLDER = REPO / "examples" / "airflow" / "dags"
AIRFLOW_HOME = Path(tempfile.mkdtemp(prefix="prometheus-airflow-home-"))
AIRFLOW = str(Path(sys.executable).parent / "airflow")

os.environ.update(
    AIRFLOW_HOME=str(AIRFLOW_HOME),
    AIRFLOW__CORE__DAGS_FOLDER=str(DAGS_FOLDER),
    AIRFLOW__CORE__LOAD_EXAMPLES="False",
    AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=f"sqlite:///{AIRFLOW_HOME}/airflow.db",
)


def pytest_sessionfinish() -> None:
    shutil.rmtree(AIRFLOW_HOME, ignore_errors=True)


@pytest.fixture(scope="session")
def airflow_metadata() -> Path:
    """The migrated SQLite metadata database (``dag.test()`` records its run there)."""
    return migrate_airflow_metadata()


def migrate_airflow_metadata() -> Path:
    done = subprocess.run(
        [AIRFLOW, "db", "migrate"], env=os.environ, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-4000:]
    return AIRFLOW_HOME / "airflow.db"


@pytest.fixture
def database_env(db_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """``PROMETHEUS_DATABASE_URL`` for tasks and triggers that run in this process."""
    monkeypatch.setenv("PROMETHEUS_DATABASE_URL", db_url)
    yield db_url


def task_context(task_id: str = "task") -> Any:
    """What the operators read of an execution context: who is asking."""
    return {"ti": SimpleNamespace(dag_id="tests", task_id=task_id)}


Fire = Callable[["EngineRunPhaseTrigger"], Future[dict[str, Any]]]


@pytest.fixture
def fire(db_url: str) -> Iterator[Fire]:
    """Run a trigger in an event loop of its own thread, as the triggerer would; return
    the future of its first event's payload once the trigger is waiting on the run."""
    pool = ThreadPoolExecutor(max_workers=2)

    def start(trigger: EngineRunPhaseTrigger) -> Future[dict[str, Any]]:
        future = pool.submit(asyncio.run, first_event(trigger))
        wait_until(
            lambda: future.done() or waiting_on_a_run(db_url, trigger.application_name),
            timeout=30,
            interval=0.01,
            what="the trigger waiting",
        )
        return future

    yield start
    pool.shutdown(wait=True)


async def first_event(trigger: EngineRunPhaseTrigger) -> dict[str, Any]:
    async for event in trigger.run():
        payload: dict[str, Any] = event.payload
        return payload
    raise AssertionError("the trigger ended without an event")
