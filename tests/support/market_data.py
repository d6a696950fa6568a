"""Deterministic instruments and daily prices for the reference tasks (no randomness)."""

from __future__ import annotations

import math
from datetime import date, timedelta

from sqlalchemy import Connection, Engine, text

_INSERT_INSTRUMENT = text(
    "INSERT INTO instruments (instrument_id, region, symbol) VALUES (:id, :region, :symbol)"
)
_INSERT_PRICE = text(
    "INSERT INTO prices_daily (instrument_id, as_of_date, open, high, low, close, volume)"
    " VALUES (:id, :day, :open, :high, :low, :close, :volume)"
)


def instrument_ids(region: str, count: int) -> list[str]:
    return [f"{region}{n:04d}" for n in range(count)]


def seed_instruments(
    conn: Connection,
    region: str,
    ids: list[str],
    as_of: date,
    *,
    days: int = 30,
    volume: int = 200_000,
) -> None:
    """Instruments with ``days`` consecutive daily closes ending on ``as_of``.

    Each instrument gets its own drift and wiggle, so returns, volatilities and liquidity
    all differ and the rankings are strict.
    """
    conn.execute(_INSERT_INSTRUMENT, [{"id": i, "region": region, "symbol": i} for i in ids])
    rows = []
    for k, instrument in enumerate(ids):
        close = 50.0 + 7.0 * k
        for d in range(days):
            day = as_of - timedelta(days=days - 1 - d)
            close *= 1.0 + 0.002 * (k % 5 - 2) + 0.01 * (1 + k % 3) * math.sin(d * (k + 1))
            rows.append(
                {
                    "id": instrument,
                    "day": day,
                    "open": close * 0.99,
                    "high": close * 1.02,
                    "low": close * 0.98,
                    "close": close,
                    "volume": volume + 1_000 * k,
                }
            )
    conn.execute(_INSERT_PRICE, rows)


def seed_region(engine: Engine, region: str, as_of: date, *, count: int = 5) -> None:
    """A few priced instruments for ``region``, so the reference signals have work to do
    (a run with no prices for its date fails: an empty book would be a silent error)."""
    with engine.begin() as conn:
        seed_instruments(conn, region, instrument_ids(region, count), as_of, days=5)
