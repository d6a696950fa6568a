"""Ingestion: validate files, write data and batch rows; the database does the rest.

An ingestion job only writes its data and its ``ingestion_batches`` row. The trigger on
that table notifies ``prometheus_ingestion`` and, when the last dataset a region requires
for a date turns COMPLETE, creates the run and moves it to DATA_READY in the job's own
transaction (sql/triggers/0005_ingestion_readiness.sql). The reactor takes it from there.

The public API is re-exported here:

- ``ingestion_batch(engine, dataset, as_of_date, region, partial=False)``: the context
  manager a job runs in (RUNNING, then COMPLETE, or FAILED on an exception);
- ``check_prices_target``: what ``ingest prices`` refuses (a closed day, a dataset the
  region does not require) before anything is written;
- ``copy_prices(conn, as_of_date, rows)``, ``load_prices``, ``load_instruments``,
  ``read_prices_csv``, ``read_instruments_csv``: the ``ingest`` commands' steps;
- ``mark_batches``: many batch rows in one statement (backfills);
- ``require_datasets``, ``drop_datasets``, ``region_datasets``: what a region needs;
- ``dataset_states``: for ``ingest status`` (``prometheus check`` reports regressions).
"""

from prometheus.ingestion.batches import (
    Batch,
    BatchKey,
    BatchRecord,
    BatchStatus,
    DatasetState,
    check_dataset_name,
    dataset_states,
    ingestion_batch,
    mark_batches,
)
from prometheus.ingestion.csvfiles import (
    CsvRows,
    InstrumentRow,
    InvalidCsv,
    PriceRow,
    Problem,
    read_instruments_csv,
    read_prices_csv,
)
from prometheus.ingestion.datasets import (
    RegionDataset,
    drop_datasets,
    region_datasets,
    require_datasets,
)
from prometheus.ingestion.loads import (
    PRICES_DATASET,
    check_prices_target,
    copy_prices,
    load_instruments,
    load_prices,
    upsert_instruments,
)

__all__ = [
    "PRICES_DATASET",
    "Batch",
    "BatchKey",
    "BatchRecord",
    "BatchStatus",
    "CsvRows",
    "DatasetState",
    "InstrumentRow",
    "InvalidCsv",
    "PriceRow",
    "Problem",
    "RegionDataset",
    "check_dataset_name",
    "check_prices_target",
    "copy_prices",
    "dataset_states",
    "drop_datasets",
    "ingestion_batch",
    "load_instruments",
    "load_prices",
    "mark_batches",
    "read_instruments_csv",
    "read_prices_csv",
    "region_datasets",
    "require_datasets",
    "upsert_instruments",
]
