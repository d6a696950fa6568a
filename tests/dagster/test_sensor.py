"""``completed_runs_sensor`` through ``build_sensor_context``: it reports the runs the
engine COMPLETED that Dagster has not recorded, as materializations of their partitions."""

from __future__ import annotations

from datetime import date

import pytest

dg = pytest.importorskip("dagster", reason="the dagster extra is not installed")

from sqlalchemy import Engine  # noqa: E402

from prometheus.integrations.dagster import (  # noqa: E402
    RESOURCE_KEY,
    PrometheusResource,
    completed_runs_sensor,
    engine_run_asset,
)
from prometheus.pipeline.phases import NEXT, Phase  # noqa: E402
from prometheus.pipeline.state import get_or_create_run, update_phase  # noqa: E402

DAY = date(2026, 11, 24)
ASSET = engine_run_asset(regions=("US", "EU"), start_date="2026-11-02")
SENSOR = completed_runs_sensor(ASSET)


def completed(engine: Engine, region: str, day: date = DAY) -> int:
    run = get_or_create_run(engine, day, region, actor="test")
    while run.phase is not Phase.COMPLETED:
        run = update_phase(engine, run, NEXT[run.phase], actor="reactor")
    return run.run_id


def evaluate(instance: object, db_url: str) -> object:
    resource = PrometheusResource(database_url=db_url)
    context = dg.build_sensor_context(instance=instance, resources={RESOURCE_KEY: resource})
    return SENSOR(context)


def test_the_sensor_reports_completed_runs_that_dagster_has_not_recorded(
    engine: Engine, db_url: str
) -> None:
    us, eu = completed(engine, "US"), completed(engine, "EU")
    completed(engine, "JP")  # not a region of the asset
    get_or_create_run(engine, date(2026, 11, 25), "US", actor="test")  # not COMPLETED
    with dg.DagsterInstance.ephemeral() as instance:
        recorded = dg.AssetMaterialization(ASSET.key, partition="2026-11-24|US")
        instance.report_runless_asset_event(recorded)

        result = evaluate(instance, db_url)

    assert isinstance(result, dg.SensorResult)
    reported = [(e.partition, e.metadata["run_id"].value) for e in result.asset_events]
    assert reported == [("2026-11-24|EU", eu)]
    assert us != eu


def test_nothing_new_is_a_skip(engine: Engine, db_url: str) -> None:
    get_or_create_run(engine, DAY, "US", actor="test")
    with dg.DagsterInstance.ephemeral() as instance:
        result = evaluate(instance, db_url)
    assert isinstance(result, dg.SkipReason)
