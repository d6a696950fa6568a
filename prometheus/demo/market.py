"""Synthetic but plausible end-of-day prices: a seeded random walk per instrument.

Deterministic for a seed, so two demos show the same books.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from datetime import date

from prometheus.ingestion import InstrumentRow, PriceRow


def instruments(region: str, count: int) -> list[InstrumentRow]:
    return [InstrumentRow(f"{region}{n:04d}", f"{region[:1]}SYM{n:04d}") for n in range(count)]


def price_history(
    names: Sequence[InstrumentRow], days: Sequence[date], *, seed: int
) -> dict[date, list[PriceRow]]:
    """Prices for every instrument on every day: closes follow a random walk whose drift
    and volatility differ per instrument, so signals and books have something to rank."""
    rng = random.Random(seed)
    by_day: dict[date, list[PriceRow]] = {day: [] for day in days}
    for instrument in names:
        close = rng.uniform(10, 500)
        drift = rng.gauss(0.0004, 0.001)
        volatility = rng.uniform(0.005, 0.04)
        volume = rng.randint(50_000, 5_000_000)
        for day in days:
            previous = close
            close = max(0.5, close * math.exp(rng.gauss(drift, volatility)))
            spread = close * volatility * rng.uniform(0.2, 1.0)
            by_day[day].append(
                PriceRow(
                    instrument_id=instrument.instrument_id,
                    open=round(previous, 4),
                    high=round(max(previous, close) + spread, 4),
                    low=round(max(0.01, min(previous, close) - spread), 4),
                    close=round(close, 4),
                    volume=int(volume * rng.uniform(0.5, 1.5)),
                )
            )
    return by_day
