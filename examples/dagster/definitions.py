"""Stage 3 with Dagster: engine runs as an asset partitioned by date and region.

``dagster dev -m examples.dagster.definitions`` (with ``PROMETHEUS_DATABASE_URL`` set)
shows one asset, ``prometheus/engine_run``, with a partition per weekday and region.
Materializing a partition declares the run's data in and waits, on a LISTEN, for the
reactor to take it to COMPLETED. Where ingestion makes runs ready by itself, use
``mark_ready=False`` and list the ingestion assets in ``deps``. The sensor records, as
materializations, the runs the engine completed without Dagster.
"""

from __future__ import annotations

import dagster as dg

from prometheus.integrations.dagster import (
    RESOURCE_KEY,
    PrometheusResource,
    completed_runs_sensor,
    engine_run_asset,
)

engine_run = engine_run_asset(regions=("US", "EU"), start_date="2026-01-01")

defs = dg.Definitions(
    assets=[engine_run],
    sensors=[completed_runs_sensor(engine_run)],
    resources={
        RESOURCE_KEY: PrometheusResource(database_url=dg.EnvVar("PROMETHEUS_DATABASE_URL")),
    },
)
