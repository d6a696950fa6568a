"""Reading the problems from the database: one read-only REPEATABLE READ transaction, so
the counts agree with the problems, measured against the database's ``now()``, so a
skewed host clock changes nothing."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import Any

from sqlalchemy import Connection, Engine

from prometheus.calendar import TradingCalendar, UnknownRegion
from prometheus.checks.policy import STUCK_PHASES, CheckPolicy
from prometheus.checks.problems import (
    BatchRegressed,
    DataLate,
    FailedRun,
    Heartbeat,
    ListenerDeaf,
    MissingDataset,
    NoDatasets,
    NotifyQueueFull,
    Problem,
    ProblemKind,
    ReactorSilent,
    StaleHold,
    StuckRun,
    TooManyFailures,
    human,
)
from prometheus.db.queries import query
from prometheus.pipeline.holds import HoldScope
from prometheus.pipeline.phases import Phase

#: A silent reactor is a problem only if some reactor heartbeated this recently (SPEC 5):
#: a deployment on cron timers alone, or one whose reactor was retired, has none.
REACTOR_LOOKBACK = timedelta(days=1)


@dataclass(frozen=True)
class CheckReport:
    """The problems and the figures behind them, as of ``checked_at`` (database time)."""

    checked_at: datetime
    policy: CheckPolicy
    problems: tuple[Problem, ...]
    runs_by_phase: Mapping[Phase, int]  # every phase, zeros included (gauges need them)
    failed_in_window: int
    live_reactors: int
    notify_queue_usage: float  # pg_notification_queue_usage(), 0..1
    active_holds: int = 0
    runs_held: int = 0  # active runs an active hold covers

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def problems_by_kind(self) -> dict[ProblemKind, int]:
        """Every kind, zeros included."""
        counts = dict.fromkeys(ProblemKind, 0)
        for problem in self.problems:
            counts[problem.kind] += 1
        return counts

    @property
    def summary(self) -> str:
        """One line: ``OK: ...`` when clean, else the problem counts by kind."""
        if self.problems:
            kinds = ", ".join(f"{n} {k}" for k, n in self.problems_by_kind.items() if n)
            return f"{len(self.problems)} problem(s): {kinds}"
        total = sum(self.runs_by_phase.values())
        phases = ", ".join(f"{n} {p}" for p, n in self.runs_by_phase.items() if n)
        reactors = f"{self.live_reactors} live reactor(s)" if self.live_reactors else "no reactor"
        holds = (
            f"; {self.active_holds} hold(s) holding {self.runs_held} run(s)"
            if self.active_holds
            else ""
        )
        return (
            f"OK: {total} run(s){f' ({phases})' if phases else ''}; "
            f"{self.failed_in_window} failed within {human(self.policy.window)} "
            f"(max {self.policy.max_failures}); {reactors}{holds}"
        )


def find_problems(
    db: Engine, policy: CheckPolicy, *, calendar: TradingCalendar, now: datetime | None = None
) -> CheckReport:
    """Everything ``prometheus check`` reports, as of the database's ``now()``.

    ``calendar`` carries the configured region -> exchange map (session closes for late
    data). ``now`` pins the instant instead of the database's clock: for tests at exact
    boundaries; production callers leave it None.
    """
    with db.connect() as conn:
        conn.execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True)
        with conn.begin():
            at: datetime = conn.execute(query("check_clock"), {"at": now}).scalar_one()
            by_phase = dict.fromkeys(Phase, 0)
            for row in conn.execute(query("check_runs_by_phase")):
                by_phase[Phase(row.phase)] = row.runs
            usage = float(conn.execute(query("check_notify_queue")).scalar_one())
            reactors, live = _reactor_problems(conn, policy, at)
            failed = _failed_runs(conn, policy, at)
            problems: list[Problem] = [*reactors, *_deaf_listeners(conn, policy, at)]
            if usage > policy.max_notify_queue:
                problems.append(NotifyQueueFull(usage, policy.max_notify_queue))
            if len(failed) > policy.max_failures:
                problems.append(TooManyFailures(policy.window, policy.max_failures, failed))
            problems += _stuck_runs(conn, policy, at)
            problems += _stale_holds(conn, policy, at)
            holds = conn.execute(query("check_holds")).one()
            problems += _regressed_batches(conn)
            problems += _waiting_runs(conn, policy, at, calendar)
    problems.sort(key=lambda p: list(ProblemKind).index(p.kind))  # stable: keeps row order
    return CheckReport(
        checked_at=at,
        policy=policy,
        problems=tuple(problems),
        runs_by_phase=MappingProxyType(by_phase),
        failed_in_window=len(failed),
        live_reactors=live,
        notify_queue_usage=usage,
        active_holds=holds.active_holds,
        runs_held=holds.runs_held,
    )


def _reactor_problems(
    conn: Connection, policy: CheckPolicy, at: datetime
) -> tuple[list[ReactorSilent], int]:
    params = {
        "now": at,
        "silent_after_s": policy.reactor_silent_after.total_seconds(),
        "lookback_s": REACTOR_LOOKBACK.total_seconds(),
    }
    newest: dict[str, Heartbeat] = {}
    counts: dict[str, int] = {}
    for row in conn.execute(query("check_reactors"), params):
        newest[row.state] = Heartbeat(
            row.reactor_id, row.host, row.pid, row.last_seen_at, row.stopped_at
        )
        counts[row.state] = row.reactors
    live = counts.get("live", 0)
    if live:
        return [], live
    # A reactor was here within the day and none is now: it went quiet, or it was stopped
    # (cleanly, but a stop nobody restarted is exactly what this check is for).
    recent = [h for h in (newest.get("silent"), newest.get("stopped")) if h is not None]
    if recent:
        quiet = max(recent, key=lambda h: h.last_seen_at)
        silent = ReactorSilent(policy.reactor_silent_after, False, quiet, at - quiet.last_seen_at)
        return [silent], 0
    if not policy.require_reactor:  # no reactor expected here: cron timers, or retired
        return [], 0
    seen = [h for h in (newest.get("gone"),) if h is not None]
    last = max(seen, key=lambda h: h.last_seen_at, default=None)
    silent_for = at - last.last_seen_at if last is not None else None
    return [ReactorSilent(policy.reactor_silent_after, True, last, silent_for)], 0


def _deaf_listeners(conn: Connection, policy: CheckPolicy, at: datetime) -> Iterator[ListenerDeaf]:
    params = {"now": at, "silent_after_s": policy.reactor_silent_after.total_seconds()}
    for row in conn.execute(query("check_deaf_listeners"), params):
        yield ListenerDeaf(row.reactor_id, row.host, row.pid, row.listener_problem)


def _failed_runs(conn: Connection, policy: CheckPolicy, at: datetime) -> tuple[FailedRun, ...]:
    rows = conn.execute(
        query("check_recent_failures"), {"now": at, "window_s": policy.window.total_seconds()}
    )
    return tuple(FailedRun(**row._mapping) for row in rows)


def _stuck_runs(conn: Connection, policy: CheckPolicy, at: datetime) -> Iterator[StuckRun]:
    params: dict[str, Any] = {
        "now": at,
        "phases": [str(p) for p in STUCK_PHASES],
        "limits_s": [policy.stuck_limit(p).total_seconds() for p in STUCK_PHASES],
    }
    for row in conn.execute(query("check_stuck_runs"), params):
        m = row._mapping
        yield StuckRun(
            run_id=m["run_id"],
            as_of_date=m["as_of_date"],
            region=m["region"],
            phase=Phase(m["phase"]),
            phase_changed_at=m["phase_changed_at"],
            age=m["age"],
            limit=m["stuck_after"],
            attempts=m["attempts"],
            last_error=m["last_error"],
        )


def _stale_holds(conn: Connection, policy: CheckPolicy, at: datetime) -> Iterator[StaleHold]:
    params = {"now": at, "max_age_s": policy.max_hold_age.total_seconds()}
    for row in conn.execute(query("check_stale_holds"), params):
        phase = Phase(row.phase) if row.phase else None
        yield StaleHold(
            hold_id=row.hold_id,
            scope=HoldScope(row.region, phase, row.from_date, row.to_date).describe(),
            held_by=row.held_by,
            held_at=row.held_at,
            age=row.age,
            limit=policy.max_hold_age,
            runs_held=row.runs_held,
            reason=row.reason,
        )


def _regressed_batches(conn: Connection) -> Iterator[BatchRegressed]:
    for row in conn.execute(query("check_regressed_batches")):
        m = row._mapping
        yield BatchRegressed(**{**m, "phase": Phase(m["phase"])})


def _waiting_runs(
    conn: Connection, policy: CheckPolicy, at: datetime, calendar: TradingCalendar
) -> Iterator[DataLate | NoDatasets]:
    """NO_DATASETS for a waiting run nothing will flip; DATA_LATE for one whose data is
    overdue after its session's close. A region with no calendar mapping, or a date that
    is not a session of its exchange, has no close to measure from and is skipped."""
    for row in conn.execute(query("check_waiting_runs")):
        if not row.has_datasets:
            yield NoDatasets(row.run_id, row.as_of_date, row.region, row.phase_changed_at)
            continue
        try:
            session = calendar.session(row.region, row.as_of_date)
        except UnknownRegion:
            continue
        if session is None or at - session.close <= policy.data_late_after:
            continue
        missing = tuple(MissingDataset(m["dataset"], m["status"]) for m in row.missing)
        yield DataLate(
            run_id=row.run_id,
            as_of_date=row.as_of_date,
            region=row.region,
            exchange=session.exchange,
            close=session.close,
            late_by=at - session.close,
            limit=policy.data_late_after,
            missing=missing,
        )
