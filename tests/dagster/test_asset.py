"""``materialize()`` of one (date, region) partition of ``engine_run_asset`` against a real
database, with a real reactor process completing the run."""

from __future__ import annotations

from datetime import date

import pytest

dg = pytest.importorskip("dagster", reason="the dagster extra is not installed")

from sqlalchemy import Engine  # noqa: E402

from prometheus.integrations.dagster import (  # noqa: E402
    RESOURCE_KEY,
    PrometheusResource,
    engine_run_asset,
)
from prometheus.pipeline.phases import Phase  # noqa: E402
from prometheus.pipeline.state import (  # noqa: E402
    find_run,
    get_or_create_run,
    run_events,
    update_phase,
)
from tests.support.reactor_process import ReactorProcesses  # noqa: E402

DAY = date(2026, 11, 24)
ASSET = engine_run_asset(regions=("US", "EU"), start_date="2026-11-02")


def resources(timeout: float = 30.0) -> dict[str, object]:
    database_url = dg.EnvVar("PROMETHEUS_DATABASE_URL")  # resolved when the run starts
    return {RESOURCE_KEY: PrometheusResource(database_url=database_url, timeout=timeout)}


@pytest.fixture
def database_env(db_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("PROMETHEUS_DATABASE_URL", db_url)
    return db_url


def test_materializing_a_partition_makes_the_run_ready_and_waits_for_completed(
    engine: Engine, database_env: str, reactors: ReactorProcesses
) -> None:
    reactors.start()
    result = dg.materialize([ASSET], partition_key="2026-11-24|US", resources=resources())

    assert result.success
    run = find_run(engine, DAY, "US")
    assert run is not None and run.phase is Phase.COMPLETED
    [materialization] = result.asset_materializations_for_node("prometheus__engine_run")
    assert materialization.partition == "2026-11-24|US"
    assert materialization.metadata["run_id"].value == run.run_id
    first = run_events(engine, run.run_id)[0]
    assert first.actor == "dagster:prometheus/engine_run"


def test_a_failed_run_fails_the_materialization_without_retries(
    engine: Engine, database_env: str
) -> None:
    run = get_or_create_run(engine, DAY, "EU", actor="test")
    update_phase(engine, run, Phase.FAILED, actor="test", detail={"error": "vendor file empty"})
    with pytest.raises(dg.Failure, match=r"run \d+ \(2026-11-24 EU\) is FAILED") as failed:
        dg.materialize([ASSET], partition_key="2026-11-24|EU", resources=resources())
    assert failed.value.allow_retries is False


def test_a_holiday_of_the_regions_exchange_fails_saying_so(
    engine: Engine, database_env: str
) -> None:
    with pytest.raises(dg.Failure, match=r"2026-11-26 \(Thursday\) is not a trading day for US"):
        dg.materialize([ASSET], partition_key="2026-11-26|US", resources=resources())
    assert find_run(engine, date(2026, 11, 26), "US") is None
