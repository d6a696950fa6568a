"""``bench ingest``: what the project's triggers cost a price load.

Two scratch databases on the configured server, with the same tables and the same
indexes (sql/schema): one also has the trigger files (sql/triggers), the other has none.
Both load the same rows the way a real job does: each batch is one date's prices for
``batch`` instruments, written by COPY inside ``ingestion_batch`` (RUNNING, then COPY
and COMPLETE in one transaction). With the triggers, each COMPLETE batch also creates
the date's run and moves it to DATA_READY (audit rows, two NOTIFYs); the result says
how many runs that made ready, so a benchmark of triggers that did nothing cannot pass
for a good number.

Only the database path is timed (not making up the rows), one untimed warm-up batch
goes first on each side, and rounds alternate which side goes first (ABBA), so drift
(autovacuum, checkpoints, the page cache, other work on the machine) falls on both
alike. Besides the ratio of the totals, the median of the per-round ratios is given:
one burst of outside load moves it far less.
"""

from __future__ import annotations

import math
import statistics
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from prometheus.bench import Progress, silent
from prometheus.config import Settings
from prometheus.db.connect import make_engine
from prometheus.db.databases import create_database, drop_database, scratch_database
from prometheus.db.migrate import upgrade
from prometheus.db.queries import SQL_ROOT, query
from prometheus.errors import PrometheusError
from prometheus.ingestion import (
    PRICES_DATASET,
    InstrumentRow,
    PriceRow,
    copy_prices,
    ingestion_batch,
    require_datasets,
    upsert_instruments,
)

REGION = "BENCH"
FIRST_DAY = date(2000, 1, 3)


def measure_ingest(
    settings: Settings,
    *,
    rows: int = 1_000_000,
    batch: int = 10_000,
    rounds: int = 50,
    progress: Progress = silent,
) -> dict[str, Any]:
    """Load ``rows`` price rows each way; rows/s with and without triggers, and the ratio
    (above 1: the triggers slow the load down). ``rounds`` is at most one per batch."""
    assert settings.database_url is not None
    server_url = settings.database_url
    sizes = [min(batch, rows - start) for start in range(0, rows, batch)]
    rounds = min(rounds, len(sizes))
    with (
        scratch_database(server_url, prefix="prometheus_bench_trg") as with_url,
        _scratch_without_triggers(server_url) as without_url,
    ):
        engines = {
            "with": make_engine(with_url, application_name="prometheus-bench", pool_size=1),
            "without": make_engine(without_url, application_name="prometheus-bench", pool_size=1),
        }
        try:
            progress("preparing two scratch databases")
            for engine in engines.values():
                _prepare(engine, instruments=batch)
            per_round: list[dict[str, float]] = []
            for number, batches in enumerate(_split(list(enumerate(sizes, start=1)), rounds)):
                progress(f"round {number + 1}/{rounds}")
                order = ("with", "without") if number % 2 == 0 else ("without", "with")
                per_round.append({side: _load_all(engines[side], batches) for side in order})
            made_ready = _runs_made_ready(engines["with"], expected=len(sizes))
            _check_no_runs(engines["without"])
        finally:
            for engine in engines.values():
                engine.dispose()
    seconds = {side: sum(r[side] for r in per_round) for side in ("with", "without")}
    with_rate = rows / seconds["with"]
    without_rate = rows / seconds["without"]
    return {
        "rows": rows,
        "batch": batch,
        "batches": len(sizes),
        "rounds": rounds,
        "seconds_with_triggers": round(seconds["with"], 3),
        "seconds_without": round(seconds["without"], 3),
        "rows_per_s_with_triggers": round(with_rate, 1),
        "rows_per_s_without": round(without_rate, 1),
        "overhead_ratio": round(without_rate / with_rate, 4),
        "overhead_pct": round((without_rate / with_rate - 1) * 100, 2),
        # Robust to a burst of load from elsewhere on the machine: the median over rounds
        # of (time with triggers / time without) for the same batches, run back to back.
        "overhead_ratio_median_round": round(
            statistics.median(r["with"] / r["without"] for r in per_round), 4
        ),
        "runs_made_ready": made_ready,
    }


@contextmanager
def _scratch_without_triggers(server_url: str) -> Iterator[str]:
    """A scratch database upgraded from sql/schema alone: the tables and indexes, none of
    the trigger files (a migration root whose triggers folder is empty)."""
    name = f"prometheus_bench_bare_{uuid.uuid4().hex[:12]}"
    url = create_database(server_url, name)
    try:
        with tempfile.TemporaryDirectory(prefix="prometheus-schema-only-") as root:
            (Path(root) / "schema").symlink_to(SQL_ROOT / "schema", target_is_directory=True)
            engine = make_engine(url, application_name="prometheus-upgrade", pool_size=1)
            try:
                upgrade(engine, Path(root))
            finally:
                engine.dispose()
        yield url
    finally:
        drop_database(server_url, name)


def _prepare(engine: Engine, *, instruments: int) -> None:
    """The instrument master, the requirement, and one untimed warm-up batch."""
    ids = [_instrument(i) for i in range(instruments)]
    with engine.begin() as conn:
        upsert_instruments(conn, REGION, [InstrumentRow(i, i) for i in ids])
    require_datasets(engine, REGION, [PRICES_DATASET])
    _load(engine, 0, instruments)


def _load_all(engine: Engine, batches: list[tuple[int, int]]) -> float:
    return sum(_load(engine, day_number, size) for day_number, size in batches)


def _load(engine: Engine, day_number: int, size: int) -> float:
    """One job's batch: one date's prices for ``size`` instruments; seconds it took."""
    day = FIRST_DAY + timedelta(days=day_number)
    rows = [_price(i, day_number) for i in range(size)]
    started = time.perf_counter()
    with ingestion_batch(engine, PRICES_DATASET, day, REGION) as batch:
        batch.rows += copy_prices(batch.conn, day, rows)
    return time.perf_counter() - started


def _price(instrument: int, day_number: int) -> PriceRow:
    close = 20.0 + (instrument % 97) + 5.0 * math.sin(day_number + instrument)
    return PriceRow(_instrument(instrument), close, close * 1.01, close * 0.99, close, 1_000)


def _instrument(number: int) -> str:
    return f"BENCH{number:07d}"


def _split(items: list[tuple[int, int]], parts: int) -> list[list[tuple[int, int]]]:
    """``parts`` consecutive slices whose sizes differ by at most one."""
    size, extra = divmod(len(items), parts)
    slices, start = [], 0
    for part in range(parts):
        end = start + size + (1 if part < extra else 0)
        slices.append(items[start:end])
        start = end
    return slices


def _runs_made_ready(engine: Engine, *, expected: int) -> int:
    with engine.connect() as conn:
        counts = conn.execute(query("bench_ingest_runs")).one()
    ready = int(counts.ready) - 1  # the warm-up batch's run
    if ready != expected or counts.runs != counts.ready:
        raise PrometheusError(
            f"bench ingest: the triggers made {ready} run(s) ready, expected {expected}"
        )
    return ready


def _check_no_runs(engine: Engine) -> None:
    with engine.connect() as conn:
        counts = conn.execute(query("bench_ingest_runs")).one()
    if counts.runs:
        raise PrometheusError("bench ingest: the database without triggers created runs")
