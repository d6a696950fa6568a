"""Ingestion test data: instruments, CSV files, and whole-table snapshots.

A snapshot is every row of every table ingestion can touch, so "nothing written" is
checked on the durable state itself, not on a count that a second write could cancel.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from sqlalchemy import Engine, text

from prometheus.config import libpq_url
from prometheus.ingestion import InstrumentRow, PriceRow, upsert_instruments

TABLES = (
    "instruments",
    "prices_daily",
    "region_datasets",
    "ingestion_batches",
    "engine_runs",
    "engine_run_events",
)
PRICES_HEADER = "instrument_id,open,high,low,close,volume"

Snapshot = dict[str, list[tuple[Any, ...]]]


def snapshot(db_url: str) -> Snapshot:
    with psycopg.connect(libpq_url(db_url)) as conn:
        return {
            table: sorted(
                conn.execute(sql.SQL("SELECT * FROM {}").format(sql.Identifier(table))).fetchall(),
                key=repr,
            )
            for table in TABLES
        }


def add_instruments(engine: Engine, region: str, ids: Sequence[str]) -> None:
    with engine.begin() as conn:
        upsert_instruments(conn, region, [InstrumentRow(i, f"SYM-{i}") for i in ids])


def price_rows(ids: Sequence[str], *, close: float = 10.0) -> list[PriceRow]:
    return [
        PriceRow(i, close, close * 1.05, close * 0.95, close, 1_000 + n) for n, i in enumerate(ids)
    ]


def write_prices(path: Path, rows: Sequence[PriceRow]) -> Path:
    lines = [PRICES_HEADER, *(",".join(str(v) for v in row) for row in rows)]
    path.write_text("\n".join(lines) + "\n")
    return path


@contextmanager
def listening(db_url: str, *channels: str) -> Iterator[psycopg.Connection[Any]]:
    """A real autocommit connection LISTENing on ``channels``."""
    with psycopg.connect(libpq_url(db_url), autocommit=True) as conn:
        for channel in channels:
            conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))
        yield conn


def drain(listener: psycopg.Connection[Any], engine: Engine) -> list[psycopg.Notify]:
    """Every notification delivered so far: send a sentinel on the listener's first
    channel from a new transaction and read up to it. Notifications arrive in commit
    order, so once the sentinel is in, everything committed before it is too."""
    channel = listener.execute("SELECT pg_listening_channels()").fetchone()
    assert channel is not None
    with engine.begin() as conn:
        conn.execute(text("SELECT pg_notify(:channel, 'sentinel')"), {"channel": channel[0]})
    received: list[psycopg.Notify] = []
    for notify in listener.notifies(timeout=30):
        if notify.payload == "sentinel":
            return received
        received.append(notify)
    raise AssertionError(f"no sentinel within 30s; received {len(received)} notification(s)")
