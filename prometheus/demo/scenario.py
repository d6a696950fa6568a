"""The demo's scenario: set up, start a reactor, ingest day after day, report.

Everything goes through the product's own paths: ``require_datasets`` configures the
regions, ``ingestion_batch`` writes data as an ingestion job would, and the database's
readiness trigger plus the reactor do the rest. Nothing here advances a run.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta

from sqlalchemy import Engine

from prometheus.calendar import TradingCalendar
from prometheus.config import Settings
from prometheus.db.connect import make_engine
from prometheus.db.databases import create_database, drop_database, upgrade_database
from prometheus.db.queries import query
from prometheus.demo import market
from prometheus.errors import InputError, PrometheusError
from prometheus.ingestion import (
    PriceRow,
    copy_prices,
    ingestion_batch,
    require_datasets,
    upsert_instruments,
)
from prometheus.orchestration.engine_daemon import Reactor
from prometheus.percentiles import percentile
from prometheus.pipeline.phases import Phase
from prometheus.pipeline.state import Run

DATASETS = ("prices", "features")  # a run is ready once both are COMPLETE
HISTORY_SESSIONS = 25  # the signals task looks back 20 returns
POLL_S = 0.1
DEMO_PREFIX = "prometheus_demo"


@dataclass(frozen=True)
class DemoOptions:
    days: int = 5
    instruments: int = 300
    regions: tuple[str, ...] = ("US", "EU")
    pace_s: float = 0.4
    database_name: str = "prometheus_demo"
    keep: bool = False
    timeout_s: float = 45.0
    seed: int = 7


@dataclass(frozen=True)
class BookLine:
    symbol: str
    instrument_id: str
    weight: float


@dataclass(frozen=True)
class DemoResult:
    database_url: str
    runs_completed: int
    runs_expected: int
    latency_p50_ms: float
    latency_p99_ms: float
    elapsed_s: float
    book_run: Run | None
    book: list[BookLine] = field(default_factory=list)


@dataclass
class _Plan:
    """Per region: the days the demo ingests, and every day's prices."""

    days: dict[str, list[date]] = field(default_factory=dict)
    prices: dict[str, dict[date, list[PriceRow]]] = field(default_factory=dict)

    @property
    def runs(self) -> int:
        return sum(len(days) for days in self.days.values())


Progress = Callable[[Sequence[Run]], None]


def run_demo(settings: Settings, options: DemoOptions, *, progress: Progress) -> DemoResult:
    """Run the scenario on a database of its own; ``progress`` sees the runs as they move."""
    assert settings.database_url is not None
    if not options.database_name.startswith(DEMO_PREFIX):
        # The demo drops and recreates its database: never one that is not a demo's.
        raise InputError(f"the demo database's name must start with {DEMO_PREFIX!r}")
    server_url = settings.database_url
    drop_database(server_url, options.database_name)  # a previous --keep demo's
    url = create_database(server_url, options.database_name)
    try:
        upgrade_database(url)
        return _run(replace(settings, database_url=url), options, progress)
    finally:
        if not options.keep:
            drop_database(server_url, options.database_name)


def _run(settings: Settings, options: DemoOptions, progress: Progress) -> DemoResult:
    assert settings.database_url is not None
    started = time.monotonic()
    engine = make_engine(settings.database_url, application_name="prometheus-demo", pool_size=2)
    reactor = Reactor(settings, metrics_host="127.0.0.1")
    reactor_thread = threading.Thread(target=reactor.run, name="demo-reactor", daemon=True)
    try:
        plan = _prepare(engine, settings, options)
        reactor_thread.start()
        if not reactor.listener.connected.wait(30):
            raise PrometheusError("the demo's reactor could not start listening")
        feeder = _Feeder(engine, plan, options.pace_s)
        feeder.start()
        runs = _watch(engine, plan.runs, started + options.timeout_s, feeder, progress)
        return _result(engine, settings.database_url, runs, plan.runs, started)
    finally:
        reactor.request_stop()
        reactor_thread.join(30)
        engine.dispose()


def _prepare(engine: Engine, settings: Settings, options: DemoOptions) -> _Plan:
    """Regions, instruments and price history, and the market days the demo will ingest."""
    calendar = TradingCalendar(settings.region_exchanges)
    with engine.connect() as conn:
        now: datetime = conn.execute(query("database_now")).scalar_one()
    plan = _Plan()
    for index, region in enumerate(options.regions):
        closed = [
            s.date
            for s in calendar.sessions(region, now.date() - timedelta(days=120), now.date())
            if s.close <= now
        ]
        wanted = closed[-(options.days + HISTORY_SESSIONS) :]
        history, plan.days[region] = wanted[: -options.days], wanted[-options.days :]
        names = market.instruments(region, options.instruments)
        plan.prices[region] = market.price_history(names, wanted, seed=options.seed + index)
        with engine.begin() as conn:
            upsert_instruments(conn, region, names)
            for day in history:  # a backfill: data without batches, so it makes no runs
                copy_prices(conn, day, plan.prices[region][day])
        require_datasets(engine, region, DATASETS)
    return plan


class _Feeder(threading.Thread):
    """End-of-day ingestion, day after day and region after region, as jobs would run."""

    def __init__(self, engine: Engine, plan: _Plan, pace_s: float) -> None:
        super().__init__(name="demo-feeder", daemon=True)
        self._engine = engine
        self._plan = plan
        self._pace_s = pace_s
        self.error: BaseException | None = None

    def run(self) -> None:
        schedule = sorted((day, region) for region, days in self._plan.days.items() for day in days)
        try:
            for day, region in schedule:
                with ingestion_batch(self._engine, "prices", day, region) as batch:
                    batch.rows += copy_prices(batch.conn, day, self._plan.prices[region][day])
                with ingestion_batch(self._engine, "features", day, region):
                    pass  # the demo's features job writes nothing: its batch is the news
                time.sleep(self._pace_s)
        except Exception as exc:  # the watcher reports it and ends the demo
            self.error = exc


def _watch(
    engine: Engine, expected: int, deadline: float, feeder: _Feeder, progress: Progress
) -> list[Run]:
    """Show the runs until the demo's runs are all COMPLETED (or one FAILED, or time is up)."""
    while True:
        with engine.connect() as conn:
            runs = [Run.from_row(r) for r in conn.execute(query("demo_runs"))]
        progress(runs)
        if feeder.error is not None:
            raise PrometheusError(f"the demo's ingestion failed: {feeder.error}")
        completed = sum(r.phase is Phase.COMPLETED for r in runs)
        failed = [r for r in runs if r.phase is Phase.FAILED]
        if failed:
            raise PrometheusError(f"run {failed[0].run_id} FAILED: {failed[0].last_error}")
        if completed >= expected:
            feeder.join()
            return runs
        if time.monotonic() > deadline:
            raise PrometheusError(f"only {completed} of {expected} runs completed in time")
        time.sleep(POLL_S)


def _result(engine: Engine, url: str, runs: list[Run], expected: int, started: float) -> DemoResult:
    with engine.connect() as conn:
        latencies = [float(s) for s in conn.execute(query("demo_latencies")).scalars()]
        completed = [r for r in runs if r.phase is Phase.COMPLETED]
        book_run = max(completed, key=lambda r: (r.as_of_date, r.region), default=None)
        book = []
        if book_run is not None:
            rows = conn.execute(query("demo_top_of_book"), {"run_id": book_run.run_id, "limit": 5})
            book = [BookLine(r.symbol, r.instrument_id, r.weight) for r in rows]
    return DemoResult(
        database_url=url,
        runs_completed=len(completed),
        runs_expected=expected,
        latency_p50_ms=round(percentile(latencies, 50) * 1000, 1) if latencies else 0.0,
        latency_p99_ms=round(percentile(latencies, 99) * 1000, 1) if latencies else 0.0,
        elapsed_s=round(time.monotonic() - started, 1),
        book_run=book_run,
        book=book,
    )
