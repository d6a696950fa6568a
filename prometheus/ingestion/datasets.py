"""What each region requires before its runs can start (``region_datasets``).

Changing the list re-checks the region's waiting runs in the database (a trigger): a
run blocked on a dataset that is dropped, or whose required datasets are already in,
turns DATA_READY in the same transaction. Require a region's datasets in one call, so
the check sees the whole list at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Engine

from prometheus.db.queries import query
from prometheus.ingestion.batches import check_dataset_name


@dataclass(frozen=True)
class RegionDataset:
    region: str
    dataset: str


def require_datasets(engine: Engine, region: str, datasets: Sequence[str]) -> list[str]:
    """Add requirements (safe to repeat); return the ones that were new."""
    names = [check_dataset_name(d) for d in dict.fromkeys(datasets)]
    with engine.begin() as conn:
        params = {"region": region, "datasets": names}
        return sorted(conn.execute(query("require_datasets"), params).scalars())


def drop_datasets(engine: Engine, region: str, datasets: Sequence[str]) -> list[str]:
    """Remove requirements; return the ones that were there."""
    with engine.begin() as conn:
        params = {"region": region, "datasets": list(dict.fromkeys(datasets))}
        return sorted(conn.execute(query("drop_datasets"), params).scalars())


def region_datasets(engine: Engine, region: str | None = None) -> list[RegionDataset]:
    with engine.connect() as conn:
        rows = conn.execute(query("region_datasets"), {"region": region})
        return [RegionDataset(**r._mapping) for r in rows]
