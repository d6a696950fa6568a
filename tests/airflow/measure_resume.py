"""Measure how long a deferred ``EngineRunSensor`` takes to resume after its run's
COMPLETED commit, in ``dag.test()`` of the example DAG (Airflow runs triggers inline there).

    .venv-airflow/bin/python -m tests.airflow.measure_resume [--runs 7]

Each round loads a new day's prices for US and EU (the database makes both runs
DATA_READY), then runs the DAG with no reactor up: the first sensor defers, and once its
trigger waits on the run, a reactor process starts and completes the runs. The latency is
from the run's ``phase_changed_at`` (the COMPLETED transition, committed with it) to the
entry of the sensor's ``execute_complete``, both read on this host's clock (and, apart,
to the trigger's event: the notification's share of it). The other
region's sensor finds its run COMPLETED without deferring and is not counted.
Prints one JSON object: the latencies in milliseconds, and min/median/max.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from tests.airflow import conftest  # sets Airflow's environment before Airflow loads
from tests.airflow.test_example_dag import (
    REGIONS,
    example_dag,
    start_reactor_once_a_trigger_waits,
)
from tests.support.ingestion_data import add_instruments, price_rows, write_prices
from tests.support.reactor_process import ReactorProcesses
from tests.support.servers import postgres_server

FIRST_DAY = date(2026, 11, 2)  # a Monday; rounds take the weekdays after it


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    conftest.migrate_airflow_metadata()

    from prometheus.db.connect import make_engine
    from prometheus.db.databases import scratch_database
    from prometheus.ingestion import require_datasets
    from prometheus.integrations.airflow.sensors import EngineRunSensor
    from prometheus.integrations.airflow.triggers import EngineRunPhaseTrigger
    from prometheus.pipeline.state import find_run

    resumed: dict[str, float] = {}
    fired: dict[str, float] = {}
    original = EngineRunSensor.execute_complete
    original_run = EngineRunPhaseTrigger.run

    def timed(self: EngineRunSensor, context: Any, event: dict[str, Any]) -> dict[str, Any]:
        resumed[event["run"]["region"]] = time.time()
        return original(self, context, event)

    async def timed_run(self: EngineRunPhaseTrigger) -> AsyncIterator[Any]:
        async for event in original_run(self):
            fired[self.region] = time.time()
            yield event

    EngineRunSensor.execute_complete = timed  # type: ignore[method-assign]
    EngineRunPhaseTrigger.run = timed_run  # type: ignore[method-assign]
    latencies: list[float] = []
    wakes: list[float] = []
    with postgres_server() as server, scratch_database(server) as db_url:
        os.environ["PROMETHEUS_DATABASE_URL"] = db_url  # the DAG's tasks read it
        engine = make_engine(db_url, application_name="measure-resume", pool_size=2)
        for region in REGIONS:
            add_instruments(engine, region, [f"{region}{n:03d}" for n in range(3)])
            require_datasets(engine, region, ["prices"])
        days = [d for d in (FIRST_DAY + timedelta(n) for n in range(60)) if d.weekday() < 5]
        for day in days[: args.runs]:
            resumed.clear()
            with tempfile.TemporaryDirectory() as tmp:
                incoming = Path(tmp) / "incoming"
                (incoming / day.isoformat()).mkdir(parents=True)
                for region in REGIONS:
                    rows = price_rows([f"{region}{n:03d}" for n in range(3)])
                    write_prices(incoming / day.isoformat() / f"prices_{region}.csv", rows)
                reactors = ReactorProcesses(db_url, Path(tmp))
                try:
                    with ThreadPoolExecutor(max_workers=1) as pool:
                        started = pool.submit(start_reactor_once_a_trigger_waits, db_url, reactors)
                        dag_run = example_dag().test(
                            run_conf={"as_of_date": day.isoformat(), "incoming": str(incoming)}
                        )
                        started.result(timeout=60)
                finally:
                    reactors.close()
            assert dag_run.state == "success", dag_run.state
            [(region, at)] = resumed.items()  # the one sensor that deferred
            run = find_run(engine, day, region)
            assert run is not None
            latencies.append((at - run.phase_changed_at.timestamp()) * 1000)
            wakes.append((fired[region] - run.phase_changed_at.timestamp()) * 1000)
        engine.dispose()
    print(
        json.dumps(
            {
                "resume_after_completed_ms": [round(x, 1) for x in latencies],
                "min": round(min(latencies), 1),
                "median": round(statistics.median(latencies), 1),
                "max": round(max(latencies), 1),
                "trigger_fired_after_completed_ms": [round(x, 1) for x in wakes],
            }
        )
    )


if __name__ == "__main__":
    main()
