"""The example ``Definitions`` load, with the asset's (date, region) partitions."""

from __future__ import annotations

import pytest

dg = pytest.importorskip("dagster", reason="the dagster extra is not installed")

from examples.dagster.definitions import defs  # noqa: E402
from prometheus.integrations.dagster import engine_run_partitions  # noqa: E402


def test_the_example_definitions_load(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROMETHEUS_DATABASE_URL", "postgresql://engine@db.example/prod")
    dg.Definitions.validate_loadable(defs)
    keys = defs.resolve_asset_graph().get_all_asset_keys()
    assert keys == {dg.AssetKey(["prometheus", "engine_run"])}


def test_partitions_are_weekdays_by_region() -> None:
    partitions = engine_run_partitions(["us", "EU"], "2026-11-23")
    assert partitions.has_partition_key("2026-11-24|US")
    assert partitions.has_partition_key("2026-11-24|EU")
    assert not partitions.has_partition_key("2026-11-28|US")  # a Saturday
    assert not partitions.has_partition_key("2026-11-24|JP")
