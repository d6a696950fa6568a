"""Batch rows: how an ingestion job says "dataset D for date and region is done".

A job writes its data and its batch row; the trigger on ``ingestion_batches``
(sql/triggers/0005_ingestion_readiness.sql) does everything else: it notifies
``prometheus_ingestion`` and, when the last required dataset turns COMPLETE, moves the
run to DATA_READY in the job's own transaction. Nothing here knows about runs.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from typing import Any

import structlog
from sqlalchemy import Connection, Engine, Row
from sqlalchemy.exc import SQLAlchemyError

from prometheus.config import redact_urls
from prometheus.db.queries import query
from prometheus.errors import InputError
from prometheus.logs import get_logger

log = get_logger(__name__)

_DATASET = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")


class BatchStatus(StrEnum):
    RUNNING = "RUNNING"
    COMPLETE = "COMPLETE"
    FAILED = "FAILED"


@dataclass(frozen=True)
class BatchKey:
    dataset: str
    as_of_date: date
    region: str


@dataclass(frozen=True)
class BatchRecord:
    """One row of ``ingestion_batches``."""

    dataset: str
    as_of_date: date
    region: str
    status: BatchStatus
    row_count: int
    started_at: datetime
    completed_at: datetime | None

    @classmethod
    def from_row(cls, row: Row[Any]) -> BatchRecord:
        m = row._mapping
        return cls(
            dataset=m["dataset"],
            as_of_date=m["as_of_date"],
            region=m["region"],
            status=BatchStatus(m["status"]),
            row_count=m["row_count"],
            started_at=m["started_at"],
            completed_at=m["completed_at"],
        )


@dataclass
class Batch:
    """An open batch, handed to the job's ``with`` block.

    ``conn`` is in the transaction that will mark the batch: what the job writes through
    it commits together with the batch row (and so with the run turning DATA_READY), or
    not at all. ``rows`` is what the job says it wrote; it becomes ``row_count``.
    """

    key: BatchKey
    conn: Connection
    rows: int = 0
    record: BatchRecord | None = field(default=None, init=False)


def check_dataset_name(dataset: str) -> str:
    """Dataset names are identifiers an operator types: refuse anything else up front."""
    if not _DATASET.match(dataset):
        raise InputError(
            f"invalid dataset name {dataset!r}: letters, digits and _ . : - (at most 64)"
        )
    return dataset


def mark_batches(
    conn: Connection,
    keys: Sequence[BatchKey],
    status: BatchStatus,
    *,
    rows: Sequence[int] | None = None,
) -> list[BatchRecord]:
    """Upsert many batch rows in one statement, in the caller's transaction.

    One statement means one trigger pass: a backfill completing 50 dates notifies once
    per date and region, and each run it completes turns DATA_READY in this transaction.
    """
    if len(set(keys)) != len(keys):
        raise InputError("the same batch appears twice in one mark_batches call")
    counts = list(rows) if rows is not None else [0] * len(keys)
    if len(counts) != len(keys):
        raise ValueError("rows must give one count per key")
    for key in keys:
        check_dataset_name(key.dataset)
    result = conn.execute(
        query("mark_batches"),
        {
            "status": str(status),
            "datasets": [k.dataset for k in keys],
            "as_of_dates": [k.as_of_date for k in keys],
            "regions": [k.region for k in keys],
            "row_counts": counts,
        },
    )
    return [BatchRecord.from_row(r) for r in result]


@contextmanager
def ingestion_batch(
    engine: Engine, dataset: str, as_of_date: date, region: str, *, partial: bool = False
) -> Iterator[Batch]:
    """Run one ingestion job's batch: RUNNING now, COMPLETE on success, FAILED on error.

    ``with ingestion_batch(engine, "prices", day, "US") as batch: ...; batch.rows += n``

    The RUNNING mark commits on its own, so ``ingest status`` shows the job while it
    runs (and a rerun of data a started run used is recorded as a regression). The
    job then writes through ``batch.conn`` (or on connections of its own), and the
    COMPLETE mark commits in ``batch.conn``'s transaction: data and completion are
    atomic. ``partial=True`` commits the rows but leaves the batch RUNNING, for a job
    that loads a dataset in several pieces. On any exception the job's writes on
    ``batch.conn`` roll back and the batch is marked FAILED in a new transaction, so
    the mark survives the rollback; the exception propagates.
    """
    key = BatchKey(check_dataset_name(dataset), as_of_date, region)
    with structlog.contextvars.bound_contextvars(
        dataset=dataset, as_of_date=as_of_date.isoformat(), region=region
    ):
        with engine.begin() as conn:
            mark_batches(conn, [key], BatchStatus.RUNNING)
        log.debug("batch.started")
        try:
            with engine.connect() as conn:
                batch = Batch(key, conn)
                with conn.begin():
                    yield batch
                    final = BatchStatus.RUNNING if partial else BatchStatus.COMPLETE
                    (record,) = mark_batches(conn, [key], final, rows=[batch.rows])
        except BaseException as exc:  # re-raised: a job interrupted any way has failed
            _mark_failed(engine, key, exc)
            raise
        batch.record = record
        log.info("batch.committed", status=str(record.status), rows=batch.rows)


def _mark_failed(engine: Engine, key: BatchKey, exc: BaseException) -> None:
    """Record the failure; if even that is impossible (the database is gone), say so and
    let the original error through: the batch then stays RUNNING, visible as stale."""
    error = redact_urls(f"{type(exc).__name__}: {exc}".splitlines()[0])
    try:
        with engine.begin() as conn:
            mark_batches(conn, [key], BatchStatus.FAILED)
    except SQLAlchemyError as mark_error:
        log.error("batch.failure_unrecorded", error=error, mark_error=str(mark_error))
        return
    log.error("batch.failed", error=error)


@dataclass(frozen=True)
class DatasetState:
    """A row of ``ingest status``: a batch, or a required dataset with none (MISSING)."""

    as_of_date: date
    region: str
    dataset: str
    required: bool
    status: str  # a BatchStatus, or MISSING
    row_count: int | None
    started_at: datetime | None
    completed_at: datetime | None
    run_phase: str | None


def dataset_states(
    engine: Engine,
    *,
    as_of_date: date | None = None,
    region: str | None = None,
    limit: int = 100,
) -> list[DatasetState]:
    """Batches and missing required datasets, newest date first."""
    params = {"as_of_date": as_of_date, "region": region, "limit": limit}
    with engine.connect() as conn:
        return [DatasetState(**r._mapping) for r in conn.execute(query("dataset_states"), params)]
