"""``dag.test()`` of the example DAG, end to end: ingestion tasks load each region's
prices (the database makes the runs DATA_READY), the deferrable sensors wait, a real
reactor process completes the runs, the reports run, and the DAG run ends SUCCESS.

The reactor starts only once a sensor has deferred and its trigger waits on a run
(``dag.test()`` runs triggers inline): so a run is completed under a deferred sensor,
and only the engine's notification (or a poll a minute away) can wake it.
"""

from __future__ import annotations

import importlib.util
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from pathlib import Path
from typing import Any

import psycopg
import pytest

pytest.importorskip("airflow", reason="the airflow extra is not installed")

from sqlalchemy import Engine

from prometheus.ingestion import require_datasets
from prometheus.pipeline.phases import Phase
from prometheus.pipeline.state import find_run
from tests.airflow.conftest import DAGS_FOLDER
from tests.support.ingestion_data import add_instruments, price_rows, write_prices
from tests.support.reactor_process import ReactorProcess, ReactorProcesses
from tests.support.waiting import wait_until

DAY = date(2026, 11, 24)
REGIONS = ("US", "EU")

# dag.test() serves the task API in-process through starlette's test client, which warns
# that it wants httpx2; that is Airflow's business, not a failure of ours.
pytestmark = pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient`")


def example_dag() -> Any:
    path = DAGS_FOLDER / "prometheus_daily.py"
    spec = importlib.util.spec_from_file_location("prometheus_daily", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.dag


def vendor_drop(engine: Engine, incoming: Path) -> None:
    """Each region requires its prices; the vendor's files are in the drop folder."""
    folder = incoming / DAY.isoformat()
    folder.mkdir(parents=True)
    for region in REGIONS:
        ids = [f"{region}{n:03d}" for n in range(3)]
        add_instruments(engine, region, ids)
        require_datasets(engine, region, ["prices"])
        write_prices(folder / f"prices_{region}.csv", price_rows(ids))


def a_trigger_waits(db_url: str) -> bool:
    with psycopg.connect(db_url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT 1 FROM pg_stat_activity WHERE application_name LIKE %s"
            " AND state = 'idle' AND query LIKE %s",
            ("prometheus-airflow-trigger%", "%FROM engine_runs%"),
        ).fetchone()
    return row is not None


def start_reactor_once_a_trigger_waits(db_url: str, reactors: ReactorProcesses) -> ReactorProcess:
    wait_until(lambda: a_trigger_waits(db_url), timeout=60, interval=0.01, what="a trigger")
    return reactors.start()


def test_the_example_dag_ends_success_while_the_reactor_completes_the_runs(
    airflow_metadata: Path,
    engine: Engine,
    database_env: str,
    reactors: ReactorProcesses,
    tmp_path: Path,
) -> None:
    vendor_drop(engine, tmp_path / "incoming")
    dag = example_dag()
    with ThreadPoolExecutor(max_workers=1) as pool:
        reactor = pool.submit(start_reactor_once_a_trigger_waits, database_env, reactors)
        dag_run = dag.test(
            run_conf={"as_of_date": DAY.isoformat(), "incoming": str(tmp_path / "incoming")}
        )
        reactor.result(timeout=60)

    assert dag_run.state == "success"
    for region in REGIONS:
        run = find_run(engine, DAY, region)
        assert run is not None and run.phase is Phase.COMPLETED
