"""The Dagster integration of Prometheus engine runs (extra ``dagster``).

- ``PrometheusResource``: the engine-runs database (give it
  ``EnvVar("PROMETHEUS_DATABASE_URL")``: Dagster resolves it when a run starts and never
  shows it), with how long an asset waits for a run;
- ``engine_run_asset``: an asset partitioned by date (weekdays) and region whose
  materialization marks the run data-ready (or only waits, ``mark_ready=False``, where
  ingestion makes runs ready) and waits for COMPLETED, on a LISTEN woken by the engine's
  NOTIFY; a FAILED run fails it with the run's last error;
- ``completed_runs_sensor``: reports as materializations the runs the engine completed
  without Dagster (a reactor, cron), so the asset's partitions show what is done.

Nothing here decides anything about a run: it asks the engine, through the
orchestrator-neutral helpers of ``prometheus.orchestration``.

No ``from __future__ import annotations`` here: Dagster reads the asset's and the
sensor's parameter annotations at definition time to inject the context and the resource.
"""

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from typing import Any

import dagster as dg
from pydantic import Field
from sqlalchemy import Engine

from prometheus.config import Settings
from prometheus.db.connect import connect_listener, make_engine
from prometheus.errors import InputError
from prometheus.orchestration.completions import completed_since
from prometheus.orchestration.steering import mark_data_ready
from prometheus.orchestration.waiting import RunFailed, wait_for_phase
from prometheus.pipeline.phases import Phase
from prometheus.pipeline.runs import Run

DATE = "date"
REGION = "region"
RESOURCE_KEY = "prometheus"
APPLICATION_NAME = "prometheus-dagster"


class PrometheusResource(dg.ConfigurableResource):
    """The engine-runs database, and how long an asset waits for a run."""

    database_url: str = Field(
        description="The PostgreSQL URL; give it as EnvVar('PROMETHEUS_DATABASE_URL')."
    )
    listen_url: str | None = Field(
        default=None,
        description="Where waits LISTEN, if database_url goes through a transaction pooler"
        " (EnvVar('PROMETHEUS_LISTEN_URL')); by default database_url.",
    )
    poll_interval: float = Field(
        default=30.0, description="Seconds between reads of a waited-for run (the backstop)."
    )
    timeout: float = Field(default=6 * 3600.0, description="Seconds an asset waits for a run.")

    def settings(self) -> Settings:
        """This process's ``PROMETHEUS_*`` settings, on this resource's database."""
        return Settings.from_process_env().with_database_url(self.database_url)

    @contextmanager
    def engine(self) -> Iterator[Engine]:
        engine = make_engine(self.database_url, application_name=APPLICATION_NAME, pool_size=1)
        try:
            yield engine
        finally:
            engine.dispose()

    def mark_data_ready(self, day: date, region: str, *, actor: str) -> Run:
        with self.engine() as engine:
            return mark_data_ready(engine, day, region, settings=self.settings(), actor=actor)

    def wait_for_completed(self, day: date, region: str) -> Run:
        """The run once COMPLETED; RunFailed if FAILED, WaitTimedOut after ``timeout``."""
        listen = self.listen_url or self.database_url
        with connect_listener(listen, application_name=APPLICATION_NAME) as conn:
            return wait_for_phase(
                conn,
                day,
                region,
                Phase.COMPLETED,
                timeout=self.timeout,
                poll_interval=self.poll_interval,
            )

    def completed_since(self, since: datetime) -> list[Run]:
        with self.engine() as engine:
            return completed_since(engine, since)


def engine_run_partitions(regions: Sequence[str], start_date: str) -> dg.MultiPartitionsDefinition:
    """(date, region): weekdays from ``start_date``, and the given regions. A weekday the
    region's exchange does not trade (a holiday) fails to materialize, saying so."""
    return dg.MultiPartitionsDefinition(
        {
            DATE: dg.TimeWindowPartitionsDefinition(
                cron_schedule="0 0 * * 1-5", start=start_date, fmt="%Y-%m-%d"
            ),
            REGION: dg.StaticPartitionsDefinition([r.upper() for r in regions]),
        }
    )


def engine_run_asset(
    *,
    regions: Sequence[str],
    start_date: str,
    name: str = "engine_run",
    key_prefix: Sequence[str] = ("prometheus",),
    deps: Sequence[Any] = (),
    mark_ready: bool = True,
) -> dg.AssetsDefinition:
    """An asset per (date, region) whose materialization is the engine run reaching
    COMPLETED. ``deps`` are upstream assets (the day's ingestion) to run first."""

    partitions = engine_run_partitions(regions, start_date)

    @dg.asset(
        name=name,
        key_prefix=list(key_prefix),
        partitions_def=partitions,
        deps=list(deps),
        description="The engine run of the partition's date and region, COMPLETED.",
        kinds={"postgres"},
    )
    def engine_run(
        context: dg.AssetExecutionContext, prometheus: PrometheusResource
    ) -> dg.MaterializeResult:
        keys = partitions.get_partition_key_from_str(context.partition_key).keys_by_dimension
        day, region = date.fromisoformat(keys[DATE]), keys[REGION]
        actor = f"dagster:{context.asset_key.to_user_string()}"
        try:
            if mark_ready:
                prometheus.mark_data_ready(day, region, actor=actor)
            run = prometheus.wait_for_completed(day, region)
        except (InputError, RunFailed) as exc:
            # No retry can fix these: a day the exchange does not trade, a FAILED run
            # (until someone runs `prometheus runs retry`).
            raise dg.Failure(description=str(exc), allow_retries=False) from None
        return dg.MaterializeResult(metadata=run_metadata(run))

    return engine_run


def completed_runs_sensor(
    asset: dg.AssetsDefinition,
    *,
    name: str = "prometheus_completed_runs",
    window: timedelta = timedelta(days=7),
    minimum_interval_seconds: int = 30,
) -> dg.SensorDefinition:
    """Report the runs COMPLETED within ``window`` whose partition of ``asset`` Dagster
    has not materialized: those the engine completed without Dagster. A run completed
    again later (after ``prometheus runs retry``) is not reported a second time."""
    partitions = asset.partitions_def
    assert isinstance(partitions, dg.MultiPartitionsDefinition), "an engine_run_asset"

    @dg.sensor(
        name=name,
        minimum_interval_seconds=minimum_interval_seconds,
        description=f"Runs the engine COMPLETED, as materializations of {asset.key}.",
    )
    def report(
        context: dg.SensorEvaluationContext, prometheus: PrometheusResource
    ) -> dg.SensorResult | dg.SkipReason:
        recorded = context.instance.get_materialized_partitions(asset.key)
        events = []
        for run in prometheus.completed_since(datetime.now(UTC) - window):
            key = dg.MultiPartitionKey({DATE: run.as_of_date.isoformat(), REGION: run.region})
            if key not in recorded and partitions.has_partition_key(key):
                metadata = run_metadata(run)
                events.append(dg.AssetMaterialization(asset.key, partition=key, metadata=metadata))
        if not events:
            return dg.SkipReason("no COMPLETED run that Dagster has not recorded")
        return dg.SensorResult(asset_events=events)

    return report


def run_metadata(run: Run) -> dict[str, Any]:
    return {
        "run_id": run.run_id,
        "phase": str(run.phase),
        "attempts": run.attempts,
        "completed_at": dg.TimestampMetadataValue(run.phase_changed_at.timestamp()),
    }
