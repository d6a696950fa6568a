"""Stage 3 with Airflow: each region's ingestion, a wait that holds no worker, a report.

Copy this file into your DAG folder (or point ``dags_folder`` here). Every weekday after
the close, for each region: load the vendor's prices into Prometheus, which makes the
run DATA_READY by itself once the region's last required dataset is in; wait for the
reactor to take the run to COMPLETED (a deferrable sensor: the wait sits in the
triggerer on a LISTEN, and the task resumes milliseconds after the COMPLETED commit);
then report. Nothing here decides anything about the run: the engine does.

``dag_run.conf`` may name the date and the drop folder:
``{"as_of_date": "2026-11-24", "incoming": "/srv/vendor"}``; by default the run's own
date and ``/srv/prometheus/incoming``. Workers and the triggerer need
``PROMETHEUS_DATABASE_URL`` (or give the operators a ``conn_id``).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from airflow.sdk import DAG, task

from prometheus.integrations.airflow.connection import task_engine, task_settings
from prometheus.integrations.airflow.sensors import EngineRunSensor

REGIONS = ("US", "EU")
AS_OF = "{{ dag_run.conf.get('as_of_date') or ds }}"
INCOMING = "{{ dag_run.conf.get('incoming', '/srv/prometheus/incoming') }}"


@task
def ingest_prices(region: str, as_of_date: str, incoming: str) -> int:
    """Load ``<incoming>/<date>/prices_<region>.csv``: rows and batch row in one commit."""
    # Imported when the task runs: the scheduler parses this file often, and quickly.
    from prometheus.ingestion import load_prices, read_prices_csv

    day = date.fromisoformat(as_of_date)
    rows = read_prices_csv(Path(incoming) / as_of_date / f"prices_{region}.csv")
    with task_engine(task_settings(None)) as engine:
        batch = load_prices(engine, rows, as_of_date=day, region=region)
    return batch.row_count


@task
def report(region: str, as_of_date: str) -> dict[str, Any]:
    """What downstream wants to know: the run, and how long each of its phases took."""
    from prometheus.pipeline.state import find_run, run_events

    with task_engine(task_settings(None)) as engine:
        run = find_run(engine, date.fromisoformat(as_of_date), region)
        assert run is not None, "the sensor saw it COMPLETED"
        events = run_events(engine, run.run_id)
    seconds = {
        str(e.from_phase): e.detail["duration_s"]
        for e in events
        if e.kind == "transition" and "duration_s" in e.detail
    }
    return {"run_id": run.run_id, "phase": str(run.phase), "phase_seconds": seconds}


with DAG(
    dag_id="prometheus_daily",
    schedule="30 22 * * 1-5",  # after the last close of the regions, UTC
    start_date=datetime(2026, 1, 1),
    catchup=False,
    tags=["prometheus"],
) as dag:
    for region in REGIONS:
        loaded = ingest_prices.override(task_id=f"ingest_prices_{region}")(
            region=region, as_of_date=AS_OF, incoming=INCOMING
        )
        completed = EngineRunSensor(
            task_id=f"wait_completed_{region}",
            as_of_date=AS_OF,
            region=region,
            timeout=timedelta(hours=6),  # then the task fails, saying where the run is
        )
        reported = report.override(task_id=f"report_{region}")(region=region, as_of_date=AS_OF)
        loaded >> completed >> reported
