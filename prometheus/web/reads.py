"""What the console shows, read from the database: the overview grid, a run with its
timeline and batches, a page of runs, and the version the live view polls.

Plain data, no HTTP: the pages render these records, the benchmark times them through
the pages. Every age is measured against the database's clock (``check``'s ``now()``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, NamedTuple

from markupsafe import escape
from sqlalchemy import Engine

from prometheus.calendar import TradingCalendar
from prometheus.checks import REACTOR_LOOKBACK, CheckPolicy, CheckReport, find_problems
from prometheus.db.queries import query
from prometheus.pipeline.holds import Hold, holds_of_run
from prometheus.pipeline.phases import TERMINAL, Phase
from prometheus.pipeline.state import Event, Run, get_run, run_events

SESSIONS_DEFAULT = 30
SESSIONS_MAX = 600  # more than two years of sessions: the grid stays one page
PAGE_SIZE = 50
REACTORS_SHOWN = 20


class CellRun(NamedTuple):
    """One run as a grid cell shows it. (The grid's records are named tuples: a year of
    sessions is thousands of them per render, and a frozen dataclass costs 5x as much
    to build.)"""

    run_id: int
    phase: Phase
    attempts: int
    has_error: bool
    duration: timedelta | None  # since its data was ready; None while waiting for it
    retry_in: timedelta | None  # until its next attempt, while it backs off
    missing: tuple[str, ...]  # required datasets not COMPLETE, for a waiting run
    held: bool  # a hold keeps it from advancing


class Cell(NamedTuple):
    region: str  # escaped (Markup)
    session: bool  # the region's exchange trades that day
    run: CellRun | None


class Row(NamedTuple):
    as_of_date: date
    cells: tuple[Cell, ...]


@dataclass(frozen=True)
class Reactor:
    reactor_id: str
    host: str
    pid: int
    started_at: datetime
    last_seen_at: datetime
    stopped_at: datetime | None
    age: timedelta
    state: str  # live | silent | stopped (as `check` classifies heartbeats)
    # Whether its listener hears notifications, as its heartbeat last said (None: not
    # proven yet, or a reactor too old to report it), and why not.
    listening: bool | None = None
    listener_problem: str | None = None


@dataclass(frozen=True)
class Overview:
    report: CheckReport  # `check`'s problems; its checked_at is the database's now()
    regions: tuple[str, ...]
    exchanges: dict[str, str]
    rows: tuple[Row, ...]
    reactors: tuple[Reactor, ...]
    sessions: int

    @property
    def now(self) -> datetime:
        return self.report.checked_at


@dataclass(frozen=True)
class Batch:
    dataset: str
    required: bool
    status: str | None  # None: a required dataset with no batch yet
    row_count: int | None
    started_at: datetime | None
    completed_at: datetime | None


@dataclass(frozen=True)
class TimelineEntry:
    event: Event
    since_previous: timedelta | None  # how long the run was in ``from_phase``

    @property
    def reason(self) -> str | None:
        return _text(self.event.detail.get("reason"))

    @property
    def error(self) -> str | None:
        return _text(self.event.detail.get("error"))

    @property
    def task_seconds(self) -> float | None:
        value = self.event.detail.get("duration_s")
        return float(value) if isinstance(value, int | float) else None

    @property
    def other_detail(self) -> dict[str, Any]:
        """Everything in the audit detail not shown in a column of its own."""
        shown = {"reason", "error", "duration_s"}
        return {k: v for k, v in self.event.detail.items() if k not in shown}


@dataclass(frozen=True)
class RunDetail:
    run: Run
    now: datetime
    timeline: tuple[TimelineEntry, ...]
    batches: tuple[Batch, ...]
    holds: tuple[Hold, ...] = ()  # the active holds that keep it from advancing

    @property
    def ready_at(self) -> datetime | None:
        """When its data was first declared ready (as the grid's cell counts it)."""
        return next(
            (
                e.event.at
                for e in self.timeline
                if e.event.kind == "transition" and e.event.to_phase == Phase.DATA_READY
            ),
            None,
        )

    @property
    def duration(self) -> timedelta | None:
        run = self.run
        return _duration(self.ready_at, run.phase, run.phase_changed_at, self.now)


@dataclass(frozen=True)
class RunFilters:
    phase: Phase | None = None
    region: str | None = None
    date_from: date | None = None
    date_to: date | None = None


@dataclass(frozen=True)
class RunsPage:
    runs: tuple[Run, ...]
    total: int
    page: int  # 1-based
    page_size: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.page_size))


class Reader:
    """The console's reads (the calendar caches its session lists itself)."""

    def __init__(self, engine: Engine, calendar: TradingCalendar, policy: CheckPolicy) -> None:
        self.engine = engine
        self.calendar = calendar
        self.policy = policy

    @property
    def regions(self) -> tuple[str, ...]:
        return self.calendar.regions

    def overview(self, sessions: int = SESSIONS_DEFAULT) -> Overview:
        report = find_problems(self.engine, self.policy, calendar=self.calendar)
        today = report.checked_at.date()
        by_region = {r: self._last_sessions(r, today, sessions) for r in self.regions}
        dates = sorted({d for days in by_region.values() for d in days}, reverse=True)[:sessions]
        start = dates[-1] if dates else today
        with self.engine.connect() as conn:
            runs = conn.execute(query("web_overview_runs"), {"start": start, "end": today}).all()
            reactors = conn.execute(
                query("web_reactors"),
                {
                    "silent_after_s": self.policy.reactor_silent_after.total_seconds(),
                    "lookback_s": REACTOR_LOOKBACK.total_seconds(),
                    "limit": REACTORS_SHOWN,
                },
            ).all()
        cells = {(r[1], r[2]): _cell_run(*r) for r in runs}
        # A run of a region no longer configured, or on a day that is no session (created
        # with --force), still shows: the grid hides nothing that is in the table.
        regions = (*self.regions, *sorted({r for _, r in cells} - set(self.regions)))
        all_dates = sorted({*dates, *(d for d, _ in cells)}, reverse=True)
        sets = {r: frozenset(days) for r, days in by_region.items()}
        # Each region escaped once here, not once per cell in the template.
        shown = {region: escape(region) for region in regions}
        rows = tuple(
            Row(
                day,
                tuple(
                    Cell(shown[region], day in sets.get(region, ()), cells.get((day, region)))
                    for region in regions
                ),
            )
            for day in all_dates
        )
        return Overview(
            report=report,
            regions=regions,
            exchanges={r: self.calendar.exchange(r) for r in self.regions},
            rows=rows,
            reactors=tuple(Reactor(**r._mapping) for r in reactors),
            sessions=sessions,
        )

    def run_detail(self, run_id: int) -> RunDetail | None:
        with self.engine.connect() as conn:
            # One snapshot: the run, its events and its batches agree with each other.
            conn.execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True)
            run = get_run(conn, run_id)
            if run is None:
                return None
            now: datetime = conn.execute(query("check_clock"), {"at": None}).scalar_one()
            events = run_events(conn, run_id)
            held = holds_of_run(conn, run_id)
            batches = conn.execute(
                query("web_run_batches"), {"as_of_date": run.as_of_date, "region": run.region}
            ).all()
        return RunDetail(
            run=run,
            now=now,
            timeline=tuple(_timeline(events)),
            batches=tuple(Batch(**b._mapping) for b in batches),
            holds=tuple(held),
        )

    def runs_page(self, filters: RunFilters, page: int) -> RunsPage:
        params = {
            "phase": filters.phase,
            "region": filters.region,
            "date_from": filters.date_from,
            "date_to": filters.date_to,
            "limit": PAGE_SIZE,
            "offset": (page - 1) * PAGE_SIZE,
        }
        with self.engine.connect() as conn:
            rows = conn.execute(query("web_runs_page"), params).all()
        total = rows[0].total if rows else 0
        return RunsPage(tuple(Run.from_row(r) for r in rows), total, page, PAGE_SIZE)

    def version(self) -> str:
        """Changes whenever a page may show something new (see the query)."""
        with self.engine.connect() as conn:
            row = conn.execute(query("web_version")).one()
        return ":".join(str(v) for v in row)

    def warm(self) -> None:
        """Load the exchange calendars the overview reads (pandas and holiday tables:
        seconds, and tens of MB of objects) before the first page asks for them."""
        for region in self.regions:
            self._last_sessions(region, date.today(), SESSIONS_DEFAULT)

    def _last_sessions(self, region: str, today: date, count: int) -> tuple[date, ...]:
        """The last ``count`` sessions of ``region`` up to ``today``."""
        # Calendar days that hold ``count`` sessions, with room for long holidays.
        start = today - timedelta(days=count * 7 // 5 + 20)
        days = [s.date for s in self.calendar.sessions(region, start, today)]
        return tuple(days[-count:])


def _cell_run(
    run_id: int,
    as_of_date: date,
    region: str,
    phase: str,
    attempts: int,
    has_error: bool,
    duration_s: float | None,
    retry_in_s: float | None,
    missing: list[str] | None,
    held: bool,
) -> CellRun:
    """A row of ``web_overview_runs``, in its column order."""
    return CellRun(
        run_id=run_id,
        phase=_PHASES[phase],
        attempts=attempts,
        has_error=has_error,
        duration=None if duration_s is None else timedelta(seconds=duration_s),
        retry_in=None if retry_in_s is None else timedelta(seconds=retry_in_s),
        missing=tuple(missing or ()),
        held=held,
    )


_PHASES = {str(phase): phase for phase in Phase}  # a dict lookup, not an enum call per cell


def _duration(
    ready_at: datetime | None, phase: Phase, phase_changed_at: datetime, now: datetime
) -> timedelta | None:
    """How long the run has been (or was) processing: from its data being ready to its
    end, or to now while it is active; None while it waits for its data."""
    if ready_at is None or phase is Phase.WAITING_FOR_DATA:
        return None
    end = phase_changed_at if phase in TERMINAL else now
    return max(end - ready_at, timedelta(0))


def _timeline(events: Sequence[Event]) -> list[TimelineEntry]:
    entries = []
    previous: Event | None = None
    for event in events:
        since = event.at - previous.at if previous is not None else None
        entries.append(TimelineEntry(event, since))
        previous = event
    return entries


def _text(value: object) -> str | None:
    return None if value is None else str(value)
