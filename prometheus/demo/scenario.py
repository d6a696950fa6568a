"""The demo's scenario: set up, start a reactor, ingest day after day, report.

Everything goes through the product's own paths: ``require_datasets`` configures the
regions, ``ingestion_batch`` writes data as an ingestion job would, and the database's
readiness trigger plus the reactor do the rest. Nothing here advances a run.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from types import MappingProxyType

from sqlalchemy import Engine

from prometheus.calendar import TradingCalendar
from prometheus.config import Settings
from prometheus.db.connect import make_engine
from prometheus.db.databases import (
    create_database,
    database_exists,
    drop_database,
    upgrade_database,
)
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
    fresh: bool = False  # drop the database an earlier `demo --keep` left
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
    elapsed_s: float  # from creating the demo's database to the last run COMPLETED
    setup_s: float  # of which: database, history, reactor listening
    book_run: Run | None
    book: list[BookLine] = field(default_factory=list)


@dataclass
class _Plan:
    """Per region: the days the demo ingests, and every day's prices."""

    days: dict[str, list[date]] = field(default_factory=dict)
    prices: dict[str, dict[date, list[PriceRow]]] = field(default_factory=dict)

    @property
    def planned(self) -> tuple[tuple[date, str], ...]:
        """Every (day, region) the demo ingests, in date then region order: the order the
        feeder goes in, and the view's rows."""
        return tuple(sorted((day, region) for region, days in self.days.items() for day in days))


@dataclass(frozen=True)
class DemoFrame:
    """What the demo shows at one moment: what it is doing, and its runs.

    ``planned`` lists the runs the demo will make, in the order they are shown, from the
    start: a view that follows it never moves a row (runs the reactor makes for other
    sessions are not among them). ``runs`` holds those that exist so far.
    """

    activity: str
    elapsed_s: float
    planned: tuple[tuple[date, str], ...] = ()
    runs: Mapping[tuple[date, str], Run] = field(default_factory=lambda: MappingProxyType({}))
    done: bool = False


Progress = Callable[[DemoFrame], None]


class _Clock:
    """Seconds since the demo started, and the frame of the moment."""

    def __init__(self, progress: Progress) -> None:
        self.started = time.monotonic()
        self._progress = progress

    @property
    def elapsed_s(self) -> float:
        return time.monotonic() - self.started

    def say(self, activity: str) -> None:
        self._progress(DemoFrame(activity, self.elapsed_s))

    def say_runs(
        self,
        activity: str,
        planned: tuple[tuple[date, str], ...],
        runs: Mapping[tuple[date, str], Run],
        *,
        done: bool,
    ) -> None:
        frame = DemoFrame(activity, self.elapsed_s, planned, MappingProxyType(dict(runs)), done)
        self._progress(frame)


def run_demo(settings: Settings, options: DemoOptions, *, progress: Progress) -> DemoResult:
    """Run the scenario on a database of its own; ``progress`` sees each moment of it.

    A database of that name already there is an earlier ``--keep``'s (or a demo's that
    was killed): it is dropped only with ``fresh``, never by surprise.
    """
    assert settings.database_url is not None
    if not options.database_name.startswith(DEMO_PREFIX):
        # The demo drops and recreates its database: never one that is not a demo's.
        raise InputError(f"the demo database's name must start with {DEMO_PREFIX!r}")
    server_url, name = settings.database_url, options.database_name
    clock = _Clock(progress)
    if database_exists(server_url, name):
        if not options.fresh:
            raise InputError(
                f"database {name} exists (kept by an earlier `prometheus demo --keep`): "
                f"pass --fresh to drop and recreate it, or --name {DEMO_PREFIX}_2 for another"
            )
        clock.say(f"dropping the database {name} an earlier demo kept")
        drop_database(server_url, name)
    clock.say(f"creating the database {name}")
    url = create_database(server_url, name)
    try:
        clock.say("upgrading its schema")
        upgrade_database(url)
        return _run(replace(settings, database_url=url), options, clock)
    finally:
        if not options.keep:
            drop_database(server_url, name)


def _run(settings: Settings, options: DemoOptions, clock: _Clock) -> DemoResult:
    assert settings.database_url is not None
    engine = make_engine(settings.database_url, application_name="prometheus-demo", pool_size=2)
    reactor = Reactor(settings, metrics_host="127.0.0.1")
    reactor_thread = threading.Thread(target=reactor.run, name="demo-reactor", daemon=True)
    try:
        plan = _prepare(engine, settings, options, clock)
        clock.say("starting the reactor")
        reactor_thread.start()
        if not reactor.listener.connected.wait(30):
            raise PrometheusError("the demo's reactor could not start listening")
        setup_s = clock.elapsed_s
        feeder = _Feeder(engine, plan, options.pace_s)
        feeder.start()
        runs = _watch(engine, plan, clock.started + options.timeout_s, feeder, clock)
        return _result(engine, settings.database_url, runs, plan, clock, setup_s)
    finally:
        reactor.request_stop()
        reactor_thread.join(30)
        _forget(engine, reactor.reactor_id)
        engine.dispose()


def _forget(engine: Engine, reactor_id: str) -> None:
    """The demo's reactor ends with the demo: its heartbeat row would make `prometheus
    check` on a kept demo database report a reactor that went silent (REACTOR_SILENT)."""
    with engine.begin() as conn:
        conn.execute(query("demo_forget_reactor"), {"reactor_id": reactor_id})


def _prepare(engine: Engine, settings: Settings, options: DemoOptions, clock: _Clock) -> _Plan:
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
        clock.say(f"loading {len(history)} sessions of price history for {region}")
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
        self.activity = "ingesting"
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            for day, region in self._plan.planned:
                self.activity = f"ingesting {day} {region}: prices, then features"
                with ingestion_batch(self._engine, "prices", day, region) as batch:
                    batch.rows += copy_prices(batch.conn, day, self._plan.prices[region][day])
                with ingestion_batch(self._engine, "features", day, region):
                    pass  # the demo's features job writes nothing: its batch is the news
                time.sleep(self._pace_s)
            self.activity = "all days ingested; the reactor finishes the last runs"
        except Exception as exc:  # the watcher reports it and ends the demo
            self.error = exc


def _watch(
    engine: Engine, plan: _Plan, deadline: float, feeder: _Feeder, clock: _Clock
) -> dict[tuple[date, str], Run]:
    """Show the runs until the demo's runs are all COMPLETED (or one FAILED, or time is up)."""
    planned = plan.planned
    while True:
        with engine.connect() as conn:
            found = [Run.from_row(r) for r in conn.execute(query("demo_runs"))]
        runs = {(r.as_of_date, r.region): r for r in found if (r.as_of_date, r.region) in planned}
        done = all(r.phase is Phase.COMPLETED for r in runs.values()) and len(runs) == len(planned)
        activity = f"done: all {len(planned)} runs COMPLETED" if done else feeder.activity
        clock.say_runs(activity, planned, runs, done=done)
        if feeder.error is not None:
            raise PrometheusError(f"the demo's ingestion failed: {feeder.error}")
        if failed := [r for r in runs.values() if r.phase is Phase.FAILED]:
            raise PrometheusError(f"run {failed[0].run_id} FAILED: {failed[0].last_error}")
        if done:
            feeder.join()
            return runs
        if time.monotonic() > deadline:
            completed = sum(r.phase is Phase.COMPLETED for r in runs.values())
            raise PrometheusError(f"only {completed} of {len(planned)} runs completed in time")
        time.sleep(POLL_S)


def _result(
    engine: Engine,
    url: str,
    runs: Mapping[tuple[date, str], Run],
    plan: _Plan,
    clock: _Clock,
    setup_s: float,
) -> DemoResult:
    with engine.connect() as conn:
        latencies = [float(s) for s in conn.execute(query("demo_latencies")).scalars()]
        completed = [r for r in runs.values() if r.phase is Phase.COMPLETED]
        book_run = max(completed, key=lambda r: (r.as_of_date, r.region), default=None)
        book = []
        if book_run is not None:
            rows = conn.execute(query("demo_top_of_book"), {"run_id": book_run.run_id, "limit": 5})
            book = [BookLine(r.symbol, r.instrument_id, r.weight) for r in rows]
    return DemoResult(
        database_url=url,
        runs_completed=len(completed),
        runs_expected=len(plan.planned),
        latency_p50_ms=round(percentile(latencies, 50) * 1000, 1) if latencies else 0.0,
        latency_p99_ms=round(percentile(latencies, 99) * 1000, 1) if latencies else 0.0,
        elapsed_s=round(clock.elapsed_s, 1),
        setup_s=round(setup_s, 1),
        book_run=book_run,
        book=book,
    )
